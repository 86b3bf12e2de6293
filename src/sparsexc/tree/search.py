"""Beam search over a label tree whose node classifiers are sparse linear models.

The model
---------
A :class:`~sparsexc.tree.structure.LabelTree` of depth ``D`` and, for every level ``t = 0 .. D-1``, a CSR
matrix ``weights[t]`` of shape ``(n_nodes(t + 1), d + 1)``: row ``j`` is the weight vector of node ``j`` of
level ``t + 1`` (on the last level, of label *position* ``j``, i.e. label ``tree.label_order[j]``) and its last
column is the weight of a bias feature whose value is ``bias`` (1.0 unless told).

Scores
------
The score of node ``v`` for a row ``x`` is ``s_v = x . w_v[:d] + bias * w_v[d]``. Its probability given that
its parent is relevant is ``p_v = sigma(s_v)`` for ``transform="sigmoid"`` (logistic rankers, napkinXC) or
``p_v = exp(-max(0, 1 - s_v)^q)`` for ``transform="squared_hinge"`` (the squared-hinge rankers of Parabel,
Bonsai and omikuji, q = 2; PECOS's "l3-hinge", q = 3, the default :data:`HINGE_POWER`, argument ``power``) times
a tail that keeps it strictly increasing (below). The score of label ``l`` is the
product of the probabilities of the nodes on its path from the root, the root itself excluded (a probabilistic
label tree, section 1 of the label-tree notes; PECOS's ``sigmoid`` and ``l2-hinge`` combiners, Parabel's and
omikuji's sum of ``-max(0, 1 - s)^2`` with one ``exp`` at the leaf)::

    score(l) = prod_{v on root -> l, v != root} p_v = exp( sum_v log p_v ),
    log p_v = -log(1 + exp(-s_v))                                    (sigmoid)
    log p_v = -max(0, 1 - s_v)^q - eps * log(1 + exp(1 - s_v))       (squared_hinge, eps = HINGE_TAIL).

The tail: ``exp(-max(0, 1 - s)^2)`` alone is 1 for every margin ``s >= 1``, so every label whose classifiers
are all confident scored exactly 1 and ties went to the lower label id (on wordnet-hypernyms, confident wrong
labels ranked above the synset that is in every row). The factor ``sigma(s - 1)^eps`` makes the score strictly
increasing in every margin (it tends to 1 as s grows, so a certain node, margin 30, still scores 1), and with
``eps = 0.01`` it changes the score of a margin below 1 by at most a few percent; the ranking of the squared
hinge's peers is otherwise kept (docs/tree.md, "Scores").

Path scores are summed in the log domain (float64), so deep paths do not underflow before the end; the
returned score is ``exp`` of the sum, as float32.

The search
----------
Level by level, each row keeps the ``beam`` nodes of best path score (ties to the lower node index), expands
their children and scores them; on the last level it returns the ``k`` labels of best score, best first, ties
to the lower label id (:func:`sparsexc._topk.topk_rows`, the numpy twin of
:func:`sparsexc.core.topk_lower_id_ties`). A label the beam did not reach scores 0:
the result is the top-k of the vector that holds the path score of every reached label and 0 elsewhere, so
when the beam reaches fewer than ``k`` labels the rest are the unreached labels of lowest id, with score 0.
A row's cost is ``O(beam x arity x depth x nnz(x) x density(W))``, never ``O(C)``; memory is bounded by
``batch_size x beam x max arity`` scores.

How children are scored
-----------------------
:func:`pair_scores` scores arbitrary (row, node) pairs by looking up ``W[node, j]`` for every feature ``j`` of
the row: ``P x nnz(x)`` binary searches. The search scores all children of a parent at once instead: every
level's weights are kept *feature-major* (:class:`LevelIndex`), one key per (feature, parent) holding that
feature's weights for the parent's children, so all (row, parent) pairs of a batch are scored as **one** sparse
x sparse product that touches only the non-zero weights of the features the row has, and each (row, parent,
feature) is looked up once instead of once per sibling. For a large search (:func:`kernel_pays`) the product is
computed by a compiled kernel (:mod:`sparsexc.tree._search_kernel`, numba, GIL released) that takes a row's
pairs together, reads each of its features once, matches the feature's keys against the row's parents and
accumulates straight into the (pair, child) scores, in the order and precision of scipy's product (bit for bit
the same scores), without building the query matrix. On the debian-deps-shaped benchmark
(``benchmarks/tree_search_speed.py``: d = 40,000, C = 19,000, leaves of 100 labels) scoring a beam's children
with the parent-major layout before it took 0.1-0.4 s per 1,000 rows against 17-35 s with :func:`pair_scores`,
and the whole search 160-390 ms per 1,000 rows on one thread; the feature-major layout takes 0.90-0.91x the
prediction CPU of the parent-major one on debian-deps' and wordnet-hypernyms' trees (docs/tree.md, "Threads").
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sparsexc._topk import topk_rows
from sparsexc.errors import ConfigurationError
from sparsexc.tree._search_kernel import (
    children_scores_kernel,
    hinge_candidates_kernel,
    kth_of_rows_kernel,
    layout_counts_kernel,
    layout_csr_kernel,
    layout_fill_kernel,
    numba_started,
    top_of_rows_kernel,
)
from sparsexc.tree.structure import LabelTree

__all__ = [
    "HINGE_POWER",
    "HINGE_TAIL",
    "TRANSFORMS",
    "LevelIndex",
    "TreeSearcher",
    "beam_search",
    "log_probabilities",
    "pair_scores",
    "search_candidates",
]

TRANSFORMS = ("sigmoid", "squared_hinge")
# weight of the squared hinge's tail log sigma(s - 1): 0.001, 0.01 and 0.1 gave hold-out P@k within 0.15 of each other
# once the certain nodes were in (docs/tree.md, "Scores")
HINGE_TAIL = 0.01
# the exponent p of the squared hinge's node score exp(-max(0, 1 - s)^p) (PECOS's "l3-hinge"; Parabel and omikuji
# use 2): on 20% hold-outs of the training rows of seven sets, 3 raised PSP@5 by up to 0.85 and P@5 by up to 0.39
# against 2, and moved P@1/P@3 by at most 0.25 either way (docs/tree.md, "Scores")
HINGE_POWER = 3.0
_CHUNK = 1 << 18  # weights keyed at once when numpy lays out a level: bounds those temporaries
# a row's feature whose keys (parents using it) number at most this many per parent of the row is scanned, else each
# parent is searched among them: 2, 4 and 8 scored wordnet-hypernyms' and debian-deps' levels within 5% of each other
_SCAN_FACTOR = 4
# weights per thread, at least, when a level is laid out on several threads (below that a thread's start costs more)
_LAYOUT_PER_THREAD = 1 << 18
# a level of this many weights or more is laid out (and read back) by the kernels whatever the search uses: numpy's
# way holds a CSC copy of the level (8 bytes per weight), numba's one-off start (about 0.25 CPU s) is small beside it
_KERNEL_MIN_WEIGHTS = 1 << 22
# rows searched at once: the batch's (row, beam node, child) scores and (pair, feature) lookups are its memory
# (debian-deps, beam 10: about 125 MiB at 4,096 rows, a quarter at 1,024, for the same CPU time)
BATCH_SIZE = 1024
_PAIR_CHUNK = 1 << 20  # (pair, feature) entries looked up at once by pair_scores: bounds its temporaries
# a search that scores fewer (row, child) candidates than this runs without the compiled kernels unless numba has
# started in the process: with them (children's scores, the squared hinge's pruning, the ensemble's mean) a search
# took 2.9-3.3e-8 CPU s less per candidate on debian-deps (1 and 3 trees: 40-45% of its CPU), numba's start costs
# about 0.25 s (0.27 measured with all kernels cached), and a small default fit's cross-validation had paid it for
# nothing (flags 0.05 -> 0.26 CPU s); bibtex's test split (2.5M candidates a tree) predicted slower with them
KERNEL_MIN_CANDIDATES = 10_000_000
# log-scores closer than this to a row's k-th best may tie with it once exponentiated and rounded to float32
# (relative spacing 2^-23 = 1.2e-7 for normal numbers): 8x that, so the last level's top k needs no other exp
_TIE_MARGIN = 1e-6
_NORMAL_FLOAT32 = float(np.finfo(np.float32).tiny)
# log-scores above this exponentiate to normal float32 numbers (log of float32's tiny is -87.3)
_LOG_NORMAL_FLOOR = -80.0
# the pruning's histogram of bounds below a row's best (_pruned_log_scores): its bin width is how far its floor can
# sit below the need-th best bound (as many bins as candidates: a row whose need-th bound is further down keeps all)
_PRUNE_BIN = 0.05


# -- scores of (row, node) pairs ----------------------------------------------------------------------------


def _expand_rows(X: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every pair ``q`` (a row of X), its features: (pair index, feature id, value) of each stored entry."""
    starts = X.indptr[rows].astype(np.int64)
    counts = X.indptr[rows + 1].astype(np.int64) - starts
    pair = np.repeat(np.arange(rows.shape[0], dtype=np.int64), counts)
    # position of each expanded entry in X.indices: its row's start plus its rank inside the row
    first = np.cumsum(counts) - counts
    pos = np.repeat(starts - first, counts) + np.arange(pair.shape[0], dtype=np.int64)
    return pair, X.indices[pos].astype(np.int64), X.data[pos]


def pair_scores(
    X: sp.csr_matrix, W: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, bias: float = 1.0
) -> np.ndarray:
    """Scores ``s_p = X[rows[p]] . W[cols[p], :d] + bias * W[cols[p], d]`` of P (row, node) pairs.

    Parameters
    ----------
    X : CSR (n, d)
        Features.
    W : CSR (m, d + 1)
        One weight vector per node, the bias weight last.
    rows, cols : int arrays (P,)
        The pairs: a row of X and a row of W.
    bias : float
        Value of the bias feature.

    Returns
    -------
    float32 array (P,)

    Every stored feature ``j`` of a pair's row is looked up in its node's CSR row by a binary search that
    runs on all (pair, feature) entries of a chunk at once (about 1M entries per chunk); the cost is
    ``O(sum_p nnz(X[rows[p]]) x log nnz(W[cols[p]]))`` and there is no Python loop per pair or per row.
    Scoring every child of a parent this way repeats each lookup once per sibling:
    :meth:`LevelIndex.children_scores` shares it, which is why the beam search uses that instead.
    """
    rows = np.asarray(rows, dtype=np.int64).ravel()
    cols = np.asarray(cols, dtype=np.int64).ravel()
    if rows.shape != cols.shape:
        raise ConfigurationError(f"rows and cols must have the same length; got {rows.shape[0]} and {cols.shape[0]}")
    d = X.shape[1]
    if W.shape[1] != d + 1:
        raise ConfigurationError(f"W must have d + 1 = {d + 1} columns (the bias weight last); got {W.shape[1]}")
    X, W = _canonical(X), _canonical(W)
    out = _lookup(W, cols, np.full(cols.shape[0], d, dtype=np.int64)) * float(bias)
    nnz = np.diff(X.indptr).astype(np.int64)[rows]
    # chunks of whole pairs, each holding about _PAIR_CHUNK expanded entries
    ends = np.searchsorted(np.cumsum(nnz), np.arange(1, int(nnz.sum()) // _PAIR_CHUNK + 1) * _PAIR_CHUNK)
    start = 0
    for end in np.unique(np.append(ends, rows.shape[0])):
        if end <= start:
            continue
        pair, feat, val = _expand_rows(X, rows[start:end])
        w = _lookup(W, cols[start:end][pair], feat)
        out[start:end] += np.bincount(pair, weights=w * val, minlength=int(end) - start)
        start = int(end)
    return out.astype(np.float32)


def _lookup(M: sp.csr_matrix, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """``M[row[i], col[i]]`` (float64, 0 where not stored) for canonical CSR ``M``: a vectorised binary search
    in every queried row's sorted indices, ``ceil(log2(longest row + 1))`` steps over all queries at once."""
    lo = M.indptr[row].astype(np.int64)
    hi = M.indptr[row + 1].astype(np.int64)
    end = hi.copy()
    if M.nnz == 0 or row.size == 0:
        return np.zeros(row.shape[0], dtype=np.float64)
    longest = int(np.diff(M.indptr).max())
    for _ in range(max(1, longest).bit_length()):
        mid = (lo + hi) >> 1
        right = M.indices[np.minimum(mid, M.nnz - 1)] < col
        open_ = lo < hi
        lo = np.where(open_ & right, mid + 1, lo)
        hi = np.where(open_ & ~right, mid, hi)
    at = np.minimum(lo, M.nnz - 1)
    found = (lo < end) & (M.indices[at] == col)
    return np.where(found, M.data[at], 0.0).astype(np.float64)


def _canonical(M: sp.csr_matrix) -> sp.csr_matrix:
    """CSR with sorted, unique indices (binary searches and products rely on it); copies only when needed."""
    M = sp.csr_matrix(M)
    if not M.has_canonical_format:
        M = M.copy()
        M.sum_duplicates()
    return M


def log_probabilities(s: np.ndarray, transform: str, power: float = HINGE_POWER) -> np.ndarray:
    """``log p`` of node scores ``s`` (float64): ``-log(1 + e^{-s})`` (sigmoid) or
    ``-max(0, 1 - s)^power - HINGE_TAIL * log(1 + e^{1 - s})`` (squared_hinge; see the module docstring)."""
    if transform == "sigmoid":
        return -np.logaddexp(0.0, -np.asarray(s, dtype=np.float64))
    if transform == "squared_hinge":
        # in place on two float64 buffers: the same operations (bit for bit) as the formula, fewer passes
        u = np.subtract(1.0, s, dtype=np.float64)
        out = np.maximum(u, 0.0)
        if power == 2.0:
            np.square(out, out=out)
        elif power == 3.0:
            out *= np.square(out)
        else:
            np.power(out, power, out=out)
        np.logaddexp(0.0, u, out=u)
        u *= HINGE_TAIL
        np.negative(out, out=out)
        out -= u
        return out
    raise ConfigurationError(f"transform must be one of {', '.join(TRANSFORMS)}; got {transform!r}")


# -- one level's weights, feature-major ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LevelIndex:
    """The weights of one level laid out for scoring all children of a parent at once, feature by feature.

    A *key* is a (feature ``j``, parent ``p``) where some child of ``p`` has a non-zero weight on ``j``; keys are
    sorted by feature, then parent, and each holds that feature's weights for the parent's children.

    Attributes
    ----------
    feature_ptr : int32 or int64 array (d + 1,)
        The keys of feature ``j`` are ``feature_ptr[j]:feature_ptr[j + 1]`` (R keys in all).
    key_parents : unsigned int array (R,)
        Each key's parent, increasing within a feature, in the narrowest type that holds the level's parents
        (uint8 up to 256 parents, uint16 up to 65,536).
    block_indptr, block_ranks, block_data : arrays (R + 1,), (nnz,), (nnz,)
        The rows of a CSR matrix (R, max_arity) (:attr:`block`): row ``r`` holds the weights (float32) on its
        key's feature of the children of its key's parent, in the column of the child's rank among its siblings
        (in child order). The ranks are stored in the narrowest unsigned type that holds them (uint8 for up to
        256 children) and the row pointers in int32 where they fit.
    max_arity : int
        The widest parent's number of children (the block's columns).
    bias : float64 array (n_children,)
        ``bias * W[c, d]`` for every child ``c``.
    offsets : int64 array (n_parents + 1,)
        The tree's child offsets of this level.
    n_features : int
        ``d``.
    bias_weights : float32 array (n_children,) or None
        ``W[c, d]`` as stored (0 where not stored), before the factor ``bias`` (:meth:`build` always sets it and
        :attr:`bias_stored`; without them :meth:`weights` refuses).
    bias_stored : bool array (n_children,) or None
        Whether ``W`` stored an entry at ``(c, d)`` (an explicit zero included).
    csr_dtypes : (indices dtype, indptr dtype) or None
        The index dtypes of ``W``; None when ``W`` was not float32 in canonical format, so the layout does not
        hold it exactly and :meth:`weights` refuses.

    Why feature-major: a search scores every child of each of a row's (at most ``beam``) parents. Feature by
    feature, a row's feature is read once for all its parents, and its keys are the few parents that use it
    (scanned, or searched when many), next to each other in memory. The parent-major layout of stops 29-36 (one
    key per (parent, feature), found by a table or a bucket directory per (row, parent, feature)) took 1.3-2.2x
    the CPU per level on debian-deps' and wordnet-hypernyms' trees, and its keys and directory more memory.
    """

    feature_ptr: np.ndarray
    key_parents: np.ndarray
    block_indptr: np.ndarray
    block_ranks: np.ndarray
    block_data: np.ndarray
    max_arity: int
    bias: np.ndarray
    offsets: np.ndarray
    n_features: int
    bias_weights: np.ndarray | None = None
    bias_stored: np.ndarray | None = None
    csr_dtypes: tuple[np.dtype, np.dtype] | None = None

    @property
    def block(self) -> sp.csr_matrix:
        """The block as a scipy CSR matrix (R, max_arity), float32, int32 column ids (a copy of the ranks)."""
        shape = (self.key_parents.shape[0], self.max_arity)
        return sp.csr_matrix((self.block_data, self.block_ranks.astype(np.int32), self.block_indptr), shape=shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the layout's arrays (what a model that predicted holds for this level)."""
        arrays = (self.feature_ptr, self.key_parents, self.block_indptr, self.block_ranks, self.block_data)
        extra = (self.bias, self.offsets, self.bias_weights, self.bias_stored)
        return sum(a.nbytes for a in arrays) + sum(a.nbytes for a in extra if a is not None)

    @classmethod
    def build(
        cls,
        W: sp.csr_matrix,
        offsets: np.ndarray,
        bias: float = 1.0,
        *,
        compiled: bool | None = None,
        n_jobs: int = 1,
    ) -> LevelIndex:
        """Lay out ``W`` (n_children x (d + 1)) feature-major for the parents delimited by ``offsets``.

        ``compiled``: by the counting sort of :func:`~sparsexc.tree._search_kernel.layout_fill_kernel`, written
        straight into the layout's arrays (True), on up to ``n_jobs`` threads, each on a range of the features
        (a level of at least ``_LAYOUT_PER_THREAD`` weights per thread), or by scipy's CSC conversion, keyed in
        chunks of whole features (False); the same arrays either way (tested). None: compiled where numba has
        started in the process (:func:`~sparsexc.tree._search_kernel.numba_started`). A level of at least
        ``_KERNEL_MIN_WEIGHTS`` weights is always built by the kernels: scipy's CSC copy would hold 8 more bytes per
        weight while it is keyed, and numba's start is small beside such a build."""
        W = sp.csr_matrix(W)
        # float32 weights in canonical order are held exactly: weights() gives W back bit for bit
        exact = W.dtype == np.float32 and W.has_canonical_format
        csr_dtypes = (W.indices.dtype, W.indptr.dtype) if exact else None
        W = W if exact else _canonical(W)  # (the check is a pass over the indices: once)
        d = W.shape[1] - 1
        offsets = np.asarray(offsets, dtype=np.int64)
        n_parents = offsets.shape[0] - 1
        arity = np.diff(offsets)
        max_arity = int(arity.max()) if arity.size else 0
        bias_w = np.zeros(W.shape[0], dtype=np.float64)
        bias_stored = np.zeros(W.shape[0], dtype=bool)
        rank_dtype = _unsigned(max_arity)
        parent_dtype = _unsigned(n_parents)
        if _kernel_builds(compiled, W.nnz):
            # features in ranges, one thread each (the kernels release the GIL; each range writes its own entries)
            workers = max(1, min(int(n_jobs), W.nnz // _LAYOUT_PER_THREAD))
            feature_ptr = np.zeros(d + 1, dtype=np.int64)
            entry_ptr = np.zeros(d + 1, dtype=np.int64)
            ranges = _split(np.linspace(0, d, workers + 1).astype(np.int64))
            _side_by_side(
                lambda f0, f1: layout_counts_kernel(W.indptr, W.indices, offsets, d, f0, f1, feature_ptr, entry_ptr),
                ranges,
            )
            np.cumsum(feature_ptr, out=feature_ptr)
            np.cumsum(entry_ptr, out=entry_ptr)
            n_keys, stored = int(feature_ptr[-1]), int(entry_ptr[-1])
            key_parents = np.empty(n_keys, dtype=parent_dtype)
            indptr = np.empty(n_keys + 1, dtype=_index_dtype(stored))
            ranks = np.empty(stored, dtype=rank_dtype)
            data = np.empty(stored, dtype=np.float32)
            # ranges of about equal entries for the fill, which writes one entry at a time
            cuts = np.searchsorted(entry_ptr, np.arange(1, workers) * (stored / workers))
            _side_by_side(
                lambda f0, f1: layout_fill_kernel(
                    W.indptr, W.indices, W.data, offsets, d, f0, f1, feature_ptr, entry_ptr, key_parents, indptr,
                    ranks, data, bias_w, bias_stored,
                ),
                _split(np.concatenate([[0], np.clip(cuts, 0, d), [d]]).astype(np.int64)),
            )  # fmt: skip
            feature_ptr = feature_ptr.astype(_index_dtype(n_keys))
        else:
            feature_ptr, key_parents, indptr, ranks, data = _feature_major(W, offsets, bias_w, bias_stored)
            feature_ptr = feature_ptr.astype(_index_dtype(key_parents.shape[0]))
            key_parents, ranks = key_parents.astype(parent_dtype), ranks.astype(rank_dtype)
            indptr = indptr.astype(_index_dtype(data.shape[0]))
        return cls(
            feature_ptr, key_parents, indptr, ranks, data, max_arity, bias_w * float(bias), offsets, d,
            bias_weights=bias_w.astype(np.float32), bias_stored=bias_stored, csr_dtypes=csr_dtypes,
        )  # fmt: skip

    @property
    def n_weights(self) -> int:
        """Stored entries of ``W`` (the bias column's included): ``W.nnz`` without building ``W``."""
        stored = int(self.bias_stored.sum()) if self.bias_stored is not None else int(np.count_nonzero(self.bias))
        return int(self.block_data.shape[0]) + stored

    def weights(self, *, compiled: bool | None = None) -> sp.csr_matrix:
        """``W`` back from the layout: the CSR matrix :meth:`build` laid out, bit for bit (data, indices, indptr
        and their dtypes), so a model may keep the layout alone.

        A counting sort on the child: each entry's child (its key's parent's first child plus its rank) and
        feature (its key's) are read back feature by feature, so every row's features come in increasing order,
        and the stored bias entries (column ``d``) are put last. ``compiled``: by
        :func:`~sparsexc.tree._search_kernel.layout_csr_kernel` (no temporaries beyond the result), else by
        scipy's CSR -> CSC conversion of the transposed entries (a child id and a copy per entry more); None:
        compiled where numba has started; at least ``_KERNEL_MIN_WEIGHTS`` weights: always compiled.

        Raises
        ------
        ConfigurationError
            When the layout was built from weights it does not hold exactly (``csr_dtypes`` is None).
        """
        if self.csr_dtypes is None or self.bias_weights is None or self.bias_stored is None:
            raise ConfigurationError("this layout was built from weights that were not float32 CSR in canonical order")
        d, n_children = self.n_features, self.bias.shape[0]
        nnz = self.n_weights
        if _kernel_builds(compiled, nnz):
            indptr = np.zeros(n_children + 1, dtype=np.int64)
            indices = np.empty(nnz, dtype=self.csr_dtypes[0])
            data = np.empty(nnz, dtype=np.float32)
            layout_csr_kernel(
                self.feature_ptr, self.key_parents, self.block_indptr, self.block_ranks, self.block_data,
                self.offsets, self.bias_weights, self.bias_stored, indptr, indices, data,
            )  # fmt: skip
        else:
            # the entries as the CSR matrix of W's transpose (features x children); its CSC form is W's CSR form
            per_key = np.diff(self.block_indptr).astype(np.int64)
            child = np.repeat(self.offsets[self.key_parents.astype(np.int64)], per_key) + self.block_ranks
            with_bias = np.flatnonzero(self.bias_stored)
            row_ptr = np.append(self.block_indptr[self.feature_ptr].astype(np.int64), nnz)
            WT = sp.csr_matrix(
                (
                    np.concatenate([self.block_data, self.bias_weights[with_bias]]),
                    np.concatenate([child, with_bias]),  # both int64
                    row_ptr,
                ),
                shape=(d + 1, n_children),
            )
            Wc = WT.tocsc()
            indptr, indices, data = Wc.indptr, Wc.indices.astype(self.csr_dtypes[0]), Wc.data
        W = sp.csr_matrix((data, indices, indptr), shape=(n_children, d + 1))
        # scipy may narrow index dtypes on construction: put back the ones the layout was built from
        W.indices, W.indptr = (
            W.indices.astype(self.csr_dtypes[0], copy=False),
            W.indptr.astype(self.csr_dtypes[1], copy=False),
        )
        return W

    def children_scores(
        self, X: sp.csr_matrix, rows: np.ndarray, parents: np.ndarray, *, compiled: bool = True
    ) -> np.ndarray:
        """Scores of all children of ``parents[q]`` for row ``X[rows[q]]``: float32 (Q, max_arity).

        Column ``c`` of pair ``q`` is the child ``offsets[parents[q]] + c``; columns past the parent's arity
        are ``-inf``. The pair's features ``j`` are looked up as the keys ``(j, parent)`` of :attr:`block`
        (features no child of the parent uses drop out) and their weights accumulated in float32, feature by
        feature, then the float64 bias added: the sparse x sparse product ``query @ block`` of the query matrix
        of those keys. ``compiled``: by the kernel of :mod:`sparsexc.tree._search_kernel`, without building the
        query, the pairs of a row together (the search passes them row by row); otherwise by scipy's product.
        The two give the same scores bit for bit (tested).
        """
        if X.dtype != np.float32:  # the search's batches are float32 CSR already: no conversion on its hot path
            X = sp.csr_matrix(X, dtype=np.float32)
        # contiguous: a strided view (np.nonzero's rows) would make numba compile another variant of the kernel
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        parents = np.ascontiguousarray(parents, dtype=np.int64)
        if not compiled:
            return self._children_scores_product(X, rows, parents)
        scores = np.empty((rows.shape[0], self.max_arity), dtype=np.float32)
        children_scores_kernel(
            X.indptr, X.indices, X.data, rows, parents, self.feature_ptr, self.key_parents, self.block_indptr,
            self.block_ranks, self.block_data, self.bias, self.offsets, _SCAN_FACTOR, scores,
        )  # fmt: skip
        return scores

    def _children_scores_product(self, X: sp.csr_matrix, rows: np.ndarray, parents: np.ndarray) -> np.ndarray:
        """:meth:`children_scores` by scipy: the query matrix of the pairs' (feature, parent) keys, times
        :attr:`block`, plus the float64 bias."""
        Q = rows.shape[0]
        pair, feat, val = _expand_rows(X, rows)
        pos = self._key_rows(feat, parents[pair])
        hit = pos >= 0
        indptr = np.zeros(Q + 1, dtype=np.int64)
        np.cumsum(np.bincount(pair[hit], minlength=Q), out=indptr[1:])
        query = sp.csr_matrix((val[hit], pos[hit], indptr), shape=(Q, self.key_parents.shape[0]))
        scores = (query @ self.block).toarray().astype(np.float64)
        first = self.offsets[parents]
        arity = self.offsets[parents + 1] - first
        rank = np.arange(self.max_arity, dtype=np.int64)
        valid = rank[None, :] < arity[:, None]
        scores += self.bias[np.where(valid, first[:, None] + rank[None, :], 0)] if self.bias.size else 0.0
        scores[~valid] = -np.inf
        return scores.astype(np.float32)

    def _key_rows(self, feat: np.ndarray, parent: np.ndarray) -> np.ndarray:
        """Row of :attr:`block` of every key (``feat[i]``, ``parent[i]``), -1 where no child of the parent uses
        the feature: a vectorised binary search among each feature's keys (their parents are sorted)."""
        n_keys = self.key_parents.shape[0]
        if not n_keys or not feat.size:
            return np.full(feat.shape[0], -1, dtype=np.int64)
        lo = self.feature_ptr[feat].astype(np.int64)
        hi = self.feature_ptr[feat + 1].astype(np.int64)
        end = hi.copy()
        for _ in range(max(1, int(np.diff(self.feature_ptr).max())).bit_length()):
            mid = (lo + hi) >> 1
            right = self.key_parents[np.minimum(mid, n_keys - 1)] < parent
            open_ = lo < hi
            lo = np.where(open_ & right, mid + 1, lo)
            hi = np.where(open_ & ~right, mid, hi)
        at = np.minimum(lo, n_keys - 1)
        return np.where((lo < end) & (self.key_parents[at] == parent), lo, -1)


def _kernel_builds(compiled: bool | None, n_weights: int) -> bool:
    """Whether a layout of ``n_weights`` weights is built (or read back) by the kernels (see :meth:`LevelIndex.build`)."""
    return n_weights >= _KERNEL_MIN_WEIGHTS or (numba_started() if compiled is None else compiled)


def _split(bounds: np.ndarray) -> list[tuple[int, int]]:
    """The non-empty ranges ``[bounds[i], bounds[i + 1])``; the whole (empty) range where there are none (the
    range that ends at ``d`` also handles the bias column, so there is always one)."""
    ranges = [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]
    return ranges or [(int(bounds[0]), int(bounds[-1]))]


def _side_by_side(job: Callable[[int, int], None], ranges: list[tuple[int, int]]) -> None:
    """``job(f0, f1)`` for every range, on a thread each when there are several."""
    if len(ranges) <= 1:
        for f0, f1 in ranges:
            job(f0, f1)
        return
    with ThreadPoolExecutor(len(ranges)) as pool:
        list(pool.map(lambda r: job(*r), ranges))


def _unsigned(n: int) -> type[np.unsignedinteger]:
    """The narrowest unsigned integer type that holds 0 .. n - 1 (uint8 up to 256 values)."""
    return np.uint8 if n <= 1 << 8 else np.uint16 if n <= 1 << 16 else np.uint32


def _index_dtype(n: int) -> type[np.signedinteger]:
    """int32 for pointers up to ``n`` where they fit, else int64."""
    return np.int32 if n < 2**31 else np.int64


def _feature_major(
    W: sp.csr_matrix, offsets: np.ndarray, bias_w: np.ndarray, bias_stored: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The feature-major layout's arrays by numpy and scipy (:meth:`LevelIndex.build` without the kernels):
    scipy's CSC form of ``W`` holds each feature's entries in child order; a key starts where the feature or the
    parent changes. Keyed in chunks of whole features (temporaries of at most about ``_CHUNK`` entries), on top of
    the CSC copy. Fills the bias column's ``bias_w`` / ``bias_stored``; returns int64 ``feature_ptr``,
    ``key_parents``, ``block_indptr``, ranks and float32 data."""
    d = W.shape[1] - 1
    C = W.tocsc()  # canonical: a column's rows (children) increasing
    col_ptr = C.indptr.astype(np.int64)
    b0, b1 = int(col_ptr[d]), int(col_ptr[d + 1])
    bias_w[C.indices[b0:b1]] = C.data[b0:b1]
    bias_stored[C.indices[b0:b1]] = True
    stored = b0
    parent_of = np.repeat(np.arange(offsets.shape[0] - 1, dtype=np.int64), np.diff(offsets))
    key_feature_parts, key_parent_parts, key_start_parts, rank_parts = [], [], [], []
    n_chunks = stored // _CHUNK + 1
    bounds = np.searchsorted(col_ptr[1 : d + 1], np.arange(1, n_chunks + 1, dtype=np.int64) * _CHUNK) + 1
    f0 = 0
    for f1 in np.unique(np.append(np.minimum(bounds, d), d)):
        if f1 <= f0:
            continue
        e0, e1 = int(col_ptr[f0]), int(col_ptr[f1])
        child = C.indices[e0:e1].astype(np.int64)
        parent = parent_of[child]
        feat = np.repeat(np.arange(f0, f1, dtype=np.int64), np.diff(col_ptr[f0 : f1 + 1]))
        new = np.ones(e1 - e0, dtype=bool)
        new[1:] = (parent[1:] != parent[:-1]) | (feat[1:] != feat[:-1])
        starts = np.flatnonzero(new)
        key_feature_parts.append(feat[starts])
        key_parent_parts.append(parent[starts])
        key_start_parts.append(starts + e0)
        rank_parts.append(child - offsets[parent])
        f0 = int(f1)
    key_feature = np.concatenate(key_feature_parts) if key_feature_parts else np.zeros(0, dtype=np.int64)
    feature_ptr = np.zeros(d + 1, dtype=np.int64)
    np.cumsum(np.bincount(key_feature, minlength=d), out=feature_ptr[1:])
    key_parents = np.concatenate(key_parent_parts) if key_parent_parts else np.zeros(0, dtype=np.int64)
    block_indptr = np.append(np.concatenate(key_start_parts) if key_start_parts else [], stored).astype(np.int64)
    ranks = np.concatenate(rank_parts) if rank_parts else np.zeros(0, dtype=np.int64)
    return feature_ptr, key_parents, block_indptr, ranks, C.data[:stored].astype(np.float32)


def search_candidates(tree: LabelTree, n_rows: int, beam: int) -> int:
    """(row, child) scores a beam search of ``n_rows`` rows over ``tree`` computes at most: per level, the beam's
    nodes (at most ``beam``, at most the level's nodes) times the level's widest arity."""
    per_row = 0
    for t, offsets in enumerate(tree.offsets):
        arity = np.diff(offsets)
        per_row += min(beam, tree.n_nodes(t)) * (int(arity.max()) if arity.size else 0)
    return int(n_rows) * per_row


def kernel_pays(candidates: int) -> bool:
    """Whether a search that scores about ``candidates`` (row, child) pairs (:meth:`TreeSearcher.candidates`)
    should use the compiled kernels: from :data:`KERNEL_MIN_CANDIDATES` on, or whenever numba has already started
    in the process."""
    return candidates >= KERNEL_MIN_CANDIDATES or numba_started()


# -- the search ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TreeSearcher:
    """A label tree with its weights laid out for beam search; build once, search many times.

    ``TreeSearcher.build(tree, weights, bias)`` costs one sort of each level's non-zero weights; a model
    that predicts often keeps the searcher. :func:`beam_search` builds one per call.
    """

    tree: LabelTree
    levels: tuple[LevelIndex, ...]

    @classmethod
    def build(
        cls,
        tree: LabelTree,
        weights: Sequence[sp.csr_matrix],
        bias: float = 1.0,
        *,
        compiled: bool | None = None,
        n_jobs: int = 1,
    ) -> TreeSearcher:
        """Lay out every level of ``weights`` for ``tree`` (``compiled``, ``n_jobs``: :meth:`LevelIndex.build`'s)."""
        if len(weights) != tree.depth:
            raise ConfigurationError(f"weights must hold one matrix per level ({tree.depth}); got {len(weights)}")
        d = weights[0].shape[1] - 1 if len(weights) else 0
        for t, W in enumerate(weights):
            want = (tree.n_nodes(t + 1), d + 1)
            if tuple(W.shape) != want:
                raise ConfigurationError(
                    f"weights[{t}] must have shape {want} (nodes of level {t + 1}, features + bias); got {W.shape}"
                )
        levels = tuple(
            LevelIndex.build(W, tree.offsets[t], bias, compiled=compiled, n_jobs=n_jobs) for t, W in enumerate(weights)
        )
        return cls(tree, levels)

    @property
    def n_features(self) -> int:
        return self.levels[0].n_features

    def candidates(self, n_rows: int, beam: int) -> int:
        """(row, child) scores a search of ``n_rows`` rows computes at most (:func:`search_candidates`)."""
        return search_candidates(self.tree, n_rows, beam)

    def search(
        self,
        X: sp.csr_matrix,
        *,
        beam: int = 10,
        k: int = 5,
        transform: str = "squared_hinge",
        batch_size: int = BATCH_SIZE,
        power: float = HINGE_POWER,
        compiled: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k labels of every row of ``X`` by beam search: (int64 (n, k) label ids, float32 (n, k) scores).

        ``compiled``: use the compiled kernels (True) or numpy and scipy only (False), the same output; None:
        :func:`kernel_pays` for this search's candidates."""
        _check_settings(self.tree.n_labels, beam, k, transform, batch_size, power)
        if not sp.issparse(X) or X.ndim != 2:
            raise ConfigurationError("X must be a scipy.sparse CSR matrix (n_samples, n_features)")
        if X.shape[1] != self.n_features:
            raise ConfigurationError(f"X has {X.shape[1]} features; the tree's weights expect {self.n_features}")
        X = _canonical(sp.csr_matrix(X, dtype=np.float32))
        n = X.shape[0]
        indices = np.empty((n, k), dtype=np.int64)
        scores = np.empty((n, k), dtype=np.float32)
        if compiled is None:
            compiled = kernel_pays(self.candidates(n, beam))
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            found = self._search_batch(X[start:stop], beam, k, transform, power, compiled)
            indices[start:stop], scores[start:stop] = found
        return indices, scores

    def _search_batch(
        self, X: sp.csr_matrix, beam: int, k: int, transform: str, power: float, compiled: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        B = X.shape[0]
        # the beam: per row, nodes in increasing index (so children come in increasing index) and path log-scores
        nodes = np.zeros((B, 1), dtype=np.int64)
        path = np.zeros((B, 1), dtype=np.float64)
        for t, level in enumerate(self.levels):
            live = np.isfinite(path)
            r, slot = np.nonzero(live)
            child_s = level.children_scores(X, r, nodes[r, slot], compiled=compiled)  # (Q, A)
            A = level.max_arity
            rank = np.arange(A, dtype=np.int64)
            first = level.offsets[nodes[r, slot]][:, None] + rank[None, :]
            need = k if t + 1 == self.tree.depth else beam
            full = r.shape[0] == live.size  # every slot of every row holds a node: the pairs are the rows in order
            kept = None
            if full and compiled and transform == "squared_hinge" and 4 * need <= live.size * A:
                # exact log-scores only where they can count for the row's `need` best
                cand, kept = _pruned_log_scores(path, child_s.reshape(B, -1), A, power, need)
                child = first.reshape(B, -1)
            else:
                logp = path[r, slot][:, None] + log_probabilities(child_s, transform, power)
                if full:
                    cand, child = logp.reshape(B, -1), first.reshape(B, -1)
                else:
                    cand = np.full((B, nodes.shape[1] * A), -np.inf, dtype=np.float64)
                    child = np.zeros((B, nodes.shape[1] * A), dtype=np.int64)
                    cols = slot[:, None] * A + rank[None, :]
                    cand[r[:, None], cols] = logp
                    child[r[:, None], cols] = first
            if t + 1 < self.tree.depth:
                child[~np.isfinite(cand)] = 0  # slots past a parent's arity: any valid index, never used
                width = min(beam, cand.shape[1])
                top = topk_rows(cand, width)[0]
                top.sort(axis=1)  # back to increasing node index
                nodes = np.take_along_axis(child, top, axis=1)
                path = np.take_along_axis(cand, top, axis=1)
            else:
                return self._top_labels(child, cand, k, compiled, kept)
        raise AssertionError("a label tree has at least one level")  # pragma: no cover

    def _top_labels(
        self, position: np.ndarray, logp: np.ndarray, k: int, compiled: bool = False, kept: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k labels from the last level's candidates; unreached labels score 0 (see the module docstring).

        A row whose k-th best float32 score is a normal positive number (the usual case) never needs the
        unreached labels: its top k are among the candidates whose float32 score is at least that k-th score,
        found from the k-th best log-score without exponentiating every candidate (:func:`_top_reached`). The
        other rows (fewer than k labels reached, or scores that underflow) take the general path
        (:meth:`_top_labels_general`). Both give the same labels and scores as the general path on every row;
        ``compiled``: the easy rows' ranking by :func:`~sparsexc.tree._search_kernel.top_of_rows_kernel`.
        ``kept``: the flat indices (increasing) of the candidates :func:`_pruned_log_scores` kept, among which
        are each row's k best and every candidate that may tie with the k-th: the k-th best log-score and the
        candidates near it are then looked for among those alone (the others hold upper bounds far below).
        ``position`` may hold any value where ``logp`` is not finite (the general path gets valid ones)."""
        B, width = logp.shape
        if width < k:
            return self._top_labels_general(_reached_positions(position, logp), logp, k)
        kth = np.empty(B, dtype=np.float64)
        if kept is None or not kth_of_rows_kernel(kept, logp.ravel()[kept], width, k, kth):
            kept = None
            kth = np.partition(logp, width - k, axis=1)[:, width - k]
        kth_score = np.exp(kth).astype(np.float32)
        easy = kth_score >= _NORMAL_FLOAT32
        if easy.all():
            return _top_reached(position, self.tree.label_order, logp, kth, kth_score, k, compiled, kept)
        indices = np.empty((B, k), dtype=np.int64)
        scores = np.empty((B, k), dtype=np.float32)
        if easy.any():
            e = np.flatnonzero(easy)
            found = _top_reached(position[e], self.tree.label_order, logp[e], kth[e], kth_score[e], k, compiled)
            indices[e], scores[e] = found
        hard = np.flatnonzero(~easy)
        indices[hard], scores[hard] = self._top_labels_general(
            _reached_positions(position[hard], logp[hard]), logp[hard], k
        )
        return indices, scores

    def _top_labels_general(self, position: np.ndarray, logp: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_top_labels` for any rows, with the unreached labels at score 0 in reach."""
        B = position.shape[0]
        C = self.tree.n_labels
        reached = np.isfinite(logp)
        label = np.where(reached, self.tree.label_order[position], C)
        score = np.where(reached, np.exp(logp), -np.inf).astype(np.float32)
        # the k lowest label ids, score 0, unless reached: with them the top-k of "0 unless reached" is in reach
        low = np.broadcast_to(np.arange(k, dtype=np.int64), (B, k))
        seen = np.zeros((B, k), dtype=bool)
        r, c = np.nonzero(reached & (label < k))
        seen[r, label[r, c]] = True
        label = np.concatenate([label, np.where(seen, C, low)], axis=1)
        score = np.concatenate([score, np.where(seen, -np.inf, 0.0).astype(np.float32)], axis=1)
        # only candidates at or above each row's k-th best score can be in its top k (there are >= k of them):
        # keep those, then put them in increasing label id so that topk_rows breaks ties by label id
        kth = np.partition(score, score.shape[1] - k, axis=1)[:, score.shape[1] - k]
        keep = score >= kth[:, None]
        width = int(keep.sum(axis=1).max())
        slot = np.cumsum(keep, axis=1) - 1
        r, c = np.nonzero(keep)
        few_label = np.full((B, width), C, dtype=np.int64)
        few_score = np.full((B, width), -np.inf, dtype=np.float32)
        few_label[r, slot[r, c]] = label[r, c]
        few_score[r, slot[r, c]] = score[r, c]
        order = np.argsort(few_label, axis=1, kind="stable")
        few_label = np.take_along_axis(few_label, order, axis=1)
        few_score = np.take_along_axis(few_score, order, axis=1)
        top, values = topk_rows(few_score, k)
        return np.take_along_axis(few_label, top, axis=1), values.astype(np.float32)


def _reached_positions(position: np.ndarray, logp: np.ndarray) -> np.ndarray:
    """``position`` with 0 (a valid index, never used) where the candidate was not reached (``logp`` not finite):
    slots past a parent's arity hold positions past the level."""
    return np.where(np.isfinite(logp), position, 0)


def _pruned_log_scores(
    path: np.ndarray, s: np.ndarray, arity: int, power: float, need: int
) -> tuple[np.ndarray, np.ndarray]:
    """Squared-hinge path log-scores ``path[b, j // arity] + log p(s[b, j])`` (float64 (B, W)) of the candidates
    that can be among each row's ``need`` best or tie with the last of them in float32; the others get an upper
    bound of theirs, which is below the row's ``need``-th best by more than :data:`_TIE_MARGIN`, so no top-k
    selection takes them.

    :func:`~sparsexc.tree._search_kernel.hinge_candidates_kernel` bounds every candidate without the logarithm
    (the costly part of :func:`log_probabilities`) and returns the few that can count (about a tenth of a
    debian-deps beam's children); their values come from the same numpy operations as on the whole array, so
    they are the values of the unpruned path bit for bit and the search returns the same labels and scores
    (tested). Rows whose bound is near float32's underflow keep every candidate (the general top-k path there
    counts unreached labels at score 0). The bounds, not -inf, fill the rest because numpy's partition slows
    down several-fold on rows made mostly of one repeated value. Returns the log-scores and the flat indices
    (increasing) of the kept candidates."""
    B, width = s.shape
    out = np.empty((B, width), dtype=np.float64)
    kept = np.empty(B * width, dtype=np.int64)
    kept_path = np.empty(B * width, dtype=np.float64)
    kept_s = np.empty(B * width, dtype=np.float32)
    n = hinge_candidates_kernel(
        path, s, arity, float(power), HINGE_TAIL, need, 2 * _TIE_MARGIN, _LOG_NORMAL_FLOOR, _PRUNE_BIN,
        out, kept, kept_path, kept_s,
    )  # fmt: skip
    out.ravel()[kept[:n]] = kept_path[:n] + log_probabilities(kept_s[:n], "squared_hinge", power)
    return out, kept[:n]


def _top_reached(
    position: np.ndarray,
    label_order: np.ndarray,
    logp: np.ndarray,
    kth: np.ndarray,
    kth_score: np.ndarray,
    k: int,
    compiled: bool = False,
    kept: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (label, float32 score) of every row among its reached candidates, best first, ties to the lower label.

    Candidate ``j`` of row ``b`` is label ``label_order[position[b, j]]`` with log-score ``logp[b, j]``. ``kth``
    is each row's k-th best log-score and ``kth_score`` = float32(exp(kth)), a normal positive number. The
    float32 score exp(logp) is non-decreasing in logp, so the top k are among the candidates scoring at least
    ``kth_score`` (at least k of them); a candidate below ``kth`` ties with it in float32 only when the two
    log-scores differ by less than float32's relative spacing (2^-23), so only candidates within
    :data:`_TIE_MARGIN` of ``kth`` are exponentiated, and those scoring at least ``kth_score`` are kept: exactly
    the entries the general path keeps. They are then ranked by score, ties to the lower label id: by numpy, or
    (``compiled``) by :func:`~sparsexc.tree._search_kernel.top_of_rows_kernel`, one sort of 64-bit (score, label)
    keys per row (the exponentials stay numpy's, so the scores are the same bits)."""
    B, n_labels = logp.shape[0], label_order.shape[0]
    if kept is None:
        r, c = np.nonzero(logp >= (kth - _TIE_MARGIN)[:, None])  # row-major: rows in order
    else:  # the same entries, looked for among the kept candidates (see _top_labels)
        r, c = np.divmod(kept, logp.shape[1])
        near = logp.ravel()[kept] >= (kth - _TIE_MARGIN)[r]
        r, c = r[near], c[near]
    score = np.exp(logp[r, c]).astype(np.float32)
    if compiled and n_labels <= 1 << 32:
        out_idx, out_bits = np.empty((B, k), dtype=np.int64), np.empty((B, k), dtype=np.uint32)
        lab = label_order[position[r, c]]
        # r contiguous (np.nonzero gives strided views): one compiled variant of the kernel, as children_scores
        top_of_rows_kernel(
            np.ascontiguousarray(r), lab, score.view(np.uint32), kth_score.view(np.uint32), k, out_idx, out_bits
        )
        return out_idx, out_bits.view(np.float32)
    kept = score >= kth_score[r]
    r, c, score = r[kept], c[kept], score[kept]
    lab = label_order[position[r, c]]
    order = np.argsort(r * (n_labels + 1) + lab, kind="stable")  # increasing label within each row
    r, lab, score = r[order], lab[order], score[order]
    counts = np.bincount(r, minlength=B)
    slot = np.arange(r.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    width = int(counts.max())
    few_label = np.full((B, width), n_labels, dtype=np.int64)
    few_score = np.full((B, width), -np.inf, dtype=np.float32)
    few_label[r, slot], few_score[r, slot] = lab, score
    top, values = topk_rows(few_score, k)  # column order is label order: its ties are label ties
    return np.take_along_axis(few_label, top, axis=1), values.astype(np.float32)


def _check_settings(n_labels: int, beam: int, k: int, transform: str, batch_size: int, power: float) -> None:
    _check_int("beam", beam, 1, None)
    ok = isinstance(power, (int, float, np.integer, np.floating)) and not isinstance(power, bool)
    if not (ok and np.isfinite(power) and power >= 1):
        raise ConfigurationError(f"power must be a number >= 1 (the squared hinge's score exponent); got {power!r}")
    _check_int("k", k, 1, n_labels)
    _check_int("batch_size", batch_size, 1, None)
    if transform not in TRANSFORMS:
        raise ConfigurationError(f"transform must be one of {', '.join(TRANSFORMS)}; got {transform!r}")


def _check_int(name: str, value: int, low: int, high: int | None) -> None:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and low <= value
    if not ok or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer in {low}..{high}"
        raise ConfigurationError(f"{name} must be {allowed}; got {value!r}")


def beam_search(
    X: sp.csr_matrix,
    tree: LabelTree,
    weights: Sequence[sp.csr_matrix],
    *,
    beam: int = 10,
    k: int = 5,
    transform: str = "squared_hinge",
    bias: float = 1.0,
    batch_size: int = BATCH_SIZE,
    power: float = HINGE_POWER,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k labels of every row by beam search over ``tree`` (see the module docstring for the scores).

    Parameters
    ----------
    X : CSR float32 (n, d)
        Features, rows as given.
    tree : LabelTree
        Depth ``D``.
    weights : sequence of D CSR matrices
        ``weights[t]`` of shape ``(tree.n_nodes(t + 1), d + 1)``: the node weight vectors of level ``t + 1``
        (label positions on the last level), the bias weight last.
    beam : int >= 1
        Nodes kept per row and level.
    k : int in 1..n_labels
        Labels returned per row.
    transform : {"sigmoid", "squared_hinge"}
        Node probability from node score: ``sigma(s)`` or ``exp(-max(0, 1 - s)^power) * sigma(s - 1)^HINGE_TAIL``.
    bias : float
        Value of the bias feature.
    batch_size : int >= 1
        Rows searched at once; memory is ``O(batch_size x beam x max arity)``.
    power : float >= 1
        The squared hinge's score exponent (:data:`HINGE_POWER`, PECOS's "l3-hinge"; 2 is Parabel's rule).

    Returns
    -------
    indices : int64 (n, k)
        Label ids, best first, ties to the lower id; labels the beam did not reach score 0.
    scores : float32 (n, k)
        Path products, non-increasing along each row.
    """
    _check_settings(tree.n_labels, beam, k, transform, batch_size, power)  # before the (costly) layout of the weights
    searcher = TreeSearcher.build(tree, weights, bias)
    return searcher.search(X, beam=beam, k=k, transform=transform, batch_size=batch_size, power=power)
