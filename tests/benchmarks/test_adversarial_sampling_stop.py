"""benchmarks/adversarial_sampling.py --part tune --tune stop (issue 21): each method's stopping time chosen on the
validation rows at the long runs' budget, and the long runs read at it (no training: stubbed runs, toy parts)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import scipy.sparse as sp


@pytest.fixture(scope="module")
def adv(load_benchmark):
    return load_benchmark("adversarial_sampling")


def _run(method: str, times: list[float], p1: list[float], budget: float = 600.0, seed: int = 0) -> dict:
    """A run evaluated at ``times`` (training CPU s) with P@1 ``p1`` (hits@1 half of it)."""
    curve = [
        {
            "train_seconds": t,
            "train_wall_seconds": t,
            "P@1": p,
            "P@3": p / 2,
            "P@5": p / 3,
            "hits@1_first_label": p / 2,
            "log_likelihood_first_label": -5.0,
            "log_likelihood_first_label_se": 0.05,
            "step": i,
            "epochs": 1.0,
        }
        for i, (t, p) in enumerate(zip(times, p1, strict=True))
    ]
    return {
        "method": method,
        "seed": seed,
        "lr": 0.01,
        "prepare_seconds": 1.0,
        "budget_cpu_seconds": budget,
        "curve": curve,
        "final": curve[-1],
    }


FRACTIONS = (0.1, 0.25, 0.5, 1.0)


def test_the_stopping_time_is_the_first_evaluation_of_best_validation_p1_as_its_fraction(adv):
    run = _run("ns-tree", [60.01, 150.0, 300.02, 600.01], [0.5, 0.6, 0.6, 0.4])
    c = adv.stop_choice(run, FRACTIONS)
    assert c["stop_fraction"] == 0.25 and c["stop_seconds"] == 150.0  # the earlier of the tied bests
    assert c["scores"] == {"60.01": 0.5, "150": 0.6, "300.02": 0.6, "600.01": 0.4} and c["budget"] == 600.0
    # a tree fit longer than the first fractions: its one evaluation stands for the largest fraction it reached
    slow = _run("ns-tree", [200.0, 300.0, 600.0], [0.7, 0.5, 0.4])
    assert adv.stop_choice(slow, FRACTIONS)["stop_fraction"] == 0.25
    # the last evaluation is the end of the budget
    rising = _run("ns-uniform", [60.0, 150.0, 300.0, 600.0], [0.1, 0.2, 0.3, 0.4])
    assert adv.stop_choice(rising, FRACTIONS)["stop_fraction"] == 1.0


def test_stopped_part_cuts_every_run_at_its_methods_stop_or_refuses_a_partial_set(adv):
    part = {
        "dataset": {"n_test_eval": 1000},
        "runs": [
            _run("ns-tree", [60.0, 150.0, 300.0, 600.0], [0.5, 0.7, 0.6, 0.4]),
            _run("ns-uniform", [60.0, 150.0, 300.0, 600.0], [0.1, 0.2, 0.3, 0.5]),
        ],
    }
    stops = {"ns-tree": {"stop_fraction": 0.25}, "ns-uniform": {"stop_fraction": 1.0}}
    cut = adv.stopped_part(part, stops)
    tree, uniform = cut["runs"]
    assert tree["final"]["P@1"] == 0.7 and [p["train_seconds"] for p in tree["curve"]] == [60.0, 150.0]
    assert uniform["final"]["P@1"] == 0.5 and len(uniform["curve"]) == 4
    assert part["runs"][0]["final"]["P@1"] == 0.4  # the part itself is not changed
    assert adv.stopped_part(part, {"ns-tree": {"stop_fraction": 0.25}}) is None  # uniform has no stop


@pytest.fixture
def stop_args(adversarial_tune_args):
    """The tuning stages' toy arguments (conftest's), for the stopping time: 600 s runs validated at four fractions."""

    def build(adv, methods: list[str], **settings: object) -> argparse.Namespace:
        stop = {"tune": adv.STOP, "budget": 600.0, "softmax_budget": 600.0, "tune_eval_fractions": "0.1,0.25,0.5,1"}
        return adversarial_tune_args(adv, methods, **{**stop, **settings})

    return build


def _toy_tuning(adv, tmp_path, monkeypatch, fake_train):
    """Results in ``tmp_path``, an 8-row toy set for every name and ``fake_train`` for the training; the path of
    the toy set's tuning file."""
    Y = sp.csr_matrix(np.eye(8, 5, dtype=np.float32))
    X = np.arange(8, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    data = {"name": "toy", "X": X, "Y": Y, "X_test": X[:4], "Y_test": Y[:4], "features": "toy features"}
    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    monkeypatch.setattr(adv, "load_set", lambda name, dim, seed: {**data, "name": name})
    monkeypatch.setattr(adv, "train_curve", fake_train)
    return tmp_path / "adversarial_sampling_tuning_toy.json"


def test_stop_tuning_trains_at_the_tuned_settings_on_the_validation_split_and_keeps_the_file(
    adv, tmp_path, monkeypatch, stop_args
):
    seen = []
    curves = {adv.ADVERSARIAL: [0.5, 0.7, 0.6, 0.4], adv.UNIFORM: [0.1, 0.2, 0.3, 0.5]}

    def fake_train(method, train_data, budget, batch, seed, tree_params, cache, n_eval, fractions, lr=None, **kw):
        seen.append((method, budget, lr, kw["overrides"], train_data["X"].shape[0], fractions))
        times = [f * budget + 0.01 for f in fractions]
        return _run(method, times, curves.get(method, [0.2] * len(times)), budget)

    path = _toy_tuning(adv, tmp_path, monkeypatch, fake_train)
    settings = {
        "batch_size": 2,
        "val_rows": 2,
        "val_seed": 0,
        "seed": 0,
        "tree_params": {"split": "median", "reg": 0.1, "reg_scaling": "constant"},
        "budget": 60.0,
    }
    earlier = {
        "settings": settings,
        "choices": {m: {"lr": 0.003} for m in (adv.ADVERSARIAL, adv.UNIFORM, adv.FREQUENCY)},
        "reg_choices": {adv.ADVERSARIAL: {"reg": 1e-4, "lr": 0.003}},
        "runs": [{"method": adv.ADVERSARIAL, "stage": "lr", "note": "an earlier rate run"}],
        "stages": {"lr": {"date": "2026-12-01"}, "reg": {"date": "2026-12-02"}},
    }
    adv.write_json(path, earlier)
    with pytest.raises(SystemExit, match="val_rows"):
        adv.run_stop_tuning(stop_args(adv, [adv.ADVERSARIAL], val_rows=3), {})  # not the tuning's split
    adv.run_stop_tuning(stop_args(adv, [adv.ADVERSARIAL, adv.UNIFORM]), {})
    # the tuned rate and lambda, the long budget, the rows to fit (8 - 2 validation rows), the long runs' fractions
    assert seen == [
        (adv.ADVERSARIAL, 600.0, 0.003, {"reg": 1e-4}, 6, (0.1, 0.25, 0.5, 1.0)),
        (adv.UNIFORM, 600.0, 0.003, {}, 6, (0.1, 0.25, 0.5, 1.0)),
    ]
    out = adv.read_json(path)
    assert out["choices"] == earlier["choices"] and out["reg_choices"] == earlier["reg_choices"]
    assert out["runs"][0] == earlier["runs"][0] and [r.get("stage") for r in out["runs"]] == ["lr", "stop", "stop"]
    stops = out["stop_choices"]
    assert stops[adv.ADVERSARIAL]["stop_fraction"] == 0.25 and stops[adv.UNIFORM]["stop_fraction"] == 1.0
    assert stops[adv.ADVERSARIAL]["at"] == {"lr": 0.003, "reg": 1e-4}
    assert out["stages"]["stop"]["budget"] == 600.0 and out["stages"]["lr"] == earlier["stages"]["lr"]
    # again for one method: its stop run and choice replaced, the other's kept
    adv.run_stop_tuning(stop_args(adv, [adv.UNIFORM]), {})
    again = adv.read_json(path)
    assert [r["method"] for r in again["runs"] if r.get("stage") == "stop"] == [adv.ADVERSARIAL, adv.UNIFORM]
    assert set(again["stop_choices"]) == {adv.ADVERSARIAL, adv.UNIFORM}
    # the first process's record kept (the tree's stop is still its choice), this one's names what it ran
    assert again["stage_history"] == [{"stage": "stop", **out["stages"]["stop"]}]
    assert again["stages"]["stop"]["methods_run"] == [adv.UNIFORM]
    # re-tuning a method's rate drops its stopping time (chosen at the old rate), not the others'
    monkeypatch.setattr(adv, "LR_GRIDS", {"adagrad": (1e-3, 1e-2, 1e-1), "adam": (1e-3, 1e-2, 1e-1)})
    adv.run_tuning(argparse.Namespace(**{**vars(stop_args(adv, [adv.UNIFORM])), "tune": "lr", "budget": 60.0}), {})
    retuned = adv.read_json(path)
    assert set(retuned["stop_choices"]) == {adv.ADVERSARIAL} and "stop" in retuned["stages"]
    assert [r["method"] for r in retuned["runs"] if r.get("stage") == "stop"] == [adv.ADVERSARIAL]


def test_the_page_judges_the_long_runs_again_at_the_stopping_times(adv, tmp_path, monkeypatch):
    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    times = [60.0, 150.0, 300.0, 600.0]
    # the tree peaks at 150 s (0.70) and ends below uniform (0.40 vs 0.60); uniform is still rising
    runs = [
        _run(m, times, p, seed=s)
        for s in (0, 1)
        for m, p in ((adv.ADVERSARIAL, [0.5, 0.7, 0.6, 0.4]), (adv.UNIFORM, [0.1, 0.2, 0.4, 0.6]))
    ]
    d = {"name": "toy", "n_labels": 100, "n_train": 1000, "labels_per_row": 1.0, "features": "toy", "dim": 3}
    part = {
        "date": "2026-12-05T00:00:00Z",
        "environment": {"torch_threads": 1},
        "dataset": {**d, "n_test_eval": 1000},
        "load_average_before": [0.0],
        "runs": runs,
    }
    stops = {
        adv.ADVERSARIAL: {"stop_fraction": 0.25, "stop_seconds": 150.0, "scores": {"150": 0.66}},
        adv.UNIFORM: {"stop_fraction": 1.0, "stop_seconds": 600.0, "scores": {"600": 0.55}},
    }
    tuning = {
        "date": "2026-12-05T00:00:00Z",
        "settings": {
            "budget": 60.0,
            "softmax_budget": 150.0,
            "val_seed": 0,
            "seed": 0,
            "grids": adv.LR_GRIDS,
            "rule": adv.SELECTION_RULE,
        },
        "dataset": {"n_val": 2, "n_fit": 6},
        "choices": {
            m: {"lr": 0.01, "scores": {"0.01": 0.5}, "extended": None, "on_edge": False, "grid": [0.01]} for m in stops
        },
        "stop_choices": stops,
    }
    adv.write_json(tmp_path / "adversarial_sampling_tuning_toy.json", tuning)
    adv.write_json(tmp_path / "adversarial_sampling_toy-tuned-plateau.json", part)
    adv.write_report()
    page = (tmp_path / "adversarial_sampling.md").read_text().splitlines()
    heading = "### At each method's validated stopping time"
    assert heading in page
    section = page[page.index(heading) :]
    section = section[: next(i for i, line in enumerate(section) if line.startswith("## "))]
    row = next(line for line in section if line.startswith("| neg. sampling, tree (adversarial) | 0.25 (150 s)"))
    assert row.endswith("| 0.6600 | 0 | 0.7000 / 0.3500 (150 s) | 0.4000 / 0.2000 |")
    hits = "Higher final accuracy (hits@1 of the first label) than neg. sampling, uniform"
    long = page[page.index(f"## {adv.LONG_HEADING}") : page.index(heading)]  # the long runs at the end of the budget
    at_end = next(line for line in long if line.startswith(f"| {hits} |") and line.count("|") == 5)
    at_stop = next(line for line in section if line.startswith(f"| {hits} |"))
    assert at_end.endswith("| contradicted (neg. sampling, uniform is better) |")  # 0.20 vs 0.30 at the end
    assert at_stop.endswith("| reproduced |")  # 0.35 at the tree's stop vs 0.30
    merged = adv.read_json(tmp_path / "adversarial_sampling.json")
    assert merged["tuning"]["toy"]["stop_choices"] == stops


def test_a_stage_tuned_for_more_methods_later_keeps_the_earlier_processs_record(adv, tmp_path, monkeypatch, stop_args):
    Y = sp.csr_matrix(np.eye(8, 5, dtype=np.float32))
    X = np.arange(8, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    data = {"name": "toy", "X": X, "Y": Y, "X_test": X[:4], "Y_test": Y[:4], "features": "toy features"}

    def fake_train(method, train_data, budget, *args, lr=None, **kw):
        return {**_run(method, [budget], [lr or 0.1], budget), "lr": lr}

    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    monkeypatch.setattr(adv, "load_set", lambda name, dim, seed: {**data, "name": name})
    monkeypatch.setattr(adv, "train_curve", fake_train)
    monkeypatch.setattr(adv, "LR_GRIDS", {"adagrad": (1e-3, 1e-2, 1e-1), "adam": (1e-3, 1e-2, 1e-1)})
    args = stop_args(adv, [adv.ADVERSARIAL], tune="lr", budget=60.0)
    adv.run_tuning(args, {"who": "first"})
    path = tmp_path / "adversarial_sampling_tuning_toy.json"
    first = adv.read_json(path)
    assert first["stages"]["lr"]["methods_run"] == [adv.ADVERSARIAL] and "stage_history" not in first
    adv.run_tuning(argparse.Namespace(**{**vars(args), "methods": adv.UNIFORM}), {"who": "second"})
    second = adv.read_json(path)
    assert second["stages"]["lr"]["methods"] == [adv.ADVERSARIAL, adv.UNIFORM]
    assert second["stages"]["lr"]["methods_run"] == [adv.UNIFORM]
    assert second["stage_history"] == [{"stage": "lr", **first["stages"]["lr"]}]  # the first process's record
    assert second["stages"]["lr"]["environment"] == {"who": "second"}


# a tuning file's settings and a rate choice on the extended edge (0.1), for the probes' tests
PROBED_SETTINGS = {
    "budget": 60.0,
    "softmax_budget": 600.0,
    "batch_size": 2,
    "val_rows": 2,
    "val_seed": 0,
    "seed": 0,
    "tree_params": {"split": "median", "reg": 0.1, "reg_scaling": "constant"},
}
PROBED_EDGE = {
    "scores": {"0.01": 0.5, "0.03": 0.55, "0.1": 0.6},
    "grid": [0.01, 0.03],
    "extended": 0.1,
    "on_edge": True,
}


def test_a_probe_beyond_an_edge_is_recorded_beside_the_choice_without_changing_it(
    adv, tmp_path, monkeypatch, stop_args
):
    seen = []
    final = {adv.ADVERSARIAL: 0.55, adv.UNIFORM: 0.65}  # below / above the choices' 0.6

    def fake_train(method, train_data, budget, batch, seed, tree_params, cache, n_eval, fractions, lr=None, **kw):
        seen.append((method, budget, lr, kw["overrides"], train_data["X"].shape[0]))
        return _run(method, [f * budget for f in fractions], [0.1] * (len(fractions) - 1) + [final[method]], budget)

    path = _toy_tuning(adv, tmp_path, monkeypatch, fake_train)
    settings, edge = PROBED_SETTINGS, PROBED_EDGE
    earlier = {
        "settings": settings,
        "choices": {m: {"lr": 0.1, **edge} for m in (adv.ADVERSARIAL, adv.UNIFORM)},
        "reg_choices": {adv.ADVERSARIAL: {"reg": 1e-4, "lr": 0.1, **edge, "scores": {"0.0001": 0.6}}},
        "runs": [{"method": adv.ADVERSARIAL, "stage": "lr", "note": "an earlier rate run"}],
        "stages": {"lr": {"date": "2026-12-01"}},
    }
    adv.write_json(path, earlier)
    args = stop_args(adv, [adv.ADVERSARIAL, adv.UNIFORM], tune="lr", budget=60.0, probe="0.3")
    with pytest.raises(SystemExit, match="within the values tried"):
        adv.run_probe(argparse.Namespace(**{**vars(args), "probe": "0.05"}), {})
    with pytest.raises(SystemExit, match="budget"):
        adv.run_probe(argparse.Namespace(**{**vars(args), "budget": 600.0}), {})  # not the tuning's budget
    with pytest.raises(SystemExit, match="stop"):
        adv.run_probe(argparse.Namespace(**{**vars(args), "tune": adv.STOP}), {})
    assert seen == []
    adv.run_probe(args, {})
    # the rate at the head's defaults (the rate stage's settings), the tuning budget, the rows to fit
    assert seen == [(adv.ADVERSARIAL, 60.0, 0.3, {}, 6), (adv.UNIFORM, 60.0, 0.3, {}, 6)]
    out = adv.read_json(path)
    assert out["choices"] == earlier["choices"] and out["reg_choices"] == earlier["reg_choices"]
    assert [r.get("stage") for r in out["runs"]] == ["lr", "lr-probe", "lr-probe"]
    probes = out["probes"]["lr"]
    assert probes[adv.ADVERSARIAL]["scores"] == {"0.3": 0.55} and probes[adv.UNIFORM]["scores"] == {"0.3": 0.65}
    assert probes[adv.ADVERSARIAL]["chosen"] == 0.1 and probes[adv.ADVERSARIAL]["chosen_score"] == 0.6
    # the page's note: an optimum where the probe scored lower, still a bound where higher
    low = adv._choice_row(adv.ADVERSARIAL, out["choices"][adv.ADVERSARIAL], "lr", "rate", probes[adv.ADVERSARIAL], 2000)
    high = adv._choice_row(adv.UNIFORM, out["choices"][adv.UNIFORM], "lr", "rate", probes[adv.UNIFORM], 2000)
    assert "0.3: 0.5500 (-0.0500), none above the choice: an optimum of all values tried" in low
    # 0.05 above on 2,000 rows: more than twice the SE of a difference (0.031 at 0.6)
    assert "0.3: 0.6500 (+0.0500), above the choice by 0.031 or more" in high and "still a bound" in high
    # on 200 rows the same 0.05 is not told apart (0.098)
    close = adv._choice_row(adv.UNIFORM, out["choices"][adv.UNIFORM], "lr", "rate", probes[adv.UNIFORM], 200)
    assert "above the choice by less than 0.098" in close and "no better rate shown" in close
    # a lambda probe runs at the rate the lambda was chosen at
    seen.clear()
    adv.run_probe(argparse.Namespace(**{**vars(args), "methods": adv.ADVERSARIAL, "tune": "reg", "probe": "1e-5"}), {})
    assert seen == [(adv.ADVERSARIAL, 60.0, 0.1, {"reg": 1e-5}, 6)]
    assert set(adv.read_json(path)["probes"]) == {"lr", "reg"}
    # re-tuning a method's rate drops its probes (of the rate and the later stages) and their runs, not the others'
    monkeypatch.setattr(adv, "LR_GRIDS", {"adagrad": (1e-3, 1e-2, 1e-1), "adam": (1e-3, 1e-2, 1e-1)})
    adv.run_tuning(argparse.Namespace(**{**vars(args), "methods": adv.ADVERSARIAL, "probe": None}), {})
    retuned = adv.read_json(path)
    assert retuned["probes"] == {"lr": {adv.UNIFORM: probes[adv.UNIFORM]}}
    assert [r["method"] for r in retuned["runs"] if r.get("stage", "").endswith("-probe")] == [adv.UNIFORM]


def test_a_probe_at_more_seeds_pairs_the_choice_and_the_probe_at_each(adv, tmp_path, monkeypatch, stop_args):
    seen = []
    # validation P@1 per (rate, seed): the probe 0.3 above the choice 0.1 at every seed, or not, as set below
    final = {(0.3, 0): 0.62, (0.1, 1): 0.58, (0.3, 1): 0.61, (0.1, 2): 0.60, (0.3, 2): 0.62, (1.0, 0): 0.5}

    def fake_train(method, train_data, budget, batch, seed, tree_params, cache, n_eval, fractions, lr=None, **kw):
        seen.append((lr, seed))
        p1 = [0.1] * (len(fractions) - 1) + [final[lr, seed]]
        return {**_run(method, [f * budget for f in fractions], p1, budget), "lr": lr}

    path = _toy_tuning(adv, tmp_path, monkeypatch, fake_train)
    settings, edge = PROBED_SETTINGS, PROBED_EDGE
    adv.write_json(path, {"settings": settings, "choices": {adv.UNIFORM: {"lr": 0.1, **edge}}, "runs": []})
    args = stop_args(adv, [adv.UNIFORM], tune="lr", budget=60.0, probe="0.3")
    for bad in ("0,1", "1,1"):  # the tuning seed, or a seed twice
        with pytest.raises(SystemExit, match="probe-seeds"):
            adv.run_probe(argparse.Namespace(**{**vars(args), "probe_seeds": bad}), {})
    adv.run_probe(args, {})  # the tuning seed only
    assert seen == [(0.3, 0)]
    seen.clear()
    adv.run_probe(argparse.Namespace(**{**vars(args), "probe_seeds": "1,2"}), {})
    assert seen == [(0.1, 1), (0.3, 1), (0.1, 2), (0.3, 2)]  # the tuning seed's probe is not run again
    out = adv.read_json(path)
    probe = out["probes"]["lr"][adv.UNIFORM]
    assert probe["scores"] == {"0.3": 0.62}
    assert probe["seeds"] == {"1": {"chosen": 0.58, "0.3": 0.61}, "2": {"chosen": 0.60, "0.3": 0.62}}
    assert sorted((r["lr"], r["seed"]) for r in out["runs"]) == [(0.1, 1), (0.1, 2), (0.3, 0), (0.3, 1), (0.3, 2)]
    note = adv._choice_row(adv.UNIFORM, out["choices"][adv.UNIFORM], "lr", "rate", probe, 2000)
    # differences +0.02, +0.03, +0.02: mean +0.0233, 2 SE = 2 x 0.00577 / sqrt(3) = 0.0067
    assert "0.3 - 0.1 over 3 seeds (paired; per seed +0.0200, +0.0300, +0.0200): +0.0233" in note
    assert "(interval +0.0167 to +0.0300), the probed rate is better" in note
    # a seed where the probe falls behind makes the interval hold 0: not told apart
    final[0.3, 3], final[0.1, 3] = 0.50, 0.60
    adv.run_probe(argparse.Namespace(**{**vars(args), "probe_seeds": "3"}), {})
    probe = adv.read_json(path)["probes"]["lr"][adv.UNIFORM]
    assert set(probe["seeds"]) == {"1", "2", "3"}  # the earlier seeds kept
    note = adv._choice_row(adv.UNIFORM, adv.read_json(path)["choices"][adv.UNIFORM], "lr", "rate", probe, 2000)
    assert "over 4 seeds" in note and "not told apart: no better rate shown" in note
    # a later probe of another value at the same seeds pairs with the choice's runs already made: not run again
    final[1.0, 1], final[1.0, 2] = 0.55, 0.56
    seen.clear()
    adv.run_probe(argparse.Namespace(**{**vars(args), "probe": "1", "probe_seeds": "1,2"}), {})
    assert seen == [(1.0, 0), (1.0, 1), (1.0, 2)]
    probe = adv.read_json(path)["probes"]["lr"][adv.UNIFORM]
    assert probe["seeds"]["1"] == {"chosen": 0.58, "0.3": 0.61, "1": 0.55}


def test_a_probe_that_beats_the_choice_at_several_seeds_is_adopted_and_the_later_stages_go(
    adv, tmp_path, monkeypatch, stop_args
):
    seen = []

    def fake_train(method, train_data, budget, batch, seed, tree_params, cache, n_eval, fractions, lr=None, **kw):
        seen.append((method, lr, seed))
        return _run(method, [f * budget for f in fractions], [0.1] * len(fractions), budget)

    path = _toy_tuning(adv, tmp_path, monkeypatch, fake_train)
    edge = PROBED_EDGE
    # uniform: 0.3 above the choice 0.1 at every seed (+0.02, +0.03, +0.02), 1 above it too but less; frequency:
    # 0.3 above at the tuning seed only (the interval holds 0); tree: probed at the tuning seed alone
    seeds_uniform = {"1": {"chosen": 0.58, "0.3": 0.61, "1": 0.59}, "2": {"chosen": 0.60, "0.3": 0.62, "1": 0.61}}
    seeds_frequency = {"1": {"chosen": 0.58, "0.3": 0.55}, "2": {"chosen": 0.60, "0.3": 0.62}}
    probe = {"chosen": 0.1, "chosen_score": 0.6, "date": "2026-12-06T00:00:00+00:00", "at": {}}
    methods = (adv.ADVERSARIAL, adv.UNIFORM, adv.FREQUENCY)
    earlier = {
        "settings": PROBED_SETTINGS,
        "choices": {m: {"lr": 0.1, **edge} for m in methods},
        "reg_choices": {m: {"reg": 1e-3, "lr": 0.1, **edge, "scores": {"0.001": 0.6}} for m in methods},
        "stop_choices": {m: {"stop_fraction": 0.5} for m in methods},
        "probes": {
            "lr": {
                adv.UNIFORM: {**probe, "scores": {"0.3": 0.62, "1": 0.605}, "seeds": seeds_uniform},
                adv.FREQUENCY: {**probe, "scores": {"0.3": 0.65}, "seeds": seeds_frequency},
                adv.ADVERSARIAL: {**probe, "scores": {"0.3": 0.7}},
            },
            "reg": {adv.UNIFORM: {**probe, "chosen": 1e-3, "scores": {"0.1": 0.5}}},
        },
        "runs": [
            {"method": m, "stage": s, "lr": 0.1}
            for m in methods
            for s in ("lr", "lr-probe", "reg", "reg-probe", "num_negatives", "stop")
        ],
    }
    adv.write_json(path, earlier)
    args = stop_args(adv, list(methods), tune="lr", budget=60.0, probe=None, adopt_probes=True)
    adv.run_adopt(args, {"who": "adopt"})
    assert seen == []  # adopting trains nothing
    out = adv.read_json(path)
    new = out["choices"][adv.UNIFORM]
    # 0.3's paired mean +0.0233 (interval +0.0167 to +0.0300) beats 1's (+0.005 to +0.01 per seed): 0.3 taken
    assert new["lr"] == 0.3 and new["scores"] == {"0.01": 0.5, "0.03": 0.55, "0.1": 0.6, "0.3": 0.62, "1": 0.605}
    assert new["on_edge"] is False and new["grid"] == edge["grid"] and new["extended"] == 0.1
    info = new["adopted"]
    assert info["from"] == 0.1 and info["seeds"] == 3 and info["environment"] == {"who": "adopt"}
    assert info["mean_difference"] == pytest.approx(0.07 / 3, abs=1e-6) and info["interval"][0] == pytest.approx(
        0.0167, abs=1e-4
    )
    # the others keep theirs: frequency's interval holds 0, the tree's probe ran at one seed (not told apart by seeds)
    assert out["choices"][adv.FREQUENCY] == earlier["choices"][adv.FREQUENCY]
    assert out["choices"][adv.ADVERSARIAL] == earlier["choices"][adv.ADVERSARIAL]
    # uniform's later stages, its stopping time and their runs and probes go; its rate's probe (the evidence) stays
    assert set(out["reg_choices"]) == {adv.ADVERSARIAL, adv.FREQUENCY}
    assert set(out["stop_choices"]) == {adv.ADVERSARIAL, adv.FREQUENCY}
    assert out["probes"]["reg"] == {} and out["probes"]["lr"] == earlier["probes"]["lr"]
    assert [r["stage"] for r in out["runs"] if r["method"] == adv.UNIFORM] == ["lr", "lr-probe"]
    assert len([r for r in out["runs"] if r["method"] != adv.UNIFORM]) == 12
    # the page's row says what happened; a later stage is tuned at the new rate; the tuned settings read it
    row = adv._choice_row(adv.UNIFORM, new, "lr", "rate", out["probes"]["lr"][adv.UNIFORM], 2000)
    assert "the former choice 0.1; probed beyond" in row and "**0.3 adopted**" in row and "| 0.3 |" in row
    assert adv.tuned_settings(out, [adv.UNIFORM]) == {adv.UNIFORM: {"lr": 0.3}}
    # adopting again changes nothing (the probe paired with the former choice); an adopted choice is probed in the
    # next test
    adv.run_adopt(args, {"who": "again"})
    assert adv.read_json(path) == out
    with pytest.raises(SystemExit, match="stop"):
        adv.run_adopt(argparse.Namespace(**{**vars(args), "tune": adv.STOP}), {})


def test_an_adopted_choice_is_probed_paired_with_the_adopted_values_runs_and_its_probe_is_kept(
    adv, tmp_path, monkeypatch, stop_args
):
    seen = []
    # validation P@1 per (rate, seed) of the runs the probe makes: 1 above the adopted 0.3 at every seed
    final = {(1.0, 0): 0.66, (1.0, 1): 0.64, (1.0, 2): 0.66, (0.3, 3): 0.60, (1.0, 3): 0.64}
    final.update({(0.1, 1): 0.55, (0.1, 2): 0.56, (0.1, 3): 0.57})  # frequency's choice 0.1 (not adopted)

    def fake_train(method, train_data, budget, batch, seed, tree_params, cache, n_eval, fractions, lr=None, **kw):
        seen.append((method, lr, seed))
        p1 = [0.1] * (len(fractions) - 1) + [final[lr, seed]]
        return {**_run(method, [f * budget for f in fractions], p1, budget, seed=seed), "lr": lr}

    path = _toy_tuning(adv, tmp_path, monkeypatch, fake_train)
    # uniform's 0.3 beats its choice 0.1 at three seeds (+0.02, +0.03, +0.02): adopted; frequency keeps 0.1
    before = {
        "chosen": 0.1,
        "chosen_score": 0.6,
        "date": "2026-12-06T00:00:00+00:00",
        "at": {},
        "scores": {"0.3": 0.62},
        "seeds": {"1": {"chosen": 0.58, "0.3": 0.61}, "2": {"chosen": 0.60, "0.3": 0.62}},
    }
    methods = [adv.UNIFORM, adv.FREQUENCY]
    choices = {m: {"lr": 0.1, **PROBED_EDGE} for m in methods}
    earlier = {"settings": PROBED_SETTINGS, "choices": choices, "probes": {"lr": {adv.UNIFORM: before}}, "runs": []}
    adv.write_json(path, earlier)
    args = stop_args(adv, methods, tune="lr", budget=60.0, probe=None, adopt_probes=True)
    adv.run_adopt(args, {})
    adopted = adv.read_json(path)
    assert adopted["choices"][adv.UNIFORM]["lr"] == 0.3 and "adopted" in adopted["choices"][adv.UNIFORM]
    # a probe of the adopted 0.3 (and of frequency's 0.1) beyond both, at the tuning seed and three more
    probe_args = argparse.Namespace(**{**vars(args), "adopt_probes": False, "probe": "1", "probe_seeds": "1,2,3"})
    adv.run_probe(probe_args, {})
    # uniform: 0.3's runs at seeds 1 and 2 are the probe's it was adopted from, a fresh one at seed 3 only;
    # frequency (not adopted): its choice and the probe at every seed, as before
    assert seen == [
        (adv.UNIFORM, 1.0, 0),
        (adv.UNIFORM, 1.0, 1),
        (adv.UNIFORM, 1.0, 2),
        (adv.UNIFORM, 0.3, 3),
        (adv.UNIFORM, 1.0, 3),
        (adv.FREQUENCY, 1.0, 0),
        (adv.FREQUENCY, 0.1, 1),
        (adv.FREQUENCY, 1.0, 1),
        (adv.FREQUENCY, 0.1, 2),
        (adv.FREQUENCY, 1.0, 2),
        (adv.FREQUENCY, 0.1, 3),
        (adv.FREQUENCY, 1.0, 3),
    ]
    out = adv.read_json(path)
    assert out["choices"] == adopted["choices"]  # a probe changes no choice
    probe = out["probes"]["lr"][adv.UNIFORM]
    assert probe["chosen"] == 0.3 and probe["chosen_score"] == 0.62 and probe["scores"] == {"1": 0.66}
    assert probe["seeds"] == {
        "1": {"chosen": 0.61, "1": 0.64},
        "2": {"chosen": 0.62, "1": 0.66},
        "3": {"chosen": 0.60, "1": 0.64},
    }
    assert probe["before_adoption"] == before  # the evidence of the adoption, whole
    frequency = out["probes"]["lr"][adv.FREQUENCY]
    assert "before_adoption" not in frequency and frequency["chosen"] == 0.1
    assert frequency["seeds"] == {
        "1": {"chosen": 0.55, "1": 0.64},
        "2": {"chosen": 0.56, "1": 0.66},
        "3": {"chosen": 0.57, "1": 0.64},
    }
    # the page's row: the probe the choice was adopted from, the adoption, then the probe beyond the adopted value
    row = adv._choice_row(adv.UNIFORM, out["choices"][adv.UNIFORM], "lr", "rate", probe, 2000)
    assert "the former choice 0.1; probed beyond (2026-12-06): 0.3 - 0.1 over 3 seeds" in row
    assert row.index("**0.3 adopted**") < row.index("; then probed beyond 0.3 (")
    assert "1 - 0.3 over 4 seeds (paired; per seed +0.0400, +0.0300, +0.0400, +0.0400)" in row
    assert "the probed rate is better" in row.split("then probed beyond")[1]
    # a later probe at another seed adds to the new record; 0.3 has no run at seed 4: it runs there
    final.update({(0.3, 4): 0.61, (1.0, 4): 0.65})
    seen.clear()
    adv.run_probe(argparse.Namespace(**{**vars(probe_args), "methods": adv.UNIFORM, "probe_seeds": "4"}), {})
    assert seen == [(adv.UNIFORM, 0.3, 4), (adv.UNIFORM, 1.0, 4)]
    probe = adv.read_json(path)["probes"]["lr"][adv.UNIFORM]
    assert set(probe["seeds"]) == {"1", "2", "3", "4"} and probe["before_adoption"] == before
    # the winning probe of the adopted choice is adopted in turn; the first adoption stays with it
    adv.run_adopt(argparse.Namespace(**{**vars(args), "methods": adv.UNIFORM}), {})
    again = adv.read_json(path)["choices"][adv.UNIFORM]
    assert again["lr"] == 1.0 and again["adopted"]["from"] == 0.3 and again["adopted"]["seeds"] == 5
    assert again["adopted"]["earlier"] == adopted["choices"][adv.UNIFORM]["adopted"]
    assert again["scores"] == {"0.01": 0.5, "0.03": 0.55, "0.1": 0.6, "0.3": 0.62, "1": 0.66}
    # an adopted choice whose probe record is gone, or pairs with another value, is not probed
    gone = {**adopted, "probes": {"lr": {}}}
    adv.write_json(path, gone)
    with pytest.raises(SystemExit, match=r"adopted from 0\.1, but the file holds no probe record"):
        adv.run_probe(probe_args, {})
    adv.write_json(path, {**adopted, "probes": {"lr": {adv.UNIFORM: {**before, "chosen": 0.03}}}})
    with pytest.raises(SystemExit, match="cannot be paired"):
        adv.run_probe(probe_args, {})
    adv.write_json(path, {**adopted, "probes": {"lr": {adv.UNIFORM: {**before, "scores": {"0.3": 0.5}}}}})
    with pytest.raises(SystemExit, match="does not match the probe it was adopted from"):
        adv.run_probe(probe_args, {})


def test_the_single_label_long_runs_are_judged_at_the_single_label_tunings_stopping_times(adv, tmp_path, monkeypatch):
    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    times = [60.0, 150.0, 300.0, 600.0]
    curves = {adv.ADVERSARIAL: [0.5, 0.7, 0.6, 0.4], adv.UNIFORM: [0.1, 0.2, 0.4, 0.6]}
    d = {"name": "toy", "n_labels": 100, "n_train": 1000, "labels_per_row": 1.0, "features": "toy", "dim": 3}

    def part(protocol: str) -> dict:
        runs = [{**_run(m, times, p, seed=s), "protocol": protocol} for s in (0, 1) for m, p in curves.items()]
        for run in runs:
            run["tuning_protocol"] = protocol
        data = {**d, "n_test_eval": 1000, "protocol": protocol, "labels_per_row_all_positives": 3.0}
        return {
            "date": "2026-12-05T00:00:00Z",
            "environment": {},
            "dataset": data,
            "load_average_before": [0.0],
            "runs": runs,
        }

    def tuning(stops: dict) -> dict:
        settings = {"budget": 60.0, "softmax_budget": 150.0, "val_seed": 0, "seed": 0, "grids": adv.LR_GRIDS}
        choice = {"lr": 0.01, "scores": {"0.01": 0.5}, "extended": None, "on_edge": False, "grid": [0.01]}
        return {
            "date": "2026-12-05T00:00:00Z",
            "settings": {**settings, "rule": adv.SELECTION_RULE},
            "dataset": {"n_val": 2, "n_fit": 6},
            "choices": {m: choice for m in curves},
            "stop_choices": stops,
        }

    # the multi-label tuning stops both at the end; the single-label one stops the tree at its peak (150 s)
    at_end = {m: {"stop_fraction": 1.0, "stop_seconds": 600.0, "scores": {"600": 0.5}} for m in curves}
    single_stops = {**at_end, adv.ADVERSARIAL: {"stop_fraction": 0.25, "stop_seconds": 150.0, "scores": {"150": 0.66}}}
    adv.write_json(tmp_path / "adversarial_sampling_tuning_toy.json", tuning(at_end))
    adv.write_json(tmp_path / "adversarial_sampling_tuning_toy-single.json", tuning(single_stops))
    adv.write_json(tmp_path / "adversarial_sampling_toy-tuned-plateau.json", part(adv.MULTI))
    adv.write_json(tmp_path / "adversarial_sampling_toy-tuned-plateau-single.json", part(adv.SINGLE))
    adv.write_report()
    page = (tmp_path / "adversarial_sampling.md").read_text().splitlines()
    section = page[page.index("### At each method's validated stopping time") :]
    section = section[: next(i for i, line in enumerate(section) if line.startswith("## "))]
    single_heading = "#### The single-label protocol's long runs at their stopping times"
    multi, single = section[: section.index(single_heading)], section[section.index(single_heading) :]
    assert "toy-tuned-plateau:" in multi and "toy-tuned-plateau-single:" in single
    assert "#### Verdicts at the validated stopping times (single-label protocol)" in single
    hits = "Higher final accuracy (hits@1 of the first label) than neg. sampling, uniform"
    # multi-label: read at the end (0.20 vs 0.30); single-label: the tree at its stop, 150 s (0.35 vs 0.30)
    assert next(line for line in multi if line.startswith(f"| {hits} |")).endswith(
        "| contradicted (neg. sampling, uniform is better) |"
    )
    assert next(line for line in single if line.startswith(f"| {hits} |")).endswith("| reproduced |")
    assert any(line.startswith("| neg. sampling, tree (adversarial) | 0.25 (150 s)") for line in single)
    assert not any(line.startswith("| neg. sampling, tree (adversarial) | 0.25 (150 s)") for line in multi)
