"""``imbalance``: how far a split of the label clustering may leave balance (Bonsai's unbalanced clusters).

0 is the balanced tree, bit for bit; b > 0 puts each label on the side of its nearer centroid within a fraction b
of the room between the balanced count and the most uneven cut that leaves every part a label."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsexc.errors import ConfigurationError
from sparsexc.tree import LabelTree, LabelTreeModel, LabelTreeParams, build_tree, level_arities


def _random_repr(n_labels: int, dim: int, density: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix(rng.random((n_labels, dim)) * (rng.random((n_labels, dim)) < density))


def _labels_under(tree: LabelTree, level: int) -> np.ndarray:
    return np.bincount(tree.ancestors(level), minlength=tree.n_nodes(level))


@settings(max_examples=60, deadline=None)
@given(
    n_labels=st.integers(1, 200),
    dim=st.integers(1, 20),
    density=st.floats(0.05, 0.6),
    branching=st.integers(2, 6),
    max_leaf_size=st.integers(1, 30),
    imbalance=st.floats(0.0, 1.0),
    seed=st.integers(0, 1000),
)
def test_any_imbalance_gives_a_tree_of_uniform_depth_with_the_levels_arities(
    n_labels, dim, density, branching, max_leaf_size, imbalance, seed
):
    R = _random_repr(n_labels, dim, density, seed)
    tree = build_tree(R, branching=branching, max_leaf_size=max_leaf_size, seed=seed, imbalance=imbalance)
    arities = level_arities(n_labels, branching, max_leaf_size)
    tree.validate()
    assert tree.depth == len(arities) + 1
    assert np.array_equal(np.sort(tree.label_order), np.arange(n_labels))
    for t in range(tree.depth - 1):
        under = _labels_under(tree, t + 1)
        for p in range(tree.n_nodes(t)):
            sizes = under[tree.children(t, p)]
            assert sizes.min() >= 1  # no empty node
            assert sizes.size == min(arities[t], sizes.sum())  # the level's arity unless fewer labels


@settings(max_examples=40, deadline=None)
@given(n_labels=st.integers(3, 150), dim=st.integers(2, 20), imbalance=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_every_bisection_keeps_side_zero_within_its_bounds(n_labels, dim, imbalance, seed):
    # branching 2: every split is one bisection of n labels into (l, n - l), balanced count t = n // 2
    R = _random_repr(n_labels, dim, 0.4, seed)
    tree = build_tree(R, branching=2, max_leaf_size=1, seed=seed, imbalance=imbalance)
    for t in range(tree.depth - 1):
        under = _labels_under(tree, t + 1)
        for p in range(tree.n_nodes(t)):
            sizes = under[tree.children(t, p)]
            if sizes.size < 2:
                continue
            n, half = int(sizes.sum()), int(sizes.sum()) // 2
            lo = half - int(np.floor(imbalance * (half - 1)))
            hi = half + int(np.floor(imbalance * (n - 1 - half)))
            assert lo <= sizes[0] <= hi


def test_zero_imbalance_is_the_balanced_tree():
    R = _random_repr(300, 30, 0.2, 7)
    for seed in range(3):
        a = build_tree(R, branching=4, max_leaf_size=10, seed=seed)
        b = build_tree(R, branching=4, max_leaf_size=10, seed=seed, imbalance=0.0)
        assert all(np.array_equal(x, y) for x, y in zip(a.offsets, b.offsets, strict=True))
        assert np.array_equal(a.label_order, b.label_order)


def _planted(sizes: tuple[int, ...], seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Groups of labels on disjoint feature blocks (noise within a block): each group is its own 2-means cluster."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(len(sizes)), sizes)
    R = np.zeros((group.size, 10 * len(sizes)))
    for g in range(len(sizes)):
        rows = group == g
        R[np.ix_(rows, np.arange(10 * g, 10 * g + 10))] = 1 + rng.random((int(rows.sum()), 10))
    perm = rng.permutation(group.size)
    return sp.csr_matrix(R[perm]), group[perm]


@pytest.mark.parametrize("seed", range(5))
def test_unbalanced_groups_are_found_only_when_imbalance_allows_them(seed):
    R, group = _planted((30, 70), seed)
    # 100 labels, at most 70 per leaf: one split of the root into two leaf clusters
    free = build_tree(R, branching=2, max_leaf_size=70, seed=seed, imbalance=1.0)
    leaf_of = free.ancestors(1)
    assert sorted(np.bincount(leaf_of)) == [30, 70]
    assert all(np.unique(leaf_of[group == g]).size == 1 for g in (0, 1))  # each group in one leaf cluster
    balanced = build_tree(R, branching=2, max_leaf_size=70, seed=seed)
    assert sorted(np.bincount(balanced.ancestors(1))) == [50, 50]


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_bad_imbalance(value):
    with pytest.raises(ConfigurationError, match="imbalance"):
        build_tree(np.eye(4), imbalance=value)


def test_the_model_setting_is_checked_fitted_and_saved(tmp_path):
    with pytest.raises(ConfigurationError, match="imbalance"):
        LabelTreeParams(imbalance=2.0)
    rng = np.random.default_rng(0)
    X = sp.random(200, 40, density=0.2, random_state=1, format="csr", dtype=np.float32)
    Y = sp.csr_matrix((rng.random((200, 60)) < 0.05).astype(np.float32))
    params = LabelTreeParams(imbalance=1.0, max_leaf_size=8, branching=3, C=1.0)
    model = LabelTreeModel(params).fit(X, Y)
    leaves = np.diff(model.trees_[0].offsets[-1])
    assert leaves.sum() == 60
    model.save(tmp_path / "m")
    loaded = LabelTreeModel.load(tmp_path / "m")
    assert loaded.params.imbalance == 1.0
    a, b = model.predict_topk(X, k=5), loaded.predict_topk(X, k=5)
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1])
    # a model saved before the setting existed clusters balanced
    saved = LabelTreeParams().to_dict()
    del saved["imbalance"]
    assert LabelTreeParams.from_saved(saved).imbalance == 0.0
