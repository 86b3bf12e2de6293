"""benchmarks/adversarial_sampling.py --protocol (issue 21): the paper's single-label training protocol beside the
multi-label one (no training: the training step is replaced by a stub that records what it was given)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import scipy.sparse as sp


@pytest.fixture(scope="module")
def adv(load_benchmark):
    return load_benchmark("adversarial_sampling")


def _one_positive_per_row_at_the_first_label(Y_train, X_train, data) -> None:
    """Y_train (one row per X_train row, whose features name its source row) holds exactly one positive per row,
    at the smallest label id of that source row of data["Y"]."""
    Y_train = sp.csr_matrix(Y_train)
    source = X_train[:, 0].astype(int)
    assert np.array_equal(np.diff(Y_train.indptr), np.ones(len(source), dtype=int))
    assert np.array_equal(Y_train.indices, [min(data["Y"][i].indices) for i in source])
    assert (Y_train.data == 1).all()


def test_single_protocol_keeps_the_first_label_of_each_row_and_drops_rows_without_one(adv, protocol_toy):
    data = protocol_toy()
    single, dropped = adv.protocol_data(data, adv.SINGLE)
    assert dropped == 1 and list(single["X"][:, 0]) == [0, 1, 3, 4, 5]  # row 2 has no label
    _one_positive_per_row_at_the_first_label(single["Y"], single["X"], data)
    assert list(single["Y"].indices) == [3, 1, 0, 2, 5]
    assert np.array_equal(single["Y"].indices, adv.first_label(data["Y"])[adv.first_label(data["Y"]) >= 0])
    assert single["X_test"] is data["X_test"] and single["Y_test"] is data["Y_test"]  # evaluation unchanged
    same, none = adv.protocol_data(data, adv.MULTI)
    assert same is data and none == 0
    with pytest.raises(ValueError, match="protocol"):
        adv.protocol_data(data, "pairs")


def test_constant_first_label_hits_is_the_share_of_the_training_rows_most_frequent_first_label(adv):
    Y_train = sp.csr_matrix(np.array([[0, 0, 1, 1, 0, 0], [0, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 1], [0] * 6]))
    Y_eval = sp.csr_matrix(np.array([[0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0] * 6, [1, 0, 1, 0, 0, 0]]))
    # training first labels 2, 2, 5: the constant is 2; evaluation first labels 2, 5, (none), 0
    assert adv.constant_first_label_hits(Y_train, Y_eval) == pytest.approx(1 / 3)
    assert adv.constant_first_label_hits(Y_train, Y_eval[:1]) == 1.0


@pytest.mark.parametrize("tuned", [False, True])
def test_single_protocol_trains_every_method_on_the_first_labels_into_its_own_part(
    adv, tmp_path, monkeypatch, tuned, stub_adversarial_run, adversarial_run_args, protocol_toy
):
    data = protocol_toy()
    seen = []

    def fake_train(method, train_data, budget, *args, **kwargs):  # what train_curve would train and fit on
        seen.append((method, train_data["X"], train_data["Y"], train_data["Y_test"]))
        return stub_adversarial_run(method, budget)

    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    monkeypatch.setattr(adv, "load_set", lambda name, dim, seed: {**data, "name": name})
    monkeypatch.setattr(adv, "train_curve", fake_train)
    methods = [adv.ADVERSARIAL, adv.FREQUENCY, adv.NCE]
    if tuned:
        adv.write_json(
            tmp_path / "adversarial_sampling_tuning_toy.json", {"choices": {m: {"lr": 0.003} for m in methods}}
        )
    args = adversarial_run_args(adv, methods, seeds="0,1", dim=4, eval_rows=3, protocol=adv.SINGLE)
    adv.run_datasets(args, {}, tuned=tuned)
    assert len(seen) == 6
    for _, X_train, Y_train, Y_test in seen:
        _one_positive_per_row_at_the_first_label(Y_train, X_train, data)
        assert Y_test is data["Y_test"]
    name = "toy-tuned-single" if tuned else "toy-single"
    part = adv.read_json(tmp_path / f"adversarial_sampling_{name}.json")
    assert {r["protocol"] for r in part["runs"]} == {adv.SINGLE} and part["settings"]["protocol"] == adv.SINGLE
    d = part["dataset"]
    assert d["protocol"] == adv.SINGLE and d["train_rows_dropped"] == 1 and d["n_train"] == 5
    assert d["labels_per_row"] == 1.0 and d["labels_per_row_all_positives"] == pytest.approx(10 / 6)
    assert d["constant_first_label_hits@1"] == pytest.approx(1 / 3)  # first labels 0 (all tie: smallest), 1, 2
    assert not (tmp_path / f"adversarial_sampling_{name.removesuffix('-single')}.json").exists()
    # the multi protocol (the default) trains on every positive, into the part without the suffix
    seen.clear()
    adv.run_datasets(argparse.Namespace(**{**vars(args), "protocol": adv.MULTI}), {}, tuned=tuned)
    assert all(Y_train is data["Y"] for _, _, Y_train, _ in seen)
    multi = adv.read_json(tmp_path / f"adversarial_sampling_{name.removesuffix('-single')}.json")
    assert {r["protocol"] for r in multi["runs"]} == {adv.MULTI} and multi["dataset"]["train_rows_dropped"] == 0


def test_report_judges_the_single_label_runs_in_their_own_table_and_keeps_the_multi_label_lines(
    adv, tmp_path, monkeypatch, toy_adversarial_part, page_of_one_part
):
    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    page = tmp_path / "adversarial_sampling.md"
    # multi-label: the tree 30 % vs uniform 20 % (better by 5 SE); single-label: 20 % vs 30 % (worse)
    multi = toy_adversarial_part({"ns-tree": 0.3, "ns-uniform": 0.2}, labels_per_row=5.06)
    before = page_of_one_part(adv, tmp_path, "toy-tuned", multi)
    single = toy_adversarial_part(
        {"ns-tree": 0.2, "ns-uniform": 0.3},
        protocol="single",
        train_rows_dropped=7,
        labels_per_row_all_positives=5.06,
    )
    adv.write_json(tmp_path / "adversarial_sampling_toy-tuned-single.json", single)
    adv.write_report()
    after = page.read_text().splitlines()
    # every line of the page stays but the "Not tested" ones, which no longer list the protocol for toy
    changed = [line for line in before if line not in after]
    assert changed == [line for line in before if line.startswith("Not tested")] != []
    assert all("its single-label training protocol, " in line for line in changed)
    main = after[: after.index(f"### {adv.SINGLE_HEADING}")]
    assert "toy-tuned-single" not in "\n".join(main)
    assert any(line.startswith("Not tested") and "protocol outside toy (there:" in line for line in main)
    rest = after[after.index(f"### {adv.SINGLE_HEADING}") :]
    hits = "Higher final accuracy (hits@1 of the first label) than neg. sampling, uniform"
    row = next(line for line in rest if line.startswith(f"| {hits} |"))
    assert (
        "toy-tuned-single 20.0 (20.0 to 20.0) vs 30.0 (30.0 to 30.0) % (-10.0 +- 1.9, 2 seeds)" in row
        and row.endswith("| contradicted (neg. sampling, uniform is better) |")
    )
    assert any(
        "first label (smallest id) of each training row only" in line and "7 of toy-tuned-single's 1,007" in line
        for line in rest
    )
    assert f"| {hits} | reproduced | contradicted (neg. sampling, uniform is better) |" in rest
    assert not any(line.startswith("| Theorem 2") and line.count("|") == 4 for line in rest)
    assert "## toy-tuned-single" in after and any(
        "(7 rows without a label dropped; all positives: 5.06" in x for x in after
    )
    merged = adv.read_json(tmp_path / "adversarial_sampling.json")
    assert merged["protocols"] == {"toy-tuned": "multi", "toy-tuned-single": "single"}
    assert merged["tuned_settings_applied"].keys() == {"toy-tuned", "toy-tuned-single"}


@pytest.mark.parametrize("per_row", [1.0, 5.06])
def test_not_tested_names_the_sets_of_one_label_per_row_as_under_the_single_label_protocol_already(
    adv, tmp_path, monkeypatch, toy_adversarial_part, page_of_one_part, per_row
):
    # synthetic-50k and synthetic-1m have one label per training row: the first label is every label there
    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    part = toy_adversarial_part({"ns-tree": 0.3, "ns-uniform": 0.2}, labels_per_row=per_row)
    page = page_of_one_part(adv, tmp_path, "toy-tuned", part)
    line = next(line for line in page if line.startswith("Not tested"))  # the table that toy-tuned decides
    same = "(on toy every training row has one label, so the runs there train under it already)"
    assert (f"its single-label training protocol {same}, " in line) == (per_row == 1.0)
    assert ("its single-label training protocol, " in line) == (per_row != 1.0)
    # a part written before labels_per_row_all_positives existed reads labels_per_row; a later one reads the former
    assert adv.one_label_sets({"a": {"dataset": {"labels_per_row": 1.0}}}) == ["a"]
    assert adv.one_label_sets({"a": {"dataset": {"labels_per_row": 1.0, "labels_per_row_all_positives": 2.0}}}) == []
    assert adv.one_label_sets({"a-single": {"dataset": {"labels_per_row": 1.0}}}) == []  # single parts: not multi
    assert adv.one_label_sets({"a": {"dataset": {"labels_per_row": 1.0}}, "a-tuned": part}) == ["a"]
