"""benchmarks/shortlist.py: each system's estimator settings, the target line and the table of a run."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("shortlist")


def test_the_systems_settings(bench):
    tree = bench.settings("tree-logistic", 100, quick=False)
    assert tree["model"] == "tree" and tree["tree_params"] == {"loss": "logistic"}
    assert tree["tune_metric"] == "example-F1"
    listed = bench.settings("sparsemax-shortlist", 100, quick=False)
    assert listed["head"] == "sparsemax" and listed["shortlist"] == "tree" and listed["shortlist_size"] == 100
    assert listed["tree_params"] == tree["tree_params"]
    # the library's defaults: nothing typed but the model's choices, and sparse gradients on wide inputs
    assert not {"hidden_sizes", "dropout", "lr", "epochs", "patience", "sparse_gradients"} & set(listed)
    assert bench.settings("sigmoid-shortlist", 20_000, False)["sparse_gradients"] is True
    assert "shortlist" not in bench.settings("sparsemax", 100, quick=False)


def _row(system, f1):
    costs = dict.fromkeys(bench_costs(), 1.0)
    return {"system": system, "example-F1": f1, "micro-F1": 1, "P@1": 1, "P@3": 1, "P@5": 1, **costs,
            "mean_set_size": 2.0, "epochs_run": 3}  # fmt: skip


def bench_costs():
    return ("train_cpu_seconds", "train_seconds", "predict_ms_per_1000", "predict_cpu_ms_per_1000")


def test_the_target_line_and_the_page(bench):
    assert bench_costs() == bench.COSTS
    rows = [_row("tree-logistic", 40.0), _row("sparsemax-shortlist", 46.5)]
    assert bench.target_check(rows).endswith("46.50 vs 40.00: met.")
    assert bench.target_check([_row("tree-logistic", 40.0), _row("sparsemax-shortlist", 39.0)]).endswith("missed.")
    assert bench.target_check(rows[:1]) is None
    # a tree whose tuning kept the sparsemax rule: its threshold rule's example-F1 is said beside
    tree = {**_row("tree-logistic", 47.0), "tuned": {"threshold": 0.1, "sparsemax_scale": 0.7},
            "threshold_rule": {"example-F1": 44.0, "micro-F1": 45.0}}  # fmt: skip
    line = bench.target_check([tree, _row("sparsemax-shortlist", 46.5)])
    assert line.startswith("Target (sparsemax-shortlist example-F1 > tree-logistic's): 46.50 vs 47.00: missed.")
    assert "sparsemax(0.7 x log path score)" in line and "example-F1 is 44.00, below the sparsemax-shortlist" in line
    env = {"processor": "x", "cpu_count": 2}
    report = {"date": "d", "command": "c", "environment": env, "datasets": {
        "bibtex": {"shape": {"n_train": 1, "n_test": 2, "n_features": 3, "n_labels": 4}, "rows": rows}}}  # fmt: skip
    page = bench.markdown(report)
    assert "## bibtex — 1 train / 2 test rows, 3 features, 4 labels" in page
    assert "| sparsemax-shortlist | 46.50 |" in page and "met." in page


def test_a_tiny_run(bench, monkeypatch):
    rng = np.random.default_rng(0)
    X = sp.random(120, 30, density=0.3, random_state=0, format="csr", dtype=np.float32)
    S = X @ rng.normal(size=(30, 12))
    Y = sp.csr_matrix((np.quantile(S, 0.85, axis=1, keepdims=True) < S).astype(np.float32))
    data = {"X_train": X[:90], "Y_train": Y[:90], "X_test": X[90:], "Y_test": Y[90:]}
    monkeypatch.setattr(bench, "SHORTLIST_SIZE", 5)
    row = bench.run_system("sparsemax-shortlist", data, quick=True)
    assert row["settings"]["shortlist_size"] == 5 and 0 <= row["example-F1"] <= 100
    assert row["train_cpu_seconds"] > 0 and set(row["tuned"]) == {"scale", "path_weight", "example-F1"}


def test_merge_joins_data_sets_and_replaces_rows(bench):
    block = lambda rows: {"shape": {}, "rows": rows}  # noqa: E731
    first = {"command": "a", "date": "1", "datasets": {"bibtex": block([_row("tree-logistic", 1.0)])}}
    second = {"command": "b", "date": "2", "datasets": {
        "bibtex": block([_row("tree-logistic", 2.0), _row("sigmoid-shortlist", 3.0)]),
        "debian-deps": block([_row("tree-logistic", 4.0)])}}  # fmt: skip
    out = bench.merge([first, second])
    assert out["date"] == "2" and out["merged_from"] == ["a", "b"]
    assert [(r["system"], r["example-F1"]) for r in out["datasets"]["bibtex"]["rows"]] == [
        ("tree-logistic", 2.0),
        ("sigmoid-shortlist", 3.0),
    ]
    assert list(out["datasets"]) == ["bibtex", "debian-deps"]
