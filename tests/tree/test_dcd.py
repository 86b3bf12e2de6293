"""Dual coordinate descent (solver="dcd") reaches the same optimum as the primal Newton solver."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc.errors import ConfigurationError
from sparsexc.tree.solver import fit_linear, objective


def _problem(n: int = 300, d: int = 120, K: int = 6, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.08, format="csr", random_state=seed, dtype=np.float32)
    Y = rng.random((n, K)) < rng.uniform(0.05, 0.5, size=K)
    Y[:, 0] = False  # a column with one class only
    return X, Y


@pytest.mark.parametrize("bias", [0.0, 1.0, 2.5])
@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
def test_dcd_reaches_the_newton_optimum(bias, C):
    X, Y = _problem(seed=int(10 * C + bias))
    W_dcd = fit_linear(X, Y, C=C, bias=bias, solver="dcd", tol=1e-7, max_iter=100_000)
    W_newton = fit_linear(X, Y, C=C, bias=bias, solver="newton", tol=1e-9)
    f_dcd = objective(X, Y, W_dcd, C=C, bias=bias)
    f_newton = objective(X, Y, W_newton, C=C, bias=bias)
    np.testing.assert_allclose(f_dcd, f_newton, rtol=1e-5)
    np.testing.assert_allclose(W_dcd, W_newton, atol=1e-3)
    if bias == 0:
        assert np.all(W_dcd[-1] == 0)


def test_dcd_at_its_default_tolerance_is_near_the_optimum_and_deterministic():
    X, Y = _problem(n=600, seed=3)
    W = fit_linear(X, Y, solver="dcd")
    W_again = fit_linear(X, Y, solver="dcd")
    assert np.array_equal(W, W_again)
    W_other_order = fit_linear(X, Y, solver="dcd", seed=1)
    assert not np.array_equal(W, W_other_order)  # the seed sets the row order
    best = objective(X, Y, fit_linear(X, Y, solver="newton", tol=1e-9))
    assert np.all(objective(X, Y, W) <= best * (1 + 1e-2))


def test_auto_takes_dcd_for_the_squared_hinge_and_newton_for_the_logistic_loss():
    X, Y = _problem()
    assert np.array_equal(fit_linear(X, Y, solver="auto"), fit_linear(X, Y, solver="dcd"))
    assert np.array_equal(
        fit_linear(X, Y, loss="logistic", solver="auto"), fit_linear(X, Y, loss="logistic", solver="newton")
    )


def test_dcd_refuses_what_it_does_not_solve():
    X, Y = _problem()
    with pytest.raises(ConfigurationError, match="squared_hinge"):
        fit_linear(X, Y, loss="logistic", solver="dcd")
    with pytest.raises(ConfigurationError, match="W0"):
        fit_linear(X, Y, solver="dcd", W0=np.zeros((X.shape[1] + 1, Y.shape[1])))
    with pytest.raises(ConfigurationError, match="solver must be one of"):
        fit_linear(X, Y, solver="liblinear")
