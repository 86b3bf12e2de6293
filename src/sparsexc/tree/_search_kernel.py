"""The beam search's inner loops, compiled by numba: the scores of all children of (row, parent) pairs, the
level's layout, and an ensemble's mean of its members' top labels (:func:`_ensemble_mean`).

For pair ``q`` = (row ``r``, parent ``p``) and child rank ``c`` of ``p`` (its ``c``-th child, node
``offsets[p] + c``), the score is

    s[q, c] = float32( float64( sum_j x_rj * w_{p, j, c} ) + bias_{offsets[p] + c} ),

the sum over the stored features ``j`` of row ``r`` (in their stored order, increasing ``j`` in a canonical
row) of the row's value times the weight the level's feature-major layout (:class:`sparsexc.tree.search.LevelIndex`)
holds for (j, p, c), accumulated in float32 in that order; ``-inf`` for ranks past the parent's arity. This is
the same arithmetic, in the same order, as the sparse x sparse product ``query @ block`` (scipy's
``csr_matmat``, float32) followed by the float64 bias addition, so the scores are bit for bit those; it only
skips building the query matrix, the product's two passes and its dense copy. The pairs of one row are scored
together: each of the row's features is read once and its keys (the parents whose children use it) are matched
against the row's parents, by a scan of the feature's keys when they are few, else by a binary search per parent.

The kernels release the GIL (``nogil``).
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
    "layout_counts_kernel",
    "layout_csr_kernel",
    "layout_fill_kernel",
    "numba_started",
    "top_of_rows_kernel",
]


def _children_scores(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    rows: np.ndarray,
    parents: np.ndarray,
    feature_ptr: np.ndarray,
    key_parents: np.ndarray,
    block_indptr: np.ndarray,
    block_ranks: np.ndarray,
    block_data: np.ndarray,
    bias: np.ndarray,
    offsets: np.ndarray,
    scan_factor: int,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled; tested through LevelIndex.children_scores
    """Fill ``out`` (float32, (Q, max_arity)) with the scores above. Consecutive pairs of the same row form a
    group; feature ``j``'s keys are ``feature_ptr[j]:feature_ptr[j + 1]`` (their parents ``key_parents``,
    increasing); a feature with at most ``scan_factor`` keys per distinct parent of the group is scanned, the
    others searched. Any pairs are accepted (rows in any order, a parent twice)."""
    Q, width = out.shape
    slot = np.full(offsets.shape[0] - 1, -1, dtype=np.int64)  # a parent's accumulator in the group, or -1
    acc = np.zeros((16, width), dtype=np.float32)
    slot_parent = np.empty(16, dtype=np.int64)
    q0 = 0
    while q0 < Q:
        r = rows[q0]
        q1 = q0 + 1
        while q1 < Q and rows[q1] == r:
            q1 += 1
        if acc.shape[0] < q1 - q0:
            acc = np.zeros((q1 - q0, width), dtype=np.float32)
            slot_parent = np.empty(q1 - q0, dtype=np.int64)
        n_slots = 0
        for q in range(q0, q1):
            p = parents[q]
            if slot[p] < 0:
                slot[p] = n_slots
                slot_parent[n_slots] = p
                acc[n_slots, :] = 0.0
                n_slots += 1
        for e in range(indptr[r], indptr[r + 1]):
            j = indices[e]
            k0, k1 = feature_ptr[j], feature_ptr[j + 1]
            if k0 == k1:
                continue
            value = data[e]
            if k1 - k0 <= scan_factor * n_slots:
                for kk in range(k0, k1):
                    s = slot[key_parents[kk]]
                    if s >= 0:
                        for b in range(block_indptr[kk], block_indptr[kk + 1]):
                            acc[s, block_ranks[b]] += value * block_data[b]
            else:
                for s in range(n_slots):
                    p = slot_parent[s]
                    lo, hi = k0, k1
                    while lo < hi:
                        mid = (lo + hi) >> 1
                        if key_parents[mid] < p:
                            lo = mid + 1
                        else:
                            hi = mid
                    if lo < k1 and key_parents[lo] == p:
                        for b in range(block_indptr[lo], block_indptr[lo + 1]):
                            acc[s, block_ranks[b]] += value * block_data[b]
        for q in range(q0, q1):
            p = parents[q]
            s = slot[p]
            first = offsets[p]
            arity = offsets[p + 1] - first
            for c in range(width):
                if c < arity:
                    out[q, c] = np.float32(np.float64(acc[s, c]) + bias[first + c])
                else:
                    out[q, c] = -np.inf
        for s in range(n_slots):
            slot[slot_parent[s]] = -1
        q0 = q1


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


def _layout_counts(
    indptr: np.ndarray,
    indices: np.ndarray,
    offsets: np.ndarray,
    d: int,
    f0: int,
    f1: int,
    feature_ptr: np.ndarray,
    entry_ptr: np.ndarray,
) -> None:  # pragma: no cover - compiled; tested through sparsexc.tree.search.LevelIndex.build
    """For the children of the parents delimited by ``offsets`` (rows of a canonical CSR matrix with columns
    ``0..d``, ``d`` the bias): ``feature_ptr[j + 1]`` += the parents whose children store feature ``j`` (its
    keys), ``entry_ptr[j + 1]`` += its stored entries, for ``f0 <= j < f1`` (both zero-filled by the caller,
    who sums them up; threads with disjoint ranges fill one pair of arrays)."""
    last = np.full(f1 - f0, -1, dtype=np.int64)
    for p in range(offsets.shape[0] - 1):
        for c in range(offsets[p], offsets[p + 1]):
            for e in range(indptr[c], indptr[c + 1]):
                f = indices[e]
                if f0 <= f < f1:
                    entry_ptr[f + 1] += 1
                    if last[f - f0] != p:
                        last[f - f0] = p
                        feature_ptr[f + 1] += 1


def _layout_fill(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    offsets: np.ndarray,
    d: int,
    f0: int,
    f1: int,
    feature_ptr: np.ndarray,
    entry_ptr: np.ndarray,
    key_parents: np.ndarray,
    block_indptr: np.ndarray,
    ranks: np.ndarray,
    block_data: np.ndarray,
    bias_w: np.ndarray,
    bias_stored: np.ndarray,
) -> None:  # pragma: no cover - compiled; tested through sparsexc.tree.search.LevelIndex.build
    """The feature-major layout of :class:`sparsexc.tree.search.LevelIndex` in place for the features
    ``f0 <= j < f1``, by a counting sort on the feature (``feature_ptr``, ``entry_ptr``: the cumulative counts of
    :func:`_layout_counts`): the children are visited in order, so each feature's entries come in child order,
    hence grouped by parent (one key per (feature, parent), parents increasing). The range that ends at ``d``
    also puts the bias column's entries in ``bias_w`` / ``bias_stored`` and closes ``block_indptr``; ranges are
    disjoint in what they write, so threads may fill one layout side by side."""
    key_pos = feature_ptr[f0:f1].copy()
    entry_pos = entry_ptr[f0:f1].copy()
    last = np.full(f1 - f0, -1, dtype=np.int64)
    for p in range(offsets.shape[0] - 1):
        c0 = offsets[p]
        for c in range(c0, offsets[p + 1]):
            for e in range(indptr[c], indptr[c + 1]):
                f = indices[e]
                if f == d:
                    if f1 == d:
                        bias_w[c] = data[e]
                        bias_stored[c] = True
                    continue
                if f < f0 or f >= f1:
                    continue
                i = f - f0
                q = entry_pos[i]
                if last[i] != p:
                    last[i] = p
                    k = key_pos[i]
                    key_parents[k] = p
                    block_indptr[k] = q
                    key_pos[i] = k + 1
                ranks[q] = c - c0
                block_data[q] = data[e]
                entry_pos[i] = q + 1
    if f1 == d:
        block_indptr[feature_ptr[d]] = entry_ptr[d]


def _layout_csr(
    feature_ptr: np.ndarray,
    key_parents: np.ndarray,
    block_indptr: np.ndarray,
    ranks: np.ndarray,
    block_data: np.ndarray,
    offsets: np.ndarray,
    bias_weights: np.ndarray,
    bias_stored: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
) -> None:  # pragma: no cover - compiled; tested through sparsexc.tree.search.LevelIndex.weights
    """The level's CSR matrix (children x (d + 1)) back from the layout, by a counting sort on the child:
    ``indptr`` (zero-filled, n_children + 1) gets the row pointers, ``indices`` / ``data`` the entries, each row's
    features increasing (the layout is visited feature by feature) and its stored bias entry (column ``d``) last."""
    d = feature_ptr.shape[0] - 1
    n_children = bias_stored.shape[0]
    for k in range(feature_ptr[d]):
        first = offsets[key_parents[k]]
        for b in range(block_indptr[k], block_indptr[k + 1]):
            indptr[first + ranks[b] + 1] += 1
    for c in range(n_children):
        if bias_stored[c]:
            indptr[c + 1] += 1
    for c in range(n_children):
        indptr[c + 1] += indptr[c]
    pos = indptr[:-1].copy()
    for j in range(d):
        for k in range(feature_ptr[j], feature_ptr[j + 1]):
            first = offsets[key_parents[k]]
            for b in range(block_indptr[k], block_indptr[k + 1]):
                c = first + ranks[b]
                q = pos[c]
                indices[q] = j
                data[q] = block_data[b]
                pos[c] = q + 1
    for c in range(n_children):
        if bias_stored[c]:
            q = pos[c]
            indices[q] = d
            data[q] = bias_weights[c]


# compiled on first use and cached on disk (numba's cache: beside this file, else a user-wide folder)
children_scores_kernel = numba.njit(cache=True, nogil=True)(_children_scores)
ensemble_mean_kernel = numba.njit(cache=True, nogil=True)(_ensemble_mean)
hinge_candidates_kernel = numba.njit(cache=True, nogil=True)(_hinge_candidates)
top_of_rows_kernel = numba.njit(cache=True, nogil=True)(_top_of_rows)
kth_of_rows_kernel = numba.njit(cache=True, nogil=True)(_kth_of_rows)
layout_counts_kernel = numba.njit(cache=True, nogil=True)(_layout_counts)
layout_fill_kernel = numba.njit(cache=True, nogil=True)(_layout_fill)
layout_csr_kernel = numba.njit(cache=True, nogil=True)(_layout_csr)


def numba_started() -> bool:
    """Whether a compiled kernel of the tree package has run in this process (numba's one-off start, 0.2-0.35
    CPU s, is then paid, so the search's kernel costs nothing extra)."""
    kernels = (
        children_scores_kernel,
        ensemble_mean_kernel,
        hinge_candidates_kernel,
        top_of_rows_kernel,
        kth_of_rows_kernel,
        layout_counts_kernel,
        layout_fill_kernel,
        layout_csr_kernel,
        _dcd._kernel,
        _dcd._used_kernel,
        _dcd._local_kernel,
    )
    return any(kernel.signatures for kernel in kernels)
