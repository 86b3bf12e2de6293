"""Dual coordinate descent for the L2-regularised squared-hinge loss (Hsieh et al. 2008), compiled by numba.

This is LIBLINEAR's default solver of the peers (``-s 1``; Parabel, Bonsai, omikuji, PECOS): for one column,

    min_w 1/2 ||w||^2 + C * sum_i max(0, 1 - y_i w . [x_i, bias])^2

through its dual  min_{alpha >= 0} 1/2 alpha^T Q alpha - sum_i alpha_i  with  Q_ij = y_i y_j [x_i, b].[x_j, b]
+ delta_ij / (2C), keeping w = sum_i y_i alpha_i [x_i, b]. Each step solves one coordinate exactly:
G = y_i w . [x_i, b] - 1 + alpha_i / (2C),  alpha_i <- max(0, alpha_i - G / Q_ii),  w += (new - old) y_i [x_i, b],
O(nnz(x_i)) per step. Rows are visited in a seeded random order each pass; rows at alpha_i = 0 whose gradient
exceeds the last pass's largest projected gradient are shrunk away (LIBLINEAR's shrinking) and a final pass
over all rows confirms. A column stops when the spread of the projected gradients, max PG - min PG, is at most
``tol`` (LIBLINEAR's dual rule; the peers use 0.1), or after ``max_iter`` passes.

The kernel releases the GIL (``nogil``), so node problems trained on threads run in parallel.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["dcd_squared_hinge"]


def _dcd(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    targets: np.ndarray,
    n_features: int,
    C: float,
    bias: float,
    tol: float,
    max_iter: int,
    seed: int,
) -> np.ndarray:  # pragma: no cover - compiled; tested through dcd_squared_hinge
    n = indptr.shape[0] - 1
    K = targets.shape[1]
    W = np.zeros((n_features + 1, K), dtype=np.float32)
    diag = 0.5 / C
    qd = np.empty(n, dtype=np.float64)
    for i in range(n):
        s = bias * bias + diag
        for p in range(indptr[i], indptr[i + 1]):
            s += data[p] * data[p]
        qd[i] = s
    np.random.seed(seed)
    w = np.zeros(n_features + 1, dtype=np.float64)
    alpha = np.zeros(n, dtype=np.float64)
    index = np.empty(n, dtype=np.int64)
    for k in range(K):
        w[:] = 0.0
        alpha[:] = 0.0
        for i in range(n):
            index[i] = i
        active = n
        pg_max_old = np.inf
        for _ in range(max_iter):
            pg_max = -np.inf
            pg_min = np.inf
            for s in range(active):  # random order of the active rows
                j = s + np.random.randint(active - s)
                index[s], index[j] = index[j], index[s]
            s = 0
            while s < active:
                i = index[s]
                y = 1.0 if targets[i, k] else -1.0
                m = w[n_features] * bias
                for p in range(indptr[i], indptr[i + 1]):
                    m += w[indices[p]] * data[p]
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
                    for p in range(indptr[i], indptr[i + 1]):
                        w[indices[p]] += step * data[p]
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
    return W


# compiled on first use and cached on disk (numba's cache: beside this file, else a user-wide folder)
_kernel = numba.njit(cache=True, nogil=True)(_dcd)


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
) -> np.ndarray:
    """Weights (n_features + 1, K) float32 of K squared-hinge columns by dual coordinate descent (see above).

    ``indptr``/``indices``/``data``: the rows as CSR arrays (int64, int64, float64); ``targets``: (n, K) bool.
    """
    return _kernel(
        indptr, indices, data, targets, n_features, float(C), float(bias), float(tol), int(max_iter), int(seed)
    )
