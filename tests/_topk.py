"""Comparing two top-k results of one float computation done two ways (label shards and one layer, 2 ranks and 1,
other batch sizes or BLAS kernels): rounding may swap labels whose scores tie to within the rounding, so the
orders must agree except where the swapped labels' scores are tied within the tolerance (importable from any
test: pytest puts the folder of the root conftest.py on sys.path)."""

from __future__ import annotations

import numpy as np


def assert_same_topk(
    got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray], rtol: float, atol: float, err_msg: str = ""
) -> None:
    """Assert that the top-k ``got = (indices, scores)`` equals ``want`` up to near-tied swaps.

    Parameters
    ----------
    got, want : tuple of ndarray
        (B, k) label ids, best first, and their scores.
    rtol, atol : float
        The rounding the two computations may differ by (``np.isclose``'s meaning).
    err_msg : str
        Prefixed to the failure message.

    Checks that the two score sequences agree within the tolerance; that every row of ``got`` lists distinct
    labels; and that wherever the labels differ, ``got``'s label is one ``want`` scores the same within the
    tolerance: at its own place in ``want`` when it is there, else it ties with ``want``'s k-th score (a swap
    across the top-k boundary). At the k-th place itself a different label with the same score cannot be told
    from a tie from the top-k alone; pass a larger k (all labels) where that matters.
    """
    got_idx, got_val = (np.asarray(a) for a in got)
    want_idx, want_val = (np.asarray(a) for a in want)
    assert got_idx.shape == want_idx.shape == got_val.shape == want_val.shape, (
        f"{err_msg}: shapes {got_idx.shape} {got_val.shape} vs {want_idx.shape} {want_val.shape}"
    )
    np.testing.assert_allclose(got_val, want_val, rtol=rtol, atol=atol, err_msg=f"{err_msg}: the scores")
    for i, (g_row, w_row) in enumerate(zip(got_idx, want_idx)):
        assert len(set(g_row.tolist())) == len(g_row), f"{err_msg}: row {i} repeats a label: {g_row}"
        for j in np.flatnonzero(g_row != w_row):
            where = np.flatnonzero(w_row == g_row[j])
            reference = want_val[i, where[0]] if where.size else want_val[i, -1]
            assert np.isclose(got_val[i, j], reference, rtol=rtol, atol=atol), (
                f"{err_msg}: row {i}, place {j}: label {g_row[j]} (score {got_val[i, j]!r}) where the reference "
                f"has label {w_row[j]} (score {want_val[i, j]!r}); the reference scores label {g_row[j]} "
                f"{'at ' + repr(reference) if where.size else 'below its k-th score ' + repr(reference)}, not a tie"
            )
