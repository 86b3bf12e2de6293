"""Beam search over a label tree (sparsexc.tree.search) against brute force on small trees.

The reference computes every node score densely in float64 (``X @ W.T``), every label's path product of node
probabilities directly (no log domain), and its top-k with a lexsort (score descending, label id ascending).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from _topk import assert_same_topk
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsexc.errors import ConfigurationError
from sparsexc.tree._search_kernel import children_scores_kernel as _real_kernel
from sparsexc.tree.search import HINGE_POWER, LevelIndex, TreeSearcher, beam_search, pair_scores
from sparsexc.tree.structure import LabelTree

TRANSFORMS = ("sigmoid", "squared_hinge")


# -- set-up and reference ------------------------------------------------------------------------------------


def random_tree(rng: np.random.Generator, depth: int, max_arity: int) -> LabelTree:
    offsets, n = [], 1
    for _ in range(depth):
        arity = rng.integers(1, max_arity + 1, size=n)
        offsets.append(np.concatenate([[0], np.cumsum(arity)]).astype(np.int64))
        n = int(offsets[-1][-1])
    return LabelTree(tuple(offsets), rng.permutation(n).astype(np.int64))


def random_csr(rng: np.random.Generator, n: int, m: int, density: float, scale: float = 1.0) -> sp.csr_matrix:
    dense = rng.normal(scale=scale, size=(n, m)) * (rng.random((n, m)) < density)
    return sp.csr_matrix(dense.astype(np.float32))


def random_model(rng: np.random.Generator, depth: int, max_arity: int, d: int, n: int, scale: float = 0.5):
    tree = random_tree(rng, depth, max_arity)
    # weights of this size keep path products far above float32's smallest numbers, where ties would be rounding
    # (0.7 did for the squared hinge's power 2; the cube of the default power 3 needs smaller margins)
    weights = [random_csr(rng, tree.n_nodes(t + 1), d + 1, 0.6, scale) for t in range(depth)]
    return tree, weights, random_csr(rng, n, d, 0.5)


def node_probability(s: np.ndarray, transform: str, power: float = HINGE_POWER) -> np.ndarray:
    """sigma(s), or the squared hinge's exp(-max(0, 1 - s)^power) times its tail sigma(s - 1)^0.01 (a product
    here, where the search sums logs)."""
    if transform == "sigmoid":
        return 1.0 / (1.0 + np.exp(-s))
    return np.exp(-(np.maximum(0.0, 1.0 - s) ** power)) * (1.0 / (1.0 + np.exp(1.0 - s))) ** 0.01


def brute_force_scores(X, tree: LabelTree, weights, transform: str, bias: float, power: float = HINGE_POWER):
    """(n, C) float64: every label's product of node probabilities on its path, by label id."""
    Xd = X.toarray().astype(np.float64)
    d = Xd.shape[1]
    path = np.ones((Xd.shape[0], 1))
    for t, W in enumerate(weights):
        Wd = W.toarray().astype(np.float64)
        prob = node_probability(Xd @ Wd[:, :d].T + bias * Wd[:, d], transform, power)
        path = path[:, tree.parents(t + 1)] * prob
    out = np.empty_like(path)
    out[:, tree.label_order] = path
    return out


def brute_force_topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    order = np.lexsort((ids, -scores), axis=1)[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def widest_level(tree: LabelTree) -> int:
    return max(tree.n_nodes(t) for t in range(tree.depth + 1))


def assert_sorted_topk(indices: np.ndarray, scores: np.ndarray, n_labels: int) -> None:
    assert indices.dtype == np.int64 and scores.dtype == np.float32
    assert np.all((indices >= 0) & (indices < n_labels))
    assert all(len(set(row)) == len(row) for row in indices.tolist())
    assert np.all(scores[:, :-1] >= scores[:, 1:])
    tied = scores[:, :-1] == scores[:, 1:]
    assert np.all(indices[:, :-1][tied] < indices[:, 1:][tied])  # ties to the lower label id


# -- beam search = brute force when the beam holds every node --------------------------------------------------


@pytest.mark.parametrize(
    ("transform", "power"), [("sigmoid", HINGE_POWER), ("squared_hinge", 2.0), ("squared_hinge", 3.0)]
)
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_wide_beam_equals_brute_force(depth, transform, power):
    rng = np.random.default_rng(100 + depth)
    for _ in range(6):
        tree, weights, X = random_model(rng, depth, max_arity=4, d=int(rng.integers(1, 10)), n=12)
        k = int(rng.integers(1, tree.n_labels + 1))
        bias = float(rng.normal())
        got = beam_search(
            X, tree, weights, beam=widest_level(tree), k=k, transform=transform, bias=bias, batch_size=5, power=power
        )
        want = brute_force_topk(brute_force_scores(X, tree, weights, transform, bias, power), k)
        assert want[1].min() > 1e-30
        # the same labels in the same order; only labels whose exact scores tie to float32 rounding (1e-5 relative) may swap
        assert_same_topk(got, want, rtol=1e-5, atol=0)
        np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-6)
        assert_sorted_topk(*got, tree.n_labels)


def test_flat_tree_is_one_vs_rest():
    rng = np.random.default_rng(7)
    tree = LabelTree.flat(9)
    W = random_csr(rng, 9, 6, 0.7)
    X = random_csr(rng, 5, 5, 0.6)
    idx, val = beam_search(X, tree, [W], beam=1, k=9, transform="sigmoid")  # the beam never prunes the last level
    s = X.toarray().astype(np.float64) @ W.toarray()[:, :5].T + W.toarray()[:, 5]
    want = brute_force_topk(1.0 / (1.0 + np.exp(-s)), 9)
    np.testing.assert_array_equal(idx, want[0])
    np.testing.assert_allclose(val, want[1], rtol=0, atol=1e-6)


def test_batch_size_does_not_change_the_result():
    rng = np.random.default_rng(3)
    tree, weights, X = random_model(rng, 3, max_arity=5, d=8, n=23)
    one = beam_search(X, tree, weights, beam=3, k=4, batch_size=1)
    for batch_size in (2, 7, 1000):
        other = beam_search(X, tree, weights, beam=3, k=4, batch_size=batch_size)
        np.testing.assert_array_equal(one[0], other[0])
        np.testing.assert_array_equal(one[1], other[1])


def test_a_searcher_built_once_gives_what_beam_search_gives():
    rng = np.random.default_rng(4)
    tree, weights, X = random_model(rng, 2, max_arity=6, d=7, n=10)
    searcher = TreeSearcher.build(tree, weights, bias=0.5)
    for transform in TRANSFORMS:
        a = searcher.search(X, beam=2, k=3, transform=transform)
        b = beam_search(X, tree, weights, beam=2, k=3, transform=transform, bias=0.5)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


# -- the beam is a beam --------------------------------------------------------------------------------------


def two_branch_model() -> tuple[LabelTree, list[sp.csr_matrix], sp.csr_matrix]:
    """Root -> {A, B}; A -> labels {0, 1}, B -> labels {2, 3}. One feature, x = 1, squared hinge.

    p(A) = 0.997 (s = 2) > p(B) = 0.773 (s = 0.5); A's labels: s = 0 -> 0.363 each; B's label 3: s = 1 -> 0.993,
    label 2: s = -1 -> 0.018. Best label: 3 (0.768), which a beam of 1 (keeping A only) never sees.
    """
    tree = LabelTree((np.array([0, 2]), np.array([0, 2, 4])), np.array([1, 0, 2, 3]))
    level1 = sp.csr_matrix(np.array([[0.0, 2.0], [0.0, 0.5]], dtype=np.float32))
    level2 = sp.csr_matrix(np.array([[0.0, 0.0], [0.0, 0.0], [-1.0, 0.0], [1.0, 0.0]], dtype=np.float32))
    return tree, [level1, level2], sp.csr_matrix(np.ones((1, 1), dtype=np.float32))


def test_a_small_beam_misses_the_label_brute_force_finds():
    tree, weights, X = two_branch_model()
    want = brute_force_topk(brute_force_scores(X, tree, weights, "squared_hinge", 1.0), 1)
    assert want[0][0, 0] == 3
    wide = beam_search(X, tree, weights, beam=2, k=1)
    narrow = beam_search(X, tree, weights, beam=1, k=2)
    np.testing.assert_array_equal(wide[0], [[3]])
    p = node_probability(np.array([2.0, 0.5, 0.0, 1.0]), "squared_hinge")  # A, B, A's labels, label 3
    np.testing.assert_allclose(wide[1], [[p[1] * p[3]]], rtol=1e-6)
    np.testing.assert_array_equal(narrow[0], [[0, 1]])  # A's labels, tied: lower id first
    np.testing.assert_allclose(narrow[1], [[p[0] * p[2], p[0] * p[2]]], rtol=1e-6)


def test_nodes_outside_the_beam_are_never_scored():
    tree, weights, X = two_branch_model()
    poisoned = weights[1].toarray()
    poisoned[2:] = np.nan  # B's children: scoring them would put NaN into the result
    idx, val = beam_search(X, tree, [weights[0], sp.csr_matrix(poisoned)], beam=1, k=2)
    np.testing.assert_array_equal(idx, [[0, 1]])
    assert np.all(np.isfinite(val))


def test_fewer_labels_reached_than_k_are_filled_with_the_lowest_unreached_ids_at_score_0():
    tree, weights, X = two_branch_model()
    idx, val = beam_search(X, tree, weights, beam=1, k=4)
    # reached: labels 0 and 1 (A); then the unreached labels by id, score 0
    np.testing.assert_array_equal(idx, [[0, 1, 2, 3]])
    a = float(node_probability(np.float64(2.0), "squared_hinge") * node_probability(np.float64(0.0), "squared_hinge"))
    np.testing.assert_allclose(val, [[a, a, 0.0, 0.0]], rtol=1e-6)
    # a reached label whose score is exactly 0 ties with the unreached ones and takes its place by id
    zero = weights[1].toarray()
    zero[0] = [0.0, -1e19]  # label 1 (position 0): (1 - s)^2 overflows the exponent, p = 0
    idx, val = beam_search(X, tree, [weights[0], sp.csr_matrix(zero)], beam=1, k=4)
    np.testing.assert_array_equal(idx, [[0, 1, 2, 3]])
    np.testing.assert_allclose(val, [[a, 0.0, 0.0, 0.0]], rtol=1e-6)


# -- ties ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_equal_scores_go_to_the_lower_label_id(transform):
    rng = np.random.default_rng(11)
    tree = random_tree(rng, 2, 5)
    weights = [sp.csr_matrix((tree.n_nodes(t + 1), 4), dtype=np.float32) for t in range(2)]  # all scores 0
    X = random_csr(rng, 3, 3, 0.7)
    k = min(4, tree.n_labels)
    idx, val = beam_search(X, tree, weights, beam=widest_level(tree), k=k, transform=transform)
    np.testing.assert_array_equal(idx, np.broadcast_to(np.arange(k), (3, k)))
    p = node_probability(np.float64(0.0), transform) ** 2
    np.testing.assert_allclose(val, np.full((3, k), p), rtol=1e-6)


def test_a_tied_beam_keeps_the_lower_node():
    # root -> {A, B} with equal scores; a beam of 1 keeps A (node 0) whose labels are 2 and 3
    tree = LabelTree((np.array([0, 2]), np.array([0, 2, 4])), np.array([2, 3, 0, 1]))
    weights = [sp.csr_matrix((2, 2), dtype=np.float32), sp.csr_matrix((4, 2), dtype=np.float32)]
    idx, _ = beam_search(sp.csr_matrix(np.ones((1, 1), dtype=np.float32)), tree, weights, beam=1, k=2)
    np.testing.assert_array_equal(idx, [[2, 3]])


# -- properties ----------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    depth=st.integers(1, 3),
    beam=st.integers(1, 6),
    transform=st.sampled_from(TRANSFORMS),
    data=st.data(),
)
def test_property_sorted_within_the_labels_and_bounded_by_brute_force(seed, depth, beam, transform, data):
    rng = np.random.default_rng(seed)
    tree, weights, X = random_model(rng, depth, max_arity=4, d=5, n=6)
    k = data.draw(st.integers(1, tree.n_labels))
    idx, val = beam_search(X, tree, weights, beam=beam, k=k, transform=transform)
    assert idx.shape == val.shape == (6, k)
    assert_sorted_topk(idx, val, tree.n_labels)
    exact = brute_force_scores(X, tree, weights, transform, 1.0)
    # a returned score is the label's path product, or 0 for a label the beam did not reach
    got = np.take_along_axis(exact, idx, axis=1)
    assert np.all(np.isclose(val, got, rtol=0, atol=1e-6) | (val == 0))
    # the beam can only miss labels: its i-th score is at most the exact i-th score
    best = brute_force_topk(exact, k)[1]
    assert np.all(val <= best + 1e-6)


# -- pair_scores and the parent-major layout -----------------------------------------------------------------


@pytest.mark.parametrize("bias", [1.0, -0.5])
def test_pair_scores_equal_dense_products(bias):
    rng = np.random.default_rng(5)
    Xd = random_csr(rng, 9, 30, 0.3).toarray()
    Xd[4] = 0  # a row without features
    Wd = random_csr(rng, 14, 31, 0.4).toarray()
    Wd[3] = 0  # a node without weights
    X, W = sp.csr_matrix(Xd), sp.csr_matrix(Wd)
    rows = rng.integers(0, 9, size=200)
    cols = rng.integers(0, 14, size=200)
    want = (X.toarray().astype(np.float64) @ W.toarray()[:, :30].T.astype(np.float64) + bias * W.toarray()[:, 30])[
        rows, cols
    ]
    got = pair_scores(X, W, rows, cols, bias=bias)
    assert got.dtype == np.float32 and got.shape == (200,)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_pair_scores_accept_unsorted_and_duplicate_indices():
    X = sp.csr_matrix((np.array([1.0, 2.0, 3.0], np.float32), np.array([2, 0, 2]), np.array([0, 3])), shape=(1, 3))
    W = sp.csr_matrix((np.array([5.0, 7.0, 1.0], np.float32), np.array([3, 2, 0]), np.array([0, 3])), shape=(1, 4))
    # x = (2, 0, 4), w = (1, 0, 7 | bias 5)
    np.testing.assert_allclose(pair_scores(X, W, [0], [0], bias=2.0), [2.0 + 28.0 + 10.0])
    assert X.has_canonical_format is False  # the caller's matrices are left as they were


def test_pair_scores_chunks_and_empty_input(monkeypatch):
    import sparsexc.tree.search as search

    rng = np.random.default_rng(6)
    X = random_csr(rng, 20, 12, 0.5)
    W = random_csr(rng, 8, 13, 0.5)
    rows, cols = rng.integers(0, 20, size=300), rng.integers(0, 8, size=300)
    whole = pair_scores(X, W, rows, cols)
    monkeypatch.setattr(search, "_PAIR_CHUNK", 7)  # many chunks, some pairs longer than a chunk
    np.testing.assert_array_equal(pair_scores(X, W, rows, cols), whole)
    assert pair_scores(X, W, [], []).shape == (0,)


def _lookup(monkeypatch, lookup: str) -> None:
    """The kernel matching a row's features' keys to its parents by a scan of every feature's keys, by a binary
    search per parent, or by whichever the default rule picks."""
    import sparsexc.tree.search as search

    factor = {"scan": 1 << 30, "search": 0, "default": search._SCAN_FACTOR}[lookup]
    monkeypatch.setattr(search, "_SCAN_FACTOR", factor)


LOOKUPS = ["scan", "search", "default"]


@pytest.mark.parametrize("lookup", LOOKUPS)
@pytest.mark.parametrize("by_row", [False, True])  # pairs in any order, or a row's pairs together (as the search)
def test_children_scores_equal_pair_scores(monkeypatch, lookup, by_row):
    _lookup(monkeypatch, lookup)
    rng = np.random.default_rng(8)
    tree = random_tree(rng, 2, 6)
    W = random_csr(rng, tree.n_nodes(2), 11, 0.3)
    X = random_csr(rng, 7, 10, 0.4)
    level = LevelIndex.build(W, tree.offsets[1], bias=0.25)
    rows = np.sort(rng.integers(0, 7, size=40)) if by_row else rng.integers(0, 7, size=40)
    parents = rng.integers(0, tree.n_nodes(1), size=40)
    got = level.children_scores(X, rows, parents)
    arity = np.diff(tree.offsets[1])[parents]
    for q in range(40):
        children = np.arange(tree.offsets[1][parents[q]], tree.offsets[1][parents[q] + 1])
        want = pair_scores(X, W, np.full(children.shape[0], rows[q]), children, bias=0.25)
        np.testing.assert_allclose(got[q, : arity[q]], want, rtol=1e-6, atol=1e-6)
        assert np.all(np.isneginf(got[q, arity[q] :]))


def _children_scores_by_product(level: LevelIndex, X: sp.csr_matrix, rows, parents) -> np.ndarray:
    """The reference: the (pair, (feature, parent)) query matrix times the layout's block (scipy's float32
    product), plus the float64 bias, -inf past each parent's arity, as float32 (what the search computed
    before its compiled kernel)."""
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sum_duplicates()
    key_row = {
        (j, int(level.key_parents[k])): k
        for j in range(level.n_features)
        for k in range(level.feature_ptr[j], level.feature_ptr[j + 1])
    }
    r, c, v = [], [], []
    for q, (row, parent) in enumerate(zip(rows, parents, strict=True)):
        for e in range(X.indptr[row], X.indptr[row + 1]):
            pos = key_row.get((int(X.indices[e]), int(parent)))
            if pos is not None:
                r.append(q), c.append(pos), v.append(X.data[e])
    query = sp.csr_matrix(
        (np.array(v, dtype=np.float32), (r, c)), shape=(len(rows), level.block.shape[0]), dtype=np.float32
    )
    scores = (query @ level.block).toarray().astype(np.float64)
    first, arity = level.offsets[parents], np.diff(level.offsets)[parents]
    rank = np.arange(level.max_arity)
    valid = rank[None, :] < arity[:, None]
    scores += level.bias[np.where(valid, first[:, None] + rank[None, :], 0)]
    scores[~valid] = -np.inf
    return scores.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_layout_holds_every_weight_at_its_feature_parent_key_and_child_rank(seed):
    rng = np.random.default_rng(seed)
    tree = random_tree(rng, 2, 9)
    W = random_csr(rng, tree.n_nodes(2), 31, 0.2)
    level = LevelIndex.build(W, tree.offsets[1], bias=0.5)
    offsets, d = tree.offsets[1], 30
    assert level.feature_ptr.shape == (d + 1,) and level.feature_ptr[0] == 0
    want = {}  # (feature, parent) -> {rank: weight}, from W directly
    for c, j in zip(*W[:, :d].nonzero(), strict=True):
        p = int(np.searchsorted(offsets, c, side="right") - 1)
        want.setdefault((int(j), p), {})[int(c - offsets[p])] = W[c, j]
    got = {}
    for j in range(d):
        parents = level.key_parents[level.feature_ptr[j] : level.feature_ptr[j + 1]]
        assert np.all(np.diff(parents.astype(np.int64)) > 0)  # each parent once, increasing
        for k in range(level.feature_ptr[j], level.feature_ptr[j + 1]):
            b0, b1 = level.block_indptr[k], level.block_indptr[k + 1]
            assert b1 > b0 and np.all(np.diff(level.block_ranks[b0:b1].astype(np.int64)) > 0)  # child order
            got[(j, int(level.key_parents[k]))] = dict(
                zip(level.block_ranks[b0:b1].tolist(), level.block_data[b0:b1].tolist(), strict=True)
            )
    assert got == want
    np.testing.assert_array_equal(level.bias, 0.5 * W[:, d].toarray().ravel().astype(np.float64))


def test_a_group_of_pairs_with_one_row_and_a_parent_twice_scores_each_pair(monkeypatch):
    rng = np.random.default_rng(12)
    tree = random_tree(rng, 2, 12)
    W = random_csr(rng, tree.n_nodes(2), 301, 0.05)
    level = LevelIndex.build(W, tree.offsets[1], bias=0.5)
    X = random_csr(rng, 5, 300, 0.2)
    n_parents = tree.n_nodes(1)
    rows = np.repeat(np.arange(5), 2 * n_parents)  # every parent twice per row, in a shuffled order
    parents = np.concatenate([rng.permutation(np.tile(np.arange(n_parents), 2)) for _ in range(5)])
    for lookup in LOOKUPS:
        _lookup(monkeypatch, lookup)
        np.testing.assert_array_equal(
            level.children_scores(X, rows, parents), _children_scores_by_product(level, X, rows, parents)
        )


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("lookup", LOOKUPS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_children_scores_equal_the_sparse_product_bit_for_bit(monkeypatch, lookup, seed, compiled):
    _lookup(monkeypatch, lookup)
    rng = np.random.default_rng(seed)
    tree = random_tree(rng, 2, 12)
    W = random_csr(rng, tree.n_nodes(2), 41, 0.3, scale=3.0)
    X = random_csr(rng, 30, 40, 0.5)
    X.data[::7] = 0.0  # explicit zeros in the rows: looked up and multiplied, as the product does
    level = LevelIndex.build(W, tree.offsets[1], bias=0.7)
    rows = rng.integers(0, 30, size=300)
    parents = rng.integers(0, tree.n_nodes(1), size=300)
    got = level.children_scores(X, rows, parents, compiled=compiled)
    np.testing.assert_array_equal(got, _children_scores_by_product(level, X, rows, parents))
    assert got.dtype == np.float32 and got.shape == (300, level.max_arity)


def test_the_kernel_runs_where_it_pays_and_gives_the_product_s_search(monkeypatch):
    import sparsexc.tree.search as search

    rng = np.random.default_rng(21)
    tree, weights, X = random_model(rng, 3, 4, 8, 40)
    searcher = TreeSearcher.build(tree, weights)
    calls = []
    monkeypatch.setattr(search, "children_scores_kernel", lambda *a: calls.append(1) or _real_kernel(*a))
    by_product = searcher.search(X, beam=3, k=4, compiled=False)
    assert not calls
    by_kernel = searcher.search(X, beam=3, k=4, compiled=True)
    assert calls
    for a, b in zip(by_product, by_kernel, strict=True):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(search, "numba_started", lambda: False)
    assert not search.kernel_pays(search.KERNEL_MIN_CANDIDATES - 1)
    assert search.kernel_pays(search.KERNEL_MIN_CANDIDATES)
    # the candidates: per level the beam's nodes (at most the level's) times the widest arity, per row
    per_row = sum(min(3, tree.n_nodes(t)) * np.diff(tree.offsets[t]).max() for t in range(tree.depth))
    assert searcher.candidates(40, 3) == 40 * per_row
    monkeypatch.setattr(search, "numba_started", lambda: True)  # its start paid already: always the kernel
    assert search.kernel_pays(1)


def _coarse_model(rng: np.random.Generator, depth: int, max_arity: int, d: int, n: int, scale: float):
    """A random model whose weights and features are multiples of 1/4: many equal node scores, so float32 ties
    between labels (the lower id first) and between beam nodes are common."""
    tree, weights, X = random_model(rng, depth, max_arity, d, n, scale=scale)
    for M in (*weights, X):
        M.data = np.round(M.data * 4) / 4
    return tree, weights, X


@pytest.mark.parametrize("power", [2.0, 2.5, 3.0])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_compiled_search_prunes_and_still_gives_the_uncompiled_search_s_labels_and_scores(seed, power, monkeypatch):
    # the compiled path computes exact log-scores only for the candidates its bounds cannot rule out; the result
    # must be the uncompiled search's, bit for bit, at every k (pruned or not), with ties, and with rows whose
    # scores underflow (large weights: (1 - s)^q in the thousands) where no pruning is allowed
    import sparsexc.tree.search as search

    rng = np.random.default_rng(seed)
    kept_total = [0, 0]
    real = search.hinge_candidates_kernel

    def counting(path, s, *args):
        n = real(path, s, *args)
        kept_total[0] += n
        kept_total[1] += s.size
        return n

    monkeypatch.setattr(search, "hinge_candidates_kernel", counting)
    real_kth, kth_found = search.kth_of_rows_kernel, []

    def kth_counting(*args):
        kth_found.append(real_kth(*args))
        return kth_found[-1]

    monkeypatch.setattr(search, "kth_of_rows_kernel", kth_counting)
    for scale in (0.5, 1.5, 6.0):
        tree, weights, X = _coarse_model(rng, 3, 12, 10, 40, scale)
        searcher = TreeSearcher.build(tree, weights)
        for beam, k in ((2, 1), (2, 5), (3, 4), (5, 30), (2, tree.n_labels)):
            k = min(k, tree.n_labels)
            want = searcher.search(X, beam=beam, k=k, power=power, compiled=False, batch_size=16)
            got = searcher.search(X, beam=beam, k=k, power=power, compiled=True, batch_size=16)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    assert 0 < kept_total[0] < kept_total[1]  # the pruning ran, and ruled candidates out
    assert any(kth_found)  # the last level's k-th best was found among the kept candidates alone


def test_the_last_level_s_top_k_equals_its_general_path(monkeypatch):
    # _top_labels takes the rows whose k-th score is a normal float32 by a short cut; the general path (every
    # candidate exponentiated, unreached labels at score 0 in reach) is the reference on every kind of row
    rng = np.random.default_rng(5)
    tree = random_tree(rng, 2, 30)
    searcher = TreeSearcher.build(tree, [sp.csr_matrix((tree.n_nodes(t + 1), 2), dtype=np.float32) for t in range(2)])
    B, width = 60, 90
    position = np.stack([rng.choice(tree.n_labels, size=width, replace=False) for _ in range(B)])
    logp = np.round(-rng.exponential(3.0, size=(B, width)) * 8) / 8  # coarse: equal scores
    logp[:10] += rng.normal(scale=1e-7, size=(10, width))  # distinct log-scores, equal float32 scores
    logp[10:20, 5:] = -np.inf  # fewer than k reached
    logp[20:30] -= 95.0  # scores around float32's smallest numbers, and 0
    logp[30:35] = -200.0  # every score 0
    # the search leaves slots past a parent's arity (unreached) with any position, also past the level's labels
    unreached = np.where(np.isfinite(logp), position, tree.n_labels + 1000)
    for k in (1, 3, 5, 10, 40):
        want = searcher._top_labels_general(position, logp, k)
        for compiled in (False, True):  # numpy's ranking of the easy rows, and the kernel's
            for pos in (position, unreached):
                got = searcher._top_labels(pos, logp, k, compiled)
                np.testing.assert_array_equal(got[0], want[0])
                np.testing.assert_array_equal(got[1], want[1])
        got = searcher._top_labels(unreached[:, : k - 1], logp[:, : k - 1], k) if k > 1 else None  # width < k
        if got is not None:
            want_few = searcher._top_labels_general(position[:, : k - 1], logp[:, : k - 1], k)
            np.testing.assert_array_equal(got[0], want_few[0])
            np.testing.assert_array_equal(got[1], want_few[1])


def test_the_compiled_kernels_get_contiguous_arrays_only(monkeypatch):
    # numba compiles one variant of a kernel per argument layout: a strided view (np.nonzero's rows, a column of
    # an array) made a user's first search compile a second variant (0.8 CPU s); every array argument of every
    # compiled kernel the search calls is C-contiguous
    import sparsexc.tree.search as search

    seen = []

    def contiguous_only(name, real):
        def spy(*args):
            seen.append(name)
            strided = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and not a.flags.c_contiguous]
            assert not strided, f"{name}: arguments {strided} are not C-contiguous"
            return real(*args)

        return spy

    for name in [n for n in dir(search) if n.endswith("_kernel")]:
        monkeypatch.setattr(search, name, contiguous_only(name, getattr(search, name)))
    rng = np.random.default_rng(3)
    for scale in (0.5, 6.0):  # pruned candidates (kept), and rows where no pruning is allowed
        tree, weights, X = _coarse_model(rng, 3, 12, 10, 40, scale)
        searcher = TreeSearcher.build(tree, weights, compiled=True)
        for beam, k in ((2, 1), (3, 4), (2, tree.n_labels)):
            searcher.search(X, beam=beam, k=k, compiled=True, batch_size=16)
    B, width = 20, 30
    position = np.stack([rng.choice(tree.n_labels, size=width, replace=False) for _ in range(B)])
    searcher._top_labels(position, np.round(-rng.exponential(3.0, size=(B, width)) * 8) / 8, 5, True)
    assert {"children_scores_kernel", "top_of_rows_kernel", "hinge_candidates_kernel"} <= set(seen)


def test_a_small_fit_and_prediction_do_not_start_numba():
    # numba's one-off start (0.2-0.35 CPU s) was most of a small default fit's CPU when the search's kernel ran
    # in the cross-validation; a fresh process fitting and ranking a small flat tree must not start it
    import subprocess
    import sys

    code = (
        "import numpy as np, scipy.sparse as sp\n"
        "from sklearn.datasets import make_multilabel_classification\n"
        "from sparsexc.tree import LabelTreeModel, LabelTreeParams\n"
        "from sparsexc.tree._search_kernel import numba_started\n"
        "X, Y = make_multilabel_classification(300, 40, n_classes=12, sparse=True, return_indicator='sparse',"
        " random_state=0)\n"
        "m = LabelTreeModel(LabelTreeParams()).fit(sp.csr_matrix(X, dtype=np.float32), Y)\n"
        "m.predict_topk(X, 5)\n"
        "print(m.params.solver, numba_started())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["newton", "False"]


def test_the_numpy_layout_in_several_chunks(monkeypatch):
    import sparsexc.tree.search as search

    rng = np.random.default_rng(9)
    tree = random_tree(rng, 2, 6)
    W = random_csr(rng, tree.n_nodes(2), 9, 0.5)
    whole = LevelIndex.build(W, tree.offsets[1], compiled=False)
    monkeypatch.setattr(search, "_CHUNK", 5)
    chunked = LevelIndex.build(W, tree.offsets[1], compiled=False)
    np.testing.assert_array_equal(whole.feature_ptr, chunked.feature_ptr)
    np.testing.assert_array_equal(whole.key_parents, chunked.key_parents)
    assert (whole.block != chunked.block).nnz == 0


# -- bad arguments -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": 5}, "k must be an integer in 1..4"),
        ({"k": 0}, "k must be an integer in 1..4"),
        ({"beam": 0}, "beam must be an integer >= 1"),
        ({"beam": 2.5}, "beam must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"transform": "hinge"}, "transform must be one of sigmoid, squared_hinge"),
    ],
)
def test_bad_settings_raise_configuration_errors(kwargs, match):
    tree, weights, X = two_branch_model()
    with pytest.raises(ConfigurationError, match=match):
        beam_search(X, tree, weights, **{"k": 1, **kwargs})


def test_bad_shapes_raise_configuration_errors():
    tree, weights, X = two_branch_model()
    with pytest.raises(ConfigurationError, match="one matrix per level"):
        beam_search(X, tree, weights[:1], k=1)
    with pytest.raises(ConfigurationError, match=r"weights\[1\] must have shape \(4, 2\)"):
        beam_search(X, tree, [weights[0], weights[1][:3]], k=1)
    with pytest.raises(ConfigurationError, match="X has 2 features"):
        beam_search(sp.csr_matrix((1, 2), dtype=np.float32), tree, weights, k=1)
    with pytest.raises(ConfigurationError, match="rows and cols"):
        pair_scores(X, weights[0], [0, 0], [0])


def test_no_rows_give_empty_results():
    tree, weights, _ = two_branch_model()
    idx, val = beam_search(sp.csr_matrix((0, 1), dtype=np.float32), tree, weights, k=3)
    assert idx.shape == val.shape == (0, 3)


# -- the squared hinge's tail --------------------------------------------------------------------------------


def test_squared_hinge_scores_keep_increasing_past_margin_1():
    # exp(-max(0, 1 - s)^2) alone is 1 for every s >= 1; with the tail, larger margins score higher (in float32,
    # as returned), a certain node (margin 30) scores 1, and below margin 1 the tail takes off at most
    # 0.01 x (1 - s + log 2) of the score (1.7% at the decision boundary s = 0)
    tree = LabelTree.flat(6)
    margins = np.array([1.0, 1.5, 2.0, 3.0, 5.0, 30.0], dtype=np.float32)
    W = sp.csr_matrix(np.stack([np.zeros(6, dtype=np.float32), margins[::-1]], axis=1))  # bias weights only
    X = sp.csr_matrix(np.ones((1, 1), dtype=np.float32))
    idx, val = beam_search(X, tree, [W], beam=1, k=6)
    np.testing.assert_array_equal(idx, [[0, 1, 2, 3, 4, 5]])  # label 0 has margin 30, label 5 margin 1
    assert np.all(val[0, :-1] > val[0, 1:]) and val[0, 0] == 1.0
    s = np.linspace(-2.0, 1.0, 31)
    old = np.exp(-((1.0 - s) ** HINGE_POWER))
    change = 1.0 - node_probability(s, "squared_hinge") / old
    assert np.all((change > 0) & (change <= 0.01 * (1.0 - s + np.log(2.0))))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_probabilities_are_the_documented_formulas_bit_for_bit(dtype):
    from sparsexc.tree.search import HINGE_TAIL, log_probabilities

    rng = np.random.default_rng(11)
    s = (rng.standard_normal((50, 7)) * 5).astype(dtype)
    s[0, :3] = [-np.inf, 40.0, 1.0]  # padding, a certain node, the hinge's corner
    s64 = s.astype(np.float64)
    m = np.maximum(0.0, 1.0 - s64)
    tail = HINGE_TAIL * np.logaddexp(0.0, 1.0 - s64)
    assert HINGE_POWER == 3.0  # PECOS's l3-hinge is the default
    assert np.array_equal(log_probabilities(s, "squared_hinge"), -(m * np.square(m)) - tail)
    assert np.array_equal(log_probabilities(s, "squared_hinge", 2.0), -np.square(m) - tail)
    assert np.array_equal(log_probabilities(s, "squared_hinge", 2.5), -np.power(m, 2.5) - tail)
    assert np.array_equal(log_probabilities(s, "sigmoid"), -np.logaddexp(0.0, -s64))
    assert log_probabilities(s, "squared_hinge")[0, 0] == -np.inf


@pytest.mark.parametrize("power", [2.0, 2.5, 3.0])
def test_the_hinge_power_is_the_exponent_the_brute_force_uses(power):
    rng = np.random.default_rng(12)
    tree, weights, X = random_model(rng, 3, 4, 6, 9)
    want = brute_force_topk(brute_force_scores(X, tree, weights, "squared_hinge", 1.0, power), 5)
    got = beam_search(X, tree, weights, beam=widest_level(tree), k=5, power=power)
    assert_same_topk(got, want, rtol=1e-5, atol=0)
    np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("power", [0.5, float("nan"), True, "3"])
def test_a_bad_hinge_power_is_refused(power):
    tree, weights, X = random_model(np.random.default_rng(0), 2, 3, 4, 2)
    with pytest.raises(ConfigurationError, match="power must be a number >= 1"):
        beam_search(X, tree, weights, power=power)


@pytest.mark.parametrize("loss", ["squared_hinge", "logistic"])
def test_wide_beam_equals_brute_force_with_a_branch_for_the_frequent_labels(loss):
    from sparsexc.tree import LabelTreeModel, LabelTreeParams

    rng = np.random.default_rng(7)
    X = sp.random(200, 25, density=0.25, random_state=7, format="csr", dtype=np.float32)
    Y = (rng.random((200, 60)) < 0.05).astype(np.float32)
    Y[:, 3] = 1  # on every row
    Y[:, 10] = rng.random(200) < 0.7
    params = LabelTreeParams(frequent_share=0.5, max_leaf_size=6, branching=3, C=1.0, loss=loss)
    model = LabelTreeModel(params).fit(X, sp.csr_matrix(Y))
    tree = model.trees_[0]
    assert tree.label_order[-2:].tolist() == [3, 10]  # the branch's leaf, last
    Xn = model._prepared(X)
    transform = "sigmoid" if loss == "logistic" else "squared_hinge"
    scores = brute_force_scores(Xn, tree, model.weights_[0], transform, params.bias, params.hinge_power)
    idx, top = model.predict_topk(X, 5, beam=widest_level(tree))
    want_idx, want = brute_force_topk(scores, 5)
    np.testing.assert_allclose(top, want, rtol=1e-5, atol=1e-6)
    # the labels found score what brute force gives them (equal to its top 5 but for float32 near-ties)
    np.testing.assert_allclose(np.take_along_axis(scores, idx, axis=1), want, rtol=1e-5, atol=1e-6)
    assert (idx == want_idx).mean() > 0.95
