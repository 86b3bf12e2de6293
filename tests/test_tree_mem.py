"""The label tree's memory-saving paths give what the copying paths gave.

- ``used_columns`` against brute force (the distinct column ids of ``X[rows]``);
- ``fit_rows`` (the node solver reading a node's rows and columns of X in place) against the copying path
  ``fit_linear(drop_empty_columns(X[rows]))``, bit for bit, and against scikit-learn's liblinear (an independent
  implementation of the same squared-hinge dual coordinate descent) near the optimum;
- the model trained on an X with unsorted indices equals the model trained on the sorted X.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc.errors import ConfigurationError
from sparsexc.tree import LabelTreeModel, LabelTreeParams
from sparsexc.tree._dcd import used_columns
from sparsexc.tree.solver import drop_empty_columns, fit_linear, fit_rows


def _problem(n: int, d: int, K: int, seed: int, dtype: type = np.float32) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.05, format="csr", random_state=seed, dtype=dtype)
    Y = rng.random((n, K)) < rng.uniform(0.05, 0.5, size=K)
    return X, Y


@pytest.mark.parametrize("seed", range(5))
def test_used_columns_are_the_distinct_columns_of_the_rows(seed):
    rng = np.random.default_rng(seed)
    X, _ = _problem(80, 300, 1, seed)
    rows = rng.choice(80, size=int(rng.integers(0, 40)), replace=False)  # unsorted, possibly empty
    used, remap = used_columns(X.indptr, X.indices, rows, X.shape[1])
    expected = np.unique(X[rows].indices)
    np.testing.assert_array_equal(used, expected)
    assert used.dtype == np.int64 and remap.dtype == np.int32 and remap.shape == (300,)
    np.testing.assert_array_equal(remap[used], np.arange(used.size))


@pytest.mark.parametrize("bias", [0.0, 1.0, 2.5])
@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_rows_dcd_equals_the_copying_path_bit_for_bit(bias, C, dtype):
    X, Y = _problem(400, 250, 5, seed=int(C * 10 + bias), dtype=dtype)
    rows = np.sort(np.random.default_rng(1).choice(400, size=150, replace=False))
    X_used, used_old = drop_empty_columns(X[rows])
    W_old = fit_linear(X_used, Y[rows], C=C, bias=bias, solver="dcd", seed=3)
    W, used = fit_rows(X, rows, Y[rows], C=C, bias=bias, solver="dcd", seed=3)
    np.testing.assert_array_equal(used, used_old)
    np.testing.assert_array_equal(W, W_old)


def test_fit_rows_dcd_reaches_liblinears_optimum():
    from sklearn.svm import LinearSVC

    X, Y = _problem(300, 120, 3, seed=7, dtype=np.float64)
    rows = np.arange(0, 300, 2)
    W, used = fit_rows(X, rows, Y[rows], C=1.0, bias=1.0, solver="dcd", tol=1e-8, max_iter=100_000)
    Xr = X[rows]
    for k in range(Y.shape[1]):
        # liblinear -s 1 -B 1: the same primal, the intercept regularised like a weight
        svc = LinearSVC(loss="squared_hinge", dual=True, C=1.0, intercept_scaling=1.0, tol=1e-10, max_iter=1_000_000)
        svc.fit(Xr, Y[rows, k])
        full = np.zeros(X.shape[1])
        full[used] = W[:-1, k]
        np.testing.assert_allclose(full, svc.coef_[0], atol=2e-4)
        np.testing.assert_allclose(W[-1, k], svc.intercept_[0], atol=2e-4)


def test_fit_rows_newton_equals_the_copying_path():
    X, Y = _problem(200, 150, 4, seed=2)
    rows = np.arange(50, 180)
    X_used, used_old = drop_empty_columns(X[rows])
    W_old = fit_linear(X_used, Y[rows], loss="logistic", solver="newton")
    W, used = fit_rows(X, rows, Y[rows], loss="logistic", solver="newton")
    np.testing.assert_array_equal(used, used_old)
    np.testing.assert_array_equal(W, W_old)


def test_fit_rows_refuses_bad_rows_and_settings():
    X, Y = _problem(20, 10, 2, seed=0)
    with pytest.raises(ConfigurationError, match="rows must be"):
        fit_rows(X, np.array([0, 20]), Y[:2], solver="dcd")
    with pytest.raises(ConfigurationError, match="rows must be"):
        fit_rows(X, np.array([-1]), Y[:1], solver="dcd")
    with pytest.raises(ConfigurationError, match="one row per row"):
        fit_rows(X, np.array([0, 1, 2]), Y[:2], solver="dcd")
    with pytest.raises(ConfigurationError, match="C must be"):
        fit_rows(X, np.array([0, 1]), Y[:2], solver="dcd", C=0.0)


def test_the_model_on_unsorted_indices_equals_the_model_on_sorted_ones():
    rng = np.random.default_rng(0)
    X, _ = _problem(300, 60, 1, seed=4)
    Y = sp.csr_matrix(rng.random((300, 40)) < 0.08)
    shuffled = X.copy()
    for i in range(X.shape[0]):  # reverse each row's entries: same matrix, unsorted indices
        a, b = X.indptr[i], X.indptr[i + 1]
        shuffled.indices[a:b] = X.indices[a:b][::-1]
        shuffled.data[a:b] = X.data[a:b][::-1]
    shuffled.has_sorted_indices = False
    params = LabelTreeParams(branching=4, max_leaf_size=5)
    a = LabelTreeModel(params).fit(X, Y)
    b = LabelTreeModel(params).fit(shuffled, Y)
    for wa, wb in zip(a.weights_[0], b.weights_[0], strict=True):
        assert (wa != wb).nnz == 0
