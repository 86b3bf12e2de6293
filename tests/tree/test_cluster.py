"""Label trees from balanced hierarchical clustering (issue 19): the shape's properties over random sizes, the
2-means fixed point against a brute-force recomputation, planted clusters, seeds, zero rows, PIFA against a
dense computation, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sparsexc.errors import ConfigurationError
from sparsexc.tree import LabelTree, build_tree, level_arities, pifa


def _random_repr(n_labels: int, dim: int, density: float, seed: int, zero_rows: float = 0.0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.random((n_labels, dim)) * (rng.random((n_labels, dim)) < density)
    dense[rng.random(n_labels) < zero_rows] = 0.0
    return sp.csr_matrix(dense.astype(np.float32))


def _labels_under(tree: LabelTree, level: int) -> np.ndarray:
    """Number of labels under every node of ``level``."""
    return np.bincount(tree.ancestors(level), minlength=tree.n_nodes(level))


def _check_shape(tree: LabelTree, n_labels: int, branching: int, max_leaf_size: int) -> None:
    arities = level_arities(n_labels, branching, max_leaf_size)
    D = tree.depth
    assert tree.depth == len(arities) + 1
    assert tree.n_labels == n_labels
    assert np.array_equal(np.sort(tree.label_order), np.arange(n_labels))  # a permutation
    tree.validate()
    for t in range(D):
        fan = np.diff(tree.offsets[t])
        assert fan.min() >= 1  # no empty node: every path runs down to the labels, so the depth is uniform
        if t < D - 1:
            assert fan.max() <= arities[t]
            under = _labels_under(tree, t + 1)
            for p in range(tree.n_nodes(t)):
                sizes = under[tree.children(t, p)]
                assert sizes.max() - sizes.min() <= 1  # balanced siblings
                # the level's arity unless the node has fewer labels than that
                assert sizes.size == min(arities[t], sizes.sum())
    # every label lies under exactly one leaf cluster, which holds at most max_leaf_size labels
    leaves = np.diff(tree.offsets[D - 1])
    assert leaves.sum() == n_labels and leaves.max() <= max_leaf_size


# -- the shape ------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    n_labels=st.integers(1, 260),
    dim=st.integers(1, 25),
    density=st.floats(0.0, 0.6),
    zero_rows=st.sampled_from([0.0, 0.3]),
    branching=st.integers(2, 7),
    max_leaf_size=st.integers(1, 40),
    seed=st.integers(0, 2**31),
)
def test_tree_shape_properties(n_labels, dim, density, zero_rows, branching, max_leaf_size, seed):
    R = _random_repr(n_labels, dim, density, seed, zero_rows)
    tree = build_tree(R, branching=branching, max_leaf_size=max_leaf_size, seed=seed % 1000)
    _check_shape(tree, n_labels, branching, max_leaf_size)


@settings(max_examples=200, deadline=None)
@given(n_labels=st.integers(1, 10**7), branching=st.integers(2, 40), max_leaf_size=st.integers(1, 500))
def test_level_arities_are_the_least_that_suffice(n_labels, branching, max_leaf_size):
    arities = level_arities(n_labels, branching, max_leaf_size)
    needed = -(-n_labels // max_leaf_size)
    if needed == 1:
        assert arities == ()
        return
    assert all(a == branching for a in arities[1:])
    assert 2 <= arities[0] <= branching
    assert int(np.prod(arities, dtype=object)) >= needed  # leaves small enough ...
    assert branching ** (len(arities) - 1) < needed  # ... with no level to spare
    assert (arities[0] - 1) * branching ** (len(arities) - 1) < needed  # ... and the fewest root children


def test_level_arities_examples():
    assert level_arities(100, 16, 100) == ()
    assert level_arities(1000, 16, 100) == (10,)
    assert level_arities(5000, 16, 100) == (4, 16)
    assert level_arities(19000, 16, 100) == (12, 16)
    assert level_arities(1_000_000, 16, 100) == (3, 16, 16, 16)
    assert level_arities(8, 2, 1) == (2, 2, 2)


def test_flat_tree_when_labels_fit_one_leaf():
    R = _random_repr(30, 10, 0.5, 0)
    tree = build_tree(R, max_leaf_size=30)
    assert tree.depth == 1
    assert np.array_equal(tree.offsets[0], [0, 30]) and np.array_equal(tree.label_order, np.arange(30))
    assert build_tree(np.ones((1, 3))).depth == 1


def test_leaf_clusters_list_their_labels_in_id_order():
    tree = build_tree(_random_repr(200, 20, 0.3, 1), branching=4, max_leaf_size=10)
    last = tree.depth - 1
    for leaf in range(tree.n_nodes(last)):
        ids = tree.label_order[list(tree.children(last, leaf))]
        assert np.all(np.diff(ids) > 0)


# -- the 2-means itself ------------------------------------------------------------------------------------
def _unit(rows: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(rows, axis=-1, keepdims=True)
    return np.divide(rows, n, out=np.zeros_like(rows), where=n > 0)


@pytest.mark.parametrize(("n_labels", "max_leaf_size"), [(61, 31), (250, 16)])
@pytest.mark.parametrize("seed", range(3))
def test_every_bisection_reaches_a_balanced_2means_fixed_point(n_labels, max_leaf_size, seed):
    """Binary trees run to convergence: at every node, with the centroids of its two children, every label of
    child 0 prefers c0 at least as much (cos(v,c0) - cos(v,c1)) as every label of child 1, i.e. the median rule
    would move none. All nodes of a level are split together, so this checks the vectorised bookkeeping too."""
    R = _random_repr(n_labels, 12, 0.4, seed).toarray().astype(np.float64)
    tree = build_tree(R, branching=2, max_leaf_size=max_leaf_size, seed=seed, max_iter=500, tol=0.0)
    V = _unit(R)
    for level in range(tree.depth - 1):
        parent, child = tree.ancestors(level), tree.ancestors(level + 1)
        for p in range(tree.n_nodes(level)):
            kids = list(tree.children(level, p))
            assert len(kids) == 2
            side = child[parent == p] == kids[1]
            members = V[parent == p]
            assert abs(int(side.sum()) * 2 - side.size) <= 1
            c0, c1 = _unit(members[~side].sum(0)), _unit(members[side].sum(0))
            margin = members @ c0 - members @ c1
            assert margin[~side].min() >= margin[side].max() - 1e-9


def _objective(V: np.ndarray, side: np.ndarray) -> float:
    return float(sum(np.linalg.norm(V[side == s].sum(0)) for s in np.unique(side)))


def test_bisection_beats_random_balanced_splits():
    R = _random_repr(80, 15, 0.3, 7).toarray().astype(np.float64)
    side = build_tree(R, branching=2, max_leaf_size=40, seed=3).ancestors(1)
    V = _unit(R)
    rng = np.random.default_rng(0)
    random_best = max(_objective(V, rng.permutation(80) < 40) for _ in range(200))
    assert _objective(V, side) > random_best


def _planted(groups: int, per_group: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels of ``groups`` groups; each group's labels share a block of 20 features, plus weak shared noise."""
    rng = np.random.default_rng(seed)
    C = groups * per_group
    R = np.zeros((C, groups * 20 + 100))
    for g in range(groups):
        R[g * per_group : (g + 1) * per_group, g * 20 : (g + 1) * 20] = rng.random((per_group, 20))
    R[:, groups * 20 :] = 0.3 * rng.random((C, 100)) * (rng.random((C, 100)) < 0.1)
    return R, np.repeat(np.arange(groups), per_group)


@pytest.mark.parametrize(("branching", "max_leaf_size", "level"), [(8, 50, 1), (2, 50, 3), (4, 25, 2), (16, 10, 2)])
@pytest.mark.parametrize("seed", range(3))
def test_planted_groups_end_in_distinct_subtrees(branching, max_leaf_size, level, seed):
    R, group = _planted(8, 50, seed)
    if branching == 16:  # 50 labels per group cannot fill nodes of 8-9 labels evenly: use 48
        R, group = _planted(8, 48, seed)
    tree = build_tree(sp.csr_matrix(R), branching=branching, max_leaf_size=max_leaf_size, seed=seed)
    node = tree.ancestors(level)
    for v in np.unique(node):
        assert np.unique(group[node == v]).size == 1  # every node of that level lies inside one group
    # and every group owns whole subtrees: the 8 groups' node sets are disjoint and cover the level
    owners = {int(v): int(group[node == v][0]) for v in np.unique(node)}
    assert sorted(set(owners.values())) == list(range(8))


def test_planted_groups_share_no_leaf_at_depth():
    R, group = _planted(8, 48, 0)
    tree = build_tree(R, branching=16, max_leaf_size=8, seed=0)  # arities (6, 16): 96 leaves of 4
    leaf = tree.ancestors(tree.depth - 1)
    assert all(np.unique(group[leaf == v]).size == 1 for v in np.unique(leaf))


# -- seeds, inputs, zero rows -------------------------------------------------------------------------------
def _same(a: LabelTree, b: LabelTree) -> bool:
    return (
        a.depth == b.depth
        and all(np.array_equal(x, y) for x, y in zip(a.offsets, b.offsets))
        and (np.array_equal(a.label_order, b.label_order))
    )


def test_same_seed_same_tree_other_seed_other_tree():
    R = _random_repr(500, 40, 0.1, 3)
    a = build_tree(R, branching=4, max_leaf_size=20, seed=5)
    assert _same(a, build_tree(R, branching=4, max_leaf_size=20, seed=5))
    others = [build_tree(R, branching=4, max_leaf_size=20, seed=s) for s in (6, 7)]
    assert not any(_same(a, o) for o in others)


def test_dense_and_sparse_inputs_give_the_same_tree():
    R = _random_repr(300, 30, 0.2, 4)
    assert _same(build_tree(R, branching=3, max_leaf_size=20), build_tree(R.toarray(), branching=3, max_leaf_size=20))
    # rows are normalised inside: scaling a row changes nothing
    scales = np.random.default_rng(0).uniform(0.1, 10.0, 300)
    assert _same(
        build_tree(R, branching=3, max_leaf_size=20), build_tree(sp.diags(scales) @ R, branching=3, max_leaf_size=20)
    )


def test_all_zero_rows_give_a_balanced_random_tree():
    tree = build_tree(sp.csr_matrix((100, 7), dtype=np.float32), branching=4, max_leaf_size=5, seed=1)
    _check_shape(tree, 100, 4, 5)
    assert not np.array_equal(tree.label_order, np.arange(100))  # spread by the seeded tie-break
    _check_shape(build_tree(np.zeros((50, 0)), branching=2, max_leaf_size=3), 50, 2, 3)


def test_zero_rows_do_not_break_planted_groups():
    R, group = _planted(4, 40, 0)
    R = np.vstack([R, np.zeros((8, R.shape[1]))])  # 8 labels without a representation
    tree = build_tree(R, branching=4, max_leaf_size=42, seed=0)
    node = tree.ancestors(1)
    for v in range(4):
        members = node[:160] == v
        assert np.unique(group[:160][members]).size == 1
    assert np.array_equal(np.bincount(node), [42, 42, 42, 42])


# -- PIFA ------------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), d=st.integers(1, 15), C=st.integers(1, 12), seed=st.integers(0, 2**31))
@example(n=10, d=2, C=1, seed=42252478)  # two unit rows that nearly cancel
def test_pifa_matches_dense_brute_force(n, d, C, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * (rng.random((n, d)) < 0.5)
    X[rng.random(n) < 0.2] = 0.0  # rows without features
    Y = (rng.random((n, C)) < 0.3).astype(np.float32)
    expected = np.zeros((C, d))
    # float32 rounding of the m unit rows summed (relative 6e-8 each) is magnified by 1 / |sum| when the rows
    # nearly cancel (hypothesis found |sum| = 0.0025 from four rows), so each label's tolerance scales with it
    atol = np.full((C, 1), 2e-6)
    for label in range(C):
        total = np.zeros(d)
        m = 0
        for i in range(n):
            if Y[i, label] == 1 and np.linalg.norm(X[i]) > 0:
                total += X[i] / np.linalg.norm(X[i])
                m += 1
        if np.linalg.norm(total) > 0:
            expected[label] = total / np.linalg.norm(total)
            atol[label] = 2e-6 * max(1.0, m / np.linalg.norm(total))
    V = pifa(sp.csr_matrix(X.astype(np.float32)), sp.csr_matrix(Y))
    assert sp.isspmatrix_csr(V) and V.dtype == np.float32 and V.shape == (C, d)
    assert V.has_sorted_indices
    assert np.all(np.abs(V.toarray() - expected) <= atol)


def test_pifa_accepts_label_lists_and_dense_arrays():
    X = np.array([[1.0, 0.0, 0.0], [0.0, 3.0, 4.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    V = pifa(X, [[0], [0, 2], []])
    s = 1 / np.sqrt(2.0)  # label 0: (1,0,0) + (0,.6,.8), normalised
    np.testing.assert_allclose(V.toarray(), [[s, 0.6 * s, 0.8 * s], [0, 0, 0], [0, 0.6, 0.8]], atol=1e-6)
    assert V.getrow(1).nnz == 0  # label 1 has no positive row


def test_pifa_then_build_tree():
    rng = np.random.default_rng(0)
    X = sp.random(400, 60, density=0.1, format="csr", random_state=1, dtype=np.float32)
    Y = sp.csr_matrix((rng.random((400, 90)) < 0.03).astype(np.float32))
    _check_shape(build_tree(pifa(X, Y), branching=4, max_leaf_size=10), 90, 4, 10)


# -- bad arguments -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"branching": 1}, "branching=1 must be an integer >= 2"),
        ({"branching": 2.5}, "branching"),
        ({"branching": True}, "branching"),
        ({"max_leaf_size": 0}, "max_leaf_size=0 must be an integer >= 1"),
        ({"seed": -1}, "seed"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": -1e-3}, "tol"),
        ({"tol": float("nan")}, "tol"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        build_tree(np.eye(4), **kwargs)


@pytest.mark.parametrize(
    ("label_repr", "match"),
    [
        (np.ones(5), "2-D"),
        (np.ones((2, 2, 2)), "2-D"),
        (np.zeros((0, 4)), "at least one row"),
        (sp.csr_matrix((0, 4)), "at least one row"),
        (np.array([[1.0, np.nan]]), "NaN"),
        (sp.csr_matrix(np.array([[np.inf, 1.0]])), "NaN or infinite"),
        (np.array([["a", "b"]]), "real numbers"),
    ],
)
def test_bad_label_repr(label_repr, match):
    with pytest.raises(ConfigurationError, match=match):
        build_tree(label_repr)


def test_pifa_bad_inputs():
    with pytest.raises(ConfigurationError, match="X has 3 rows but Y has 2"):
        pifa(np.ones((3, 2)), [[0], [1]])
    with pytest.raises(ConfigurationError, match="0/1"):
        pifa(np.ones((2, 2)), np.array([[2.0], [0.0]]))
