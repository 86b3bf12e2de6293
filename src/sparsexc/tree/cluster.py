"""Label representations and the balanced hierarchical clustering that turns them into a :class:`LabelTree`.

:func:`pifa` is Parabel's label representation (positive-instance feature aggregation);
:func:`label_representation` also gives the PMI label embeddings of :mod:`sparsexc.embeddings` (co-occurrence
alone, no features) or both concatenated; :func:`build_tree` clusters any label representation, recursively and
balanced, into a tree of uniform depth.

The splitting rule
------------------
Every split is a *balanced spherical 2-means* (Parabel, PECOS): with centroids ``c0``, ``c1`` (normalised sums
of the unit label vectors on each side), the labels of a node are ranked by ``cos(v, c0) - cos(v, c1)`` and the
first ``n_left`` go to side 0. For fixed centroids this ranking is the best assignment with those side sizes, and
for a fixed assignment the normalised sums are the best centroids, so the objective ``sum cos(v, own centroid) =
|sum of side 0| + |sum of side 1|`` never decreases. A ``k``-way split of a node of ``n`` labels is
``ceil(log2 k)`` rounds of such bisections: a part that must still become ``p`` children is cut into parts of
``p // 2`` and ``p - p // 2`` children holding ``n * (p // 2) // p`` and the remaining labels; so the ``k``
children end with ``floor(n / k)`` or ``ceil(n / k)`` labels (PECOS's route for powers of two, which cuts
exactly in halves; the proportional cut extends it to any ``k``).

The shape
---------
With ``N = ceil(C / max_leaf_size)`` leaf clusters needed and ``L`` the least depth with ``branching**L >= N``,
the levels below the root have arity ``branching`` and the *root* has the fewest children that suffice,
``ceil(N / branching**(L-1))`` (as PECOS, which groups its leaf clusters ``branching`` at a time from the bottom,
leaving the remainder to the root): a beam at least that wide keeps all of them, so the first, coarsest
decision costs no recall. As every node of a level then holds ``floor(C / P)`` or ``ceil(C / P)`` labels
(``P`` the product of the arities above it), all leaves end at depth ``L`` with at most ``max_leaf_size``
labels, and the tree has depth ``D = L + 1``: the last level holds the labels, grouped by leaf cluster, in
increasing id within a leaf. A node with fewer labels than its level's arity gets one child per label.

How it runs
-----------
Each bisection round serves every cluster of the level at once, so one k-means iteration is a few passes over
the nonzeros whatever the number of clusters. The rows (labels) are kept ordered by cluster and every nonzero
carries the id of its *group*, its (cluster, feature) pair: the side sums of all centroids are one ``bincount``
over the groups, a cluster's squared norms a ``bincount`` over its groups, and every label's score
``v . (c0/|c0| - c1/|c1|)`` one segmented sum over its row. After the first iteration only the labels that
changed side update the sums. No ``C x d`` or ``clusters x d`` dense matrix is formed: memory is
``O(nnz + C)``, and one cluster's work stays within one stretch of rows and groups. After a round the rows are
reordered (side 0 before side 1 within each cluster) and every group splits into its two sides' parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from sparsexc._sparse import as_features, as_label_matrix
from sparsexc.embeddings import pmi_embeddings
from sparsexc.errors import ConfigurationError
from sparsexc.tree.structure import LabelTree

__all__ = [
    "REPRESENTATIONS",
    "build_tree",
    "frequent_labels",
    "label_representation",
    "leaf_coherence",
    "level_arities",
    "pifa",
]

# the label vectors a tree can cluster (label_representation)
REPRESENTATIONS = ("pifa", "pmi", "pifa+pmi")


# -- label representations ----------------------------------------------------------------------------------
def _normalise_rows(M: sp.csr_matrix) -> sp.csr_matrix:
    """Scale every nonzero row of a CSR matrix to unit L2 norm (norms in float64); zero rows stay zero."""
    lengths = np.diff(M.indptr)
    filled = lengths > 0
    norms = np.ones(M.shape[0])
    if M.nnz:
        # a reduceat over the starts of the non-empty rows sums exactly each row's nonzeros
        norms[filled] = np.sqrt(np.add.reduceat(M.data.astype(np.float64) ** 2, M.indptr[:-1][filled]))
    norms[norms == 0] = 1.0  # a row of explicit zeros
    out = M.copy()
    out.data = (M.data / np.repeat(norms, lengths)).astype(M.dtype, copy=False)
    return out


def pifa(X: Any, Y: Any) -> sp.csr_matrix:
    r"""Positive-instance feature aggregation (Parabel's label representation).

    .. math:: v_l = \frac{\sum_{i:\, y_{il}=1} \hat x_i}{\lVert \sum_{i:\, y_{il}=1} \hat x_i \rVert_2},
              \qquad \hat x_i = x_i / \lVert x_i \rVert_2

    computed as one sparse product ``Y.T @ X_hat`` and a row normalisation: time and memory grow with the
    nonzeros of the inputs and of the result, never with ``C x d``.

    Parameters
    ----------
    X : sparse matrix or 2-D array, shape (n, d)
        Features; rows of zeros are allowed (they add nothing).
    Y : sparse 0/1 matrix, dense 0/1 array or list of label-id lists, shape (n, C)
        Positive labels of each row.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (C, d), float32
        Unit rows, sorted indices. A label without a positive row (or whose positive rows are all zero) gets an
        all-zero row; :func:`build_tree` then places it by the balance constraint alone (see there).
    """
    X = as_features(X, name="X")
    Y = as_label_matrix(Y, name="Y")
    if X.shape[0] != Y.shape[0]:
        raise ConfigurationError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}: pifa needs one label row per row")
    V = sp.csr_matrix(Y.T.tocsr() @ _normalise_rows(X), dtype=np.float32)
    V.sum_duplicates()
    V.eliminate_zeros()
    out = _normalise_rows(V)
    out.eliminate_zeros()  # entries that underflowed in float32
    out.sort_indices()
    return out


def label_representation(X: Any, Y: Any, kind: str = "pifa", *, dim: int = 64, seed: int = 0) -> Any:
    r"""The label vectors that :func:`build_tree` clusters (``LabelTreeParams.representation``).

    * ``"pifa"``: :func:`pifa`, v_l = normalise(sum of the unit rows where l is positive): labels whose rows
      look alike share a branch (Parabel, omikuji, PECOS).
    * ``"pmi"``: the PMI label embeddings e_l of :func:`sparsexc.embeddings.pmi_embeddings` (dimension ``dim``,
      seeded randomized SVD of the PMI matrix of Y): labels that occur *together* share a branch; X is not read.
    * ``"pifa+pmi"``: :math:`[v_l, e_l] / \sqrt{2}`, both unit vectors, so
      :math:`\cos([v, e], [v', e']) = (\cos(v, v') + \cos(e, e')) / 2` for labels with positive rows: the
      2-means splits weigh both views equally.

    Parameters
    ----------
    X : sparse matrix or 2-D array, shape (n, d)
        Features (read by ``"pifa"`` and ``"pifa+pmi"``).
    Y : sparse 0/1 matrix, dense 0/1 array or list of label-id lists, shape (n, C)
    kind : {"pifa", "pmi", "pifa+pmi"}
    dim : int >= 1
        Dimension of the PMI embeddings (``"pmi"``, ``"pifa+pmi"``).
    seed : int >= 0
        Seeds the PMI embeddings' SVD (and their fallback vectors for labels that never occur): the same seed
        gives the same vectors.

    Returns
    -------
    scipy.sparse.csr_matrix (``"pifa"``, ``"pifa+pmi"``) or float32 array (``"pmi"``), shape (C, *).
    """
    if kind not in REPRESENTATIONS:
        raise ConfigurationError(f"representation={kind!r} is not one of {', '.join(REPRESENTATIONS)}")
    if kind == "pifa":
        return pifa(X, Y)
    E = pmi_embeddings(Y, dim, seed=seed)
    if kind == "pmi":
        return E
    V = pifa(X, Y)
    scale = np.float32(1 / math.sqrt(2))
    return sp.hstack([V * scale, sp.csr_matrix(E * scale)], format="csr", dtype=np.float32)


# -- the shape --------------------------------------------------------------------------------------------
def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigurationError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def level_arities(n_labels: int, branching: int, max_leaf_size: int) -> tuple[int, ...]:
    """Arity of each clustering level of the tree :func:`build_tree` makes, root first.

    ``()`` when ``n_labels <= max_leaf_size`` (the flat tree). Otherwise ``(r, branching, ..., branching)`` of
    length ``L``, the least with ``branching**L >= N = ceil(n_labels / max_leaf_size)``, and
    ``r = ceil(N / branching**(L-1))`` (``2 <= r <= branching``). A node with fewer labels than its level's
    arity gets one child per label.
    """
    n_labels = _check_int("n_labels", n_labels, 1)
    branching = _check_int("branching", branching, 2)
    max_leaf_size = _check_int("max_leaf_size", max_leaf_size, 1)
    needed = -(-n_labels // max_leaf_size)
    if needed <= 1:
        return ()
    depth, capacity = 1, branching
    while capacity < needed:
        depth, capacity = depth + 1, capacity * branching
    below = branching ** (depth - 1)
    return (-(-needed // below),) + (branching,) * (depth - 1)


def frequent_labels(Y: Any, share: float, max_count: int) -> np.ndarray:
    """The labels positive on at least ``share`` of the rows of ``Y``, the ``max_count`` most frequent of them
    (ties to the lower id), as sorted int64 ids: :func:`build_tree`'s ``separate``. ``share`` 0 gives none.

    In a leaf cluster, every row on which one of its labels is positive trains the rankers of all its labels, so a
    label positive on most rows makes its leaf-mates' rankers train on most rows (on wordnet-hypernyms, the leaves of
    its labels on 100%, 56% and 44% of the rows were 43% of the training work)."""
    if isinstance(share, bool) or not isinstance(share, (int, float, np.floating)) or not 0 <= share <= 1:
        raise ConfigurationError(f"share={share!r} must be a number in [0, 1]")
    max_count = _check_int("max_count", max_count, 0)
    Y = as_label_matrix(Y)
    if share == 0 or Y.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    counts = np.bincount(Y.indices, minlength=Y.shape[1])  # rows per label (a label matrix holds no duplicates)
    ids = np.flatnonzero(counts >= share * Y.shape[0])
    ids = ids[np.argsort(-counts[ids], kind="stable")[:max_count]]
    return np.sort(ids).astype(np.int64)


# -- clustering -------------------------------------------------------------------------------------------
@dataclass
class _Layout:
    """The unit label matrix as CSR rows ordered by cluster, with every nonzero tagged by its group.

    Row ``i`` is label ``labels[i]``; the rows of cluster ``c`` are consecutive and the clusters are in path
    order (``cluster`` does not decrease). The *group* of a nonzero is its (cluster, feature) pair; the groups
    of a cluster have consecutive ids, in feature order, and ``group_cluster[g]`` is the cluster of group
    ``g``. So one cluster's work touches one stretch of rows and one stretch of groups.
    """

    labels: np.ndarray  # int64 (C,)
    cluster: np.ndarray  # int64 (C,)
    indptr: np.ndarray  # int64 (C + 1,)
    data: np.ndarray  # float64 (nnz,)
    group: np.ndarray  # int32, or int64 for 2**31 nonzeros or more (nnz,)
    group_cluster: np.ndarray  # int64 (G,)

    @classmethod
    def from_matrix(cls, R: sp.csr_matrix) -> _Layout:
        """All labels in cluster 0, in id order; one group per feature that some label uses."""
        C = R.shape[0]
        used = np.zeros(R.shape[1], dtype=bool)
        used[R.indices] = True
        dense = np.cumsum(used) - 1
        group = dense[R.indices].astype(np.int32 if R.nnz < 2**31 else np.int64)
        return cls(
            np.arange(C, dtype=np.int64),
            np.zeros(C, dtype=np.int64),
            R.indptr.astype(np.int64),
            R.data.astype(np.float64, copy=False),
            group,
            np.zeros(int(used.sum()), dtype=np.int64),
        )

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def group_sums(self, weight: np.ndarray) -> np.ndarray:
        """Per group, ``sum(data * weight[row])``: the sums of a 0/1 weighted set of rows, feature by feature."""
        per_nonzero = self.data * np.repeat(weight, self.lengths)
        return np.bincount(self.group, weights=per_nonzero, minlength=self.group_cluster.size)

    def rows_sums(self, rows: np.ndarray) -> np.ndarray:
        """Per group, the sum of the nonzeros of the given rows only (work in proportion to their nonzeros)."""
        lengths = self.lengths[rows]
        nonzeros = np.repeat(self.indptr[rows] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        nonzeros += np.arange(nonzeros.size, dtype=np.int64)
        return np.bincount(self.group[nonzeros], weights=self.data[nonzeros], minlength=self.group_cluster.size)

    def row_dots(self, values: np.ndarray) -> np.ndarray:
        """Per row, ``sum(data * values[group])``: each row's dot product with its own cluster's vector."""
        out = np.zeros(self.labels.size)
        filled = self.lengths > 0
        if self.data.size:
            # a reduceat over the starts of the non-empty rows sums exactly each row's nonzeros
            out[filled] = np.add.reduceat(self.data * values[self.group], self.indptr[:-1][filled])
        return out

    def split(self, side: np.ndarray, n_clusters: int) -> _Layout:
        """Cut every cluster ``c`` into ``2c`` (its side-0 rows) and ``2c + 1`` (side 1), renumbered densely.

        Rows keep their order within a side; a group splits into the side-0 and the side-1 part of its
        nonzeros, and the new groups of a cluster stay consecutive and in feature order.
        """
        child = 2 * self.cluster + side
        used = np.zeros(2 * n_clusters, dtype=bool)
        used[child] = True
        dense = np.cumsum(used) - 1
        order = np.argsort(child, kind="stable")

        # new group ids: the parent cluster's side-0 groups, then its side-1 groups, each in the old order
        G = self.group_cluster.size
        key = np.repeat(side.astype(np.int64) * G, self.lengths)  # side * G + group, per nonzero
        key += self.group
        has = np.zeros(2 * G, dtype=bool)
        has[key] = True
        has2 = has.reshape(2, G)
        before = np.zeros((2, G + 1), dtype=np.int64)
        np.cumsum(has2, axis=1, out=before[:, 1:])
        group_start = np.concatenate([[0], np.cumsum(np.bincount(self.group_cluster, minlength=n_clusters))])
        start, stop = group_start[self.group_cluster], group_start[self.group_cluster + 1]
        new_id = np.concatenate([before[1, start] + before[0, :-1], before[0, stop] + before[1, :-1]])
        n_groups = int(before[0, -1] + before[1, -1])
        group_cluster = np.empty(n_groups, dtype=np.int64)
        group_cluster[new_id[has]] = dense[2 * np.tile(self.group_cluster, 2) + np.repeat([0, 1], G)][has]
        group = new_id[key].astype(self.group.dtype)
        del key, has

        # move the rows (with their nonzeros) into the new order: scipy's row gather, in compiled code
        moved = sp.csr_matrix((self.data, group, self.indptr), shape=(self.labels.size, max(n_groups, 1)))[order]
        return _Layout(
            self.labels[order],
            dense[child][order],
            moved.indptr.astype(np.int64),
            moved.data,
            moved.indices.astype(self.group.dtype, copy=False),
            group_cluster,
        )


def _unit_label_matrix(label_repr: Any) -> sp.csr_matrix:
    """``label_repr`` as float64 CSR with unit (or zero) rows; a clear error for anything else."""
    if sp.issparse(label_repr):
        if label_repr.ndim != 2:
            raise ConfigurationError(f"label_repr must be 2-D (n_labels, dim); got shape {label_repr.shape}")
        R = sp.csr_matrix(label_repr, dtype=np.float64, copy=True)
    else:
        arr = np.asarray(label_repr)
        if arr.ndim != 2:
            raise ConfigurationError(f"label_repr must be 2-D (n_labels, dim); got an array of shape {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
            raise ConfigurationError(f"label_repr must hold real numbers; got dtype {arr.dtype}")
        R = sp.csr_matrix(arr.astype(np.float64, copy=False))
    if R.shape[0] < 1:
        raise ConfigurationError("label_repr must have at least one row (one per label); got 0")
    if R.nnz and not np.all(np.isfinite(R.data)):
        raise ConfigurationError("label_repr holds a NaN or infinite value")
    R.sum_duplicates()
    R.eliminate_zeros()
    R = _normalise_rows(R)
    R.sort_indices()
    return R


def _balanced_sides(
    score: np.ndarray, cluster: np.ndarray, tie_order: np.ndarray, first: np.ndarray, n_left: np.ndarray
) -> np.ndarray:
    """Side (0/1, int8) of every label: the ``n_left[c]`` highest scores of cluster ``c`` go to side 0.

    Equal scores are ranked in the order of ``tie_order`` (a random permutation of the labels); ``first[c]``
    is the number of labels of the clusters before ``c``. A cluster with ``n_left`` equal to its size keeps
    every label on side 0.
    """
    C = score.size
    # rank by (score descending, tie order), then by (cluster, that rank): the keys are unique, so the result
    # does not depend on the sorting algorithm (np.lexsort gives the same, about 3x slower)
    by_score = tie_order[np.argsort(-score[tie_order], kind="stable")]
    rank = np.empty(C, dtype=np.int64)
    rank[by_score] = np.arange(C, dtype=np.int64)
    order = np.argsort(cluster * C + rank)
    rank[order] = np.arange(C, dtype=np.int64)
    rank -= first[cluster]
    return (rank >= n_left[cluster]).astype(np.int8)


def _side_sizes(
    score: np.ndarray, cluster: np.ndarray, balanced: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Labels of side 0 per cluster: ``balanced`` where ``lo == hi``, else the labels that score above 0 (nearer
    ``c0`` than ``c1``: plain spherical 2-means) clipped to ``[lo, hi]``."""
    if np.array_equal(lo, hi):
        return balanced
    nearer0 = np.bincount(cluster, weights=(score > 0).astype(np.float64), minlength=balanced.size)
    return np.clip(nearer0.astype(np.int64), lo, hi)


def _bisect(
    layout: _Layout, parts: np.ndarray, rng: np.random.Generator, max_iter: int, tol: float, imbalance: float = 0.0
) -> tuple[_Layout, np.ndarray]:
    """One round: cut every cluster that must still become ``p >= 2`` parts into ``p // 2`` and ``p - p // 2``.

    With ``imbalance`` b > 0 side 0 of a cluster of ``n`` labels holds the labels nearer its centroid, clipped
    to ``t - b (t - a)`` .. ``t + b (n - (p - a) - t)`` labels, where ``t = n a // p`` is the balanced count
    and ``a = p // 2`` the parts of side 0 (each part keeps at least one label); b = 0 is the balanced cut.

    Returns the new layout (the two halves of a cluster are neighbours, side 0 first) and the parts each new
    cluster must still become.
    """
    cluster = layout.cluster
    C = cluster.size
    n_clusters = parts.size
    sizes = np.bincount(cluster, minlength=n_clusters)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    cut = parts > 1
    left_parts = np.where(cut, parts // 2, parts)
    n_left = sizes * left_parts // parts  # = sizes where not cut
    # the range side 0 may take (lo = hi = n_left where not cut, and everywhere when balanced)
    lo = n_left - np.floor(imbalance * (n_left - left_parts)).astype(np.int64)
    hi = n_left + np.floor(imbalance * (sizes - (parts - left_parts) - n_left)).astype(np.int64)
    lo, hi = np.where(cut, lo, n_left), np.where(cut, hi, n_left)
    active = cut[cluster]
    n_active = int(sizes[cut].sum())

    # seeds: two distinct random labels of every cluster that is cut (Parabel's initialisation)
    cut_ids = np.flatnonzero(cut)
    i0 = rng.integers(0, sizes[cut_ids])
    i1 = (i0 + 1 + rng.integers(0, sizes[cut_ids] - 1)) % sizes[cut_ids]
    seed0, seed1 = first[cut_ids] + i0, first[cut_ids] + i1
    tie_order = rng.permutation(C)

    totals = layout.group_sums(active.astype(np.float64))

    groups_per_cluster = np.bincount(layout.group_cluster, minlength=n_clusters)

    def scores(c0: np.ndarray, c1: np.ndarray) -> tuple[np.ndarray, float]:
        """``v . (c0/|c0| - c1/|c1|)`` per label from the group sums, and ``|c0| + |c1|`` summed."""
        n0 = np.sqrt(np.bincount(layout.group_cluster, weights=c0 * c0, minlength=n_clusters))
        n1 = np.sqrt(np.bincount(layout.group_cluster, weights=c1 * c1, minlength=n_clusters))
        inv0 = np.divide(1.0, n0, out=np.zeros_like(n0), where=n0 > 0)  # an empty centroid scores 0
        inv1 = np.divide(1.0, n1, out=np.zeros_like(n1), where=n1 > 0)
        # the groups are in cluster order: spread the per-cluster scales by repeat, not by a gather
        direction = c0 * np.repeat(inv0, groups_per_cluster)
        direction -= c1 * np.repeat(inv1, groups_per_cluster)
        return layout.row_dots(direction), float(n0.sum() + n1.sum())

    score, _ = scores(layout.rows_sums(seed0), layout.rows_sums(seed1))
    side = _balanced_sides(score, cluster, tie_order, first, _side_sizes(score, cluster, n_left, lo, hi))
    objective = -np.inf
    c0 = layout.group_sums((active & (side == 0)).astype(np.float64))
    for _ in range(max_iter):
        score, new_objective = scores(c0, totals - c0)
        # stop when the mean cosine to the own centroid gains less than tol (Parabel's rule, over the level)
        if new_objective - objective < tol * n_active:
            break
        objective = new_objective
        new_side = _balanced_sides(score, cluster, tie_order, first, _side_sizes(score, cluster, n_left, lo, hi))
        moved = np.flatnonzero(new_side != side)
        if not moved.size:
            break
        # later rounds move few labels: update the side-0 sums by theirs instead of summing again
        c0 += layout.rows_sums(moved[new_side[moved] == 0]) - layout.rows_sums(moved[new_side[moved] == 1])
        side = new_side

    used = np.zeros(2 * n_clusters, dtype=bool)
    used[2 * cluster + side] = True
    child_parts = np.stack([left_parts, parts - left_parts], axis=1).ravel()[used]
    return layout.split(side, n_clusters), child_parts


def _tree_from_levels(levels: list[np.ndarray], n_labels: int) -> LabelTree:
    """The LabelTree whose level ``t + 1`` nodes are the clusters ``levels[t]`` (cluster id of every label)."""
    offsets = []
    above, n_above = np.zeros(n_labels, dtype=np.int64), 1
    for nodes in levels:
        n_nodes = int(nodes.max()) + 1
        parent = np.empty(n_nodes, dtype=np.int64)
        parent[nodes] = above
        assert np.all(np.diff(parent) >= 0), "cluster ids must be grouped by parent"
        offsets.append(np.concatenate([[0], np.cumsum(np.bincount(parent, minlength=n_above))]).astype(np.int64))
        above, n_above = nodes, n_nodes
    offsets.append(np.concatenate([[0], np.cumsum(np.bincount(above, minlength=n_above))]).astype(np.int64))
    return LabelTree(tuple(offsets), np.argsort(above, kind="stable").astype(np.int64))


def build_tree(
    label_repr: Any,
    *,
    branching: int = 16,
    max_leaf_size: int = 100,
    seed: int = 0,
    max_iter: int = 20,
    tol: float = 1e-4,
    imbalance: float = 0.0,
    separate: Any = None,
) -> LabelTree:
    """Cluster labels recursively with balanced spherical 2-means into a tree of uniform depth.

    The rule, the shape and the cost are described in the module's docstring; in short, every split of a
    node of ``n`` labels into ``k`` children gives children of ``floor(n/k)`` or ``ceil(n/k)`` labels, every
    leaf cluster holds at most ``max_leaf_size`` labels, every label is at depth ``D`` and
    ``tree.children(D - 1, leaf)`` are the label positions of a leaf cluster.

    Parameters
    ----------
    label_repr : sparse matrix or 2-D array, shape (C, d)
        One row per label (e.g. :func:`pifa`). Rows are normalised to unit L2 norm here. A zero row has cosine
        0 with every centroid: it never moves a centroid and its score is 0, so the balance constraint alone
        places it, among the labels of score 0, by a seeded random order.
    branching : int, >= 2
        Arity of the levels below the root; the root gets the fewest children that suffice
        (:func:`level_arities`).
    max_leaf_size : int, >= 1
        Most labels under one leaf cluster. ``C <= max_leaf_size`` gives the flat tree (depth 1).
    seed : int, >= 0
        Seeds the 2-means initialisations (two random labels per cluster) and the order that breaks ties.
        The same seed gives the same tree; another seed another tree.
    max_iter : int, >= 1
        Most centroid updates per bisection round.
    tol : float, >= 0
        A round stops when the mean cosine between its labels and their centroids gains less than ``tol``
        (Parabel's ``clustering_eps``), or when no label changes side.
    imbalance : float in [0, 1]
        0 (the default): balanced splits, as above. b > 0 lets every bisection put the labels on the side of
        their nearer centroid (plain spherical 2-means, Bonsai's unbalanced clusters), within a fraction b of
        the room between the balanced count and the most uneven cut that leaves every part a label; then the
        nodes of a level differ in size, and a leaf cluster may hold more than ``max_leaf_size`` labels.
    separate : sequence of int, optional
        Label ids (at most ``max_leaf_size``, distinct) that get a branch of their own: the other labels are
        clustered as above, and these form one more leaf cluster, reached from the root by a chain of one node
        per level (the root's last child, each node's only child: a node with a single child is certain given its
        parent). For labels positive on a large share of the rows (:func:`frequent_labels`): in a leaf cluster of
        the other labels, each would make every row it is positive on a training row of all its leaf-mates'
        rankers. Ignored (no branch) when the other labels fit in one leaf, or when empty.

    Returns
    -------
    LabelTree
    """
    branching = _check_int("branching", branching, 2)
    max_leaf_size = _check_int("max_leaf_size", max_leaf_size, 1)
    seed = _check_int("seed", seed, 0)
    max_iter = _check_int("max_iter", max_iter, 1)
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating)) or not (0 <= tol < math.inf):
        raise ConfigurationError(f"tol={tol!r} must be a finite number >= 0")
    if isinstance(imbalance, bool) or not isinstance(imbalance, (int, float, np.floating)) or not 0 <= imbalance <= 1:
        raise ConfigurationError(f"imbalance={imbalance!r} must be a number in [0, 1]")
    R = _unit_label_matrix(label_repr)
    C = R.shape[0]
    own = _separate_ids(separate, C, max_leaf_size)
    rest = np.setdiff1d(np.arange(C, dtype=np.int64), own)
    if not level_arities(rest.size, branching, max_leaf_size):  # the others fit in one leaf: no branch of its own
        own, rest = own[:0], np.arange(C, dtype=np.int64)
        if not level_arities(C, branching, max_leaf_size):
            return LabelTree.flat(C)
    layout = _Layout.from_matrix(R[rest] if own.size else R)
    del R  # the layout holds its own copy: no second C x d matrix while clustering
    levels = _cluster_levels(layout, branching, max_leaf_size, seed, max_iter, float(tol), float(imbalance))
    if own.size:
        levels = _with_own_branch(levels, rest, own, C)
    return _tree_from_levels(levels, C)


def leaf_coherence(label_repr: Any, tree: LabelTree, exclude: Any = None) -> float:
    """How well the labels cluster: the mean cosine between each label's vector and its leaf cluster's centroid,

        mean over l in S of cos(v_l, sum of v_m over the labels m in S of l's leaf cluster),

    ``v`` the unit rows of ``label_repr``, ``S`` the labels with a non-zero row that are not in ``exclude`` (e.g.
    :func:`frequent_labels`, whose branch groups labels by frequency, not by likeness), a leaf cluster the labels
    under one node of the tree's last level above them. 1 when the labels of every leaf point the same way, about
    ``1 / sqrt(leaf size)`` for orthogonal ones. :class:`~sparsexc.tree.LabelTreeModel` reads it on its first
    tree to choose the branching (docs/tree.md, "Branching from the labels' coherence").
    """
    R = _unit_label_matrix(label_repr)
    C = R.shape[0]
    if tree.n_labels != C:
        raise ConfigurationError(f"the tree has {tree.n_labels} labels but label_repr has {C} rows")
    keep = np.diff(R.indptr) > 0
    if exclude is not None:
        keep[_separate_ids(exclude, C, C, name="exclude")] = False
    if not keep.any():
        return 0.0
    last = tree.depth - 1
    order = tree.label_order
    placed, weight = R[order], keep[order].astype(np.float64)  # labels in tree order: a leaf is one row range
    own = np.zeros(C)
    for leaf in range(tree.n_nodes(last)):  # one leaf at a time: no C x d matrix of centroid rows
        span = tree.children(last, leaf)
        rows = placed[span.start : span.stop]
        total = sp.csr_matrix(weight[span.start : span.stop]) @ rows  # (1, d): the sum of the leaf's kept vectors
        norm = math.sqrt(float(total.multiply(total).sum()))
        if norm > 0:
            own[order[span.start : span.stop]] = (rows @ total.T).toarray().ravel() / norm
    return float(own[keep].mean())


def _separate_ids(separate: Any, n_labels: int, max_leaf_size: int, name: str = "separate") -> np.ndarray:
    """``separate`` (:func:`build_tree`; the argument ``name``) checked: sorted distinct int64 label ids, at most
    ``max_leaf_size``."""
    if separate is None:
        return np.empty(0, dtype=np.int64)
    ids = np.asarray(separate)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise ConfigurationError(f"{name} must be a 1-D sequence of label ids; got {ids.dtype} of shape {ids.shape}")
    ids = ids.astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= n_labels):
        raise ConfigurationError(f"{name} holds a label id outside 0..{n_labels - 1}")
    if np.unique(ids).size != ids.size or ids.size > max_leaf_size:
        raise ConfigurationError(f"{name} must hold distinct label ids, at most max_leaf_size={max_leaf_size}")
    return np.sort(ids)


def _with_own_branch(levels: list[np.ndarray], rest: np.ndarray, own: np.ndarray, n_labels: int) -> list[np.ndarray]:
    """The cluster ids of all ``n_labels`` labels per level: ``rest``'s from ``levels`` (the clustering of those
    labels alone, in ``rest``'s order), ``own``'s one more node per level, after the others: its parent is the
    previous level's extra node (the root for the first), so the cluster ids stay grouped by parent."""
    out = []
    for nodes in levels:
        full = np.empty(n_labels, dtype=np.int64)
        full[rest] = nodes
        full[own] = int(nodes.max()) + 1
        out.append(full)
    return out


def _cluster_levels(
    layout: _Layout, branching: int, max_leaf_size: int, seed: int, max_iter: int, tol: float, imbalance: float
) -> list[np.ndarray]:
    """The cluster id of every label (row of the unit label matrix ``layout`` holds, all in one cluster) on each
    clustering level, by :func:`build_tree`'s rule; the labels do not fit in one leaf."""
    C = layout.labels.shape[0]
    arities = level_arities(C, branching, max_leaf_size)
    rng = np.random.default_rng(seed)
    levels = []
    for arity in arities:
        parts = np.minimum(arity, np.bincount(layout.cluster))
        while np.any(parts > 1):
            layout, parts = _bisect(layout, parts, rng, max_iter, tol, imbalance)
        of_label = np.empty(C, dtype=np.int64)
        of_label[layout.labels] = layout.cluster
        levels.append(of_label)
    return levels
