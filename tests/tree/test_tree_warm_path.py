"""C's cross-validation along a warm-started C path (``fit_C_path``): the dual warm start of the node solver
reaches the cold solve's optimum, a cold path is the separate fits bit for bit, a warm path the same models to
the solver's tolerance, and the cross-validation chooses the same C."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc.errors import ConfigurationError
from sparsexc.tree import LabelTreeModel, LabelTreeParams
from sparsexc.tree._dcd import dcd_squared_hinge
from sparsexc.tree.model import _best_C, cross_validate_C, fit_C_path
from sparsexc.tree.solver import fit_rows, objective


def _node(n: int = 400, d: int = 150, K: int = 5, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.06, format="csr", random_state=seed, dtype=np.float32)
    Y = rng.random((n, K)) < rng.uniform(0.05, 0.5, size=K)
    return X, Y


def _labelled(n: int, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Sparse features, 12 labels each driven by a few features plus noise (so C matters)."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, 60, density=0.15, format="csr", random_state=seed, dtype=np.float32)
    A = rng.normal(size=(60, 12)) * (rng.random((60, 12)) < 0.2)
    scores = np.asarray(X @ A) + rng.normal(scale=0.3, size=(n, 12))
    Y = scores > np.quantile(scores, 0.75, axis=0)
    return X, sp.csr_matrix(Y.astype(np.float32))


@pytest.mark.parametrize("C_from, C_to", [(0.1, 0.3), (1.0, 3.0), (3.0, 0.3)])
def test_a_warm_start_reaches_the_cold_optimum(C_from, C_to):
    X, Y = _node(seed=int(10 * C_to))
    rows = np.arange(X.shape[0])
    alpha = np.zeros(Y.shape)
    fit_rows(X, rows, Y, C=C_from, solver="dcd", tol=1e-8, max_iter=100_000, alpha=alpha)
    assert alpha.min() >= 0 and alpha.max() > 0
    alpha *= C_to / C_from
    warm, used = fit_rows(X, rows, Y, C=C_to, solver="dcd", tol=1e-8, max_iter=100_000, alpha=alpha)
    cold, _ = fit_rows(X, rows, Y, C=C_to, solver="dcd", tol=1e-8, max_iter=100_000)
    f_warm, f_cold = (objective(X[:, used], Y, W, C=C_to) for W in (warm, cold))
    np.testing.assert_allclose(f_warm, f_cold, rtol=1e-6)
    np.testing.assert_allclose(warm, cold, atol=1e-3)
    # at the solver's own tolerance both land near the optimum
    default, _ = fit_rows(X, rows, Y, C=C_to, solver="dcd", alpha=alpha * 1.0)
    assert np.all(objective(X[:, used], Y, default, C=C_to) <= f_cold * (1 + 1e-2))


def test_the_duals_returned_are_the_solutions():
    """After a solve ``alpha`` holds the solution's duals: w = sum_i y_i alpha_i [x_i, b], and at the optimum
    alpha_i = 2 C max(0, 1 - y_i w.[x_i, b]) (the KKT conditions of the squared hinge)."""
    X, Y = _node(seed=4)
    C, bias = 0.5, 1.0
    alpha = np.zeros(Y.shape)
    W, used = fit_rows(X, np.arange(X.shape[0]), Y, C=C, bias=bias, solver="dcd", tol=1e-8, max_iter=100_000,
                       alpha=alpha)  # fmt: skip
    Xb = sp.hstack([X[:, used], np.full((X.shape[0], 1), bias)], format="csr")
    signs = np.where(Y, 1.0, -1.0)
    np.testing.assert_allclose(Xb.T @ (signs * alpha), W, atol=1e-4)
    slack = np.maximum(0.0, 1.0 - signs * np.asarray(Xb @ W.astype(np.float64)))
    np.testing.assert_allclose(alpha, 2 * C * slack, atol=1e-3)


def test_a_warm_start_needs_the_dual_solver_and_the_node_shape():
    X, Y = _node()
    rows = np.arange(X.shape[0])
    with pytest.raises(ConfigurationError, match="alpha"):
        fit_rows(X, rows, Y, solver="newton", alpha=np.zeros(Y.shape))
    with pytest.raises(ValueError, match="alpha must be"):
        fit_rows(X, rows, Y, solver="dcd", alpha=np.zeros((Y.shape[0] - 1, Y.shape[1])))
    with pytest.raises(ValueError, match="alpha must be"):
        dcd_squared_hinge(X.indptr, X.indices, X.data, Y, X.shape[1], C=1.0, bias=1.0, tol=0.1, max_iter=10,
                          alpha=np.zeros(Y.shape, dtype=np.float32))  # fmt: skip


def test_a_cold_path_is_the_separate_fits_bit_for_bit():
    X, Y = _labelled(150, 1)
    params = LabelTreeParams(branching=2, max_leaf_size=4, seed=2)
    Cs = [0.1, 0.3, 1.0]
    for C, model in zip(Cs, fit_C_path(X, Y, params, Cs, warm_start=False), strict=True):
        alone = LabelTreeModel(params.replace(C=C)).fit(X, Y)
        assert model.params.C == C
        for a, b in zip(model.weights_[0], alone.weights_[0], strict=True):
            assert (a != b).nnz == 0


def test_a_warm_path_gives_the_separate_fits_models_to_the_solvers_tolerance():
    X, Y = _labelled(240, 3)
    X_new, _ = _labelled(300, 4)
    params = LabelTreeParams(branching=2, max_leaf_size=4, seed=0, tol=1e-6, max_iter=10_000, threshold=0.0)
    Cs = [0.03, 0.1, 0.3, 1.0, 3.0]
    for C, model in zip(Cs, fit_C_path(X, Y, params, Cs), strict=True):
        alone = LabelTreeModel(params.replace(C=C)).fit(X, Y)
        for a, b in zip(model.weights_[0], alone.weights_[0], strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(a.toarray(), b.toarray(), atol=1e-3)
        np.testing.assert_array_equal(model.predict_topk(X_new, 3)[0], alone.predict_topk(X_new, 3)[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_warm_cross_validation_chooses_the_cold_ones_c(seed):
    X, Y = _labelled(300, 10 + seed)
    params = LabelTreeParams(branching=4, max_leaf_size=4, seed=seed)
    warm = cross_validate_C(X, Y, params)
    cold = cross_validate_C(X, Y, params, warm_start=False)
    assert list(warm) == list(cold)
    assert _best_C(warm, "squared_hinge") == _best_C(cold, "squared_hinge")
    for C in cold:
        assert warm[C] == pytest.approx(cold[C], abs=0.02)


def test_the_logistic_loss_path_is_cold():
    """Newton solves the logistic loss: no dual warm start, so its path is the separate fits exactly."""
    X, Y = _labelled(120, 5)
    params = LabelTreeParams(loss="logistic", branching=2, max_leaf_size=4)
    model = next(fit_C_path(X, Y, params, [10.0]))
    alone = LabelTreeModel(params.replace(C=10.0)).fit(X, Y)
    for a, b in zip(model.weights_[0], alone.weights_[0], strict=True):
        assert (a != b).nnz == 0
