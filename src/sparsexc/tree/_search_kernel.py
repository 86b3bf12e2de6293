"""The beam search's inner loop, compiled by numba: the scores of all children of (row, parent) pairs.

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

__all__ = ["children_scores_kernel", "numba_started"]


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
    block_indptr: np.ndarray,
    block_indices: np.ndarray,
    block_data: np.ndarray,
    bias: np.ndarray,
    offsets: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled; tested through LevelIndex.children_scores
    """Fill ``out`` (float32, (Q, max_arity)) with the scores above; ``table`` empty: find keys by binary
    search in ``keys``."""
    width = out.shape[1]
    acc = np.zeros(width, dtype=np.float32)
    use_table = table.shape[0] > 0
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
                lo, hi = 0, n_keys
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if keys[mid] < key:
                        lo = mid + 1
                    else:
                        hi = mid
                pos = lo if lo < n_keys and keys[lo] == key else -1
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


# compiled on first use and cached on disk (numba's cache: beside this file, else a user-wide folder)
children_scores_kernel = numba.njit(cache=True, nogil=True)(_children_scores)


def numba_started() -> bool:
    """Whether a compiled kernel of the tree package has run in this process (numba's one-off start, 0.2-0.35
    CPU s, is then paid, so the search's kernel costs nothing extra)."""
    kernels = (children_scores_kernel, _dcd._kernel, _dcd._used_kernel, _dcd._local_kernel)
    return any(kernel.signatures for kernel in kernels)
