"""The beam search's inner loops, compiled by numba: the scores of all children of (row, parent) pairs, and an
ensemble's mean of its members' top labels (:func:`_ensemble_mean`).

For pair ``q`` = (row ``r``, parent ``p``) and child rank ``c`` of ``p`` (its ``c``-th child, node
``offsets[p] + c``), the score is

    s[q, c] = float32( float64( sum_j x_rj * w_{p, j, c} ) + bias_{offsets[p] + c} ),

the sum over the stored features ``j`` of row ``r`` (in increasing ``j``) of the row's value times the
weight the level's parent-major layout (:class:`sparsexc.tree.search.LevelIndex`) holds for (p, j, c),
accumulated in float32 in that order; ``-inf`` for ranks past the parent's arity. This is the same
arithmetic, in the same order, as the sparse x sparse product ``query @ block`` (scipy's ``csr_matmat``,
float32) followed by the float64 bias addition that the search did before, so the scores are bit for bit
those; it only skips building the query matrix, the product's two passes and its dense copy. Pairs are
visited grouped by parent (``order``), so one parent's weights are read together.

The kernel releases the GIL (``nogil``).
"""

from __future__ import annotations

import numba
import numpy as np

from sparsexc.tree import _dcd

__all__ = [
    "children_scores_kernel",
    "ensemble_mean_kernel",
    "hinge_candidates_kernel",
    "kth_of_rows_kernel",
    "layout_fill_kernel",
    "layout_sizes_kernel",
    "numba_started",
    "top_of_rows_kernel",
]


def _children_scores(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    rows: np.ndarray,
    parents: np.ndarray,
    order: np.ndarray,
    n_features: int,
    table: np.ndarray,
    keys: np.ndarray,
    directory: np.ndarray,
    shift: int,
    block_indptr: np.ndarray,
    block_indices: np.ndarray,
    block_data: np.ndarray,
    bias: np.ndarray,
    offsets: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled; tested through LevelIndex.children_scores
    """Fill ``out`` (float32, (Q, max_arity)) with the scores above. A key's row of the block: ``table[key]``
    where ``table`` is not empty; else a binary search in ``keys[directory[b]:directory[b + 1]]``, the keys of its
    bucket ``b = key >> shift``, where ``directory`` is not empty; else a binary search in all ``keys``."""
    width = out.shape[1]
    acc = np.zeros(width, dtype=np.float32)
    use_table = table.shape[0] > 0
    use_directory = directory.shape[0] > 0
    n_keys = keys.shape[0]
    for i in range(order.shape[0]):
        q = order[i]
        r = rows[q]
        parent = parents[q]
        base = parent * n_features
        acc[:] = 0.0
        for e in range(indptr[r], indptr[r + 1]):
            key = base + indices[e]
            if use_table:
                pos = table[key]
            else:
                if use_directory:
                    bucket = key >> shift
                    lo, end = directory[bucket], directory[bucket + 1]
                else:
                    lo, end = 0, n_keys
                hi = end
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if keys[mid] < key:
                        lo = mid + 1
                    else:
                        hi = mid
                pos = lo if lo < end and keys[lo] == key else -1
            if pos < 0:
                continue
            value = data[e]
            for b in range(block_indptr[pos], block_indptr[pos + 1]):
                acc[block_indices[b]] += value * block_data[b]
        first = offsets[parent]
        arity = offsets[parent + 1] - first
        for c in range(width):
            if c < arity:
                out[q, c] = np.float32(np.float64(acc[c]) + bias[first + c])
            else:
                out[q, c] = -np.inf


def _ensemble_mean(
    idx: np.ndarray,
    val: np.ndarray,
    n_members: int,
    n_labels: int,
    k: int,
    out_idx: np.ndarray,
    out_val: np.ndarray,
    counts: np.ndarray,
) -> None:  # pragma: no cover - compiled; tested through sparsexc.tree.model._ensemble_topk
    """The k best labels of every row by the mean over T members of their top-kk scores (see ``_ensemble_topk``).

    ``idx``/``val`` (n, T * kk): the ``T = n_members`` members' label ids and float32 scores side by side,
    member-major. Each label's scores are summed in float64 in column order (member order) from 0 and scaled by
    ``1 / T``; labels
    with a mean of 0 are dropped; the best ``counts[i] <= k`` go to ``out_idx``/``out_val`` (float32), best
    first, ties to the lower label id. A dense float64 accumulator over the labels, reset after each row,
    replaces the per-row sort by label of the numpy path."""
    n, width = idx.shape
    scale = 1.0 / n_members
    acc = np.zeros(n_labels, dtype=np.float64)
    seen = np.zeros(n_labels, dtype=np.bool_)
    touched = np.empty(width, dtype=np.int64)
    means = np.empty(width, dtype=np.float64)
    for i in range(n):
        nt = 0
        for j in range(width):
            label = idx[i, j]
            if not seen[label]:
                seen[label] = True
                touched[nt] = label
                nt += 1
            acc[label] += np.float64(val[i, j])
        # a few of many: repeated scans (equal means go to the lower label); else a stable sort by mean of the
        # labels in increasing order, which keeps ties in label order
        scan = min(k, nt) * 8 <= nt
        labels = touched[:nt] if scan else np.sort(touched[:nt])
        m = 0
        for t in range(nt):
            label = labels[t]
            mean = acc[label] * scale
            acc[label] = 0.0
            seen[label] = False
            if mean != 0.0:
                labels[m] = label
                means[m] = mean
                m += 1
        take = min(k, m)
        if scan:
            for r in range(take):
                best = -1
                for t in range(m):
                    if means[t] == -np.inf:
                        continue
                    if best < 0 or means[t] > means[best] or (means[t] == means[best] and labels[t] < labels[best]):
                        best = t
                out_idx[i, r] = labels[best]
                out_val[i, r] = np.float32(means[best])
                means[best] = -np.inf
        else:
            order = np.argsort(-means[:m], kind="mergesort")
            for r in range(take):
                out_idx[i, r] = labels[order[r]]
                out_val[i, r] = np.float32(means[order[r]])
        counts[i] = take


def _hinge_candidates(
    path: np.ndarray,
    s: np.ndarray,
    arity: int,
    power: float,
    tail: float,
    need: int,
    margin: float,
    floor_min: float,
    bin_width: float,
    ub: np.ndarray,
    out: np.ndarray,
    out_path: np.ndarray,
    out_s: np.ndarray,
) -> int:  # pragma: no cover - compiled; tested through sparsexc.tree.search
    """The squared-hinge candidates that can be among each row's ``need`` best path log-scores: their flat
    indices into ``s`` (row-major) in ``out``, their path log-scores in ``out_path`` and node scores in ``out_s``;
    returns how many. ``ub`` (float64, like ``s``) receives every candidate's upper bound below.

    Candidate ``j`` of row ``b`` is child ``j % arity`` of the beam's node ``j // arity``: path log-score
    ``path[b, j // arity]``, node score ``s[b, j]``. With ``m = max(0, 1 - s)`` its log-score ``path - m^q - tail *
    log(1 + e^{1 - s})`` lies in ``[ub - tail * log 2, ub]``, ``ub = path - m^q - tail * m``
    (``max(0, u) <= log(1 + e^u) <= max(0, u) + log 2``). If at least ``need`` candidates have ``ub >= f``, the
    row's ``need``-th best log-score is at least ``f - tail * log 2``, so a candidate with ``ub`` below ``floor =
    f - tail * log 2 - margin`` is not among the best ``need`` and cannot tie with the last of them within
    ``margin``. ``f`` comes from a histogram of ``max ub - ub`` in bins of ``bin_width`` (no sort), as many bins
    as the row has candidates: the lower edge of the first bin, from the top, where the count reaches
    ``need``. A row keeps every candidate when the count is not reached inside the histogram or ``floor`` is
    not above ``floor_min``. Bounds only: the exact log-scores of the kept candidates are the caller's, computed
    with numpy as on the full array."""
    n_rows, width = s.shape
    n_slots = path.shape[1]
    n_bins = width
    hist = np.zeros(n_bins, dtype=np.int64)
    drop = tail * np.log(2.0) + margin
    inv_bin = 1.0 / bin_width
    n_out = 0
    for b in range(n_rows):
        top = -np.inf
        for slot in range(n_slots):
            parent = path[b, slot]
            base = slot * arity
            for c in range(arity):
                m = 1.0 - np.float64(s[b, base + c])
                if m < 0.0:
                    m = 0.0
                if power == 3.0:
                    hinge = m * m * m
                elif power == 2.0:
                    hinge = m * m
                else:
                    hinge = m**power
                value = parent - (hinge + tail * m)
                ub[b, base + c] = value
                if value > top:
                    top = value
        floor = -np.inf
        if top > -np.inf:
            used = 0
            for j in range(width):
                delta = (top - ub[b, j]) * inv_bin  # inf for absent (-inf) candidates
                if delta < n_bins:
                    i = int(delta)
                    hist[i] += 1
                    if i >= used:
                        used = i + 1
            seen = 0
            for i in range(used):
                seen += hist[i]
                if seen >= need and floor == -np.inf:
                    floor = top - (i + 1) * bin_width - drop
                hist[i] = 0
        if not floor > floor_min:
            floor = -np.inf
        row = b * width
        for slot in range(n_slots):
            parent = path[b, slot]
            base = slot * arity
            for c in range(arity):
                if ub[b, base + c] >= floor:
                    out[n_out] = row + base + c
                    out_path[n_out] = parent
                    out_s[n_out] = s[b, base + c]
                    n_out += 1
    return n_out


_LOW32 = 0xFFFFFFFF


def _top_of_rows(
    rows: np.ndarray,
    labels: np.ndarray,
    score_bits: np.ndarray,
    kth_bits: np.ndarray,
    k: int,
    out_idx: np.ndarray,
    out_bits: np.ndarray,
) -> None:  # pragma: no cover - compiled; tested through sparsexc.tree.search
    """Each row's ``k`` best entries by float32 score, ties to the lower label, best first.

    Entry ``e`` belongs to row ``rows[e]`` (non-decreasing; every row of the output has entries), has label
    ``labels[e]`` (distinct within a row, below 2^32) and a positive float32 score given by its bits
    ``score_bits[e]``. Only entries scoring at least the row's ``kth_bits`` (a positive float32's bits; at least
    ``k`` entries qualify) compete. For positive float32 numbers the bits, read as unsigned integers, order as
    the values do, so one 64-bit key ``score bits << 32 | (2^32 - 1 - label)`` per entry, sorted, ranks by score
    and then by lower label; ``out_bits`` receives the scores' bits."""
    n = rows.shape[0]
    keys = np.empty(n, dtype=np.uint64)
    start = 0
    while start < n:
        b = rows[start]
        m = 0
        e = start
        while e < n and rows[e] == b:
            if score_bits[e] >= kth_bits[b]:
                keys[m] = (np.uint64(score_bits[e]) << np.uint64(32)) | np.uint64(_LOW32 - labels[e])
                m += 1
            e += 1
        part = keys[:m]
        part.sort()
        for r in range(k):
            key = part[m - 1 - r]
            out_bits[b, r] = np.uint32(key >> np.uint64(32))
            out_idx[b, r] = _LOW32 - np.int64(key & np.uint64(_LOW32))
        start = e


def _kth_of_rows(flat: np.ndarray, values: np.ndarray, width: int, k: int, out: np.ndarray) -> bool:
    """Each row's ``k``-th largest value among its entries: ``out[b]``; False (``out`` unfinished) if some row of
    ``out`` has fewer than ``k`` entries.

    Entry ``e`` has the flat row-major index ``flat[e]`` (increasing) into a (rows, ``width``) array, so row
    ``flat[e] // width``, and the value ``values[e]``. The k-th largest is an order statistic: the same value
    as ``np.partition`` of the whole row gives whenever the entries missing from the row are all smaller."""
    n = flat.shape[0]
    buf = np.empty(n, dtype=values.dtype)
    start = 0
    filled = 0
    while start < n:
        b = flat[start] // width
        e = start
        while e < n and flat[e] // width == b:
            e += 1
        m = e - start
        if m < k:
            return False
        buf[:m] = values[start:e]
        out[b] = np.partition(buf[:m], m - k)[m - k]
        filled += 1
        start = e
    return filled == out.shape[0]


def _layout_sizes(
    indptr: np.ndarray, indices: np.ndarray, offsets: np.ndarray, d: int, key_start: np.ndarray
) -> int:  # pragma: no cover - compiled; tested through sparsexc.tree.search.LevelIndex.build
    """Per parent ``p`` (children ``offsets[p]:offsets[p + 1]``, rows of a canonical CSR matrix with columns
    ``0..d``, ``d`` the bias): ``key_start[p + 1] - key_start[p]`` = its distinct features below ``d`` (its keys),
    ``key_start[0] = 0``; returns the number of stored entries below column ``d``."""
    count = np.zeros(d, dtype=np.bool_)
    touched = np.empty(d, dtype=np.int64)
    key_start[0] = 0
    stored = 0
    for p in range(offsets.shape[0] - 1):
        nt = 0
        for e in range(indptr[offsets[p]], indptr[offsets[p + 1]]):
            f = indices[e]
            if f < d:
                stored += 1
                if not count[f]:
                    count[f] = True
                    touched[nt] = f
                    nt += 1
        for i in range(nt):
            count[touched[i]] = False
        key_start[p + 1] = key_start[p] + nt
    return stored


def _layout_fill(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    offsets: np.ndarray,
    d: int,
    key_start: np.ndarray,
    keys: np.ndarray,
    block_indptr: np.ndarray,
    ranks: np.ndarray,
    block_data: np.ndarray,
    bias_w: np.ndarray,
    bias_stored: np.ndarray,
) -> None:  # pragma: no cover - compiled; tested through sparsexc.tree.search.LevelIndex.build
    """The parent-major layout of :class:`sparsexc.tree.search.LevelIndex` in place, by a counting sort per parent:
    its keys ``p * d + f`` in increasing ``f`` from ``key_start[p]`` on, each key's entries (child rank among
    the siblings, value) in child order, the bias column's entries in ``bias_w`` / ``bias_stored``. The same
    arrays as the stable sort by key of the entries in CSR order (children in order, features increasing)."""
    count = np.zeros(d, dtype=np.int64)
    pos = np.zeros(d, dtype=np.int64)
    touched = np.empty(d, dtype=np.int64)
    stored = 0
    for p in range(offsets.shape[0] - 1):
        c0, c1 = offsets[p], offsets[p + 1]
        nt = 0
        for c in range(c0, c1):
            for e in range(indptr[c], indptr[c + 1]):
                f = indices[e]
                if f == d:
                    bias_w[c] = data[e]
                    bias_stored[c] = True
                    continue
                if count[f] == 0:
                    touched[nt] = f
                    nt += 1
                count[f] += 1
        k0 = key_start[p]
        if nt * 16 >= d:  # many of the features: one scan of the counts beats a sort (wordnet: 0.05 s a tree, not 0.07)
            i = 0
            for f in range(d):
                if count[f]:
                    keys[k0 + i] = p * d + f
                    block_indptr[k0 + i] = stored
                    pos[f] = stored
                    stored += count[f]
                    count[f] = 0
                    i += 1
        else:
            feats = np.sort(touched[:nt])
            for i in range(nt):
                f = feats[i]
                keys[k0 + i] = p * d + f
                block_indptr[k0 + i] = stored
                pos[f] = stored
                stored += count[f]
                count[f] = 0
        for c in range(c0, c1):
            for e in range(indptr[c], indptr[c + 1]):
                f = indices[e]
                if f < d:
                    q = pos[f]
                    ranks[q] = c - c0
                    block_data[q] = data[e]
                    pos[f] = q + 1
    block_indptr[key_start[offsets.shape[0] - 1]] = stored


# compiled on first use and cached on disk (numba's cache: beside this file, else a user-wide folder)
children_scores_kernel = numba.njit(cache=True, nogil=True)(_children_scores)
ensemble_mean_kernel = numba.njit(cache=True, nogil=True)(_ensemble_mean)
hinge_candidates_kernel = numba.njit(cache=True, nogil=True)(_hinge_candidates)
top_of_rows_kernel = numba.njit(cache=True, nogil=True)(_top_of_rows)
kth_of_rows_kernel = numba.njit(cache=True, nogil=True)(_kth_of_rows)
layout_sizes_kernel = numba.njit(cache=True, nogil=True)(_layout_sizes)
layout_fill_kernel = numba.njit(cache=True, nogil=True)(_layout_fill)


def numba_started() -> bool:
    """Whether a compiled kernel of the tree package has run in this process (numba's one-off start, 0.2-0.35
    CPU s, is then paid, so the search's kernel costs nothing extra)."""
    kernels = (
        children_scores_kernel,
        ensemble_mean_kernel,
        hinge_candidates_kernel,
        top_of_rows_kernel,
        kth_of_rows_kernel,
        layout_sizes_kernel,
        layout_fill_kernel,
        _dcd._kernel,
        _dcd._used_kernel,
        _dcd._local_kernel,
    )
    return any(kernel.signatures for kernel in kernels)
