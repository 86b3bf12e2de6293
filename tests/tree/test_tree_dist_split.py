"""The label-tree model trained in parts (``fit(..., part=(rank, world))``, :mod:`sparsexc.tree.parallel`): the
split is balanced by work and deterministic, and the merged parts are the one-process weights bit for bit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc.errors import ConfigurationError
from sparsexc.tree import LabelTreeModel, LabelTreeParams, build_tree, pifa
from sparsexc.tree.parallel import (
    check_part,
    check_same_trees,
    merge_parts,
    node_owners,
    node_work,
    split_work,
    tree_fingerprint,
)


def _data(n: int = 300, d: int = 60, C: int = 70, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Rows with 1-3 positive labels, the best of a random linear scorer (learnable), and rows of varied length."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.08, random_state=seed, format="csr", dtype=np.float32)
    S = X @ rng.normal(size=(d, C))
    k = rng.integers(1, 4, size=n)
    cols = [np.argsort(-S[i])[: k[i]] for i in range(n)]
    indptr = np.concatenate([[0], np.cumsum(k)])
    Y = sp.csr_matrix((np.ones(indptr[-1], np.float32), np.concatenate(cols), indptr), shape=(n, C))
    return X, Y


def _assert_same_weights(a: list[list[sp.csr_matrix]], b: list[list[sp.csr_matrix]]) -> None:
    assert len(a) == len(b)
    for levels_a, levels_b in zip(a, b, strict=True):
        assert len(levels_a) == len(levels_b)
        for wa, wb in zip(levels_a, levels_b, strict=True):
            assert wa.shape == wb.shape and wa.dtype == wb.dtype == np.float32
            np.testing.assert_array_equal(wa.indptr, wb.indptr)
            np.testing.assert_array_equal(wa.indices, wb.indices)
            np.testing.assert_array_equal(wa.data, wb.data)  # bit for bit, not up to rounding


@pytest.mark.parametrize(
    "settings",
    [
        {"branching": 4, "max_leaf_size": 6, "n_trees": 2},  # squared hinge (dcd), an ensemble, depth 3
        {"branching": 3, "max_leaf_size": 8, "loss": "logistic", "n_jobs": 2},  # Newton-CG, threads
    ],
)
def test_merged_parts_equal_one_process_bit_for_bit(settings):
    X, Y = _data()
    params = LabelTreeParams(**settings)
    whole = LabelTreeModel(params).fit(X, Y)
    assert max(tree.depth for tree in whole.trees_) >= 2
    for world in (1, 2, 3):
        parts = [LabelTreeModel(params).fit(X, Y, part=(r, world)) for r in range(world)]
        for part in parts:  # every rank builds the same trees (seeded clustering)
            for t_part, t_whole in zip(part.trees_, whole.trees_, strict=True):
                for key, value in t_whole.to_arrays().items():
                    np.testing.assert_array_equal(t_part.to_arrays()[key], value)
        _assert_same_weights(merge_parts([part.weights_ for part in parts]), whole.weights_)
        if world > 1:  # each rank trained a share, not everything
            assert all(0 < part.n_weights < whole.n_weights for part in parts)


def test_a_part_trains_exactly_its_nodes():
    X, Y = _data(seed=1)
    params = LabelTreeParams(branching=4, max_leaf_size=6)
    whole = LabelTreeModel(params).fit(X, Y)
    part = LabelTreeModel(params).fit(X, Y, part=(1, 2))
    owned = node_owners(X, Y, part.trees_, (1, 2))  # on raw X: normalising rows keeps their stored entries
    tree = whole.trees_[0]
    for t in range(tree.depth):
        stored_part = np.diff(part.weights_[0][t].indptr) > 0
        stored_whole = np.diff(whole.weights_[0][t].indptr) > 0
        for node in range(tree.n_nodes(t)):
            kids = tree.children(t, node)
            expected = stored_whole[kids.start : kids.stop] if owned[0][t][node] else False
            np.testing.assert_array_equal(stored_part[kids.start : kids.stop], expected)


def test_node_work_is_children_times_the_cost_of_the_rows_reaching_the_node():
    X, Y = _data(n=120, seed=2)
    tree = build_tree(pifa(X, Y), branching=3, max_leaf_size=5, seed=0)
    works = node_work(X, Y, tree)
    row_cost = [X.indptr[i + 1] - X.indptr[i] + 1 for i in range(X.shape[0])]
    labels_of_row = [set(Y.indices[Y.indptr[i] : Y.indptr[i + 1]].tolist()) for i in range(Y.shape[0])]
    assert len(works) == tree.depth
    for t in range(tree.depth):
        anc = tree.ancestors(t)  # node of level t above each label
        for node in range(tree.n_nodes(t)):
            under = {j for j in range(Y.shape[1]) if anc[j] == node}
            reached = [i for i in range(X.shape[0]) if t == 0 or labels_of_row[i] & under]
            expected = len(tree.children(t, node)) * sum(row_cost[i] for i in reached)
            assert works[t][node] == pytest.approx(expected)


def _makespan(work: np.ndarray, owner: np.ndarray, world: int) -> float:
    return float(max(work[owner == r].sum() for r in range(world)))


@pytest.mark.parametrize("seed", range(12))
def test_split_work_is_within_grahams_bound_of_the_best_split(seed):
    """The greedy longest-processing-time split's largest load is at most (4/3 - 1/(3 S)) times the best
    split's (Graham 1969), found here by trying every assignment of a few jobs."""
    rng = np.random.default_rng(seed)
    world = int(rng.integers(2, 4))
    work = rng.integers(1, 20, size=int(rng.integers(world, 8))).astype(float)
    owner = split_work(work, world)
    assert owner.shape == work.shape and set(owner.tolist()) <= set(range(world))
    best = min(_makespan(work, np.array(a), world) for a in itertools.product(range(world), repeat=work.size))
    assert _makespan(work, owner, world) <= (4 / 3 - 1 / (3 * world)) * best + 1e-9
    assert _makespan(work, owner, world) <= work.sum() / world + work.max() + 1e-9
    np.testing.assert_array_equal(split_work(work, world), owner)  # deterministic


def test_split_work_balances_work_not_node_count():
    owner = split_work(np.array([10.0, 1.0, 1.0, 1.0, 1.0, 1.0]), 2)
    assert owner.tolist() == [0, 1, 1, 1, 1, 1]  # the heavy job alone on rank 0, the five light ones on rank 1
    assert split_work(np.array([3.0, 3.0]), 1).tolist() == [0, 0]


@pytest.mark.parametrize("part", [(2, 2), (-1, 2), (0, 0), [1, 1], (0.0, 2), (True, 2), "0/2", (0, 1, 2)])
def test_bad_part_is_one_clear_error(part):
    with pytest.raises(ConfigurationError, match=r"part=.*pair \(rank, world\)"):
        check_part(part)
    X, Y = _data(n=40)
    with pytest.raises(ConfigurationError, match=r"part="):
        LabelTreeModel(LabelTreeParams(max_leaf_size=10)).fit(X, Y, part=part)


@pytest.mark.parametrize("world", [0, -1, 1.5, True])
def test_bad_world_is_one_clear_error(world):
    with pytest.raises(ConfigurationError, match="world="):
        split_work(np.ones(3), world)


def test_merge_refuses_overlapping_or_mismatched_parts():
    X, Y = _data(n=150)
    params = LabelTreeParams(branching=4, max_leaf_size=6)
    a = LabelTreeModel(params).fit(X, Y, part=(0, 2))
    with pytest.raises(ConfigurationError, match="in two parts"):
        merge_parts([a.weights_, a.weights_])
    other = LabelTreeModel(params.replace(max_leaf_size=30)).fit(X, Y, part=(1, 2))
    with pytest.raises(ConfigurationError, match="part 1 has other trees or levels"):
        merge_parts([a.weights_, other.weights_])
    with pytest.raises(ConfigurationError, match="no parts"):
        merge_parts([])


def test_ranks_that_built_other_trees_are_refused():
    X, Y = _data()
    R = pifa(X, Y)
    trees = [build_tree(R, branching=3, max_leaf_size=10, seed=s) for s in (0, 0, 1)]
    same, other = tree_fingerprint(trees[:1]), tree_fingerprint(trees[2:])
    assert same == tree_fingerprint(trees[1:2])  # the same seed: the same tree, the same fingerprint
    assert np.array_equal(np.diff(trees[0].offsets[1]), np.diff(trees[2].offsets[1]))  # same shape ...
    assert same != other  # ... other label order: told apart
    assert tree_fingerprint(trees[:2]) != same  # an ensemble's members all count
    check_same_trees([same, same, same])
    with pytest.raises(ConfigurationError, match=r"ranks \[2\] built other label trees"):
        check_same_trees([same, same, other])
