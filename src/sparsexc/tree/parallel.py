"""Training a label-tree model's nodes split across processes (ranks), and assembling the parts.

The node classifiers are trained teacher-forced (see :mod:`sparsexc.tree.model`): the children of node p of
level t are fitted on the rows that reach p, whatever the other nodes' weights are. So the jobs ``(tree i,
level t, node p)`` are independent, and ``S`` ranks that each build the same trees (the clustering is seeded)
can each train a share of them: :meth:`LabelTreeModel.fit(X, Y, part=(rank, S))
<sparsexc.tree.LabelTreeModel.fit>` trains the jobs :func:`node_owners` gives ``rank`` and leaves the other
weight rows empty; :func:`merge_parts` assembles the ``S`` parts into the weights one process trains, bit for
bit (each job's weights depend only on the data, the tree and the settings).

The split balances the work, not the number of nodes: a job's cost is taken as

    work(p) = children(p) * sum over the rows i that reach p of (nnz(x_i) + 1)

(every child's classifier passes over those rows and their stored features, plus the bias, once per solver
iteration), and the jobs of all trees and levels are dealt out together by the greedy
longest-processing-time rule: heaviest first (ties: the earlier job), each to the least-loaded rank (ties: the
lower rank). The root's job (every row) goes to one rank while the others train deeper nodes. Deterministic:
every rank computes the same split from the same data.

numpy/scipy only; the process group and the exchange of the parts belong to the caller (the estimator's tree
family).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from sparsexc.errors import ConfigurationError
from sparsexc.tree.structure import LabelTree

__all__ = [
    "check_part",
    "check_same_trees",
    "fill_level",
    "merge_parts",
    "node_owners",
    "node_work",
    "split_work",
    "tree_fingerprint",
]


def check_part(part: object) -> tuple[int, int]:
    """``part`` (a pair) as ``(rank, world)`` with ``0 <= rank < world``; a
    :class:`~sparsexc.errors.ConfigurationError` naming ``part`` otherwise."""
    pair = tuple(part) if isinstance(part, (tuple, list)) else ()
    ints = len(pair) == 2 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
    if not ints or not 0 <= int(pair[0]) < int(pair[1]):
        raise ConfigurationError(f"part={part!r}: must be a pair (rank, world) of integers with 0 <= rank < world")
    return int(pair[0]), int(pair[1])


def tree_fingerprint(trees: Sequence[LabelTree]) -> str:
    """A sha256 of the trees' shapes and label orders: equal on two ranks exactly when they built the same trees."""
    digest = hashlib.sha256()
    for tree in trees:
        for offsets in tree.offsets:
            digest.update(np.ascontiguousarray(offsets, dtype=np.int64).tobytes() + b"|")
        digest.update(np.ascontiguousarray(tree.label_order, dtype=np.int64).tobytes() + b"#")
    return digest.hexdigest()


def check_same_trees(fingerprints: Sequence[str]) -> None:
    """Refuse a split fit whose ranks built different trees (``fingerprints[r]``: :func:`tree_fingerprint` of
    rank r's): its parts would be weights of other nodes, silently merged into a wrong model. PIFA is computed
    without BLAS and clusters the same on every machine; the PMI embeddings (``representation`` pmi,
    pifa+pmi) come from a randomized SVD whose BLAS rounding may differ between machines."""
    differ = [r for r, f in enumerate(fingerprints) if f != fingerprints[0]]
    if differ:
        raise ConfigurationError(
            f"ranks {differ} built other label trees than rank 0 (the same data, settings and seed): machines "
            "whose BLAS rounds differently can cluster the PMI embeddings differently; train on machines of one "
            "kind, or with tree_params representation='pifa'"
        )


def node_work(X: sp.csr_matrix, Y: sp.csr_matrix, tree: LabelTree) -> list[np.ndarray]:
    """The estimated cost of training each node's children: ``out[t][p]`` for node p of level t (see the module
    docstring: children(p) times the stored features, plus one, of the rows that reach p), float64."""
    row_cost = np.diff(X.indptr).astype(np.float64) + 1.0
    out = []
    for t in range(tree.depth):
        if t == 0:
            reached = np.array([row_cost.sum()])
        else:  # rows reaching node p of level t: those with a positive label under p
            reach = ((Y @ tree.membership(t)) > 0).astype(np.float64)
            reached = np.asarray(reach.T @ row_cost).ravel()
        out.append(np.diff(tree.offsets[t]).astype(np.float64) * reached)
    return out


def split_work(work: np.ndarray, world: int) -> np.ndarray:
    """The rank (0 .. world - 1) of every job of cost ``work`` (1-D), by the greedy longest-processing-time rule:
    the jobs in decreasing cost (ties: lower index first) each go to the rank with the least work so far (ties:
    the lower rank). Every rank's total is at most the mean plus the largest job."""
    if isinstance(world, bool) or not isinstance(world, (int, np.integer)) or world < 1:
        raise ConfigurationError(f"world={world!r}: must be an integer >= 1")
    work = np.asarray(work, dtype=np.float64)
    owner = np.zeros(work.size, dtype=np.int64)
    if world == 1:
        return owner
    load = np.zeros(world)
    for job in np.lexsort((np.arange(work.size), -work)):
        rank = int(np.argmin(load))  # the first minimum: ties to the lower rank
        owner[job] = rank
        load[rank] += work[job]
    return owner


def node_owners(
    X: sp.csr_matrix, Y: sp.csr_matrix, trees: Sequence[LabelTree], part: tuple[int, int]
) -> list[list[np.ndarray]]:
    """Which nodes ``part = (rank, world)`` trains: ``out[i][t]`` is a bool per node of tree i's level t, true
    where :func:`split_work` of all trees' and levels' :func:`node_work` gives the job to ``rank``."""
    rank, world = check_part(part)
    works = [node_work(X, Y, tree) for tree in trees]
    owner = split_work(np.concatenate([w for levels in works for w in levels]), world)
    out: list[list[np.ndarray]] = []
    start = 0
    for levels in works:
        out.append([])
        for w in levels:
            out[-1].append(owner[start : start + w.size] == rank)
            start += w.size
    return out


def fill_level(
    tree: LabelTree, t: int, nodes: Sequence[int] | np.ndarray, blocks: Sequence[sp.csr_matrix], width: int
) -> list[sp.csr_matrix]:
    """Every node of level t's block of children's weights, in node order: ``blocks[j]`` for ``nodes[j]`` (the
    trained ones), an empty CSR (children x ``width``) float32 matrix for the others."""
    trained = dict(zip((int(p) for p in nodes), blocks, strict=True))
    empty = lambda p: sp.csr_matrix((len(tree.children(t, p)), width), dtype=np.float32)  # noqa: E731
    return [trained[p] if p in trained else empty(p) for p in range(tree.n_nodes(t))]


def merge_parts(parts: Sequence[Sequence[Sequence[sp.csr_matrix]]]) -> list[list[sp.csr_matrix]]:
    """The weights of a model trained in ``len(parts)`` parts: ``parts[r]`` is the ``weights_`` of the model
    ``fit(..., part=(r, len(parts)))`` trained (tree i, level t: a CSR matrix whose rows of the nodes rank r did
    not train are empty). Every row of the result is the row of the one part where it is not empty (empty if it
    is empty in all; a row stored in two parts is an error: they were not one split)."""
    if not parts:
        raise ConfigurationError("merge_parts: no parts to merge")
    shapes = [[w.shape for w in levels] for levels in parts[0]]
    for r, part in enumerate(parts):
        if [[w.shape for w in levels] for levels in part] != shapes:
            raise ConfigurationError(f"merge_parts: part {r} has other trees or levels than part 0")
    return [
        [_merge_level([part[i][t] for part in parts], i, t) for t in range(len(levels))]
        for i, levels in enumerate(shapes)
    ]


def _merge_level(blocks: list[sp.csr_matrix], i: int, t: int) -> sp.csr_matrix:
    """Rows of the one block that stores each (see :func:`merge_parts`); values, column order and any explicit
    zeros kept as they are (stacking and row selection copy them)."""
    blocks = [sp.csr_matrix(b) for b in blocks]
    n_rows = blocks[0].shape[0]
    stored = np.stack([np.diff(b.indptr) > 0 for b in blocks])  # (parts, rows)
    if (stored.sum(axis=0) > 1).any():
        raise ConfigurationError(f"merge_parts: tree {i}, level {t + 1}: a node's weights are in two parts")
    owner = stored.argmax(axis=0)  # the part storing the row; part 0 (an empty row) where none does
    stacked = sp.vstack(blocks, format="csr")
    merged = sp.csr_matrix(stacked[owner * n_rows + np.arange(n_rows)], dtype=np.float32)
    return merged
