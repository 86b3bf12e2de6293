"""A branch of its own for the most frequent labels (``build_tree(separate=...)``, ``frequent_labels``,
``LabelTreeParams.frequent_share``): the shape against the tree of the other labels alone, the frequent labels
against a brute-force count, bad arguments, and the model's fit, search and files with the branch."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsexc.errors import ConfigurationError
from sparsexc.tree import LabelTreeModel, LabelTreeParams, build_tree, frequent_labels, level_arities


def _random_repr(n_labels: int, dim: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_labels, dim)) * (rng.random((n_labels, dim)) < 0.4)).astype(np.float32))


def _leaves(tree) -> list[list[int]]:
    """The label ids of every leaf cluster, in leaf order."""
    last = tree.offsets[-1]
    return [sorted(tree.label_order[last[j] : last[j + 1]].tolist()) for j in range(last.shape[0] - 1)]


@settings(max_examples=50, deadline=None)
@given(
    n_labels=st.integers(2, 200),
    n_own=st.integers(1, 12),
    branching=st.integers(2, 6),
    max_leaf_size=st.integers(12, 30),
    seed=st.integers(0, 2**31),
)
def test_the_separated_labels_form_one_leaf_on_a_chain_and_the_others_cluster_as_alone(
    n_labels, n_own, branching, max_leaf_size, seed
):
    n_own = min(n_own, n_labels - 1)
    R = _random_repr(n_labels, 7, seed)
    own = np.sort(np.random.default_rng(seed).choice(n_labels, n_own, replace=False))
    rest = np.setdiff1d(np.arange(n_labels), own)
    tree = build_tree(R, branching=branching, max_leaf_size=max_leaf_size, seed=seed, separate=own)
    tree.validate()
    alone = build_tree(R[rest], branching=branching, max_leaf_size=max_leaf_size, seed=seed)
    if not level_arities(rest.size, branching, max_leaf_size):  # the others fit one leaf: no branch
        assert tree.depth == build_tree(R, branching=branching, max_leaf_size=max_leaf_size, seed=seed).depth
        return
    assert tree.depth == alone.depth
    # the others' leaves are the tree of the others alone, in its order, and the separated labels one leaf after them
    assert _leaves(tree) == [sorted(rest[leaf].tolist()) for leaf in _leaves(alone)] + [own.tolist()]
    # the branch: the last node of every level, the root's last child, then each the only child of the one above
    # it, down to its leaf of the separated labels
    for t in range(tree.depth):
        fan = np.diff(tree.offsets[t])
        below = np.diff(alone.offsets[t])
        if t == 0:
            assert fan.tolist() == [below[0] + 1]
        else:
            assert fan[:-1].tolist() == below.tolist() and fan[-1] == (own.size if t == tree.depth - 1 else 1)
    assert np.all(tree.ancestors(tree.depth - 1)[own] == tree.n_nodes(tree.depth - 1) - 1)


def test_no_or_an_empty_separate_gives_the_tree_without_a_branch():
    R = _random_repr(90, 6, 3)
    plain = build_tree(R, branching=3, max_leaf_size=10, seed=5)
    for separate in (None, [], np.empty(0, dtype=np.int64)):
        tree = build_tree(R, branching=3, max_leaf_size=10, seed=5, separate=separate)
        assert all(np.array_equal(a, b) for a, b in zip(tree.offsets, plain.offsets, strict=True))
        assert np.array_equal(tree.label_order, plain.label_order)


@pytest.mark.parametrize(
    ("separate", "match"),
    [([0, 0], "distinct"), ([-1], "outside"), ([90], "outside"), (list(range(11)), "at most"), ([0.5], "label ids")],
)
def test_bad_separate(separate, match):
    with pytest.raises(ConfigurationError, match=match):
        build_tree(_random_repr(90, 6, 3), branching=3, max_leaf_size=10, separate=separate)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    C=st.integers(1, 25),
    share=st.sampled_from([0.0, 0.05, 0.2, 0.5, 1.0]),
    max_count=st.integers(0, 6),
    seed=st.integers(0, 2**31),
)
def test_frequent_labels_are_the_most_frequent_above_the_share(n, C, share, max_count, seed):
    Y = (np.random.default_rng(seed).random((n, C)) < 0.3).astype(np.float32)
    counts = Y.sum(0)
    found = frequent_labels(sp.csr_matrix(Y), share, max_count)
    above = [j for j in range(C) if share > 0 and counts[j] >= share * n]
    expected = sorted(sorted(above, key=lambda j: (-counts[j], j))[:max_count])
    assert found.dtype == np.int64 and found.tolist() == expected


def test_frequent_labels_bad_arguments():
    Y = sp.csr_matrix(np.eye(4, dtype=np.float32))
    with pytest.raises(ConfigurationError, match="share"):
        frequent_labels(Y, 1.5, 3)
    with pytest.raises(ConfigurationError, match="max_count"):
        frequent_labels(Y, 0.1, -1)
    with pytest.raises(ConfigurationError, match="frequent_share"):
        LabelTreeParams(frequent_share=-0.1)


def _data(seed: int = 0, n: int = 300, C: int = 70):
    """Rows whose first label is positive on every row and whose second on about 60% of them."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, 30, density=0.2, random_state=seed, format="csr", dtype=np.float32)
    Y = (rng.random((n, C)) < 0.04).astype(np.float32)
    Y[:, 0] = 1
    Y[:, 1] = rng.random(n) < 0.6
    return X, sp.csr_matrix(Y)


def test_the_model_puts_the_frequent_labels_on_their_branch_and_saves_it(tmp_path):
    X, Y = _data()
    params = LabelTreeParams(frequent_share=0.5, max_leaf_size=8, branching=3, C=1.0, n_trees=2)
    model = LabelTreeModel(params).fit(X, Y)
    for tree in model.trees_:
        leaves = _leaves(tree)
        assert leaves[-1] == [0, 1] and all(0 not in leaf and 1 not in leaf for leaf in leaves[:-1])
    # the branch's nodes below the root have one child each: positive wherever their parent is, so certain
    for t in range(1, model.trees_[0].depth - 1):
        W = model.weights_[0][t]
        last = W[W.shape[0] - 1 :].toarray().ravel()
        assert np.count_nonzero(last[:-1]) == 0 and last[-1] > 0  # a bias weight alone: the certain margin
    model.save(tmp_path / "m")
    loaded = LabelTreeModel.load(tmp_path / "m")
    assert loaded.params.frequent_share == 0.5
    a, b = model.predict_topk(X, k=5), loaded.predict_topk(X, k=5)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # without the setting (share 0, the files before it existed) the frequent labels stay in the clustering
    saved = LabelTreeParams().to_dict()
    del saved["frequent_share"]
    assert LabelTreeParams.from_saved(saved).frequent_share == 0.0
    plain = LabelTreeModel(params.replace(frequent_share=0.0)).fit(X, Y)
    assert _leaves(plain.trees_[0])[-1] != [0, 1]


def test_a_frequent_label_no_longer_makes_every_row_a_training_row_of_its_leaf_mates():
    """The rows a leaf's rankers train on: every row with a positive label in the leaf (teacher forcing)."""
    X, Y = _data(1)
    rows = {}
    for share in (0.0, 0.5):
        model = LabelTreeModel(LabelTreeParams(frequent_share=share, max_leaf_size=8, branching=3, C=1.0)).fit(X, Y)
        tree = model.trees_[0]
        reach = (Y @ tree.membership(tree.depth - 1)).toarray() > 0
        sizes = np.diff(tree.offsets[-1])
        rows[share] = int((reach.sum(0) * sizes).sum())  # (row, ranker) pairs trained on
    assert rows[0.5] < 0.8 * rows[0.0]  # 0.68x here
