"""The cross-validation of C stops its C path once the held-out score has fallen at ``patience`` consecutive Cs:
on data where it falls (features unrelated to the labels: a larger C fits the noise), the scores are the full
path's prefix that the rule gives, by brute force, and the folds fit only that many models."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import sparsexc.tree.model as tree_model
from sparsexc.tree import LabelTreeParams
from sparsexc.tree.model import CV_FOLDS, cross_validate_C


def _noise(n: int, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Gaussian features (30) unrelated to the labels; label 0 in 90% of the rows, labels 1-9 in 30%."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 30)).astype(np.float32)
    Y = (rng.random((n, 10)) < np.array([0.9] + [0.3] * 9)).astype(np.float32)
    return sp.csr_matrix(X), sp.csr_matrix(Y)


def _prefix(full: dict[float, float], patience: int) -> dict[float, float]:
    """The Cs the rule tries, by brute force: up to the first C ending ``patience`` strict falls in a row."""
    Cs = list(full)
    for j in range(patience, len(Cs)):
        if all(full[Cs[i]] < full[Cs[i - 1]] for i in range(j - patience + 1, j + 1)):
            return {C: full[C] for C in Cs[: j + 1]}
    return dict(full)


@pytest.mark.parametrize("solver", ["auto", "newton"])
def test_the_c_path_stops_once_the_score_has_fallen_patience_times(monkeypatch, solver):
    X, Y = _noise(150, 3)
    params = LabelTreeParams(branching=2, max_leaf_size=4, seed=1, solver=solver)
    full = cross_validate_C(X, Y, params, patience=0)
    values = list(full.values())
    assert len(full) == 5 and values[-1] < values[-2] < values[-3]  # the score falls: the case the stop is for
    fitted = []
    path = tree_model.fit_C_path

    def counted(*args, **kwargs):
        for model in path(*args, **kwargs):
            fitted.append(model.params.C)
            yield model

    monkeypatch.setattr(tree_model, "fit_C_path", counted)
    for patience in (1, 2):
        fitted.clear()
        stopped = cross_validate_C(X, Y, params, patience=patience)
        assert stopped == _prefix(full, patience) and len(stopped) < len(full)
        assert sorted(fitted) == sorted(list(stopped) * CV_FOLDS)  # no fit beyond the stop


def test_a_rising_score_runs_the_whole_path():
    assert _prefix({0.1: 0.1, 0.3: 0.2, 1.0: 0.3}, 1) == {0.1: 0.1, 0.3: 0.2, 1.0: 0.3}
    assert _prefix({0.1: 0.3, 0.3: 0.2, 1.0: 0.3, 3.0: 0.1}, 2) == {0.1: 0.3, 0.3: 0.2, 1.0: 0.3, 3.0: 0.1}
