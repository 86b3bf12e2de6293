"""sparsexc.tree.solver: the node classifiers of the label tree against independent references.

Oracles: scikit-learn's liblinear (dual coordinate descent) run to a tight tolerance, scipy's L-BFGS on the dense
float64 primal (one-class columns, which scikit-learn refuses), central finite differences, brute force.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from sparsexc.errors import ConfigurationError
from sparsexc.tree import solver
from sparsexc.tree.solver import (
    DENSE_SHARE,
    LOSSES,
    _dense_pays,
    _DensePrimal,
    _Loss,
    _Newton,
    _Primal,
    _row_span_pays,
    _RowSpan,
    _with_bias,
    drop_empty_columns,
    fit_linear,
    objective,
    prune,
)


def _problem(n: int = 120, d: int = 40, K: int = 4, density: float = 0.15, seed: int = 0):
    """Sparse rows (L2-normalised, float32) and targets that a linear model partly separates."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, random_state=seed, format="csr", dtype=np.float64)
    X.data = rng.random(X.nnz) + 0.1
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1))).ravel()
    X = sp.diags(1.0 / np.maximum(norms, 1e-12)) @ X
    truth = rng.standard_normal((d, K)) * 3
    scores = X @ truth + 0.5 * rng.standard_normal((n, K))
    Y = scores > np.quantile(scores, 0.7, axis=0)
    return sp.csr_matrix(X, dtype=np.float32), Y


def _dense_objective(X, Y, W, loss, C, bias):
    """The primal, written out densely in float64 (independent of the module's own ``objective``)."""
    Xb = np.hstack([X.toarray().astype(np.float64), np.full((X.shape[0], 1), float(bias))])
    Ys = np.where(np.asarray(Y) != 0, 1.0, -1.0)
    M = Ys * (Xb @ W)
    xi = np.maximum(0.0, 1.0 - M) ** 2 if loss == "squared_hinge" else np.log1p(np.exp(-M))
    return 0.5 * (W * W).sum(axis=0) + C * xi.sum(axis=0)


def _dense_gradient(X, Y, W, loss, C, bias):
    Xb = np.hstack([X.toarray().astype(np.float64), np.full((X.shape[0], 1), float(bias))])
    Ys = np.where(np.asarray(Y) != 0, 1.0, -1.0)
    M = Ys * (Xb @ W)
    dxi = -2.0 * np.maximum(0.0, 1.0 - M) if loss == "squared_hinge" else -1.0 / (1.0 + np.exp(M))
    return W + C * Xb.T @ (Ys * dxi)


def _liblinear(X, y, loss, C, bias):
    """scikit-learn's liblinear to a tight tolerance: weights (d + 1,) with the bias weight last."""
    fit_intercept = bias > 0
    scaling = bias if fit_intercept else 1.0
    if loss == "squared_hinge":
        model = LinearSVC(
            loss="squared_hinge",
            dual=False,  # LIBLINEAR -s 2 (its dual CD converges too slowly to a tight tolerance)
            C=C,
            tol=1e-12,
            max_iter=200_000,
            fit_intercept=fit_intercept,
            intercept_scaling=scaling,
        )
    else:
        model = LogisticRegression(
            solver="liblinear",
            C=C,
            tol=1e-12,
            max_iter=200_000,
            fit_intercept=fit_intercept,
            intercept_scaling=scaling,
        )
    # a full copy: scikit-learn sorts the indices in place, and a dtype-only copy would share them with X
    model.fit(sp.csr_matrix(X, dtype=np.float64, copy=True), np.where(y, 1, -1))
    w = np.zeros(X.shape[1] + 1)
    w[:-1] = model.coef_[0]
    if fit_intercept:
        w[-1] = model.intercept_[0] / bias  # scikit-learn reports intercept_scaling * (the bias feature's weight)
    return w


def _lbfgs(X, y, loss, C, bias):
    """The dense float64 primal of one column minimised by L-BFGS to a tight gradient."""
    Y = np.asarray(y).reshape(-1, 1)

    def fun(w):
        W = w.reshape(-1, 1)
        return _dense_objective(X, Y, W, loss, C, bias)[0], _dense_gradient(X, Y, W, loss, C, bias).ravel()

    res = minimize(
        fun, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "maxiter": 10_000}
    )
    return res.x


# -- the optimum --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("bias", [1.0, 0.0, 2.5])
def test_optimum_equals_liblinear(loss, bias):
    X, Y = _problem(seed=1)
    C = 0.7
    W = fit_linear(X, Y, loss=loss, C=C, tol=1e-6, bias=bias)
    assert W.shape == (X.shape[1] + 1, Y.shape[1]) and W.dtype == np.float32
    reference = np.stack([_liblinear(X, Y[:, k], loss, C, bias) for k in range(Y.shape[1])], axis=1)
    f = _dense_objective(X, Y, W.astype(np.float64), loss, C, bias)
    f_ref = _dense_objective(X, Y, reference, loss, C, bias)
    np.testing.assert_allclose(f, f_ref, rtol=1e-4)
    np.testing.assert_allclose(W, reference, atol=2e-3 * np.abs(reference).max())
    if bias == 0:
        assert not W[-1].any()  # no bias feature: its weight stays 0


@pytest.mark.parametrize("loss", LOSSES)
def test_few_rows_many_features_solved_on_the_row_span_equal_liblinear(loss):
    X, Y = _problem(n=50, d=400, K=3, density=0.05, seed=14)
    assert _row_span_pays(X.shape[0], X.shape[1] + 1, X.nnz)  # this shape takes the row-span path
    _assert_liblinear_optimum(X, Y, fit_linear(X, Y, loss=loss, C=1.5, tol=1e-6), loss, 1.5)


def _assert_liblinear_optimum(X, Y, W, loss, C):
    """``W`` (bias 1) is LIBLINEAR's optimum for every column of ``Y``: the objective to 1e-4, the weights to 2e-3."""
    reference = np.stack([_liblinear(X, Y[:, k], loss, C, 1.0) for k in range(Y.shape[1])], axis=1)
    np.testing.assert_allclose(
        _dense_objective(X, Y, W.astype(float), loss, C, 1.0),
        _dense_objective(X, Y, reference, loss, C, 1.0),
        rtol=1e-4,
    )
    np.testing.assert_allclose(W, reference, atol=2e-3 * np.abs(reference).max())


@pytest.mark.parametrize("loss", LOSSES)
def test_row_span_and_weight_space_reach_the_same_optimum(loss, monkeypatch):
    X, Y = _problem(n=40, d=300, K=4, density=0.05, seed=15)
    Y[:, 3] = False  # and a one-class column
    row_span = fit_linear(X, Y, loss=loss, tol=1e-8)
    monkeypatch.setattr(solver, "_row_span_pays", lambda n, d, nnz: False)
    weight_space = fit_linear(X, Y, loss=loss, tol=1e-8)
    np.testing.assert_allclose(row_span, weight_space, rtol=1e-4, atol=1e-5)


def _dense_problem(n: int = 150, d: int = 12, K: int = 3, seed: int = 3):
    """Standardised real-valued rows (every entry non-zero, negative values) and partly separable targets."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    scores = X @ rng.standard_normal((d, K)) + 0.7 * rng.standard_normal((n, K))
    return sp.csr_matrix(X.astype(np.float32)), scores > np.quantile(scores, 0.6, axis=0)


@pytest.mark.parametrize("loss", LOSSES)
def test_dense_rows_take_the_dense_path_and_equal_liblinear(loss, monkeypatch):
    X, Y = _dense_problem()
    assert _dense_pays(_with_bias(X, 1.0))
    built = []
    monkeypatch.setattr(solver, "_DensePrimal", lambda Xb: built.append(Xb.shape) or _DensePrimal(Xb))
    W = fit_linear(X, Y, loss=loss, C=0.8, tol=1e-6)
    assert built == [(X.shape[0], X.shape[1] + 1)]  # one dense space, with the bias column
    _assert_liblinear_optimum(X, Y, W, loss, 0.8)


@pytest.mark.parametrize("loss", LOSSES)
def test_dense_and_sparse_products_reach_the_same_optimum(loss, monkeypatch):
    X, Y = _dense_problem(seed=4)
    Y[:, 2] = True  # and a one-class column
    dense = fit_linear(X, Y, loss=loss, C=np.array([0.1, 1.0, 3.0]), tol=1e-8)
    monkeypatch.setattr(solver, "_dense_pays", lambda Xb: False)
    sparse = fit_linear(X, Y, loss=loss, C=np.array([0.1, 1.0, 3.0]), tol=1e-8)
    np.testing.assert_allclose(dense, sparse, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("loss", LOSSES)
def test_dense_rows_on_the_row_span_reach_the_same_optimum(loss, monkeypatch):
    X, Y = _dense_problem(n=30, d=60, seed=6)  # fewer rows than columns: the row-span form, its Gram by BLAS
    assert _row_span_pays(X.shape[0], X.shape[1] + 1, X.nnz + X.shape[0])
    dense = fit_linear(X, Y, loss=loss, C=1.5, tol=1e-8)
    monkeypatch.setattr(solver, "_dense_pays", lambda Xb: False)
    sparse = fit_linear(X, Y, loss=loss, C=1.5, tol=1e-8)
    monkeypatch.setattr(solver, "_row_span_pays", lambda n, d, nnz: False)
    weight_space = fit_linear(X, Y, loss=loss, C=1.5, tol=1e-8)
    np.testing.assert_allclose(dense, sparse, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dense, weight_space, rtol=1e-4, atol=1e-5)


def test_dense_path_needs_the_dense_share_of_stored_cells():
    X, _ = _problem(n=40, d=30, density=0.3, seed=5)
    Xb = _with_bias(X, 1.0)
    assert not _dense_pays(Xb)  # about 0.3 of the cells (and the bias column)
    full = sp.csr_matrix(np.ones((10, 9), dtype=np.float32))
    assert _dense_pays(_with_bias(full, 1.0))
    cut = sp.csr_matrix(np.tril(np.ones((10, 10), dtype=np.float32)))  # 55 of 100 cells, 65 of 110 with bias
    assert _dense_pays(cut) and cut.nnz == 55 >= DENSE_SHARE * 100
    assert not _dense_pays(sp.csr_matrix((0, 5), dtype=np.float32))


@pytest.mark.parametrize("loss", LOSSES)
def test_one_class_columns_reach_their_optimum(loss):
    X, Y = _problem(seed=2)
    Y = np.column_stack([np.ones(X.shape[0], bool), Y[:, 0], np.zeros(X.shape[0], bool)])
    W = fit_linear(X, Y, loss=loss, C=2.0, tol=1e-6)
    for k in range(3):
        reference = _lbfgs(X, Y[:, k], loss, 2.0, 1.0)
        f = _dense_objective(X, Y[:, [k]], W[:, [k]].astype(np.float64), loss, 2.0, 1.0)
        f_ref = _dense_objective(X, Y[:, [k]], reference[:, None], loss, 2.0, 1.0)
        np.testing.assert_allclose(f, f_ref, rtol=1e-5)
        np.testing.assert_allclose(W[:, k], reference, atol=1e-3 * max(np.abs(reference).max(), 1.0))
    assert W[-1, 0] > 0 > W[-1, 2]  # all positive: scores pushed up; all negative: down


def test_columns_are_independent_and_targets_may_be_csr():
    X, Y = _problem(K=5, seed=3)
    together = fit_linear(X, sp.csr_matrix(Y.astype(np.float32)), tol=1e-8)
    alone = np.column_stack([fit_linear(X, Y[:, [k]], tol=1e-8) for k in range(5)])
    np.testing.assert_array_equal(fit_linear(X, Y, tol=1e-8), together)
    # the same optimum; not bit for bit: the products' rounding depends on how many columns they carry
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-5)


def test_objective_matches_the_dense_primal():
    X, Y = _problem(seed=4)
    W = np.random.default_rng(0).standard_normal((X.shape[1] + 1, Y.shape[1]))
    for loss in LOSSES:
        np.testing.assert_allclose(
            objective(X, Y, W, loss=loss, C=1.3, bias=0.5), _dense_objective(X, Y, W, loss, 1.3, 0.5), rtol=1e-10
        )


# -- the derivatives the Newton method uses -------------------------------------------------------------------
@pytest.mark.parametrize("loss", LOSSES)
def test_gradient_and_hessian_against_finite_differences(loss):
    X, Y = _problem(n=60, d=12, K=3, seed=5)
    C, bias = 0.9, 1.5
    Xb = _with_bias(X, bias)
    newton = _Newton(_Primal(Xb), np.where(Y, 1.0, -1.0), _Loss(loss), C)
    rng = np.random.default_rng(1)
    W = 0.5 * rng.standard_normal((Xb.shape[1], 3))
    cols = np.arange(3)
    G = newton._grad(W, Xb @ W, cols)
    f = lambda V: objective(X, Y, V, loss=loss, C=C, bias=bias)  # noqa: E731
    h = 1e-6
    for j in range(Xb.shape[1]):
        E = np.zeros_like(W)
        E[j] = h
        np.testing.assert_allclose((f(W + E) - f(W - E)) / (2 * h), G[j], rtol=1e-5, atol=1e-6)
    # Hessian times V against the difference of gradients (smooth here: no margin sits at 1 exactly)
    V = rng.standard_normal(W.shape)
    weights = C * _Loss(loss).curvature(np.where(Y, 1.0, -1.0) * (Xb @ W))
    HV = newton.space.hess_vec(V, weights, newton.space.image(V))
    eps = 1e-7
    finite = (
        newton._grad(W + eps * V, Xb @ (W + eps * V), cols) - newton._grad(W - eps * V, Xb @ (W - eps * V), cols)
    ) / (2 * eps)
    np.testing.assert_allclose(HV, finite, rtol=1e-4, atol=1e-5)


def test_the_row_span_hessian_and_inner_products_from_images_are_the_weight_spaces():
    X, _ = _problem(n=20, d=50, K=3, seed=8)
    Xb = _with_bias(X, 1.0)
    row_span, primal = _RowSpan(Xb), _Primal(Xb)
    rng = np.random.default_rng(3)
    A, B = rng.standard_normal((20, 3)), rng.standard_normal((20, 3))
    weights = rng.random((20, 3)).astype(np.float32)
    wA, wB = Xb.T @ A, Xb.T @ B  # the weights the coefficients stand for
    np.testing.assert_allclose(row_span.dot(A, B), np.einsum("ij,ij->j", wA, wB), rtol=1e-10)
    np.testing.assert_allclose(np.einsum("ij,ij->j", A, row_span.image(B)), row_span.dot(A, B), rtol=1e-12)
    HA = row_span.hess_vec(A, weights, row_span.image(A))
    np.testing.assert_allclose(Xb.T @ HA, primal.hess_vec(wA, weights, wA), rtol=1e-5, atol=1e-6)


# -- warm starts, tolerance, iterations, determinism ------------------------------------------------------------
@pytest.mark.parametrize("loss", LOSSES)
def test_warm_start_reaches_the_same_optimum(loss):
    X, Y = _problem(seed=6)
    cold = fit_linear(X, Y, loss=loss, tol=1e-6)
    W0 = np.random.default_rng(2).standard_normal(cold.shape)
    warm = fit_linear(X, Y, loss=loss, tol=1e-6, W0=W0)
    np.testing.assert_allclose(
        _dense_objective(X, Y, warm.astype(float), loss, 1.0, 1.0),
        _dense_objective(X, Y, cold.astype(float), loss, 1.0, 1.0),
        rtol=1e-6,
    )
    np.testing.assert_allclose(warm, cold, atol=1e-3)
    # from the optimum itself, nothing moves (the stopping rule already holds)
    np.testing.assert_array_equal(fit_linear(X, Y, loss=loss, tol=0.1, W0=cold), cold)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("tol", [0.1, 0.01, 1e-4])
@pytest.mark.parametrize("n", [200, 60])  # the weight space, the row span
def test_stopping_rule_holds_at_the_result(loss, tol, n):
    X, Y = _problem(n=n, d=40 if n == 200 else 80, seed=7)  # the row span needs fewer rows than columns
    assert _row_span_pays(n, X.shape[1] + 1, X.nnz) == (n == 60)
    Y[:, 1] = False
    Y[:5, 1] = True  # a rare column: min(n_pos, n_neg) = 5
    W = fit_linear(X, Y, loss=loss, tol=tol).astype(np.float64)
    n = X.shape[0]
    positives = Y.sum(axis=0)
    bound = tol * np.maximum(np.minimum(positives, n - positives), 1) / n
    g = np.linalg.norm(_dense_gradient(X, Y, W, loss, 1.0, 1.0), axis=0)
    g0 = np.linalg.norm(_dense_gradient(X, Y, np.zeros_like(W), loss, 1.0, 1.0), axis=0)
    assert np.all(g <= bound * g0 * (1 + 1e-3) + 1e-6)  # float32 result: a hair of rounding


def test_max_iter_bounds_the_newton_steps():
    X, Y = _problem(n=300, seed=8)
    values = [
        _dense_objective(X, Y, fit_linear(X, Y, tol=1e-10, max_iter=m).astype(float), "squared_hinge", 1.0, 1.0)
        for m in (1, 2, 50)
    ]
    f0 = _dense_objective(X, Y, np.zeros((X.shape[1] + 1, Y.shape[1])), "squared_hinge", 1.0, 1.0)
    assert np.all(values[0] < f0) and np.all(values[1] <= values[0]) and np.all(values[2] <= values[1])
    assert np.any(values[0] > values[2] * (1 + 1e-4))  # one step is not the optimum: the cap did stop it


def test_same_input_same_weights():
    X, Y = _problem(seed=9)
    for loss in LOSSES:
        np.testing.assert_array_equal(fit_linear(X, Y, loss=loss), fit_linear(X.copy(), Y.copy(), loss=loss))


def test_empty_problems():
    X, Y = _problem(seed=10)
    assert fit_linear(X, Y[:, :0]).shape == (X.shape[1] + 1, 0)
    np.testing.assert_array_equal(fit_linear(X[:0], Y[:0]), np.zeros((X.shape[1] + 1, Y.shape[1]), np.float32))


# -- bad arguments ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"loss": "hinge"}, ["loss", "'squared_hinge'", "'logistic'", "'hinge'"]),
        ({"C": 0.0}, ["C", "> 0"]),
        ({"C": -1.0}, ["C", "> 0"]),
        ({"C": float("nan")}, ["C", "> 0"]),
        ({"tol": 0}, ["tol", "> 0"]),
        ({"max_iter": 0}, ["max_iter", ">= 1"]),
        ({"max_iter": 2.5}, ["max_iter", "integer"]),
        ({"bias": -1.0}, ["bias", ">= 0"]),
        ({"W0": np.zeros((3, 3))}, ["W0", "(d + 1, K)"]),
    ],
)
def test_bad_settings_name_the_argument(kwargs, words):
    X, Y = _problem(seed=11)
    with pytest.raises(ConfigurationError) as info:
        fit_linear(X, Y, **kwargs)
    for word in words:
        assert word in str(info.value)


def test_bad_shapes_name_the_argument():
    X, Y = _problem(seed=12)
    with pytest.raises(ConfigurationError, match=r"Y must have one row per row of X \(120\)"):
        fit_linear(X, Y[:-1])
    with pytest.raises(ConfigurationError, match="Y must be a 2-D"):
        fit_linear(X, Y[:, 0])
    with pytest.raises(ConfigurationError, match="X must be a 2-D"):
        fit_linear([[1.0]], Y)
    with pytest.raises(ConfigurationError, match="W must have shape"):
        objective(X, Y, np.zeros((2, 2)))


# -- helpers of the model -----------------------------------------------------------------------------------------
def test_drop_empty_columns_keeps_exactly_the_used_columns():
    # row 0 stores an explicit zero in column 2: not a use of column 2
    data = np.array([1.5, 0.0, 2.0, 1.0, 3.0], dtype=np.float32)
    X = sp.csr_matrix((data, [1, 2, 4, 4, 1], [0, 3, 4, 5]), shape=(3, 5))
    assert X.nnz == 5
    X_used, ids = drop_empty_columns(X)
    np.testing.assert_array_equal(ids, [1, 4])
    np.testing.assert_array_equal(X_used.toarray(), X.toarray()[:, [1, 4]])
    assert X_used.dtype == np.float32 and X_used.nnz == 4 and ids.dtype == np.int64


def test_weights_of_the_used_columns_scatter_back_to_the_same_scores():
    X, Y = _problem(d=60, density=0.03, seed=13)
    X_used, ids = drop_empty_columns(X)
    assert ids.size < X.shape[1]
    W_used = fit_linear(X_used, Y, tol=1e-6)
    W = np.zeros((X.shape[1] + 1, Y.shape[1]), np.float32)
    W[ids], W[-1] = W_used[:-1], W_used[-1]
    # the empty columns' optimal weights are 0, so the full problem has the same optimum
    np.testing.assert_allclose(W, fit_linear(X, Y, tol=1e-6), atol=1e-4)


def test_prune_against_brute_force():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((7, 4)).astype(np.float32) * 0.3
    W[-1, 2] = 0.01  # a small bias weight is kept all the same
    W[-1, 3] = 0.0
    P = prune(W, 0.2)
    assert isinstance(P, sp.csr_matrix) and P.shape == (4, 7) and P.dtype == np.float32
    expected = np.where(np.abs(W.T) >= 0.2, W.T, 0.0)
    expected[:, -1] = W[-1]
    np.testing.assert_array_equal(P.toarray(), expected)
    stored = {(r, c) for r, c in zip(*P.nonzero())} | {(r, c) for r in range(4) for c in [6]}
    assert P.nnz == len(stored)  # every bias weight is stored, even 0; nothing else below the threshold
    np.testing.assert_array_equal(prune(W, 0).toarray(), W.T)
    with pytest.raises(ConfigurationError, match="threshold"):
        prune(W, -0.1)
