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
the row: ``P x nnz(x)`` binary searches. The search groups the pairs by parent instead: every level's weights
are kept *parent-major* (:class:`LevelIndex`), one row per (parent, feature) holding that feature's weights
for the parent's children, so all (row, parent) pairs of a batch are scored as **one** sparse x sparse product
that touches only the non-zero weights of the features the row has, and each (row, parent, feature) is looked
up once instead of once per sibling. For a large search (:func:`kernel_pays`) the product is computed by a compiled kernel
(:mod:`sparsexc.tree._search_kernel`, numba, GIL released) that walks the pairs in parent order and accumulates
straight into the (pair, child) scores, in the order and precision of scipy's product (bit for bit the same
scores), without building the query matrix. On the debian-deps-shaped benchmark (``benchmarks/tree_search_speed.py``:
d = 40,000, C = 19,000, leaves of 100 labels) scoring a beam's children this way takes 0.1-0.4 s per 1,000
rows against 17-35 s with :func:`pair_scores`, and the whole search 160-390 ms per 1,000 rows on one thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sparsexc._topk import topk_rows
from sparsexc.errors import ConfigurationError
from sparsexc.tree._search_kernel import (
    children_scores_kernel,
    hinge_candidates_kernel,
    kth_of_rows_kernel,
    layout_fill_kernel,
    layout_sizes_kernel,
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
    "key_directory",
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
_CHUNK = 1 << 18  # weights sorted at once when a level is laid out parent-major: bounds that memory (1 << 20: +35 MiB)
_TABLE_FLOOR = 1 << 22  # a direct key table of up to 4M entries is always fine
# keys per bucket of a level's key directory, at most (about half of it on average): wordnet-hypernyms' last level
# (600K keys, 7.5% of its key space) scored its children in 0.12-0.13 CPU s at 2 or 4 against 0.22 by binary search
# over all keys, 0.14 at 8 (a directory of 1.9, 0.95 and 0.48 MB against 2.3 MB of keys)
_KEYS_PER_BUCKET = 4
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


# -- one level's weights, parent-major ----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LevelIndex:
    """The weights of one level laid out for scoring all children of a parent at once.

    Attributes
    ----------
    keys : int32 or int64 array (R,)
        Sorted ``parent * d + j`` for every (parent, feature ``j``) where some child of the parent has a
        non-zero weight on ``j`` (int32 when ``n_parents * d`` fits).
    block_indptr, block_ranks, block_data : arrays (R + 1,), (nnz,), (nnz,)
        The rows of a CSR matrix (R, max_arity) (:attr:`block`): row ``r`` holds the weights (float32) on
        feature ``keys[r] % d`` of the children of parent ``keys[r] // d``, in the column of the child's rank
        among its siblings. The ranks are stored in the narrowest unsigned type that holds them (uint8 for up to
        256 children) and the row pointers in int32 where they fit: 3 bytes less per weight and 4 per key than
        scipy's CSR, and the keys in int32 where they fit (debian-deps, three trees: 83 -> 56 MiB of layout).
    max_arity : int
        The widest parent's number of children (the block's columns).
    bias : float64 array (n_children,)
        ``bias * W[c, d]`` for every child ``c``.
    offsets : int64 array (n_parents + 1,)
        The tree's child offsets of this level.
    n_features : int
        ``d``.
    table : int array (n_parents * d,) or None
        ``table[key]`` = the row of ``key`` in :attr:`block`, -1 if absent: a direct lookup, kept when it is no
        larger than twice the block's non-zeros (or 4M entries); otherwise keys are found by the directory.
    directory : int array (n_buckets + 1,) or None
        Where no table is kept: the keys of bucket ``b`` (the keys ``key`` with ``key >> directory_shift == b``)
        are ``keys[directory[b]:directory[b + 1]]``, a few per bucket (:func:`key_directory`), so a key is found by
        a binary search among them instead of among all keys (one or two cache misses instead of a dozen).
    directory_shift : int
        The bucket's width in bits.
    bias_weights : float32 array (n_children,) or None
        ``W[c, d]`` as stored (0 where not stored), before the factor ``bias`` (:meth:`build` always sets it and
        :attr:`bias_stored`; without them :meth:`weights` refuses).
    bias_stored : bool array (n_children,) or None
        Whether ``W`` stored an entry at ``(c, d)`` (an explicit zero included).
    csr_dtypes : (indices dtype, indptr dtype) or None
        The index dtypes of ``W``; None when ``W`` was not float32 in canonical format, so the layout does not
        hold it exactly and :meth:`weights` refuses.
    """

    keys: np.ndarray
    block_indptr: np.ndarray
    block_ranks: np.ndarray
    block_data: np.ndarray
    max_arity: int
    bias: np.ndarray
    offsets: np.ndarray
    n_features: int
    table: np.ndarray | None = None
    bias_weights: np.ndarray | None = None
    bias_stored: np.ndarray | None = None
    csr_dtypes: tuple[np.dtype, np.dtype] | None = None
    directory: np.ndarray | None = None
    directory_shift: int = 0

    @property
    def block(self) -> sp.csr_matrix:
        """The block as a scipy CSR matrix (R, max_arity), float32, int32 column ids (a copy of the ranks)."""
        shape = (self.keys.shape[0], self.max_arity)
        return sp.csr_matrix((self.block_data, self.block_ranks.astype(np.int32), self.block_indptr), shape=shape)

    @classmethod
    def build(
        cls, W: sp.csr_matrix, offsets: np.ndarray, bias: float = 1.0, *, compiled: bool | None = None
    ) -> LevelIndex:
        """Lay out ``W`` (n_children x (d + 1)) parent-major for the parents delimited by ``offsets``.

        ``compiled``: by the counting sort of :func:`~sparsexc.tree._search_kernel.layout_fill_kernel`, one parent
        at a time, written straight into the layout's arrays (True), or by numpy's stable sort of the keys, in
        chunks of whole parents (False); the same arrays either way (tested). None: compiled where numba has
        started in the process (:func:`~sparsexc.tree._search_kernel.numba_started`). On wordnet-hypernyms'
        three trees the kernel took 0.27 CPU s against numpy's 0.59 (a loaded machine)."""
        W = sp.csr_matrix(W)
        # float32 weights in canonical order are held exactly: weights() gives W back bit for bit
        exact = W.dtype == np.float32 and W.has_canonical_format
        csr_dtypes = (W.indices.dtype, W.indptr.dtype) if exact else None
        W = W if exact else _canonical(W)  # (the check is a pass over the indices: once)
        d = W.shape[1] - 1
        offsets = np.asarray(offsets, dtype=np.int64)
        arity = np.diff(offsets)
        max_arity = int(arity.max()) if arity.size else 0
        bias_w = np.zeros(W.shape[0], dtype=np.float64)
        bias_stored = np.zeros(W.shape[0], dtype=bool)
        rank_dtype = np.uint8 if max_arity <= 1 << 8 else np.uint16 if max_arity <= 1 << 16 else np.int32
        key_dtype = np.int32 if arity.shape[0] * d < 2**31 else np.int64
        if numba_started() if compiled is None else compiled:
            key_start = np.empty(arity.shape[0] + 1, dtype=np.int64)
            stored = layout_sizes_kernel(W.indptr, W.indices, offsets, d, key_start)
            keys = np.empty(int(key_start[-1]), dtype=key_dtype)
            indptr = np.empty(keys.shape[0] + 1, dtype=np.int32 if stored < 2**31 else np.int64)
            local = np.empty(stored, dtype=rank_dtype)
            data = np.empty(stored, dtype=np.float32)
            layout_fill_kernel(
                W.indptr, W.indices, W.data, offsets, d, key_start, keys, indptr, local, data, bias_w, bias_stored
            )
            return cls._finish(keys, indptr, local, data, max_arity, bias_w, bias_stored, bias, offsets, d, csr_dtypes)
        parent_of = np.repeat(np.arange(arity.shape[0], dtype=np.int64), arity)
        keys_parts, indptr_parts, local_parts, data_parts = [], [], [], []
        # whole parents per chunk, so that a chunk's keys never interleave with the next chunk's; each chunk keeps
        # only its distinct keys, narrow child ranks and float32 weights (the sort's temporaries are per chunk)
        row_nnz = np.diff(W.indptr).astype(np.int64)
        cum = np.concatenate([[0], np.cumsum(row_nnz)])
        per_parent = np.cumsum(cum[offsets[1:]] - cum[offsets[:-1]])
        n_chunks = int(per_parent[-1]) // _CHUNK + 1 if per_parent.size else 0
        bounds = np.searchsorted(per_parent, np.arange(1, n_chunks + 1, dtype=np.int64) * _CHUNK) + 1
        p0, stored = 0, 0
        for p1 in np.unique(np.append(np.minimum(bounds, arity.shape[0]), arity.shape[0])):
            if p1 <= p0:
                continue
            c0, c1 = int(offsets[p0]), int(offsets[p1])
            a, b = int(W.indptr[c0]), int(W.indptr[c1])
            child = np.repeat(np.arange(c0, c1, dtype=np.int64), row_nnz[c0:c1])
            feat = W.indices[a:b].astype(np.int64)
            val = W.data[a:b]
            is_bias = feat == d
            bias_w[child[is_bias]] = val[is_bias]
            bias_stored[child[is_bias]] = True
            child, feat, val = child[~is_bias], feat[~is_bias], val[~is_bias]
            parent = parent_of[child]
            key = parent * d + feat
            order = np.argsort(key, kind="stable")
            key = key[order]
            new = np.ones(key.shape[0], dtype=bool)
            new[1:] = key[1:] != key[:-1]
            starts = np.flatnonzero(new)
            keys_parts.append(key[starts].astype(key_dtype))
            indptr_parts.append(starts + stored)
            local_parts.append((child[order] - offsets[parent[order]]).astype(rank_dtype))
            data_parts.append(val[order].astype(np.float32, copy=False))
            stored += key.shape[0]
            p0 = int(p1)
        keys = np.concatenate(keys_parts) if keys_parts else np.zeros(0, dtype=key_dtype)
        indptr = np.append(np.concatenate(indptr_parts) if indptr_parts else [], stored)
        indptr = indptr.astype(np.int32 if stored < 2**31 else np.int64)
        local = np.concatenate(local_parts) if local_parts else np.zeros(0, dtype=rank_dtype)
        data = np.concatenate(data_parts) if data_parts else np.zeros(0, dtype=np.float32)
        return cls._finish(keys, indptr, local, data, max_arity, bias_w, bias_stored, bias, offsets, d, csr_dtypes)

    @classmethod
    def _finish(
        cls,
        keys: np.ndarray,
        indptr: np.ndarray,
        local: np.ndarray,
        data: np.ndarray,
        max_arity: int,
        bias_w: np.ndarray,
        bias_stored: np.ndarray,
        bias: float,
        offsets: np.ndarray,
        d: int,
        csr_dtypes: tuple[np.dtype, np.dtype] | None,
    ) -> LevelIndex:
        """The layout from its sorted arrays, with the key lookup that suits its size (table or directory)."""
        stored = int(data.shape[0])
        n_keys = (offsets.shape[0] - 1) * d
        table, directory, shift = None, None, 0
        if n_keys <= max(2 * stored, _TABLE_FLOOR):
            # one random read per (row, parent, feature) instead of a search among the keys
            table = np.full(n_keys, -1, dtype=np.int32 if keys.shape[0] < 2**31 else np.int64)
            table[keys] = np.arange(keys.shape[0])
        else:
            directory, shift = key_directory(keys, n_keys)
        return cls(
            keys, indptr, local, data, max_arity, bias_w * float(bias), offsets, d, table,
            bias_weights=bias_w.astype(np.float32), bias_stored=bias_stored, csr_dtypes=csr_dtypes,
            directory=directory, directory_shift=shift,
        )  # fmt: skip

    @property
    def n_weights(self) -> int:
        """Stored entries of ``W`` (the bias column's included): ``W.nnz`` without building ``W``."""
        stored = int(self.bias_stored.sum()) if self.bias_stored is not None else int(np.count_nonzero(self.bias))
        return int(self.block_data.shape[0]) + stored

    def weights(self) -> sp.csr_matrix:
        """``W`` back from the layout: the CSR matrix :meth:`build` laid out, bit for bit (data, indices, indptr
        and their dtypes), so a model may keep the layout alone.

        Whole parents at a time (the chunks of :meth:`build`), each entry's child (the parent's first child plus
        its rank) and feature (its key modulo ``d``) are read back, the stored bias entries (column ``d``) added,
        and the entries sorted by (child, feature): a parent's children are consecutive rows of ``W``. The
        temporaries are one chunk's; the result is one level's CSR.

        Raises
        ------
        ConfigurationError
            When the layout was built from weights it does not hold exactly (``csr_dtypes`` is None).
        """
        if self.csr_dtypes is None or self.bias_weights is None or self.bias_stored is None:
            raise ConfigurationError("this layout was built from weights that were not float32 CSR in canonical order")
        d, offsets = self.n_features, self.offsets
        n_parents, n_children = offsets.shape[0] - 1, self.bias.shape[0]
        per_key = np.diff(self.block_indptr).astype(np.int64)
        # entries of parent p: keys [kp[p], kp[p + 1]), entries [ep[p], ep[p + 1])
        kp = np.searchsorted(self.keys, np.arange(n_parents + 1, dtype=np.int64) * d)
        ep = self.block_indptr[kp].astype(np.int64)
        nnz = self.n_weights
        indptr = np.zeros(n_children + 1, dtype=np.int64)
        data = np.empty(nnz, dtype=np.float32)
        indices = np.empty(nnz, dtype=self.csr_dtypes[0])
        n_chunks = int(ep[-1]) // _CHUNK + 1
        bounds = np.searchsorted(ep[1:], np.arange(1, n_chunks + 1, dtype=np.int64) * _CHUNK) + 1
        p0 = 0
        for p1 in np.unique(np.append(np.minimum(bounds, n_parents), n_parents)):
            if p1 <= p0:
                continue
            c0, c1, e0, e1 = int(offsets[p0]), int(offsets[p1]), int(ep[p0]), int(ep[p1])
            child = np.repeat(offsets[p0:p1] - c0, np.diff(ep[p0 : p1 + 1])) + self.block_ranks[e0:e1]
            feat = np.repeat(self.keys[kp[p0] : kp[p1]] % d, per_key[kp[p0] : kp[p1]])
            with_bias = np.flatnonzero(self.bias_stored[c0:c1])
            child = np.concatenate([child, with_bias])
            feat = np.concatenate([feat, np.full(with_bias.shape[0], d, dtype=np.int64)])
            val = np.concatenate([self.block_data[e0:e1], self.bias_weights[c0 + with_bias]])
            order = np.argsort(child * (d + 1) + feat, kind="stable")
            np.cumsum(np.bincount(child, minlength=c1 - c0), out=indptr[c0 + 1 : c1 + 1])
            indptr[c0 + 1 : c1 + 1] += indptr[c0]
            a, b = int(indptr[c0]), int(indptr[c1])
            data[a:b], indices[a:b] = val[order], feat[order]
            p0 = int(p1)
        W = sp.csr_matrix((data, indices, indptr.astype(self.csr_dtypes[1])), shape=(n_children, d + 1))
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
        are ``-inf``. The pair's features ``j`` are looked up as the rows ``(parent, j)`` of :attr:`block`
        (in :attr:`table`, or by :attr:`directory` and a binary search among a few :attr:`keys`; features no
        child uses drop out) and their weights accumulated in float32, feature by feature, then the float64 bias
        added: the sparse x sparse product ``query @ block`` of the query matrix of those rows. ``compiled``: by
        the kernel of :mod:`sparsexc.tree._search_kernel`, without building the query; otherwise by scipy's
        product. The two give the same scores bit for bit (tested).
        """
        if X.dtype != np.float32:  # the search's batches are float32 CSR already: no conversion on its hot path
            X = sp.csr_matrix(X, dtype=np.float32)
        rows = np.asarray(rows, dtype=np.int64)
        parents = np.asarray(parents, dtype=np.int64)
        # pairs in parent order: the lookups then read one parent's weights at a time
        order = np.argsort(parents, kind="stable")
        if not compiled:
            return self._children_scores_product(X, rows, parents, order)
        scores = np.empty((rows.shape[0], self.max_arity), dtype=np.float32)
        table = self.table if self.table is not None else np.zeros(0, dtype=np.int32)
        directory = self.directory if self.directory is not None else np.zeros(0, dtype=np.int32)
        children_scores_kernel(
            X.indptr, X.indices, X.data, rows, parents, order, self.n_features, table, self.keys, directory,
            self.directory_shift, self.block_indptr, self.block_ranks, self.block_data, self.bias, self.offsets,
            scores,
        )  # fmt: skip
        return scores

    def _children_scores_product(
        self, X: sp.csr_matrix, rows: np.ndarray, parents: np.ndarray, order: np.ndarray
    ) -> np.ndarray:
        """:meth:`children_scores` by scipy: the query matrix of the pairs' (parent, feature) rows, times
        :attr:`block`, plus the float64 bias."""
        Q = rows.shape[0]
        pair, feat, val = _expand_rows(X, rows[order])
        pos = self._block_rows(parents[order][pair] * self.n_features + feat)
        hit = pos >= 0
        indptr = np.zeros(Q + 1, dtype=np.int64)
        np.cumsum(np.bincount(pair[hit], minlength=Q), out=indptr[1:])
        query = sp.csr_matrix((val[hit], pos[hit], indptr), shape=(Q, self.keys.shape[0]))
        scores = np.empty((Q, self.max_arity), dtype=np.float64)
        scores[order] = (query @ self.block).toarray()
        first = self.offsets[parents]
        arity = self.offsets[parents + 1] - first
        rank = np.arange(self.max_arity, dtype=np.int64)
        valid = rank[None, :] < arity[:, None]
        scores += self.bias[np.where(valid, first[:, None] + rank[None, :], 0)] if self.bias.size else 0.0
        scores[~valid] = -np.inf
        return scores.astype(np.float32)

    def _block_rows(self, key: np.ndarray) -> np.ndarray:
        """Row of :attr:`block` of every key, -1 where no child of the parent uses the feature."""
        if self.table is not None:
            return self.table[key].astype(np.int64)
        if not self.keys.size:
            return np.full(key.shape[0], -1, dtype=np.int64)
        pos = np.searchsorted(self.keys, key.astype(self.keys.dtype))  # keys' dtype holds every key: no copy of them
        pos[pos == self.keys.shape[0]] = 0
        return np.where(self.keys[pos] == key, pos, -1)


def key_directory(keys: np.ndarray, n_keys: int, per_bucket: int = _KEYS_PER_BUCKET) -> tuple[np.ndarray, int]:
    """Bucket directory of sorted unique ``keys`` in ``[0, n_keys)``: ``(directory, shift)`` with the keys of
    bucket ``b`` (``key >> shift == b``) at ``keys[directory[b]:directory[b + 1]]``.

    The bucket width ``2**shift`` is the largest power of two with ``fill * 2**shift <= per_bucket``, ``fill =
    len(keys) / n_keys``: buckets hold ``per_bucket / 2`` to ``per_bucket`` keys on average, and the directory
    has about ``len(keys) / per_bucket`` to twice that many entries (int32 where the keys' count fits)."""
    n = int(keys.shape[0])
    fill = n / n_keys if n_keys else 1.0
    shift = max(0, int(np.floor(np.log2(per_bucket / fill)))) if n else 0
    n_buckets = ((max(n_keys, 1) - 1) >> shift) + 1
    directory = np.zeros(n_buckets + 1, dtype=np.int32 if n < 2**31 else np.int64)
    np.cumsum(np.bincount(keys >> shift, minlength=n_buckets), out=directory[1:])
    return directory, shift


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
        cls, tree: LabelTree, weights: Sequence[sp.csr_matrix], bias: float = 1.0, *, compiled: bool | None = None
    ) -> TreeSearcher:
        """Lay out every level of ``weights`` for ``tree`` (``compiled``: :meth:`LevelIndex.build`'s)."""
        if len(weights) != tree.depth:
            raise ConfigurationError(f"weights must hold one matrix per level ({tree.depth}); got {len(weights)}")
        d = weights[0].shape[1] - 1 if len(weights) else 0
        for t, W in enumerate(weights):
            want = (tree.n_nodes(t + 1), d + 1)
            if tuple(W.shape) != want:
                raise ConfigurationError(
                    f"weights[{t}] must have shape {want} (nodes of level {t + 1}, features + bias); got {W.shape}"
                )
        levels = tuple(LevelIndex.build(W, tree.offsets[t], bias, compiled=compiled) for t, W in enumerate(weights))
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
        top_of_rows_kernel(r, lab, score.view(np.uint32), kth_score.view(np.uint32), k, out_idx, out_bits)
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
