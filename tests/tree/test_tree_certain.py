"""Certain nodes: a child positive on every row its parent reaches gets the constant margin CERTAIN_MARGIN.

The regularised fit of a constant target stops short of margin 1, so a label in every row scored just below 1
with the squared hinge and lost to confident wrong labels at exactly 1 (wordnet-hypernyms, docs/tree.md).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc.tree import LabelTreeModel, LabelTreeParams
from sparsexc.tree.model import CERTAIN_MARGIN


def _with_an_everywhere_label(n: int = 300, d: int = 40, C: int = 30, seed: int = 0):
    """Label 7 in every row, plus one or two labels each row's features predict."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.15, random_state=seed, format="csr", dtype=np.float32)
    S = X @ rng.normal(size=(d, C))
    Y = np.zeros((n, C), dtype=np.float32)
    np.put_along_axis(Y, np.argsort(-S, axis=1)[:, :2], 1.0, axis=1)
    Y[:, 7] = 1.0
    return X, sp.csr_matrix(Y)


def _rows_of_label(model: LabelTreeModel, label: int) -> list[sp.csr_matrix]:
    """The weight row of every node on the label's path (one per level, root excluded)."""
    tree = model.trees_[0]
    position = int(np.flatnonzero(tree.label_order == label)[0])
    rows, node = [], position
    for t in range(tree.depth, 0, -1):
        rows.append(model.weights_[0][t - 1][node])
        node = int(tree.parents(t)[node])
    return rows


@pytest.mark.parametrize("loss", ["squared_hinge", "logistic"])
def test_a_label_in_every_row_is_certain_and_ranked_first(loss):
    X, Y = _with_an_everywhere_label()
    model = LabelTreeModel(LabelTreeParams(branching=4, max_leaf_size=5, loss=loss, C=1.0, bias=2.0)).fit(X, Y)
    assert model.trees_[0].depth >= 2
    for row in _rows_of_label(model, 7):  # every node on its path: the bias weight alone, margin CERTAIN_MARGIN
        assert row.nnz == 1 and row.indices[0] == X.shape[1]
        assert row.data[0] * 2.0 == pytest.approx(CERTAIN_MARGIN)
    idx, scores = model.predict_topk(X, k=3)
    assert np.all(idx[:, 0] == 7)
    if loss == "squared_hinge":
        assert np.all(scores[:, 0] == 1.0)


def test_without_a_bias_feature_the_constant_is_trained():
    X, Y = _with_an_everywhere_label()
    model = LabelTreeModel(LabelTreeParams(branching=4, max_leaf_size=5, C=1.0, bias=0.0)).fit(X, Y)
    # no bias column to carry the constant: the label's ranker is fitted on the features
    assert _rows_of_label(model, 7)[0].nnz > 1


def test_other_children_are_trained_as_before():
    # the certain child changes nothing for its siblings: their weights equal those of a fit without it
    X, Y = _with_an_everywhere_label()
    params = LabelTreeParams(branching=30, max_leaf_size=30, C=1.0)  # one leaf: every label a child of the root
    with_it = LabelTreeModel(params).fit(X, Y).weights_[0][0]
    others = np.delete(np.arange(Y.shape[1]), 7)
    without = LabelTreeModel(params).fit(X, Y[:, others]).weights_[0][0]
    order_with = LabelTreeModel(params).fit(X, Y).trees_[0].label_order
    order_without = LabelTreeModel(params).fit(X, Y[:, others]).trees_[0].label_order
    got = {int(lab): with_it[i].toarray() for i, lab in enumerate(order_with) if lab != 7}
    want = {int(others[lab]): without[i].toarray() for i, lab in enumerate(order_without)}
    for lab in got:
        np.testing.assert_allclose(got[lab], want[lab], rtol=1e-5, atol=1e-6)
