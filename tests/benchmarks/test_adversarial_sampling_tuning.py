"""benchmarks/adversarial_sampling.py --part tune / tuned (issue 21): the validation split, the selection rule and
the report's tuned rows (no training)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp


@pytest.fixture(scope="module")
def adv(load_benchmark):
    return load_benchmark("adversarial_sampling")


def test_validation_split_is_seeded_disjoint_and_covers_the_training_rows(adv):
    fit, val = adv.validation_split(100, 20, seed=3)
    assert len(val) == 20 and len(fit) == 80 and not set(fit) & set(val)
    assert sorted({*fit, *val}) == list(range(100)) and list(val) == sorted(val)
    again_fit, again_val = adv.validation_split(100, 20, seed=3)
    assert np.array_equal(val, again_val) and np.array_equal(fit, again_fit)
    assert not np.array_equal(val, adv.validation_split(100, 20, seed=4)[1])
    for bad in (0, 100):
        with pytest.raises(ValueError, match="validation rows"):
            adv.validation_split(100, bad, seed=0)


def test_holdout_data_validates_on_training_rows_and_drops_the_test_rows(adv):
    n, C = 50, 7
    X = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # row i holds i
    Y = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), np.arange(n) % C)), shape=(n, C))
    X_test = -1.0 - np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # negative: test rows
    Y_test = sp.csr_matrix(np.ones((10, C), np.float32))
    data = {"name": "toy", "X": X, "Y": Y, "X_test": X_test, "Y_test": Y_test, "features": "f"}
    held = adv.holdout_data(data, 12, seed=0)
    fit_rows, val_rows = held["X"][:, 0].astype(int), held["X_test"][:, 0].astype(int)
    assert (held["X_test"] >= 0).all() and (held["X"] >= 0).all()  # no test row anywhere
    assert len(val_rows) == 12 and sorted({*fit_rows, *val_rows}) == list(range(n))
    assert np.array_equal(val_rows, adv.validation_split(n, 12, 0)[1])
    # labels stay with their rows
    assert np.array_equal(held["Y_test"].indices, val_rows % C) and np.array_equal(held["Y"].indices, fit_rows % C)
    assert held["name"] == "toy" and held["features"] == "f"


def test_choose_best_takes_the_argmax_and_breaks_ties_to_the_smaller_value(adv):
    assert adv.choose_best({0.001: 0.40, 0.01: 0.55, 0.03: 0.50}) == 0.01
    assert adv.choose_best({0.03: 0.55, 0.01: 0.55, 0.1: 0.2}) == 0.01
    with pytest.raises(ValueError):
        adv.choose_best({})


def test_edge_extension_continues_the_grid_one_value_beyond_an_edge(adv):
    grid = adv.LR_GRIDS["adagrad"]
    assert grid == (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)  # the paper's rho grid
    assert adv.edge_extension(grid, 3e-2) == 0.1 and adv.edge_extension(grid, 3e-4) == 1e-4
    assert adv.edge_extension(grid, 3e-3) is None
    assert adv.edge_extension(adv.LR_GRIDS["adam"], 1e-2) == 0.03
    assert adv.edge_extension((1.0, 2.0, 4.0), 4.0) == 8.0  # a geometric grid: its own ratio


def _fake_train(score_of, key="lr"):
    calls = []

    def train(value):
        calls.append(value)
        return {key: value, "final": {"P@1": score_of(value)}}

    return train, calls


def test_tune_method_extends_an_edge_once_and_chooses_again(adv):
    grid = adv.LR_GRIDS["adagrad"]
    # rising with the rate: 0.03 wins the grid, 0.1 is tried and wins too; no second extension
    train, calls = _fake_train(lambda lr: lr)
    runs, choice = adv.tune_method(grid, train)
    assert calls == [*grid, 0.1] and len(runs) == 6
    assert choice["lr"] == 0.1 and choice["extended"] == 0.1 and choice["on_edge"]
    # the extension loses: the edge value stays, now an inner value of the rates tried
    train, calls = _fake_train(lambda lr: {0.1: 0.0}.get(lr, lr))
    _, choice = adv.tune_method(grid, train)
    assert choice["lr"] == 0.03 and choice["extended"] == 0.1 and not choice["on_edge"]
    assert choice["scores"] == {"0.0003": 3e-4, "0.001": 1e-3, "0.003": 3e-3, "0.01": 1e-2, "0.03": 3e-2, "0.1": 0.0}
    # an inner optimum: the grid alone
    train, calls = _fake_train(lambda lr: -abs(np.log(lr / 3e-3)))
    _, choice = adv.tune_method(grid, train)
    assert calls == list(grid) and choice["lr"] == 3e-3 and choice["extended"] is None and not choice["on_edge"]
    # falling: the lower edge is extended
    train, calls = _fake_train(lambda lr: -lr)
    _, choice = adv.tune_method(grid, train)
    assert calls[-1] == 1e-4 and choice["lr"] == 1e-4 and choice["on_edge"]


def test_lambda_is_chosen_by_the_same_rule_on_its_own_grid(adv):
    grid = adv.SETTING_GRIDS["reg"]
    assert grid == (1e-4, 1e-3, 1e-2)
    # an inner optimum at the paper's 1e-3: the three runs alone
    train, calls = _fake_train(lambda lam: -abs(np.log10(lam) + 3), key="reg")
    runs, choice = adv.tune_method(grid, train, key="reg")
    assert [r["reg"] for r in runs] == list(grid)
    assert calls == list(grid) and choice["reg"] == 1e-3 and "lr" not in choice
    assert choice["extended"] is None and not choice["on_edge"]
    # more lambda is better: 1e-2 wins, the grid goes on to 0.1, which loses: 1e-2 is now an inner value
    train, calls = _fake_train(lambda lam: {0.1: 0.0}.get(lam, lam), key="reg")
    _, choice = adv.tune_method(grid, train, key="reg")
    assert calls == [*grid, 0.1] and choice["reg"] == 1e-2 and not choice["on_edge"]
    assert choice["scores"] == {"0.0001": 1e-4, "0.001": 1e-3, "0.01": 1e-2, "0.1": 0.0}
    # less is better: extended to 1e-5, which wins and stays on the edge
    train, calls = _fake_train(lambda lam: -lam, key="reg")
    _, choice = adv.tune_method(grid, train, key="reg")
    assert calls[-1] == 1e-5 and choice["reg"] == 1e-5 and choice["on_edge"]
    # a tie between two lambdas: the smaller
    train, _ = _fake_train(lambda lam: 0.5 if lam >= 1e-3 else 0.4, key="reg")
    assert adv.tune_method(grid, train, key="reg")[1]["reg"] == 1e-3
    # the negatives' two values: never extended, so the choice is a bound
    train, calls = _fake_train(lambda n: n, key="num_negatives")
    _, choice = adv.tune_method(adv.SETTING_GRIDS["num_negatives"], train, key="num_negatives")
    assert calls == [10, 30] and choice["num_negatives"] == 30 and choice["on_edge"] and choice["extended"] is None
    row = adv._choice_row(adv.UNIFORM, choice, "num_negatives", "number of negatives")
    assert row == (
        "| neg. sampling, uniform | 10: 10.0000, 30: 30.0000 | 30 | 2 values only, not extended (the number of "
        "negatives is a bound, not an optimum) |"
    )


def test_tuned_settings_need_a_rate_for_every_method_and_add_the_later_stages_where_chosen(adv):
    tuning = {
        "choices": {adv.ADVERSARIAL: {"lr": 0.03}, adv.UNIFORM: {"lr": 0.1}},
        "reg_choices": {adv.UNIFORM: {"reg": 1e-2, "lr": 0.1}},
    }
    assert adv.tuned_settings(tuning, [adv.UNIFORM, adv.ADVERSARIAL]) == {
        adv.UNIFORM: {"lr": 0.1, "reg": 1e-2},
        adv.ADVERSARIAL: {"lr": 0.03},
    }
    with pytest.raises(SystemExit, match="nce-tree"):
        adv.tuned_settings(tuning, [adv.ADVERSARIAL, adv.NCE])


def test_only_the_heads_with_a_penalty_have_a_lambda_to_tune(adv):
    for method in (adv.ADVERSARIAL, adv.UNIFORM, adv.FREQUENCY, adv.UNIFORM_L2, adv.FREQUENCY_L2, adv.NCE):
        assert adv.head_defaults(method) == {"reg": 1e-3, "num_negatives": 10}
    assert adv.head_defaults(adv.SOFTMAX) == {}
    assert adv.head_defaults("ssm-tree") == {"num_negatives": 10}  # sampled softmax: no penalty
    assert adv.head_defaults("ns-tree-neg100") == {"reg": 1e-3, "num_negatives": 100}


def test_tune_reg_keeps_the_rate_records_and_chooses_lambda_at_the_chosen_rate(
    adv, tmp_path, monkeypatch, adversarial_tune_args
):
    import argparse

    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    monkeypatch.setattr(adv, "LR_GRIDS", {"adagrad": (1e-3, 1e-2, 1e-1)})  # three rates: a short test
    quick = {"datasets": "synthetic-quick", "dim": 32, "budget": 0.3, "softmax_budget": 0.3, "batch_size": 100}
    args = adversarial_tune_args(adv, [adv.UNIFORM], tune="reg", val_rows=300, **quick)
    with pytest.raises(SystemExit, match="no tuned learning rate"):
        adv.run_tuning(args, {})  # lambda needs the rate chosen first
    adv.run_tuning(argparse.Namespace(**{**vars(args), "tune": "lr"}), {})
    path = tmp_path / "adversarial_sampling_tuning_synthetic-quick.json"
    rates = adv.read_json(path)
    lr = rates["choices"][adv.UNIFORM]["lr"]
    assert "reg_choices" not in rates and len(rates["runs"]) >= 3
    with pytest.raises(SystemExit, match="budget"):
        adv.run_tuning(argparse.Namespace(**{**vars(args), "budget": 0.4}), {})  # not the rates' budget
    adv.run_tuning(args, {})
    both = adv.read_json(path)
    assert both["choices"] == rates["choices"] and both["runs"][: len(rates["runs"])] == rates["runs"]
    reg_runs = [r for r in both["runs"] if r.get("stage") == "reg"]
    assert {r["lr"] for r in reg_runs} == {lr} and [r["reg"] for r in reg_runs][:3] == [1e-4, 1e-3, 1e-2]
    choice = both["reg_choices"][adv.UNIFORM]
    assert choice["lr"] == lr and choice["reg"] in [r["reg"] for r in reg_runs]
    assert choice["scores"] == {f"{r['reg']:g}": r["final"]["P@1"] for r in reg_runs}
    assert "lambda" not in both["settings"]["untuned"] and "10 negatives" in both["settings"]["untuned"]
    # each stage's process kept: the rates' beside lambda's
    assert both["stages"]["lr"] == {**rates["stages"]["lr"]} and both["stages"]["reg"]["methods"] == [adv.UNIFORM]
    assert both["stages"]["reg"]["date"] >= both["stages"]["lr"]["date"]
    # tuning the rate again drops the lambda chosen at the old rate
    adv.run_tuning(argparse.Namespace(**{**vars(args), "tune": "lr"}), {})
    again = adv.read_json(path)
    assert not again.get("reg_choices") and all(r.get("stage", "lr") == "lr" for r in again["runs"])
    assert list(again["stages"]) == ["lr"]
    with pytest.raises(SystemExit, match="no such setting"):
        adv.run_tuning(argparse.Namespace(**{**vars(args), "methods": adv.SOFTMAX}), {})


def test_tuned_parts_replace_their_sets_untuned_part_in_the_verdicts(adv):
    all3, two = {"ns-tree", "ns-uniform", "nce-tree"}, {"ns-tree", "ns-uniform"}
    methods = {
        "debian-deps": all3,
        "debian-deps-tuned": all3,
        "wordnet-hypernyms": all3,
        "wordnet-hypernyms-tuned": two,
    }
    deciding, untuned = adv.verdict_sets(methods)
    assert deciding == ["debian-deps-tuned", "wordnet-hypernyms"]  # a partial tuned part does not decide
    assert untuned == ["debian-deps", "wordnet-hypernyms"]
    assert adv.verdict_sets({"a": two, "b": two}) == (["a", "b"], ["a", "b"])
    assert adv.verdict_sets({"a": two, "a-tuned": all3}) == (["a-tuned"], ["a"])
    # methods no verdict row compares (the softmax, diagnostics) in the untuned part only: the tuned part decides
    assert adv.verdict_sets({"a": {*two, "softmax", "ns-tree-invaux"}, "a-tuned": two}) == (["a-tuned"], ["a"])


def _run(method, seed, lr, hits, **settings):
    point = {
        "train_seconds": 60.0,
        "train_wall_seconds": 60.0,
        "step": 10,
        "epochs": 1.0,
        "P@1": hits,
        "P@3": 0.1,
        "P@5": 0.1,
        "hits@1_first_label": hits,
        "log_likelihood_first_label": -5.0,
        "log_likelihood_first_label_se": 0.05,
    }
    return {
        "method": method,
        "seed": seed,
        "lr": lr,
        **settings,
        "prepare_seconds": 1.0,
        "curve": [point],
        "final": point,
    }


def _part(name, runs):
    return {
        "date": "2026-12-04T00:00:00Z",
        "environment": {"torch_threads": 1},
        "dataset": {
            "name": name,
            "n_labels": 100,
            "n_train": 1000,
            "labels_per_row": 1.0,
            "features": "toy",
            "n_test_eval": 1000,
            "dim": 3,
        },
        "load_average_before": [0.0],
        "runs": runs,
    }


def test_report_shows_the_tuned_rows_their_rates_and_keeps_the_untuned_table(
    adv, tmp_path, monkeypatch, adversarial_tuning_settings
):
    monkeypatch.setattr(adv, "RESULTS", tmp_path)
    write = adv.write_json
    # untuned: the tree 0.30 vs uniform 0.20; tuned: uniform catches up (0.30 vs 0.30)
    write(
        tmp_path / "adversarial_sampling_toy.json",
        _part("toy", [_run("ns-tree", 0, 0.01, 0.30), _run("ns-uniform", 0, 0.01, 0.20)]),
    )
    write(
        tmp_path / "adversarial_sampling_toy-tuned.json",
        _part("toy", [_run("ns-tree", 0, 0.03, 0.30), _run("ns-uniform", 0, 0.1, 0.30, reg=1e-2, num_negatives=10)]),
    )
    train, _ = _fake_train(lambda lr: lr)
    _, choice = adv.tune_method(adv.LR_GRIDS["adagrad"], train)
    train, _ = _fake_train(lambda lr: 0.29 if lr in (3e-3, 1e-2) else 0.1)  # a tie: the smaller rate
    _, tie = adv.tune_method(adv.LR_GRIDS["adagrad"], train)
    assert tie["lr"] == 3e-3 and tie["extended"] is None
    settings = adversarial_tuning_settings(adv)
    train, _ = _fake_train(lambda lam: {1e-2: 0.5}.get(lam, 0.4), key="reg")  # 1e-2 wins; 0.1 tried and loses
    _, reg = adv.tune_method(adv.SETTING_GRIDS["reg"], train, key="reg")
    train, _ = _fake_train(lambda lam: 0.4, key="reg")  # all tie: the smallest, 1e-5 after the extension
    _, reg_tie = adv.tune_method(adv.SETTING_GRIDS["reg"], train, key="reg")
    tuning = {
        "date": "d",
        "settings": settings,
        "dataset": {"n_val": 2000, "n_fit": 42469},
        "choices": {"ns-uniform": choice, "ns-uniform-l2": tie},
    }
    # toy: lambda chosen at the chosen rates too (the tree keeps 1e-3; uniform takes 1e-2), and its tuned part trained
    # at both (the tree's run records no lambda: the default, 1e-3)
    toy_tuning = {
        **tuning,
        "choices": {**tuning["choices"], "ns-tree": {**choice, "lr": 0.03}},
        "reg_choices": {"ns-uniform": {**reg, "lr": 0.1}, "ns-tree": {**reg_tie, "reg": 1e-3, "lr": 0.03}},
        "stages": {"lr": {"date": "d"}, "reg": {"date": "e"}},
    }
    write(tmp_path / "adversarial_sampling_tuning_toy.json", toy_tuning)
    write(tmp_path / "adversarial_sampling_tuning_other.json", tuning)  # tuned, but not yet trained at its rates
    # a tuned part with fewer methods than the untuned one: shown, not deciding
    write(
        tmp_path / "adversarial_sampling_part.json",
        _part("part", [_run("ns-tree", 0, 0.01, 0.3), _run("ns-uniform", 0, 0.01, 0.2)]),
    )
    write(tmp_path / "adversarial_sampling_part-tuned.json", _part("part", [_run("ns-tree", 0, 0.003, 0.3)]))
    write(tmp_path / "adversarial_sampling_tuning_part.json", tuning)
    adv.write_report()
    page = (tmp_path / "adversarial_sampling.md").read_text()
    merged = adv.read_json(tmp_path / "adversarial_sampling.json")
    assert (
        set(merged["datasets"]) == {"toy", "toy-tuned", "part", "part-tuned"}
        and merged["tuning"]["toy"]["choices"]["ns-uniform"]["lr"] == 0.1
    )
    uniform_rows = [
        line for line in page.splitlines() if line.startswith("| Higher final accuracy") and "uniform |" in line
    ]
    assert len(uniform_rows) == 2  # the deciding table (tuned) and the untuned one
    assert "toy-tuned 30.0 vs 30.0 %" in uniform_rows[0] and "part 30.0 vs 20.0 %" in uniform_rows[0]
    assert "part-tuned" not in uniform_rows[0] and "partially" in uniform_rows[0]
    assert "do not cover every method" in page and "## part-tuned" in page
    assert "toy 30.0 vs 20.0 %" in uniform_rows[1] and uniform_rows[1].endswith("| reproduced |")
    assert "toy-tuned" not in uniform_rows[1]
    assert "### The same verdicts from the untuned runs alone" in page
    assert "## Settings tuned on a validation split" in page and "42,469" in page
    assert merged["tuned_settings_applied"] == {"toy-tuned": ["lr", "reg"], "part-tuned": []}
    assert "toy-tuned at its chosen learning rate and lambda (10 negatives)" in page
    assert "10 negatives stay untuned everywhere" in page
    applied = {"a-tuned": ["lr", "reg", "num_negatives"], "b-tuned": ["lr"]}
    sentence = adv._tuning_sentence(["a-tuned", "b-tuned"], applied)
    assert (
        "a-tuned at its chosen learning rate, lambda and number of negatives; b-tuned at its chosen learning"
        in sentence
    )
    assert "untuned everywhere" not in sentence
    assert "per-method tuning of the lambda outside toy-tuned, per-method tuning of the number of negatives." in page
    assert "The lambda at each method's chosen rate (e; grid 0.0001, 0.001, 0.01;" in page
    assert "| neg. sampling, uniform | 0.0001: 0.4000, 0.001: 0.4000, 0.01: 0.5000, 0.1: 0.4000 | 0.01 |" in page
    assert "| learning rate 0.1 |" in page
    assert "The runs share the paper's rho = 0.01" in page  # the untuned table's caveat
    assert "| neg. sampling, uniform | 0.1 | 0 | 0.01 | 10 |" in page  # the tuned part's lambda column
    assert (
        "| neg. sampling, uniform | 0.0003: 0.0003" in page
        and "| 0.1 | edge: extended to 0.1; still on the edge" in page
    )
    assert "The chosen settings train the `toy-tuned` runs" in page and "No `other-tuned` runs yet" in page
    assert "| 0.003 | inside the grid; tied with 0.01 (the smaller rate taken) |" in page
    assert "| neg. sampling, uniform | 0.1 | 0 |" in page  # the tuned part's table shows the rate it ran at
    assert "Not at the chosen settings" not in page.split("## Settings tuned")[1].split("part (")[0]  # toy: none
    assert (tmp_path / "adversarial_sampling_toy-tuned.png").is_file()


def test_tuned_runs_at_other_settings_than_the_choices_are_found(adv):
    tuning = {
        "choices": {adv.UNIFORM: {"lr": 0.1}, adv.ADVERSARIAL: {"lr": 0.01}},
        "reg_choices": {adv.UNIFORM: {"reg": 1e-2, "lr": 0.1}, adv.ADVERSARIAL: {"reg": 1e-3, "lr": 0.01}},
    }
    at_choices = _part("t", [_run(adv.UNIFORM, 0, 0.1, 0.3, reg=1e-2), _run(adv.ADVERSARIAL, 0, 0.01, 0.3)])
    assert adv.tuned_mismatches(at_choices, tuning) == {}
    assert adv.settings_applied(at_choices, tuning) == ["lr", "reg"]
    # seed 1 of uniform still at the old lambda (a run written before it recorded one: the default 1e-3)
    stale = _part("t", [*at_choices["runs"], _run(adv.UNIFORM, 1, 0.1, 0.3)])
    assert adv.tuned_mismatches(stale, tuning) == {"reg": ["ns-uniform 1"]}
    assert adv.settings_applied(stale, tuning) == ["lr"]
    assert adv.settings_partly(stale, tuning) == ["reg"]  # seed 0 at its choice, seed 1 at the default
    assert adv.settings_partly(at_choices, tuning) == []
    sentence = adv._tuning_sentence(["t-tuned"], {"t-tuned": ["lr"]}, {"t-tuned": ["reg"]})
    assert (
        "t-tuned at its chosen learning rate (lambda at its choice for some methods only and 10 negatives)" in sentence
    )
    # lambda chosen for one compared method only: not applied, though no run differs from its choice or default
    partial_tuning = {**tuning, "reg_choices": {adv.UNIFORM: {"reg": 1e-2, "lr": 0.1}}}
    assert adv.tuned_mismatches(at_choices, partial_tuning) == {}
    assert adv.settings_applied(at_choices, partial_tuning) == ["lr"]
    assert adv.settings_applied(at_choices, {}) == []
