"""benchmarks/adversarial_sampling.py --eval-sample (issue 21, stop 37): which test rows a part evaluates on (a
seeded random sample, or the first rows as every part before it), recorded per part and named on the page (no
training: the training step is replaced by a stub that records the rows it was given)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp


@pytest.fixture(scope="module")
def adv(load_benchmark):
    return load_benchmark("adversarial_sampling")


def test_random_rows_are_seeded_distinct_sorted_and_first_rows_are_the_old_ones(adv):
    rows = adv.eval_row_ids(50, 20, adv.RANDOM_ROWS)
    assert np.array_equal(rows, adv.eval_row_ids(50, 20, adv.RANDOM_ROWS))  # seeded: the same on every call
    assert len(np.unique(rows)) == 20 and np.array_equal(rows, np.sort(rows))  # no repeats, sorted
    assert rows.min() >= 0 and rows.max() < 50 and not np.array_equal(rows, np.arange(20))
    assert not np.array_equal(rows, adv.eval_row_ids(50, 20, adv.RANDOM_ROWS, seed=1))
    assert np.array_equal(adv.eval_row_ids(50, 20, adv.FIRST_ROWS), np.arange(20))
    assert np.array_equal(adv.eval_row_ids(5, 20, adv.RANDOM_ROWS), np.arange(5))  # capped at the test rows
    with pytest.raises(ValueError, match="eval sample"):
        adv.eval_row_ids(50, 20, "last")
    a, b = adv.eval_sample_record(rows, adv.RANDOM_ROWS), adv.eval_sample_record(np.arange(20), adv.FIRST_ROWS)
    assert a["seed"] == adv.EVAL_SEED and b["seed"] is None and a["n_rows"] == b["n_rows"] == 20
    assert a["row_ids_sha256"] != b["row_ids_sha256"]


def _toy(n_test: int = 40) -> dict:
    """Eight training rows; test row i's features are all i and its only label is i % 5."""
    C = 5
    Y = sp.csr_matrix(np.eye(8, C, dtype=np.float32) + np.eye(8, C, k=-5, dtype=np.float32))
    X = np.ones((8, 3), np.float32)
    X_test = np.arange(n_test, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    Y_test = sp.csr_matrix(
        (np.ones(n_test, np.float32), np.arange(n_test) % C, np.arange(n_test + 1)), shape=(n_test, C)
    )
    return {"name": "toy", "X": X, "Y": Y, "X_test": X_test, "Y_test": Y_test, "features": "toy features"}


@pytest.fixture
def args_for(adv, adversarial_run_args):
    """run_datasets' arguments for the toy set evaluated on ``sample``'s rows (three methods, seeds 0 and 1)."""
    methods = [adv.ADVERSARIAL, adv.FREQUENCY, adv.NCE]
    return lambda sample: adversarial_run_args(adv, methods, seeds="0,1", eval_rows=10, eval_sample=sample)


@pytest.fixture
def evaluated(adv, tmp_path, monkeypatch, stub_adversarial_run):
    """The test rows (ids, from their features) each stubbed run of run_datasets would evaluate on."""
    data, seen = _toy(), []

    def fake_train(method, train_data, budget, batch_size, seed, tree_params, tree_cache, eval_rows, *a, **k):
        seen.append((method, seed, train_data["X_test"][:eval_rows, 0].astype(int)))  # what train_curve evaluates
        assert np.array_equal(train_data["Y_test"][:eval_rows].indices, seen[-1][2] % 5)  # labels go with the rows
        return stub_adversarial_run(method, budget)

    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    monkeypatch.setattr(adv, "load_set", lambda name, dim, seed: {**data, "name": name})
    monkeypatch.setattr(adv, "train_curve", fake_train)
    return seen


def test_random_sample_is_the_same_rows_for_every_method_and_seed_and_is_recorded(adv, tmp_path, evaluated, args_for):
    adv.run_datasets(args_for(adv.RANDOM_ROWS), {})
    expected = adv.eval_row_ids(40, 10, adv.RANDOM_ROWS)
    assert len(evaluated) == 6 and {(m, s) for m, s, _ in evaluated} == {
        (m, s) for m in (adv.ADVERSARIAL, adv.FREQUENCY, adv.NCE) for s in (0, 1)
    }
    assert all(np.array_equal(rows, expected) for _, _, rows in evaluated)
    assert not np.array_equal(expected, np.arange(10))
    part = adv.read_json(tmp_path / "adversarial_sampling_toy.json")
    record = adv.eval_sample_record(expected, adv.RANDOM_ROWS)
    assert part["dataset"]["eval_sample"] == record and part["dataset"]["n_test_eval"] == 10
    assert all(r["settings"]["eval_sample"] == record for r in part["runs"])
    # the constant's hits on the sampled rows (the training rows' most frequent first label is 0: rows 0 and 5)
    assert part["dataset"]["constant_first_label_hits@1"] == pytest.approx(np.mean(expected % 5 == 0))


def test_first_rows_are_the_old_rows_and_a_part_keeps_one_sample(adv, tmp_path, evaluated, args_for):
    adv.run_datasets(args_for(adv.FIRST_ROWS), {})
    assert all(np.array_equal(rows, np.arange(10)) for _, _, rows in evaluated)
    part = adv.read_json(tmp_path / "adversarial_sampling_toy.json")
    assert part["dataset"]["eval_sample"] == adv.eval_sample_record(np.arange(10), adv.FIRST_ROWS)
    # a part written before --eval-sample (no record) evaluated on its first rows
    del part["dataset"]["eval_sample"]
    adv.write_json(tmp_path / "adversarial_sampling_toy.json", part)
    assert adv.earlier_sample(part)["rule"] == adv.FIRST_ROWS
    # runs on another sample do not join it: the old file must be renamed first
    with pytest.raises(SystemExit, match="toy-first1000"):
        adv.run_datasets(args_for(adv.RANDOM_ROWS), {})
    adv.run_datasets(args_for(adv.FIRST_ROWS), {})  # the same rows: joins (replaces its runs)
    assert len(adv.read_json(tmp_path / "adversarial_sampling_toy.json")["runs"]) == 6


def test_report_judges_the_random_sample_part_and_names_every_parts_rows(
    adv, tmp_path, monkeypatch, toy_adversarial_part
):
    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    sample = adv.eval_sample_record(adv.eval_row_ids(5000, 1000, adv.RANDOM_ROWS), adv.RANDOM_ROWS)
    # the first rows: the tree better (30 % vs 20 %); the random sample: worse (20 % vs 30 %)
    adv.write_json(
        tmp_path / "adversarial_sampling_toy-tuned-first1000.json",
        toy_adversarial_part({"ns-tree": 0.3, "ns-uniform": 0.2}),
    )
    adv.write_json(
        tmp_path / "adversarial_sampling_toy-tuned.json",
        toy_adversarial_part({"ns-tree": 0.2, "ns-uniform": 0.3}, eval_sample=sample),
    )
    adv.write_report()
    page = (tmp_path / "adversarial_sampling.md").read_text()
    verdicts = page[: page.index("## toy-tuned")]
    hits = "Higher final accuracy (hits@1 of the first label) than neg. sampling, uniform"
    row = next(line for line in verdicts.splitlines() if line.startswith(f"| {hits} |"))
    assert row.endswith("| contradicted (neg. sampling, uniform is better) |") and "first1000" not in verdicts
    assert f"toy-tuned: a random sample of 1000 test rows (seed 0, row ids sha256 {sample['row_ids_sha256']})" in page
    old = page[page.index("## toy-tuned-first1000") :]
    assert "evaluated on the first 1000 test rows (recorded before --eval-sample). Superseded:" in old
    merged = adv.read_json(tmp_path / "adversarial_sampling.json")
    assert merged["superseded"] == {"toy-tuned-first1000": "toy-tuned"}
    assert merged["eval_samples"]["toy-tuned"] == sample
    assert merged["eval_samples"]["toy-tuned-first1000"]["rule"] == adv.FIRST_ROWS
    assert merged["protocols"]["toy-tuned-first1000"] == adv.MULTI


def test_eval_rows_summary_describes_the_rows_it_is_given(adv):
    data = _toy(n_test=10)  # test row i: label i % 5; training: labels 0-4 once, 0-2 twice (first labels 0-4, 0-2)
    Y, Y_test = data["Y"], data["Y_test"]
    rows = np.array([0, 5, 6])  # labels 0, 0, 1
    s = adv.eval_rows_summary(Y, Y_test, rows, adv.RANDOM_ROWS)
    assert s["rule"] == adv.RANDOM_ROWS and s["n_rows"] == 3
    assert s["row_ids_sha256"] == adv.eval_sample_record(rows, adv.RANDOM_ROWS)["row_ids_sha256"]
    assert s["constant_first_label_hits@1"] == pytest.approx(2 / 3)  # the training rows' first label 0
    assert s["labels_per_row_mean"] == 1.0 and s["distinct_first_labels"] == 2 and s["distinct_labels"] == 2
    assert s["top_first_label_share"] == pytest.approx(2 / 3)
    freq = np.asarray(Y.sum(0)).ravel()  # label 0 twice, label 1 twice in training
    assert s["positives_train_frequency_mean"] == pytest.approx(np.mean(freq[[0, 0, 1]]))
    every = adv.eval_rows_summary(Y, Y_test, np.arange(10), "all")
    assert every["rule"] == "all" and every["distinct_labels"] == 5
    assert every["constant_first_label_hits@1"] == pytest.approx(0.2)
    table = adv.eval_rows_section({"toy": {"first": s, "random": s, "all": every}})
    assert table[0].startswith("## The evaluation rows") and len([x for x in table if x.startswith("| toy |")]) == 3
    assert adv.eval_rows_section({}) == []
