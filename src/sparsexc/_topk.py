"""Top-k of each row of a dense numpy array, best first, ties broken by the lower column id.

The numpy twin of :func:`sparsexc.core.topk_lower_id_ties` (same rule, same result), for code that must not
import torch: the label-tree model trains and predicts with numpy/scipy only, and importing torch would cost
it about 240 MB of resident memory and seconds of start-up.
"""

from __future__ import annotations

import numpy as np

__all__ = ["topk_rows"]


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices int64 (B, k'), values (B, k'))`` of the ``k' = min(k, C)`` largest entries of each row.

    The k-th largest value of each row is found by a partition; when no row has more than k entries at or above
    it (the usual case) only those k entries are sorted (stably, so equal values keep increasing column order);
    otherwise the whole array is sorted stably. NaN is not allowed (use -inf for "absent").
    """
    B, C = scores.shape
    k = min(int(k), C)
    if k == 0 or B == 0:
        return np.zeros((B, k), dtype=np.int64), np.zeros((B, k), dtype=scores.dtype)
    kth = np.partition(scores, C - k, axis=1)[:, C - k : C - k + 1]
    at_least = scores >= kth
    if np.all(at_least.sum(axis=1) == k):
        candidates = np.nonzero(at_least)[1].reshape(B, k)  # increasing column within each row
    else:
        candidates = np.broadcast_to(np.arange(C), (B, C))
    values = np.take_along_axis(scores, candidates, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(candidates, order, axis=1).astype(np.int64), np.take_along_axis(values, order, axis=1)
