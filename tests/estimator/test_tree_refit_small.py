"""Small data: where the tree chooses C by cross-validation (on the rows the validation hold-out leaves), the set
threshold is tuned on the folds' out-of-fold rankings of those rows and the tree is fitted once, on all rows (the
hold-out's too) with the C chosen. Large data (more than ``cv_max_rows`` rows the hold-out left): one fit on all
rows, the threshold tuned on that model's rankings of the hold-out rows. Small data with C given trains on the rows
the hold-out leaves and tunes on the hold-out; given validation rows are never trained on."""

from __future__ import annotations

import numpy as np
import pytest

import sparsexc.estimator._families as families
import sparsexc.heads.tuning as tuning
from sparsexc.estimator import XCClassifier
from sparsexc.estimator._families import TREE_CANDIDATES
from sparsexc.tree import LabelTreeModel, choose_C


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


@pytest.fixture
def tuned_on(monkeypatch):
    """What the tree family passes to tune_candidates (filled by the fit), and the real function."""
    seen: dict = {}
    real = tuning.tune_candidates

    def spy(idx, scores, Y_tuned, grid, metric):
        # the first call tunes the threshold; the second the sparsemax rule's scale, on the same rankings' margins
        seen.setdefault("calls", []).append((idx, scores, list(grid)))
        if "idx" not in seen:
            seen.update(idx=idx, scores=scores, Y=Y_tuned, grid=list(grid), metric=metric)
        return real(idx, scores, Y_tuned, grid, metric)

    monkeypatch.setattr(families, "tune_candidates", spy)  # the name the tree family calls
    return seen, real


def _check_rule(clf, seen, real, idx, scores, Y_rows):
    """The threshold is tune_candidates' best on the rankings (idx, scores) of rows with labels ``Y_rows``, the
    sparsemax rule's scale its best on their margins; the model has the rule of the higher score (the threshold's
    on a tie), and its score is recorded."""
    best, value = real(idx, scores, Y_rows, seen["grid"], clf.tune_metric)
    assert clf.model_.threshold == best
    ranked, margins = families.sparsemax_margins(idx, scores)
    assert len(seen["calls"]) == 2
    np.testing.assert_array_equal(seen["calls"][1][0], ranked)
    np.testing.assert_array_equal(seen["calls"][1][1], margins)
    bound, sparse_value = real(ranked, margins, Y_rows, seen["calls"][1][2], clf.tune_metric)
    if sparse_value > value:
        assert clf.model_.scale == families.SPARSEMAX_SCALES[seen["calls"][1][2].index(bound)]
        assert clf.tuned_[clf.tune_metric] == pytest.approx(sparse_value)
    else:
        assert clf.model_.scale is None and clf.tuned_[clf.tune_metric] == pytest.approx(value)


def test_default_fits_once_on_all_rows_and_tunes_on_out_of_fold_rankings(data, fits):
    X, Y = data
    clf = XCClassifier(model="tree", validation_fraction=0.1).fit(X, Y)
    tree = clf.model_.tree
    assert fits == [(300, tree.params.C)]  # one fit: all 300 rows, with the C chosen on the 270 the hold-out left
    assert tree.params.C in tree.cv_scores_ and tree.cv_scores_[tree.params.C] == max(tree.cv_scores_.values())
    assert "cross-validation on 270 rows" in clf.fit_summary_["message"]
    assert "trained on all 300 rows" in clf.fit_summary_["message"]
    assert 0 < clf.model_.threshold < 1
    assert clf.predict(X).shape == Y.shape


def test_the_threshold_is_tuned_on_every_rows_out_of_fold_ranking(data, tuned_on):
    """The threshold and its score are what tune_candidates finds on the out-of-fold rankings, at the C chosen, of
    the 270 rows the hold-out left; the model is the fit on those rows followed by the held-out ones, with that C."""
    X, Y = data
    seen, real = tuned_on
    clf = XCClassifier(model="tree", validation_fraction=0.1, preprocess="none").fit(X, Y)
    order = np.random.default_rng(0).permutation(300)  # the estimator's hold-out (random_state 0)
    kept, held = np.sort(order[30:]), np.sort(order[:30])
    tree = clf.model_.tree
    found = choose_C(X[kept], Y[kept], tree.params.replace(C=None), topk=TREE_CANDIDATES)
    assert found.C == tree.params.C and found.topk[0].shape == (270, 8)  # 8 labels: all of them
    np.testing.assert_array_equal(seen["idx"], found.topk[0])
    np.testing.assert_array_equal(seen["scores"], found.topk[1])
    assert (seen["Y"] != Y[kept]).nnz == 0 and seen["metric"] == clf.tune_metric
    _check_rule(clf, seen, real, *found.topk, Y[kept])
    rows = np.concatenate([kept, held])
    again = LabelTreeModel(tree.params).fit(X[rows], Y[rows])
    for a, b in zip(tree.weights_[0], again.weights_[0], strict=True):
        assert (a != b).nnz == 0


@pytest.mark.parametrize(
    ("settings", "rows"),
    [
        ({"tree_params": {"C": 1.0}}, 270),  # C given: no cross-validation, the hold-out stays out as before
        ({"validation_fraction": 0.0}, 300),  # no hold-out: one fit on all rows
    ],
)
def test_no_refit_without_a_cross_validated_c_and_a_hold_out(data, fits, settings, rows):
    X, Y = data
    clf = XCClassifier(**{"model": "tree", "validation_fraction": 0.1, **settings}).fit(X, Y)
    assert [n for n, _ in fits] == [rows]
    assert "cross-validation" not in clf.fit_summary_["message"]


def test_given_validation_rows_are_not_trained_on(data, fits):
    X, Y = data
    XCClassifier(model="tree").fit(X[:250], Y[:250], X_val=X[250:], Y_val=Y[250:])
    assert [n for n, _ in fits] == [250]


def test_large_data_fits_once_on_all_rows_and_tunes_on_the_hold_out_in_sample(data, fits, tuned_on):
    """Above cv_max_rows rows (here 100, so the 270 the hold-out leaves are large data): one fit on all 300 rows,
    the rows the hold-out left followed by the held-out ones, and the threshold is what tune_candidates finds on
    that model's candidates of the 30 held-out rows."""
    X, Y = data
    seen, real = tuned_on
    clf = XCClassifier(validation_fraction=0.1, preprocess="none", tree_params={"cv_max_rows": 100}).fit(X, Y)
    tree = clf.model_.tree
    assert [n for n, _ in fits] == [300] and tree.params.C == 1.0  # not cross-validated: the loss's C
    message = clf.fit_summary_["message"]
    assert "trained on all 300 rows, the set threshold tuned on its rankings of the 30 hold-out rows" in message
    order = np.random.default_rng(0).permutation(300)  # the estimator's hold-out (random_state 0)
    kept, held = np.sort(order[30:]), np.sort(order[:30])
    again = LabelTreeModel(tree.params).fit(X[np.concatenate([kept, held])], Y[np.concatenate([kept, held])])
    for a, b in zip(tree.weights_[0], again.weights_[0], strict=True):
        assert (a != b).nnz == 0
    idx, scores = clf.model_.candidates(X[held], 10)
    np.testing.assert_array_equal(seen["idx"], idx)
    np.testing.assert_array_equal(seen["scores"], scores)
    assert (seen["Y"] != Y[held]).nnz == 0
    _check_rule(clf, seen, real, idx, scores, Y[held])
