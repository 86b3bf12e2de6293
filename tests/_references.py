"""Independent numpy references shared by tests in several folders (importable from any test: pytest puts the
folder of the root conftest.py on sys.path)."""

from __future__ import annotations

import numpy as np


def sparsemax_reference(z: np.ndarray) -> np.ndarray:
    """Algorithm 1 of Martins & Astudillo, written plainly, over the last axis one finite row at a time (float64):
    sort descending, k(z) = max{k : 1 + k s_k > sum_{j<=k} s_j}, tau = (sum_{j<=k(z)} s_j - 1) / k(z), p = [z - tau]_+."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    rows = z.reshape(-1, z.shape[-1])
    out = np.empty_like(rows)
    for i, row in enumerate(rows):
        s = np.sort(row)[::-1]
        cumsum = np.cumsum(s)
        ranks = np.arange(1, len(s) + 1)
        k = ranks[1 + ranks * s > cumsum].max()
        tau = (cumsum[k - 1] - 1) / k
        out[i] = np.maximum(row - tau, 0)
    return out.reshape(z.shape)
