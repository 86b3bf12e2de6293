"""benchmarks/adversarial_sampling.py --plateau (issue 21): the long runs in a part of their own, judged in their
own section of the page and never in the verdict tables of the 60 s parts (no training: stubbed runs, toy parts)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import scipy.sparse as sp


@pytest.fixture(scope="module")
def adv(load_benchmark):
    return load_benchmark("adversarial_sampling")


def test_plateau_part_names_and_what_the_naming_helpers_read_from_them(adv):
    assert adv.part_label("a", True, True, adv.MULTI) == "a-tuned-plateau"
    assert adv.part_label("a", True, True, adv.SINGLE) == "a-tuned-plateau-single"
    assert adv.part_label("a", True, False, adv.SINGLE) == "a-tuned-single"
    assert adv.part_label("a", False, False, adv.MULTI) == "a"
    with pytest.raises(ValueError, match="--plateau"):
        adv.part_label("a", False, True, adv.MULTI)  # the long runs train at the tuned settings only
    for name in ("a-tuned-plateau", "a-tuned-plateau-single", "a-tuned-plateau-first1000"):
        assert adv.is_plateau(name) and adv.is_tuned(name) and adv.set_name(name) == "a"
    assert adv.part_protocol("a-tuned-plateau-single") == adv.SINGLE
    assert adv.part_protocol("a-tuned-plateau") == adv.MULTI
    assert adv.multi_name("a-tuned-plateau-single") == "a-tuned-plateau"
    assert adv.is_superseded("a-tuned-plateau-first1000") and not adv.is_superseded("a-tuned-plateau")
    for name in ("a", "a-tuned", "a-tuned-single", "a-single"):
        assert not adv.is_plateau(name)
    # a set whose name contains the word is not a plateau part
    assert not adv.is_plateau("plateau-set-tuned") and adv.set_name("plateau-set-tuned") == "plateau-set"


def test_plateau_runs_write_their_own_part_with_the_tuned_settings(
    adv, tmp_path, monkeypatch, stub_adversarial_run, adversarial_run_args
):
    C = 5
    Y = sp.csr_matrix(np.eye(6, C, dtype=np.float32))
    X = np.arange(6, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    data = {"name": "toy", "X": X, "Y": Y, "X_test": X[:4], "Y_test": Y[:4], "features": "toy features"}
    seen = []

    def fake_train(method, train_data, budget, *args, lr=None, overrides=None, **kwargs):
        seen.append((method, budget, lr))
        return stub_adversarial_run(method, budget)

    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    monkeypatch.setattr(adv, "load_set", lambda name, dim, seed: {**data, "name": name})
    monkeypatch.setattr(adv, "train_curve", fake_train)
    methods = [adv.ADVERSARIAL, adv.UNIFORM]
    adv.write_json(tmp_path / "adversarial_sampling_tuning_toy.json", {"choices": {m: {"lr": 0.003} for m in methods}})
    args = adversarial_run_args(adv, methods, budget=600.0, eval_fractions="0.5,1", plateau=True)
    adv.run_datasets(args, {}, tuned=True)
    assert seen == [(adv.ADVERSARIAL, 600.0, 0.003), (adv.UNIFORM, 600.0, 0.003)]  # the tuned rate, the long budget
    part = adv.read_json(tmp_path / "adversarial_sampling_toy-tuned-plateau.json")
    assert [r["method"] for r in part["runs"]] == methods and all(r["tuned"] for r in part["runs"])
    assert part["settings"]["plateau"] is True
    assert not (tmp_path / "adversarial_sampling_toy-tuned.json").exists()  # the 60 s part is not touched
    adv.run_datasets(argparse.Namespace(**{**vars(args), "protocol": adv.SINGLE}), {}, tuned=True)
    assert (tmp_path / "adversarial_sampling_toy-tuned-plateau-single.json").is_file()


def test_a_later_invocation_adding_runs_keeps_the_earlier_processes_records(
    adv, tmp_path, monkeypatch, stub_adversarial_run, adversarial_run_args
):
    Y = sp.csr_matrix(np.eye(6, 5, dtype=np.float32))
    X = np.arange(6, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    data = {"name": "toy", "X": X, "Y": Y, "X_test": X[:4], "Y_test": Y[:4], "features": "toy features"}
    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    monkeypatch.setattr(adv, "load_set", lambda name, dim, seed: {**data, "name": name})
    monkeypatch.setattr(adv, "train_curve", lambda method, d, budget, *a, **k: stub_adversarial_run(method, budget))
    path = tmp_path / "adversarial_sampling_toy.json"
    adv.run_datasets(adversarial_run_args(adv, [adv.ADVERSARIAL]), {})
    first = adv.read_json(path)
    assert "processes" not in first  # one invocation: its record is the top-level keys, as before
    adv.write_json(path, {**first, "merge_note": "joined by hand"})
    adv.run_datasets(adversarial_run_args(adv, [adv.UNIFORM]), {})
    second = adv.read_json(path)
    assert [r["method"] for r in second["runs"]] == [adv.ADVERSARIAL, adv.UNIFORM]
    assert [p["methods"] for p in second["processes"]] == [[adv.ADVERSARIAL], [adv.UNIFORM]]
    assert second["processes"][0]["date"] == first["date"] and second["merge_note"] == "joined by hand"
    adv.run_datasets(adversarial_run_args(adv, [adv.UNIFORM]), {})  # a third: replaces the uniform run
    third = adv.read_json(path)
    assert [p["methods"] for p in third["processes"]] == [[adv.ADVERSARIAL], [adv.UNIFORM], [adv.UNIFORM]]
    assert [r["method"] for r in third["runs"]] == [adv.ADVERSARIAL, adv.UNIFORM]


def _curve_run(method: str, p1: list[float], budget: float = 600.0) -> dict:
    """A run evaluated at 25 % (first evaluation at 30 %), 50 % and 100 % of ``budget`` with P@1 ``p1``."""
    times = [0.3 * budget, 0.5 * budget + 0.01, budget + 0.01]
    curve = [
        {"train_seconds": t, "P@1": p, "hits@1_first_label": p / 2, "step": i, "epochs": 1.0}
        for i, (t, p) in enumerate(zip(times, p1, strict=True))
    ]
    return {"method": method, "seed": 0, "budget_cpu_seconds": budget, "curve": curve, "final": curve[-1]}


def test_plateau_rule_needs_a_gain_over_the_last_half_below_one_binomial_standard_error(adv):
    n = 1000
    rising = adv.plateau_check(_curve_run("ns-uniform", [0.30, 0.35, 0.40]), n)
    flat = adv.plateau_check(_curve_run("ns-tree", [0.59, 0.600, 0.605]), n)
    se = np.sqrt(0.4 * 0.6 / n)  # 0.0155: the rising run gains 0.05, more than 3 SE
    assert rising["gain"] == pytest.approx(0.05) and rising["se"] == pytest.approx(se)
    assert rising["plateau"] is False and rising["half_seconds"] == pytest.approx(300.01)
    assert flat["gain"] == pytest.approx(0.005) and flat["plateau"] is True  # 0.005 < sqrt(.605 .395 / 1000)
    assert flat["falling"] is False and rising["falling"] is False
    fall = adv.plateau_check(_curve_run("ns-tree", [0.6, 0.6, 0.56]), n)  # a fall is no rise: a plateau, falling
    assert fall["plateau"] is True and fall["falling"] is True and adv.plateau_word(fall) == "plateau (falling)"
    # a curve flat at P@1 1 (its SE is 0) is a plateau: the bound is at least one evaluation row; a rise of two
    # rows to 1 is not, nor a fall of two rows from 1 a mere plateau
    top = adv.plateau_check(_curve_run("ns-frequency-l2", [1.0, 1.0, 1.0]), n)
    assert top["se"] == 0 and top["plateau"] is True and top["falling"] is False
    assert adv.plateau_check(_curve_run("ns-frequency-l2", [0.99, 0.998, 1.0]), n)["plateau"] is False
    assert adv.plateau_check(_curve_run("ns-frequency-l2", [1.0, 1.0, 0.998]), n)["falling"] is True
    # the rule compares with the SE of the evaluation rows: the same gain is a rise on 100,000 rows
    assert adv.plateau_check(_curve_run("ns-tree", [0.59, 0.600, 0.605]), 100_000)["plateau"] is False
    # the 25 % column: the first evaluation at or after 150 s (here the one at 180 s; 0.3 * 600 is not exact)
    assert adv.point_at(_curve_run("ns-tree", [0.1, 0.2, 0.3]), 0.25)["P@1"] == 0.1
    assert adv.point_at(_curve_run("ns-tree", [0.1, 0.2, 0.3]), 0.3)["P@1"] == 0.1
    part = {"dataset": {"n_test_eval": n}, "runs": [_curve_run("ns-uniform", [0.30, 0.35, 0.40])]}
    part["runs"].append(_curve_run("ns-tree", [0.59, 0.600, 0.605]))
    part["runs"].append(_curve_run("nce-tree", [0.6, 0.6, 0.56]))
    part["runs"].append(_curve_run("ns-frequency-l2", [1.0, 1.0, 1.0]))
    rows = adv.plateau_table(part)
    assert rows[2].endswith("| +0.0500 (0.0155) | still rising |") and "0.3000 / 0.1500 (180 s)" in rows[2]
    assert rows[3].endswith("| +0.0050 (0.0155) | plateau |") and "0.6050 / 0.3025 (600 s)" in rows[3]
    assert rows[4].endswith("| -0.0400 (0.0157) | plateau (falling) |")
    assert rows[5].endswith("| +0.0000 (0.0010) | plateau |")  # the bound: one row of 1,000


def test_plateau_part_stays_out_of_the_verdict_tables_and_gets_its_own_section(
    adv, tmp_path, monkeypatch, toy_adversarial_part, page_of_one_part
):
    three = {"ns-tree", "ns-uniform", "nce-tree"}
    assert adv.verdict_sets({"a": three, "a-tuned": three, "a-tuned-plateau": three}) == (["a-tuned"], ["a"])
    # a plateau part alone never decides, nor counts as an untuned part
    assert adv.verdict_sets({"a": three, "a-tuned-plateau": three}) == (["a"], ["a"])
    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    # the 60 s part: the tree 30 % vs uniform 20 % (better by 5 SE); the long runs: 20 % vs 30 % (worse)
    before = page_of_one_part(adv, tmp_path, "toy-tuned", toy_adversarial_part({"ns-tree": 0.3, "ns-uniform": 0.2}))
    long = toy_adversarial_part({"ns-tree": 0.2, "ns-uniform": 0.3})
    for run in long["runs"]:
        run["budget_cpu_seconds"] = 600.0
    after = page_of_one_part(adv, tmp_path, "toy-tuned-plateau", long)
    assert [line for line in before if line not in after] == []  # the 60 s tables unchanged
    heading = f"## {adv.LONG_HEADING}"
    main = after[: after.index(heading)]
    assert "toy-tuned-plateau" not in "\n".join(main)
    hits = "Higher final accuracy (hits@1 of the first label) than neg. sampling, uniform"
    assert next(line for line in main if line.startswith(f"| {hits} |")).endswith("| reproduced |")
    section = after[after.index(heading) : after.index("## toy-tuned")]
    row = next(line for line in section if line.startswith(f"| {hits} |") and line.count("|") == 5)
    assert "toy-tuned-plateau 20.0" in row and row.endswith("| contradicted (neg. sampling, uniform is better) |")
    assert f"| {hits} | reproduced | contradicted (neg. sampling, uniform is better) |" in section
    assert any("| neg. sampling, tree (adversarial) | 0 | 600 |" in line for line in section)
    assert any(line.startswith("| baseline |") for line in section)  # the time-to-target ratios
    assert any("fixed CPU budget (600 s, the tree fit included)" in line for line in section)
    merged = adv.read_json(tmp_path / "adversarial_sampling.json")
    assert set(merged["plateau"]) == {"toy-tuned-plateau"}
    assert merged["plateau"]["toy-tuned-plateau"]["0"]["ns-tree"]["plateau"] is True  # one point: no gain
