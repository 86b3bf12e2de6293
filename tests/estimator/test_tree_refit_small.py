"""Small data: a tree that chose C by cross-validation on the rows left after the validation hold-out is trained
again on all rows (the hold-out only tunes the set threshold); anything else trains once."""

from __future__ import annotations

import pytest

import sparsexc.estimator._families as families
from sparsexc.estimator import XCClassifier


@pytest.fixture
def fits(monkeypatch):
    """The (rows, C asked) of every tree the tree family fits."""
    calls: list[tuple[int, float | None]] = []
    real = families._fit_tree

    def spy(params, X, Y):
        calls.append((X.shape[0], params.C))
        return real(params, X, Y)

    monkeypatch.setattr(families, "_fit_tree", spy)
    return calls


def test_default_refits_on_all_rows_with_the_chosen_c(data, fits):
    X, Y = data
    clf = XCClassifier(validation_fraction=0.1).fit(X, Y)
    tree = clf.model_.tree
    assert fits == [(270, None), (300, tree.params.C)]  # 30 rows held out, then all 300 with the C chosen
    assert tree.params.C in tree.cv_scores_ and tree.cv_scores_[tree.params.C] == max(tree.cv_scores_.values())
    assert "refit on all 300 rows" in clf.fit_summary_["message"]
    # the threshold tuned on the hold-out is kept (a grid value or the default), and predictions work
    assert 0 < clf.model_.threshold < 1
    assert clf.predict(X).shape == Y.shape


@pytest.mark.parametrize(
    ("settings", "rows"),
    [
        ({"tree_params": {"C": 1.0}}, 270),  # C given: no cross-validation, the hold-out stays out as before
        ({"tree_params": {"cv_max_rows": 100}}, 270),  # too many rows to cross-validate
        ({"validation_fraction": 0.0}, 300),  # no hold-out: one fit on all rows
    ],
)
def test_no_refit_without_a_cross_validated_c_and_a_hold_out(data, fits, settings, rows):
    X, Y = data
    clf = XCClassifier(**{"validation_fraction": 0.1, **settings}).fit(X, Y)
    assert [n for n, _ in fits] == [rows]
    assert "refit" not in clf.fit_summary_["message"]


def test_given_validation_rows_are_not_trained_on(data, fits):
    X, Y = data
    XCClassifier().fit(X[:250], Y[:250], X_val=X[250:], Y_val=Y[250:])
    assert [n for n, _ in fits] == [250]
