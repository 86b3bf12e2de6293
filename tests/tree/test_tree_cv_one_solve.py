"""A flat tree solved by Newton fits a fold's whole C path in one solve (columns Cs x labels, each with its own
C): every column reaches the optimum of the separate fit of its C, the cross-validation's scores and chosen C are
the sequential path's, and deeper trees, ensembles and dual coordinate descent keep the sequential path."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc.errors import ConfigurationError
from sparsexc.tree import LabelTreeParams
from sparsexc.tree.model import LabelTreeModel, _best_C, cross_validate_C, fit_C_path
from sparsexc.tree.solver import _row_span_pays, fit_linear, objective

CS = (0.03, 0.1, 0.3, 1.0, 3.0)


def _data(n: int, d: int, n_labels: int, seed: int, *, density: float = 1.0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Features (a ``density`` share stored) with labels that depend on them (a noisy linear rule)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * (rng.random((n, d)) < density)
    scores = X @ rng.normal(size=(d, n_labels)) + rng.normal(scale=2.0, size=(n, n_labels))
    Y = scores > np.quantile(scores, 0.7, axis=0)
    return sp.csr_matrix(X.astype(np.float32)), sp.csr_matrix(Y.astype(np.float32))


@pytest.mark.parametrize("loss", ["squared_hinge", "logistic"])
@pytest.mark.parametrize("shape", [(120, 20, 0.5), (40, 400, 0.05)])  # weight space; row span
def test_a_c_per_column_reaches_each_separate_fits_optimum(loss, shape):
    n, d, density = shape
    X, Y = _data(n, d, 4, seed=n, density=density)
    assert _row_span_pays(n, d + 1, X.nnz + n) is (d > n)  # both spaces are covered
    K = Y.shape[1]
    Y_all = sp.hstack([Y] * len(CS), format="csr")
    C_all = np.repeat(np.array(CS), K)
    together = fit_linear(X, Y_all, loss=loss, C=C_all)
    f_together = objective(X, Y_all, together, loss=loss, C=C_all)
    for i, C in enumerate(CS):
        alone = fit_linear(X, Y, loss=loss, C=C)
        f_alone = objective(X, Y, alone, loss=loss, C=C)
        np.testing.assert_allclose(f_together[i * K : (i + 1) * K], f_alone, rtol=1e-5)
    # the check can fail: one C for every column is another optimum
    f_one_C = objective(X, Y_all, fit_linear(X, Y_all, loss=loss, C=1.0), loss=loss, C=C_all)
    assert not np.allclose(f_one_C, f_together, rtol=1e-3)


def test_a_c_per_column_is_checked():
    X, Y = _data(30, 5, 2, seed=0)
    for C in (np.ones(3), np.array([1.0, 0.0]), np.array([1.0, np.inf]), np.ones((2, 1))):
        with pytest.raises(ConfigurationError, match="C as an array must hold one positive finite number per"):
            fit_linear(X, Y, C=C)
    with pytest.raises(ConfigurationError, match=r"C as an array .* needs solver='newton'"):
        fit_linear(X, Y, C=np.ones(2), solver="dcd")


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(150, 25, 6, 1.0), (90, 300, 8, 0.05)])
def test_the_one_solve_cross_validation_gives_the_sequential_scores_and_c(monkeypatch, seed, shape):
    n, d, n_labels, density = shape
    X, Y = _data(n, d, n_labels, seed=seed, density=density)
    params = LabelTreeParams(solver="newton", seed=seed, tol=1e-4)  # near the optimum: no near-tie flips
    calls = []
    one_solve = LabelTreeModel._fit_flat_Cs

    def counted(self, *args):
        calls.append(1)
        return one_solve(self, *args)

    monkeypatch.setattr(LabelTreeModel, "_fit_flat_Cs", counted)
    for patience in (0, 1):
        batched = cross_validate_C(X, Y, params, patience=patience)
        assert calls, "the flat Newton tree did not take the one-solve path"
        calls.clear()
        with monkeypatch.context() as m:
            m.setattr(LabelTreeModel, "_solves_Cs_at_once", lambda self: False)
            sequential = cross_validate_C(X, Y, params, patience=patience)
        assert not calls
        assert list(batched) == list(sequential)
        np.testing.assert_allclose(list(batched.values()), list(sequential.values()), rtol=0, atol=1e-12)
        assert _best_C(batched, "squared_hinge") == _best_C(sequential, "squared_hinge")


def test_the_one_solve_models_keep_certain_labels_and_the_layout(monkeypatch):
    X, Y = _data(80, 10, 5, seed=4)
    Y = sp.hstack([Y, np.ones((80, 1), dtype=np.float32)], format="csr")  # a label in every row: certain
    params = LabelTreeParams(solver="newton")
    batched = list(fit_C_path(X, Y, params, CS))
    monkeypatch.setattr(LabelTreeModel, "_solves_Cs_at_once", lambda self: False)
    sequential = list(fit_C_path(X, Y, params, CS))
    for a, b in zip(batched, sequential, strict=True):
        assert a.params == b.params and a.trees_[0].depth == 1
        (wa,), (wb,) = a.weights_[0], b.weights_[0]
        assert wa.shape == wb.shape and wa[-1].toarray()[0, -1] == wb[-1].toarray()[0, -1] == 30.0
        np.testing.assert_allclose(wa.toarray(), wb.toarray(), atol=2e-3)
        np.testing.assert_array_equal(a.predict_topk(X, 3)[0], b.predict_topk(X, 3)[0])


@pytest.mark.parametrize(
    "settings",
    [
        {"solver": "newton", "max_leaf_size": 3},  # a deep tree
        {"solver": "dcd"},  # dual coordinate descent: warm-started along the path
        {"solver": "newton", "n_trees": 2},  # an ensemble
    ],
)
def test_deep_trees_ensembles_and_dcd_fit_one_c_after_the_other(monkeypatch, settings):
    X, Y = _data(60, 8, 6, seed=5)

    def refused(self, *args):
        raise AssertionError("the one-solve path was taken")

    monkeypatch.setattr(LabelTreeModel, "_fit_flat_Cs", refused)
    models = list(fit_C_path(X, Y, LabelTreeParams(**settings), CS[:2]))
    assert [m.params.C for m in models] == list(CS[:2])


def test_the_flat_newton_tree_takes_the_one_solve_path():
    X, Y = _data(60, 8, 6, seed=5)
    model = LabelTreeModel(LabelTreeParams(solver="newton"))
    model._build_trees(X, Y)
    assert model.trees_[0].depth == 1 and model._solves_Cs_at_once()
