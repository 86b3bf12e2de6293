"""Dual coordinate descent for the L2-regularised squared-hinge loss (Hsieh et al. 2008), compiled by numba.

This is LIBLINEAR's default solver of the peers (``-s 1``; Parabel, Bonsai, omikuji, PECOS): for one column,

    min_w 1/2 ||w||^2 + C * sum_i max(0, 1 - y_i w . [x_i, bias])^2

through its dual  min_{alpha >= 0} 1/2 alpha^T Q alpha - sum_i alpha_i  with  Q_ij = y_i y_j [x_i, b].[x_j, b]
+ delta_ij / (2C), keeping w = sum_i y_i alpha_i [x_i, b]. Each step solves one coordinate exactly:
G = y_i w . [x_i, b] - 1 + alpha_i / (2C),  alpha_i <- max(0, alpha_i - G / Q_ii),  w += (new - old) y_i [x_i, b],
O(nnz(x_i)) per step. Rows are visited in a seeded random order each pass (a xorshift64 generator); rows at
alpha_i = 0 whose gradient exceeds the last pass's largest projected gradient are shrunk away (LIBLINEAR's
shrinking) and a final pass over all rows confirms. A column stops when the spread of the projected gradients,
max PG - min PG, is at most ``tol`` (LIBLINEAR's dual rule; the peers use 0.1), or after ``max_iter`` passes.

The kernel releases the GIL (``nogil``), so node problems trained on threads run in parallel.

A solve may start from given duals (``alpha``, a warm start): any ``alpha >= 0`` is feasible, w is rebuilt
from it, and the duals found are written back. The C path of the cross-validation of C
(:func:`sparsexc.tree.model.fit_C_path`) starts each C from the previous C's solution.

A tree node trains on a subset of the rows of X and on the columns those rows use. The node's rows
(``rows``) are gathered from the full CSR matrix by one compiled pass into compact arrays: int32 local column
ids ``remap[indices]`` (``remap``: global column -> the node's local column, from :func:`used_columns`) and
the values in X's own dtype, so a node costs 8 bytes per stored entry of its rows plus O(n + d), instead of
the copies of ``X[rows]`` and its column-compacted, float64/int64 versions (about 40 bytes per entry).
The float32 values of X are read and widened to float64 where they are used, which gives the same float64
numbers as a float64 copy: the weights are bit-identical to the kernel run on the copied submatrix.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["dcd_squared_hinge", "used_columns"]


def _used(
    indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, n_features: int
) -> np.ndarray:  # pragma: no cover - compiled; tested through used_columns
    """Whether each column holds a stored entry in one of ``rows`` (bool, (n_features,))."""
    mark = np.zeros(n_features, dtype=np.bool_)
    for r in rows:
        for p in range(indptr[r], indptr[r + 1]):
            mark[indices[p]] = True
    return mark


def _local_columns(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, rows: np.ndarray, remap: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled; tested through dcd_squared_hinge
    """The node's rows as compact CSR arrays: row pointers, int32 local column ids ``remap[indices]``, values
    (X's dtype, not widened)."""
    n = rows.shape[0]
    lptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        lptr[i + 1] = lptr[i] + indptr[rows[i] + 1] - indptr[rows[i]]
    lidx = np.empty(lptr[n], dtype=np.int32)
    ldata = np.empty(lptr[n], dtype=data.dtype)
    for i in range(n):
        shift = indptr[rows[i]] - lptr[i]
        for q in range(lptr[i], lptr[i + 1]):
            lidx[q] = remap[indices[shift + q]]
            ldata[q] = data[shift + q]
    return lptr, lidx, ldata


def _dcd(
    lptr: np.ndarray,
    lidx: np.ndarray,
    data: np.ndarray,
    targets: np.ndarray,
    n_features: int,
    C: float,
    bias: float,
    tol: float,
    max_iter: int,
    seed: int,
    alpha0: np.ndarray,
) -> np.ndarray:  # pragma: no cover - compiled; tested through dcd_squared_hinge
    # the node's rows as compact CSR arrays (see _local_columns): local columns lidx < n_features;
    # alpha0 (n, K): the starting duals, overwritten with the solution's (a warm start), or (0, K): start at 0
    n = lptr.shape[0] - 1
    warm = alpha0.shape[0] == n and n > 0
    K = targets.shape[1]
    W = np.zeros((n_features + 1, K), dtype=np.float32)
    diag = 0.5 / C
    qd = np.empty(n, dtype=np.float64)
    for i in range(n):
        s = bias * bias + diag
        for q in range(lptr[i], lptr[i + 1]):
            v = np.float64(data[q])
            s += v * v
        qd[i] = s
    # the rows' order: xorshift64 (Marsaglia 2003), seeded, bounded by a multiply-high (Lemire 2019): on
    # wordnet-hypernyms' leaf nodes 17% less CPU than numba's np.random.randint (MT19937 with rejection)
    state = np.uint64(seed & 0x7FFFFFFFFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x2545F4914F6CDD1D)
    if state == np.uint64(0):
        state = np.uint64(0x2545F4914F6CDD1D)
    w = np.zeros(n_features + 1, dtype=np.float64)
    alpha = np.zeros(n, dtype=np.float64)
    index = np.empty(n, dtype=np.int64)
    for k in range(K):
        w[:] = 0.0
        alpha[:] = 0.0
        if warm:  # w = sum_i y_i alpha_i [x_i, b] of the starting duals (feasible: alpha >= 0 is the only bound)
            for i in range(n):
                a = alpha0[i, k]
                if a > 0.0:
                    alpha[i] = a
                    step = a if targets[i, k] else -a
                    for q in range(lptr[i], lptr[i + 1]):
                        w[lidx[q]] += step * np.float64(data[q])
                    w[n_features] += step * bias
        for i in range(n):
            index[i] = i
        active = n
        pg_max_old = np.inf
        for _ in range(max_iter):
            pg_max = -np.inf
            pg_min = np.inf
            for s in range(active):  # random order of the active rows
                state ^= state << np.uint64(13)
                state ^= state >> np.uint64(7)
                state ^= state << np.uint64(17)
                j = s + np.int64(((state >> np.uint64(32)) * np.uint64(active - s)) >> np.uint64(32))
                index[s], index[j] = index[j], index[s]
            s = 0
            while s < active:
                i = index[s]
                y = 1.0 if targets[i, k] else -1.0
                m = w[n_features] * bias
                for q in range(lptr[i], lptr[i + 1]):
                    m += w[lidx[q]] * np.float64(data[q])
                g = y * m - 1.0 + diag * alpha[i]
                pg = 0.0
                if alpha[i] == 0.0:
                    if g > pg_max_old:  # shrink: this row is unlikely to move
                        active -= 1
                        index[s], index[active] = index[active], index[s]
                        continue
                    if g < 0.0:
                        pg = g
                else:
                    pg = g
                pg_max = max(pg_max, pg)
                pg_min = min(pg_min, pg)
                if abs(pg) > 1e-12:
                    old = alpha[i]
                    alpha[i] = max(old - g / qd[i], 0.0)
                    step = (alpha[i] - old) * y
                    for q in range(lptr[i], lptr[i + 1]):
                        w[lidx[q]] += step * np.float64(data[q])
                    w[n_features] += step * bias
                s += 1
            if pg_max - pg_min <= tol:
                if active == n:
                    break
                active = n  # confirm on every row before stopping
                pg_max_old = np.inf
                continue
            pg_max_old = pg_max if pg_max > 0 else np.inf
        for f in range(n_features + 1):
            W[f, k] = w[f]
        if warm:
            for i in range(n):
                alpha0[i, k] = alpha[i]
    return W


# compiled on first use and cached on disk (numba's cache: beside this file, else a user-wide folder)
_kernel = numba.njit(cache=True, nogil=True)(_dcd)
_used_kernel = numba.njit(cache=True, nogil=True)(_used)
_local_kernel = numba.njit(cache=True, nogil=True)(_local_columns)


def used_columns(
    indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, n_features: int
) -> tuple[np.ndarray, np.ndarray]:
    """The columns that ``rows`` of a CSR matrix use, without copying those rows.

    Returns ``(used, remap)``: ``used`` the increasing int64 ids of the columns with a stored entry in one of
    the rows; ``remap`` int32 (n_features,) with ``remap[used[j]] = j`` (other entries 0, never read for
    these rows). An explicitly stored zero counts as used; its weight stays exactly 0.
    """
    mark = _used_kernel(indptr, indices, np.asarray(rows, dtype=np.int64), int(n_features))
    remap = np.cumsum(mark, dtype=np.int32) - 1
    remap[~mark] = 0
    return np.flatnonzero(mark).astype(np.int64), remap


def dcd_squared_hinge(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    targets: np.ndarray,
    n_features: int,
    *,
    C: float,
    bias: float,
    tol: float,
    max_iter: int,
    seed: int = 0,
    rows: np.ndarray | None = None,
    remap: np.ndarray | None = None,
    alpha: np.ndarray | None = None,
) -> np.ndarray:
    """Weights (n_features + 1, K) float32 of K squared-hinge columns by dual coordinate descent (see above).

    ``indptr``/``indices``/``data``: a CSR matrix (int32 or int64 indices, float32 or float64 values);
    ``targets``: (n, K) bool, row i the targets of CSR row ``rows[i]`` (default: every row, n = the CSR's rows).
    ``remap``: stored column j is weight row ``remap[j] < n_features`` (default: the identity); see
    :func:`used_columns`.
    ``alpha``: (n, K) float64, C-ordered, >= 0: a warm start. The solve starts from these duals (any
    ``alpha >= 0`` is feasible, whatever C) instead of 0, and they are overwritten with the solution's duals,
    ready to start the next solve (LIBLINEAR's warm start along a C path: the same rows at a larger C).
    """
    if rows is None:
        rows = np.arange(indptr.shape[0] - 1, dtype=np.int64)
    if remap is None:
        remap = np.arange(n_features, dtype=np.int32)
    rows = np.asarray(rows, dtype=np.int64)
    # a compact copy of the node's rows (int32 local columns and the float32 values: 8 bytes per stored entry,
    # against ~40 for X[rows] and its float64/int64 conversions): the passes then read contiguous memory, as
    # fast as on the old copies (measured on debian-deps' nodes; reading X in place was 10-35% slower)
    lptr, lidx, ldata = _local_kernel(indptr, indices, data, rows, remap)
    if alpha is None:
        alpha = np.zeros((0, targets.shape[1]), dtype=np.float64)
    elif alpha.shape != targets.shape or alpha.dtype != np.float64 or not alpha.flags.c_contiguous:
        raise ValueError(f"alpha must be a C-ordered float64 array of shape {targets.shape}")
    return _kernel(
        lptr,
        lidx,
        ldata,
        targets,
        n_features,
        float(C),
        float(bias),
        float(tol),
        int(max_iter),
        int(seed),
        alpha,
    )
