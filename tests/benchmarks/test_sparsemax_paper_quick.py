"""benchmarks/sparsemax_paper.py: the L-BFGS objective's gradient, the set rules, and the --quick run's outputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _references import sparsemax_reference
from _shared_data import requires_dataset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("sparsemax_paper", REPO / "benchmarks" / "sparsemax_paper.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _problem(bench, seed=0, n=25, d=6, K=5, sparse=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = (rng.random((n, K)) < 0.35).astype(np.float64)
    Y[np.arange(n), rng.integers(0, K, n)] = 1.0  # every row has a label
    if sparse:
        import scipy.sparse as sp

        X = sp.csr_matrix(np.where(rng.random((n, d)) < 0.5, X, 0.0))
    return bench.Problem(X, Y, Y / Y.sum(axis=1, keepdims=True))


@pytest.mark.parametrize("loss", ["logistic", "softmax", "sparsemax"])
@pytest.mark.parametrize("sparse", [False, True])
def test_objective_gradient_matches_finite_differences(bench, loss, sparse):
    problem = _problem(bench, seed=1, sparse=sparse)
    lam = 0.3
    theta = np.random.default_rng(2).normal(size=problem.X.shape[1] * 5 + 5)
    _value, grad = bench.objective(theta, problem, loss, lam)
    eps = 1e-6
    numeric = np.array(
        [
            (
                bench.objective(theta + eps * e, problem, loss, lam)[0]
                - bench.objective(theta - eps * e, problem, loss, lam)[0]
            )
            / (2 * eps)
            for e in np.eye(theta.size)
        ]
    )
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)
    # the bias (last K entries) is not regularised: at W = 0 the objective is the loss alone
    d, K = problem.X.shape[1], 5
    zero_w = np.concatenate([np.zeros(d * K), theta[d * K :]])
    assert bench.objective(zero_w, problem, loss, lam)[0] == pytest.approx(
        bench.objective(zero_w, problem, loss, 0.0)[0]
    )


def test_set_rules_match_their_definitions(bench):
    rng = np.random.default_rng(3)
    Z = rng.normal(scale=2.0, size=(40, 7))
    assert np.array_equal(bench.predict_sets("logistic", Z, 0.3), 1 / (1 + np.exp(-Z)) > 0.3)
    soft = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    assert np.array_equal(bench.predict_sets("softmax", Z, 2.0), soft > 2.0 / 7)
    for t in bench.THRESHOLDS["sparsemax"]:
        expected = np.array([sparsemax_reference(t * z) > 0 for z in Z])
        assert np.array_equal(bench.predict_sets("sparsemax", Z, t), expected)


def test_sparsemax_support_shrinks_as_t_grows(bench):
    Z = np.random.default_rng(4).normal(size=(200, 12))
    sizes = np.stack([bench.predict_sets("sparsemax", Z, t).sum(axis=1) for t in bench.THRESHOLDS["sparsemax"]])
    assert np.all(np.diff(sizes, axis=0) <= 0) and np.all(sizes >= 1)
    assert sizes[0].mean() > sizes[-1].mean()


def test_fit_reaches_a_stationary_point(bench):
    problem = _problem(bench, seed=5, n=60)
    for loss in ("softmax", "sparsemax"):
        model = bench.fit_linear(problem, loss, 0.1)
        theta = np.concatenate([model["W"].ravel(), model["b"]])
        assert np.abs(bench.objective(theta, problem, loss, 0.1)[1]).max() < 1e-4
        # the fitted bias makes the mean predicted distribution match the mean target (gradient wrt b = 0)
        p = bench.probabilities(loss, bench.scores(problem.X, model))
        np.testing.assert_allclose(p.mean(axis=0), problem.Q.mean(axis=0), atol=1e-4)


@requires_dataset("emotions")  # the quick multi-label part trains on emotions
def test_quick_run_outputs(bench, tmp_path):
    torch_threads = torch.get_num_threads()
    try:
        quick = ["--quick", "--jobs", "1", "--out", str(tmp_path)]
        assert bench.main(["--part", "multilabel", "--fold-seeds", "0,1", *quick]) == 0
        assert bench.main(["--part", "synthetic", *quick]) == 0
    finally:
        torch.set_num_threads(torch_threads)
    result = json.loads((tmp_path / "sparsemax_paper_quick.json").read_text())
    md = (tmp_path / "sparsemax_paper_quick.md").read_text()
    assert (tmp_path / "sparsemax_synthetic_quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "UNVERIFIED" in md and "| emotions | sparsemax |" in md and "## Synthetic" in md
    assert md.index("## Verdicts (issue 21)") < md.index("## Multi-label")
    assert "| Figure 3, uniform proportions, K = 10:" in md
    # --part report rebuilds the same .md from the JSON alone
    assert bench.main(["--part", "report", "--quick", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "sparsemax_paper_quick.md").read_text() == md

    ml = result["multilabel"]
    assert {r["loss"] for r in ml["rows"]} == {"logistic", "softmax", "sparsemax"}
    assert ml["environment"]["cpu_count"] >= 1 and len(ml["load_average_start"]) == 3
    for row in ml["rows"]:
        assert set(row["schemes"]) == {"contiguous", "shuffled", "shuffled-seed1"}
        for out in row["schemes"].values():
            flags = out["validation_lbfgs"]["warnflag"]
            assert len(flags) == 2 and all(len(per_lambda) == 5 for per_lambda in flags)  # 2 lambdas x 5 folds
            assert out["lbfgs_not_converged_in_validation"] == sum(f != 0 for per in flags for f in per)
            for chosen in out["selected_for"].values():
                fit = chosen["lbfgs"]
                assert 0 < fit["iterations"] <= 100 and (fit["warnflag"] != 1 or fit["iterations"] == 100)
                # a fit stopped at maxiter=100 is fitted again to convergence, scored at the same (lambda, t)
                assert ("converged" in chosen) == (fit["warnflag"] == 1)
                if "converged" in chosen:
                    assert chosen["converged"]["lbfgs"]["objective"] <= fit["objective"] + 1e-12
                assert chosen["lambda"] in ml["settings"]["lambdas_small"]
                assert chosen["t"] in ml["settings"]["thresholds"][row["loss"]]
                assert all(0.0 <= v <= 1.0 for v in chosen["test"].values())
                assert 0.0 <= chosen["validation"] <= 1.0
            assert out["difference_points"]["micro-F1"] == pytest.approx(
                out["test_percent"]["micro-F1"] - row["paper_percent_UNVERIFIED"]["micro-F1"]
            )
            # emotions is easy enough that every loss beats predicting nothing by far
            assert out["test_percent"]["micro-F1"] > 50.0
        # the selected test score is one cell of the diagnostic test grid
        diag = row["test_grid_diagnostic"]["micro-F1"]
        chosen = row["schemes"]["contiguous"]["selected_for"]["micro-F1"]
        cell = diag["grid_percent"][row["test_grid_diagnostic"]["lambdas"].index(chosen["lambda"])][
            row["test_grid_diagnostic"]["t"].index(chosen["t"])
        ]
        assert cell == pytest.approx(100 * chosen["test"]["micro-F1"], abs=1e-3)
        assert diag["best"]["value"] >= cell - 1e-9

    points = result["synthetic"]["points"]
    assert len(points) == 4  # uniform/random x lengths 200, 2000 at K = 10
    for p in points:
        for loss in ("softmax", "sparsemax"):
            for metric in ("JSD", "MSE"):
                assert p[loss][metric]["test"] >= 0.0 and p[loss][metric]["test_std_error"] >= 0.0
    for props in ("uniform", "random"):
        by_length = {p["length"]: p for p in points if p["proportions"] == props}
        # longer documents carry more evidence about q: the sparsemax estimate improves
        assert by_length[2000]["sparsemax"]["JSD"]["test"] < by_length[200]["sparsemax"]["JSD"]["test"]
