"""benchmarks/label_embeddings.py: the metrics it reports (against scikit-learn) and the choices it makes from
validation numbers only."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import average_precision_score, label_ranking_average_precision_score


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("label_embeddings")


def test_map_and_lrap_agree_with_scikit_learn(bench):
    rng = np.random.default_rng(0)
    Y = (rng.random((60, 9)) < 0.3).astype(np.float32)
    Y[np.arange(60), rng.integers(0, 9, 60)] = 1
    S = rng.random((60, 9)).astype(np.float32)
    out = bench.ranking_metrics(sp.csr_matrix(Y), S, np.ones(9))
    assert out["MAP"] == pytest.approx(np.mean([average_precision_score(Y[:, j], S[:, j]) for j in range(9)]))
    assert out["LRAP"] == pytest.approx(label_ranking_average_precision_score(Y, S))
    assert set(bench.COLUMNS) <= set(out)


def _run(head, lr, seed, val, test, converged=True, curve=None, encoder="linear"):
    curve = curve or [{"epoch": 1, "train_cpu_seconds": 1.0, "val_MAP": val}]
    metrics = {m: test for m in ("MAP", "MAP@5", "LRAP", "P@1", "P@3", "P@5", "nDCG@5", "PSP@5")}
    return {"dataset": "toy", "encoder": encoder, "head": head, "lr": lr, "seed": seed, "best_val_MAP": val,
            "converged": converged, "test": metrics, "curve": curve}  # fmt: skip


def test_choices_use_validation_only_and_pair_seeds(bench):
    runs = [
        _run("sigmoid", 1e-3, 0, 0.30, 0.50),  # the best test MAP, but not the best validation MAP
        _run("sigmoid", 3e-3, 0, 0.35, 0.20),
        _run("sigmoid", 3e-3, 1, 0.34, 0.22),
        _run("softmax", 1e-3, 0, 0.31, 0.40),
        _run("emb-64", 1e-3, 0, 0.40, 0.24),
        _run("emb-256", 1e-3, 0, 0.38, 0.90),  # the better test MAP, the worse validation MAP
        _run("emb-64", 1e-3, 1, 0.41, 0.242),
    ]
    assert bench.chosen_lr(runs, "toy", "linear", "sigmoid") == 3e-3
    assert bench.chosen_embedding(runs, "toy", "linear") == "emb-64"
    assert bench.best_baseline(runs, "toy", "linear") == "sigmoid"
    comps = {c["reference"]: c for c in bench.comparisons(runs, ["toy"])}
    c = comps["sigmoid"]
    assert c["seeds"] == [0, 1] and c["ratios"]["MAP"] == pytest.approx([1.2, 1.1])
    assert c["verdict"]["verdict"] == "partially"  # mean 1.15, se 0.05: interval 1.05-1.25


def test_edge_extensions_step_outward_from_the_chosen_rate(bench):
    runs = [_run("sigmoid", lr, 0, val, 0.1) for lr, val in ((1e-3, 0.1), (3e-3, 0.2), (1e-2, 0.3))]
    runs += [_run("softmax", lr, 0, val, 0.1) for lr, val in ((1e-3, 0.3), (3e-3, 0.2), (1e-2, 0.1))]
    runs += [_run("emb-64", lr, 0, val, 0.1) for lr, val in ((1e-3, 0.1), (3e-3, 0.3), (1e-2, 0.1))]
    todo = bench.edge_extensions(runs, "toy", ("linear",), ["sigmoid", "softmax", "emb-64"])
    assert todo == [("linear", "sigmoid", 3e-2, 0), ("linear", "softmax", 3e-4, 0)]


def test_a_process_on_part_of_the_grid_runs_no_edge_extensions(bench):
    # its own file has 0.001 and 0.01 only: 0.001 looks like the lower edge, though another process runs 0.003
    runs = [_run("sigmoid", lr, 0, val, 0.1) for lr, val in ((1e-3, 0.5), (1e-2, 0.3))]
    args = ("tune", runs, "toy", ("linear",), ["sigmoid"], False)
    assert bench.next_extensions(*args, False) == [("linear", "sigmoid", 3e-4, 0)]
    assert bench.next_extensions(*args, True) == []
    assert bench.next_extensions("seeds", runs, "toy", ("linear",), ["sigmoid"], False, False) == []


def test_a_missing_baseline_leaves_the_best_baseline_untested_and_rows_name_the_widths_tried(bench):
    runs = [_run("sigmoid", 1e-3, s, 0.30, 0.20) for s in (0, 1)] + [
        _run("emb-256", 1e-3, s, 0.31, 0.22) for s in (0, 1)
    ]
    comps = {c["reference"]: c for c in bench.comparisons(runs, ["toy"])}
    assert comps["sigmoid"]["widths"] == ["emb-256"] and comps["sigmoid"]["verdict"]["n"] == 2
    best = comps["best baseline"]
    assert best["baseline"] is None and best["baselines_missing"] == ["softmax"]
    assert best["verdict"]["verdict"] == "untested" and best["seeds"] == []
    rows = bench._verdict_rows({"comparisons": list(comps.values()), "runs": runs, "cost_estimates": {}})
    sig = next(r for r in rows if r.startswith("| +7% MAP over sigmoid cross-entropy: toy, linear"))
    assert "widths tried: emb-256 only, so d is not chosen on validation" in sig
    top = next(r for r in rows if r.startswith("| +7% MAP over the best baseline: toy, linear"))
    assert "softmax not run (budget)" in top and top.endswith("| untested |")
    # with every width tried the row does not carry the note
    runs += [_run(h, 1e-3, 0, 0.2, 0.1) for h in ("emb-64", "emb-128")] + [_run("softmax", 1e-3, 0, 0.1, 0.1)]
    comps = {c["reference"]: c for c in bench.comparisons(runs, ["toy"])}
    rows = bench._verdict_rows({"comparisons": list(comps.values()), "runs": runs, "cost_estimates": {}})
    assert not any("widths tried" in r for r in rows)
    assert comps["best baseline"]["baseline"] == "sigmoid" and comps["best baseline"]["verdict"]["n"] == 2


def test_provenance_groups_runs_by_the_commit_they_recorded(bench):
    runs = [_run("sigmoid", 1e-3, 0, 0.3, 0.2) | {"results_commit": "aaa1111"}]
    runs += [_run("emb-256", lr, 0, 0.3, 0.2) | {"commit": "bbb2222"} for lr in (1e-3, 3e-3)]
    runs += [_run("sigmoid", 1e-3, 0, 0.3, 0.2, encoder="mlp") | {"commit": "ccc3333"}]
    text = bench.provenance(runs, "toy", "linear")
    assert "1 run first committed with their results in aaa1111" in text and "2 runs at code commit bbb2222" in text
    assert "ccc3333" not in text


def test_a_rate_at_an_unextended_edge_is_named_in_the_row_and_the_tuning_table(bench):
    runs = [_run("sigmoid", 1e-3, 0, 0.30, 0.20), _run("sigmoid", 3e-3, 0, 0.29, 0.20)]
    runs.append(_run("sigmoid", 1e-2, 0, 0.25, 0.20))  # the grid's every rate: the sigmoid is tuned on it
    runs += [_run("emb-256", lr, 0, val, 0.22) for lr, val in ((1e-3, 0.2), (3e-3, 0.3), (1e-2, 0.2))]
    c = next(c for c in bench.comparisons(runs, ["toy"]) if c["reference"] == "sigmoid")
    assert c["unextended"] == [("sigmoid", 3e-4)]  # emb-256's 3e-3 is inside the rates tried
    row = next(r for r in bench._verdict_rows({"comparisons": [c], "runs": runs, "cost_estimates": {}}) if "toy" in r)
    assert "sigmoid's rate 0.001 is at an end of those tried and 0.0003 was not run (budget)" in row
    runs.append(_run("sigmoid", 3e-4, 0, 0.28, 0.20))  # the extension, worse: 1e-3 is now inside
    c = next(c for c in bench.comparisons(runs, ["toy"]) if c["reference"] == "sigmoid")
    assert c["unextended"] == []


def test_wordnet_hypernyms_is_planned_and_priced_until_its_runs_exist(bench):
    """Full wordnet-hypernyms runs as debian-deps does (SVD-512 features, the linear encoder); until it has runs
    its one row gives its size and the scaled cost, and once begun the row says how far its tuning got."""
    assert "wordnet-hypernyms" in bench.DATASETS
    assert bench.SETS["wordnet-hypernyms"]["svd_dim"] == 512
    assert bench.SETS["wordnet-hypernyms"]["encoders"] == ("linear",)
    est = {"cpu_seconds_per_epoch": 38.0, "epochs_per_run": 32.0, "baseline_runs": 10, "cpu_hours": 3.3}
    result = {"comparisons": [], "runs": [], "cost_estimates": {"wordnet-hypernyms": est}}
    rows = [r for r in bench._verdict_rows(result) if "wordnet-hypernyms" in r]
    assert len(rows) == 1  # the linear encoder's; the MLP encoder is not planned for it
    assert "15,931 labels" in rows[0] and "about 3.3 CPU hours" in rows[0] and rows[0].endswith("| untested |")
    begun = [_run("sigmoid", 1e-3, 0, 0.3, 0.2) | {"dataset": "wordnet-hypernyms", "train_cpu_seconds": 500.0}]
    rows = [r for r in bench._verdict_rows({**result, "runs": begun}) if "wordnet-hypernyms" in r]
    assert len(rows) == 2 and "its tuning was stopped after 1 run(s), 500 CPU s each" in rows[0]
    # the MLP encoder, not planned, says so once the set is begun (not the linear baselines' cost)
    assert (
        "wordnet-hypernyms, mlp" in rows[1] and "measured with the linear encoder on SVD-512 features only" in rows[1]
    )


@pytest.mark.parametrize("seeds", ["1,x", "-1", "1.5", ""])
def test_seeds_names_the_argument_and_its_allowed_values(bench, seeds, capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(["--seeds", seeds, "--report-only"])
    assert stop.value.code == 2
    assert f"--seeds {seeds!r}: give comma-separated integer seeds >= 0" in capsys.readouterr().err


@pytest.mark.parametrize("lrs", ["0.001,x", "0", "0.001,-0.003", "nan", ""])
def test_lrs_names_the_argument_and_its_allowed_values(bench, lrs, capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(["--lrs", lrs, "--report-only"])
    assert stop.value.code == 2
    assert f"--lrs {lrs!r}: give comma-separated positive learning rates" in capsys.readouterr().err


def test_a_head_tuned_on_part_of_the_grid_gives_no_verdict(bench):
    """A baseline whose tuning stopped after some of the grid's rates (wordnet-hypernyms' sigmoid in stop 58) is
    not tuned by the protocol: its comparisons are untested and the row names the rates not run."""
    runs = [_run("emb-256", lr, 0, 0.3, 0.2) for lr in bench.LR_GRID] + [
        _run("emb-256", 1e-2, s, 0.3, 0.2) for s in (1, 2)
    ]
    runs += [_run("softmax", lr, 0, val, 0.4) for lr, val in zip(bench.LR_GRID, (0.2, 0.4, 0.3), strict=True)]
    runs += [_run("sigmoid", 1e-2, 0, 0.25, 0.3)]
    comps = {c["reference"]: c for c in bench.comparisons(runs, ["toy"])}
    sig = comps["sigmoid"]
    assert sig["untuned"] == {"sigmoid": [1e-3, 3e-3]} and sig["verdict"]["verdict"] == "untested"
    assert sig["speed_verdict"] == "untested"
    best = comps["best baseline"]  # softmax, chosen against a sigmoid tuned on part of the grid
    assert best["untuned"] == {"sigmoid": [1e-3, 3e-3]} and best["verdict"]["verdict"] == "untested"
    row = next(r for r in bench._verdict_rows({"comparisons": [sig], "runs": runs, "cost_estimates": {}}) if "toy" in r)
    assert "sigmoid's rates 0.001, 0.003 of the grid not run yet (budget)" in row and row.endswith("| untested |")
    # with the sigmoid's grid complete the same pair gets a verdict
    runs += [_run("sigmoid", lr, 0, 0.2, 0.3) for lr in (1e-3, 3e-3)]
    sig = next(c for c in bench.comparisons(runs, ["toy"]) if c["reference"] == "sigmoid")
    assert sig["untuned"] == {} and sig["verdict"]["verdict"] == "contradicted"


def test_seeds_measured_are_listed_per_head_where_the_heads_differ(bench):
    runs = [_run("sigmoid", 1e-3, s, 0.30, 0.50) for s in (0, 1)] + [_run("sigmoid", 3e-3, 0, 0.20, 0.4)]
    runs += [_run("softmax", 1e-3, 0, 0.31, 0.40), _run("softmax", 3e-3, 1, 0.2, 0.3)]  # seed 1 off the chosen rate
    runs += [_run("emb-64", 1e-3, s, 0.40, 0.24) for s in (0, 1, 2)] + [_run("emb-128", 1e-3, 0, 0.1, 0.1)]
    assert bench.seeds_measured(runs, "toy", "linear") == "sigmoid 0 1, softmax 0, emb-64 0 1 2"
    runs += [_run("softmax", 1e-3, s, 0.31, 0.40) for s in (1, 2)] + [_run("sigmoid", 1e-3, 2, 0.3, 0.5)]
    assert bench.seeds_measured(runs, "toy", "linear") == "0, 1, 2"


def test_seeds_run_away_from_the_chosen_rate_are_named_not_compared(bench):
    # seeds 1 and 2 at 3e-3, started while 3e-3 was chosen; then 1e-3 won at seed 0 (wordnet-hypernyms' softmax)
    runs = [_run("softmax", 3e-3, s, 0.50, t) for s, t in ((0, 0.41), (1, 0.42), (2, 0.40))]
    runs += [_run("softmax", 1e-3, 0, 0.51, 0.43), _run("emb-64", 1e-3, 0, 0.2, 0.1)]
    assert bench.off_rate_seeds(runs) == [
        "toy linear softmax at 0.003 (the chosen rate is 0.001): seeds 0, 1, 2, test MAP 0.4100, 0.4200, 0.4000"
    ]
    assert sorted(bench.final_runs(runs, "toy", "linear", "softmax")) == [0]  # the comparisons keep the chosen rate
    assert bench.off_rate_seeds(runs[3:]) == []
    assert bench.off_rate_seeds([_run("sigmoid", 1e-3, 1, 0.3, 0.2)]) == []  # seeds runs without a tuning run


def test_a_run_stopped_at_the_epoch_cap_is_named_in_its_row(bench):
    runs = [_run("sigmoid", lr, 0, val, 0.20) for lr, val in ((1e-3, 0.30), (3e-3, 0.29), (1e-2, 0.25))]
    runs.append(_run("sigmoid", 3e-4, 0, 0.28, 0.20))
    runs += [
        _run("emb-256", lr, 0, val, 0.22, converged=lr != 3e-3) for lr, val in ((1e-3, 0.2), (3e-3, 0.3), (1e-2, 0.2))
    ]
    c = next(c for c in bench.comparisons(runs, ["toy"]) if c["reference"] == "sigmoid")
    assert c["capped"] == ["emb-256 at 0.003, seed 0"] and c["verdict"]["verdict"] == "undecided"
    row = next(r for r in bench._verdict_rows({"comparisons": [c], "runs": runs, "cost_estimates": {}}) if "toy" in r)
    assert "stopped at the epoch cap: emb-256 at 0.003, seed 0" in row
