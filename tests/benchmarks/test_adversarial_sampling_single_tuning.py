"""benchmarks/adversarial_sampling.py --part tune --protocol single (issue 21): the settings of the paper's
single-label protocol tuned under that protocol, in a tuning file of their own, and the single-label runs trained
at them (no training: the training step is replaced by a stub that records what it was given)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import scipy.sparse as sp


@pytest.fixture(scope="module")
def adv(load_benchmark):
    return load_benchmark("adversarial_sampling")


def test_single_protocol_tunes_on_the_first_labels_into_its_own_file_and_its_runs_train_at_its_choices(
    adv, tmp_path, monkeypatch, stub_adversarial_run, adversarial_run_args, adversarial_tune_args, protocol_toy
):
    data = protocol_toy()  # row 2 has no label; several labels on rows 0, 3 and 4
    seen = []
    # the validation P@1 of a rate: the single-label tuning runs peak at 1e-2
    best = {1e-2: 0.6}

    def fake_train(method, train_data, budget, batch, seed, tree_params, cache, n_eval, fractions, lr=None, **kw):
        seen.append({"method": method, "X": train_data["X"], "Y": train_data["Y"], "Y_val": train_data["Y_test"]})
        seen[-1]["lr"] = lr
        run = {**stub_adversarial_run(method, budget), "lr": lr, **kw.get("overrides", {})}  # as train_curve records
        run["final"] = {**run["final"], "P@1": best.get(lr, 0.4)}
        return run

    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    monkeypatch.setattr(adv, "load_set", lambda name, dim, seed: {**data, "name": name})
    monkeypatch.setattr(adv, "train_curve", fake_train)
    monkeypatch.setattr(adv, "LR_GRIDS", {"adagrad": (1e-3, 1e-2, 1e-1), "adam": (1e-3, 1e-2, 1e-1)})
    methods = [adv.ADVERSARIAL, adv.UNIFORM]
    multi_path = tmp_path / "adversarial_sampling_tuning_toy.json"
    adv.write_json(multi_path, {"choices": {m: {"lr": 0.003} for m in methods}})
    multi_before = multi_path.read_text()

    # before a single-label tuning exists, the single-label runs train at the multi-label choices
    run_args = adversarial_run_args(adv, methods, seeds="0,1", dim=4, eval_rows=3, protocol=adv.SINGLE)
    adv.run_datasets(run_args, {}, tuned=True)
    assert {s["lr"] for s in seen} == {0.003}
    part_path = tmp_path / "adversarial_sampling_toy-tuned-single.json"
    assert {r["tuning_protocol"] for r in adv.read_json(part_path)["runs"]} == {adv.MULTI}

    # the tuning: the rows to fit are the protocol's (the first label of each, rows without one dropped), the
    # validation rows keep all their labels
    seen.clear()
    tune_args = adversarial_tune_args(adv, methods, dim=4, protocol=adv.SINGLE)
    adv.run_tuning(tune_args, {})
    fit, val = adv.validation_split(6, 2, 0)
    fit_with_label = [int(i) for i in fit if data["Y"][int(i)].nnz]
    assert len(seen) == 6 and {s["lr"] for s in seen} == {1e-3, 1e-2, 1e-1}
    for s in seen:
        assert list(s["X"][:, 0].astype(int)) == fit_with_label
        Y = sp.csr_matrix(s["Y"])
        assert np.array_equal(np.diff(Y.indptr), np.ones(len(fit_with_label), dtype=int))
        assert list(Y.indices) == [min(data["Y"][i].indices) for i in fit_with_label]
        assert (s["Y_val"] != data["Y"][val]).nnz == 0  # every label of the validation rows
    tuning = adv.read_json(tmp_path / "adversarial_sampling_tuning_toy-single.json")
    assert {m: c["lr"] for m, c in tuning["choices"].items()} == {m: 1e-2 for m in methods}
    d = tuning["dataset"]
    assert d["protocol"] == adv.SINGLE and d["train_rows_dropped"] == len(fit) - len(fit_with_label)
    assert d["n_fit"] == len(fit_with_label) and d["n_val"] == 2
    assert multi_path.read_text() == multi_before  # the multi-label tuning is not touched
    # the later stages read and write the same protocol's file
    adv.run_tuning(argparse.Namespace(**{**vars(tune_args), "methods": adv.UNIFORM, "tune": "reg"}), {})
    assert adv.UNIFORM in adv.read_json(tmp_path / "adversarial_sampling_tuning_toy-single.json")["reg_choices"]
    assert "reg_choices" not in adv.read_json(multi_path)

    # one method again: its runs at the single-label choices (its lambda too), each run saying so, the other's kept
    seen.clear()
    adv.run_datasets(argparse.Namespace(**{**vars(run_args), "methods": adv.UNIFORM}), {}, tuned=True)
    assert [(s["method"], s["lr"]) for s in seen] == [(adv.UNIFORM, 1e-2)] * 2
    part = adv.read_json(part_path)
    reg = adv.read_json(tmp_path / "adversarial_sampling_tuning_toy-single.json")["reg_choices"][adv.UNIFORM]["reg"]
    by_method = {
        m: {(r["lr"], r.get("reg"), r["tuning_protocol"]) for r in part["runs"] if r["method"] == m} for m in methods
    }
    assert by_method == {adv.ADVERSARIAL: {(0.003, None, adv.MULTI)}, adv.UNIFORM: {(1e-2, reg, adv.SINGLE)}}
    assert adv.methods_tuned_under(part, adv.SINGLE) == [adv.UNIFORM]
    assert adv.methods_tuned_under(part, adv.MULTI) == [adv.ADVERSARIAL]
    # the choices each run trained at, from its own protocol's tuning: none of them off its choices
    tunings = {
        "toy": adv.read_json(multi_path),
        "toy-single": adv.read_json(tmp_path / "adversarial_sampling_tuning_toy-single.json"),
    }
    composed = adv.part_tuning("toy-tuned-single", part, tunings)
    assert composed["choices"] == {
        adv.ADVERSARIAL: {"lr": 0.003},
        adv.UNIFORM: tunings["toy-single"]["choices"][adv.UNIFORM],
    }
    assert adv.UNIFORM in composed["reg_choices"] and adv.tuned_mismatches(part, composed) == {}
    assert adv.tuned_mismatches(part, tunings["toy-single"])["lr"] == [f"{adv.ADVERSARIAL} 0", f"{adv.ADVERSARIAL} 1"]
    # the multi-label runs still train at the multi-label choices
    seen.clear()
    adv.run_datasets(argparse.Namespace(**{**vars(run_args), "protocol": adv.MULTI}), {}, tuned=True)
    assert {s["lr"] for s in seen} == {0.003}
    multi = adv.read_json(tmp_path / "adversarial_sampling_toy-tuned.json")
    assert {r["tuning_protocol"] for r in multi["runs"]} == {adv.MULTI}


def _tuning(settings: dict, n_fit: int, uniform_lr: float = 0.01, **dataset: object) -> dict:
    """A tuning file (of ``settings``) whose learning rates chose 0.01 for the tree and ``uniform_lr`` for uniform
    (grid 1e-3, 1e-2, 1e-1)."""
    choice = {
        "lr": 0.01,
        "scores": {"0.001": 0.2, "0.01": 0.3, "0.1": 0.25},
        "metric": "validation P@1",
        "grid": [1e-3, 1e-2, 1e-1],
        "extended": None,
        "on_edge": False,
    }
    return {
        "date": "d",
        "settings": settings,
        "dataset": {"n_val": 2000, "n_fit": n_fit, **dataset},
        "choices": {"ns-tree": choice, "ns-uniform": {**choice, "lr": uniform_lr}},
    }


@pytest.mark.parametrize("under", ["multi", "single", "mixed"])
def test_the_page_says_under_which_protocol_the_single_label_runs_were_tuned(
    adv, tmp_path, monkeypatch, toy_adversarial_part, adversarial_tuning_settings, under
):
    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    hits = {"ns-tree": 0.3, "ns-uniform": 0.2}
    multi = toy_adversarial_part(hits)
    single = toy_adversarial_part(hits, protocol="single", train_rows_dropped=7, labels_per_row_all_positives=5.06)
    for part in (multi, single):
        for run in part["runs"]:
            run["lr"] = 0.01  # at the choices of both tunings
    for run in single["runs"]:  # multi: runs written before the record (the multi-label tuning's); mixed: the tree
        if under != "multi":  # re-run at the single-label tuning's choices, uniform not
            run["tuning_protocol"] = "single" if under == "single" or run["method"] == "ns-tree" else "multi"
    adv.write_json(tmp_path / "adversarial_sampling_toy-tuned.json", multi)
    adv.write_json(tmp_path / "adversarial_sampling_toy-tuned-single.json", single)
    adv.write_json(tmp_path / "adversarial_sampling_tuning_toy.json", _tuning(adversarial_tuning_settings(adv), 42469))
    # the single-label tuning chose the runs' rate for the tree, another for uniform (whose runs are then not at it)
    uniform_lr = 0.01 if under == "single" else 0.1
    adv.write_json(
        tmp_path / "adversarial_sampling_tuning_toy-single.json",
        _tuning(adversarial_tuning_settings(adv), 42462, uniform_lr, protocol="single", train_rows_dropped=7),
    )
    adv.write_report()
    page = (tmp_path / "adversarial_sampling.md").read_text()
    merged = adv.read_json(tmp_path / "adversarial_sampling.json")
    assert set(merged["tuning"]) == {"toy", "toy-single"}
    assert merged["tuned_settings_applied"] == {"toy-tuned": ["lr"], "toy-tuned-single": ["lr"]}
    single_table = page.split(f"### {adv.SINGLE_HEADING}")[1].split("\n## ")[0]
    tuning = page.split("## Settings tuned on a validation split")[1]
    own = tuning.split("toy-single (`adversarial_sampling_tuning_toy-single.json`")[1]
    assert "paper's single-label protocol (the first label of each row; 7 rows without a label dropped)" in own
    also = "The chosen settings also train the `toy-tuned-single` runs"
    if under == "single":
        assert "The settings of toy-tuned-single were chosen under this protocol" in single_table
        assert "not re-tuned for this one" not in single_table and "settings re-tuned under it" not in single_table
        assert "The chosen settings train the `toy-tuned-single` runs (all training rows" in own and also not in tuning
    elif under == "mixed":
        assert (
            "The settings of toy-tuned-single were chosen under this protocol for ns-tree (the tuning runs fit the "
            "first labels too"
            in single_table
            and "under the multi-label protocol for ns-uniform (its runs; this protocol's tuning chose since: "
            "ns-uniform: learning rate 0.1 (the runs' 0.01), not re-run yet)"
            in single_table
        )
        assert "settings re-tuned under it on toy for ns-uniform (they were chosen under" in single_table
        assert "its runs of ns-uniform were trained at the multi-label tuning's choices." in own
        assert f"{also} of ns-uniform (the paper's single-label protocol;" in tuning
    else:
        assert (
            "toy-tuned-single were chosen under the multi-label protocol (the tuning runs trained on every positive); "
            "this protocol's tuning chose since: the same settings for ns-tree, so those runs are at its choices too; "
            "ns-uniform: learning rate 0.1 (the runs' 0.01), not re-run yet." in single_table
        )
        # the tree's runs have the single-label tuning's settings: only uniform's are left to re-tune
        assert "settings re-tuned under it on toy for ns-uniform (they were chosen under the multi-label one)" in (
            single_table
        )
        assert "trained at the multi-label tuning's choices, before this tuning existed" in own and also in tuning
