"""Small training sets without numba: ``solver="auto"`` takes the numpy/scipy Newton solver for the squared hinge
when ``stored entries x labels <= NEWTON_MAX_WORK`` (``LabelTreeParams.for_data``).

- the two node solvers (``fit_rows`` with ``newton`` and with numba's ``dcd``) train on the same used columns (the
  distinct column ids of ``X[rows]``, by brute force) and reach the same weights, to the solvers' tolerance;
- the size rule picks each path, for ``fit`` and its cross-validation of C alike, and a small fit calls no
  numba kernel;
- the Newton solver's row-span form is not taken with at least as many rows as columns.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import sparsexc.tree.model as tree_model
import sparsexc.tree.solver as solver_module
from sparsexc.tree import LabelTreeModel, LabelTreeParams
from sparsexc.tree.model import NEWTON_MAX_FEATURES, NEWTON_MAX_NARROW_WORK, NEWTON_MAX_WORK, cross_validate_C
from sparsexc.tree.solver import _row_span_pays, fit_rows, objective


def _problem(n: int, d: int, K: int, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.1, format="csr", random_state=seed, dtype=np.float32)
    Y = rng.random((n, K)) < rng.uniform(0.1, 0.5, size=K)
    return X, Y


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("C", [0.03, 1.0])
def test_newton_and_dcd_nodes_use_the_same_columns_and_reach_the_same_weights(seed, C):
    X, Y = _problem(120, 60, 4, seed)
    rows = np.sort(np.random.default_rng(seed).choice(120, size=70, replace=False))
    tight = {"newton": 1e-10, "dcd": 1e-8}
    found = {
        solver: fit_rows(X, rows, Y[rows], C=C, solver=solver, tol=tol, max_iter=100_000)
        for solver, tol in tight.items()
    }
    brute = np.unique(X[rows].indices)
    for W, used in found.values():
        np.testing.assert_array_equal(used, brute)
        assert W.shape == (brute.size + 1, 4)
    np.testing.assert_allclose(found["newton"][0], found["dcd"][0], atol=1e-4)
    # at each solver's default tolerance both land near the common optimum
    X_used = X[rows][:, brute]
    best = objective(X_used, Y[rows], found["dcd"][0], C=C)
    for solver in ("newton", "dcd"):
        W, _ = fit_rows(X, rows, Y[rows], C=C, solver=solver)
        excess = (objective(X_used, Y[rows], W, C=C) - best) / best
        assert np.all(excess < 1e-2)


def test_the_size_rule_picks_newton_only_for_small_squared_hinge_problems():
    params = LabelTreeParams()
    wide = NEWTON_MAX_FEATURES + 1  # the work rule alone
    small = params.for_data(NEWTON_MAX_WORK // 10, 10, wide)
    assert small.solver == "newton" and small.replace(solver="auto") == params
    assert params.for_data(NEWTON_MAX_WORK // 10 + 1, 10, wide).solver == "dcd"  # one entry x 10 labels above
    assert small.for_data(NEWTON_MAX_WORK, 10, wide).solver == "newton"  # resolved once: kept
    assert LabelTreeParams(solver="dcd").for_data(10, 10, wide).solver == "dcd"  # an explicit solver is kept
    assert LabelTreeParams(loss="logistic").for_data(10, 10, wide).solver == "auto"  # auto is Newton already


def test_few_features_take_newton_up_to_the_narrow_work_bound():
    params = LabelTreeParams()
    narrow = NEWTON_MAX_FEATURES
    assert params.for_data(NEWTON_MAX_NARROW_WORK // 10, 10, narrow).solver == "newton"
    assert params.for_data(NEWTON_MAX_NARROW_WORK // 10, 10, narrow + 1).solver == "dcd"  # too wide
    assert params.for_data(NEWTON_MAX_NARROW_WORK // 10 + 1, 10, narrow).solver == "dcd"  # too much work
    assert LabelTreeParams(solver="dcd").for_data(10, 10, narrow).solver == "dcd"


def _data(n: int, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    X = sp.random(n, 40, density=0.2, format="csr", random_state=seed, dtype=np.float32)
    Y = sp.csr_matrix(rng.random((n, 6)) < 0.3, dtype=np.float32)
    return X, Y


def test_a_small_fit_and_its_cross_validation_call_no_numba_kernel(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("numba kernel called")

    monkeypatch.setattr(solver_module, "dcd_squared_hinge", refuse)
    monkeypatch.setattr(solver_module, "used_columns", refuse)
    X, Y = _data(90, 0)
    model = LabelTreeModel(LabelTreeParams(max_leaf_size=4, branching=2)).fit(X, Y)  # C=None: cross-validated
    assert model.params.solver == "newton" and hasattr(model, "cv_scores_")


def test_above_the_size_rule_fit_and_cross_validation_keep_dcd(monkeypatch):
    X, Y = _data(90, 1)
    monkeypatch.setattr(tree_model, "NEWTON_MAX_WORK", X.nnz * Y.shape[1] - 1)
    monkeypatch.setattr(tree_model, "NEWTON_MAX_NARROW_WORK", X.nnz * Y.shape[1] - 1)  # 40 features: narrow
    calls = []
    kernel = solver_module.dcd_squared_hinge
    monkeypatch.setattr(solver_module, "dcd_squared_hinge", lambda *a, **k: calls.append(1) or kernel(*a, **k))
    params = LabelTreeParams(max_leaf_size=4, branching=2)
    model = LabelTreeModel(params).fit(X, Y)
    assert model.params.solver == "dcd" and calls
    # the cross-validation of C takes fit's solver (the rule on all of X), although each fold's fits have
    # fewer entries than the threshold
    scores = cross_validate_C(X, Y, params)
    assert scores == cross_validate_C(X, Y, params.replace(solver="dcd"))
    assert scores != cross_validate_C(X, Y, params.replace(solver="newton"))


@pytest.mark.parametrize(("n", "d", "pays"), [(300, 10_000, True), (1000, 104, False), (260, 73, False)])
def test_the_row_span_needs_fewer_rows_than_columns(n, d, pays):
    assert _row_span_pays(n, d, n * min(d, 50)) is pays
