"""Normalise what the metric functions receive, and rank it.

Three score forms are accepted everywhere a ranking is needed:

* dense scores, an array of shape (n_samples, n_labels): every label has a score;
* sparse scores, a scipy sparse matrix of shape (n_samples, n_labels): the *stored* entries are the predicted
  labels (an explicitly stored 0 still counts as predicted); a missing entry is "not predicted" and ranks
  below every stored entry of its row;
* top-k predictions, a ``tuple`` ``(indices, scores)`` of two arrays of shape (n_samples, k): ``indices[i, j]``
  is a label id or -1 ("no prediction", padding; its score is ignored).

Top-k predictions are turned into the sparse form (they mean the same thing), so only dense and sparse
scores travel further. The ranking of a row is by decreasing score, **ties broken by lower label id**; labels
that are not predicted (sparse and top-k forms) follow, in increasing label-id order. Sorting is stable
everywhere, which is what makes that tie rule hold.
"""

from __future__ import annotations

import numbers
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp

from sparsexc._sparse import as_label_matrix
from sparsexc.errors import ConfigurationError

ScoresLike: TypeAlias = np.ndarray | sp.spmatrix | sp.sparray | tuple
Scores: TypeAlias = np.ndarray | sp.csr_matrix  # normalised: dense float array, or canonical float CSR

# Dense scores are ranked in blocks of rows so that the temporaries stay near this many elements.
_DENSE_BLOCK_ELEMENTS = 1 << 22


def check_k(k: Any, name: str = "k") -> int:
    """Return ``k`` as an int >= 1 or raise a ValueError naming it."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
        raise ConfigurationError(f"{name} must be a positive integer; got {k!r}")
    if k < 1:
        raise ConfigurationError(f"{name} must be a positive integer; got {k}")
    return int(k)


def label_width(Y: Any) -> int | None:
    """The number of label columns a label argument fixes, or None for label lists."""
    if sp.issparse(Y) or isinstance(Y, np.ndarray):
        return int(Y.shape[1]) if Y.ndim == 2 else None
    return None


def _as_topk(scores: tuple, name: str) -> tuple[np.ndarray, np.ndarray]:
    if len(scores) != 2:
        raise ConfigurationError(
            f"{name} as a tuple must be (indices, scores), two arrays of shape (n_samples, k); "
            f"got a tuple of length {len(scores)}"
        )
    indices, values = np.asarray(scores[0]), np.asarray(scores[1])
    if indices.ndim != 2 or values.ndim != 2 or indices.shape != values.shape:
        raise ConfigurationError(
            f"{name} as top-k predictions must be (indices, scores) of the same shape (n_samples, k); "
            f"got shapes {indices.shape} and {values.shape}"
        )
    if indices.size and not np.issubdtype(indices.dtype, np.integer):
        raise ConfigurationError(
            f"{name}: the top-k indices must be integer label ids (-1 for padding); got dtype {indices.dtype}"
        )
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_) or np.iscomplexobj(values):
        raise ConfigurationError(f"{name}: the top-k scores must be real numbers; got dtype {values.dtype}")
    return indices.astype(np.int64, copy=False), values


def _score_dtype(dtype: np.dtype) -> np.dtype:
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)


def _check_no_nan(values: np.ndarray, name: str, where: str) -> None:
    if values.size and np.isnan(values).any():
        raise ConfigurationError(f"{name} holds a NaN score ({where}); scores must be numbers (infinities are allowed)")


def _topk_to_csr(indices: np.ndarray, values: np.ndarray, n_labels: int, name: str) -> sp.csr_matrix:
    n_samples = indices.shape[0]
    if indices.size and indices.min() < -1:
        row = int(np.argwhere(indices < -1)[0, 0])
        raise ConfigurationError(
            f"{name}: top-k indices row {row} holds {int(indices[row].min())}; "
            "label ids must be in 0..n_labels-1, or -1 for padding"
        )
    if indices.size and indices.max() >= n_labels:
        row, col = (int(v) for v in np.argwhere(indices >= n_labels)[0])
        raise ConfigurationError(
            f"{name}: top-k indices row {row} holds label id {int(indices[row, col])}, "
            f"but Y_true has {n_labels} labels (ids 0..{n_labels - 1})"
        )
    # Sort each (short) row by label id: CSR order, padding (-1) first, and repeats side by side.
    by_label = np.argsort(indices, axis=1)
    cols = np.take_along_axis(indices, by_label, axis=1)
    dup = (cols[:, 1:] == cols[:, :-1]) & (cols[:, 1:] >= 0)
    if dup.any():
        row, col = (int(v) for v in np.argwhere(dup)[0])
        raise ConfigurationError(f"{name}: top-k indices row {row} lists label {int(cols[row, col])} more than once")
    keep = cols >= 0
    data = np.take_along_axis(values, by_label, axis=1)[keep].astype(_score_dtype(values.dtype), copy=False)
    cols = cols[keep]
    _check_no_nan(data, name, "top-k scores")
    indptr = np.zeros(n_samples + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    return sp.csr_matrix((data, cols, indptr), shape=(n_samples, n_labels))


def prepare(
    Y_true: Any, scores: ScoresLike, *, n_labels: int | None = None, name: str = "scores", true_name: str = "Y_true"
) -> tuple[sp.csr_matrix, Scores]:
    """Validate and normalise a label matrix and scores for ranking.

    Parameters
    ----------
    Y_true : anything :func:`sparsexc._sparse.as_label_matrix` accepts, shape (n_samples, n_labels)
    scores : dense array, sparse matrix, or tuple ``(indices, scores)`` of top-k predictions
    n_labels : int, optional
        Width of the label space, used only when neither ``Y_true`` nor ``scores`` fixes it (label lists with
        top-k predictions); otherwise it is inferred from the largest label id seen.

    Returns
    -------
    Y : csr_matrix, shape (n_samples, n_labels), float32 0/1, sorted indices
    S : ndarray (n_samples, n_labels) float, or canonical csr_matrix of the same shape (top-k become CSR)
    """
    width_true = label_width(Y_true)
    topk: tuple[np.ndarray, np.ndarray] | None = None
    if isinstance(scores, tuple):
        topk = _as_topk(scores, name)
        n_score_rows, width_scores = topk[0].shape[0], None
    elif sp.issparse(scores):
        if scores.ndim != 2:
            raise ConfigurationError(f"{name} must be 2-D (n_samples, n_labels); got shape {scores.shape}")
        n_score_rows, width_scores = scores.shape
    else:
        scores = np.asarray(scores)
        if scores.ndim != 2:
            raise ConfigurationError(
                f"{name} must be a 2-D array (n_samples, n_labels), a sparse matrix, or a tuple "
                f"(indices, scores) of top-k predictions; got an array of shape {scores.shape}"
            )
        if not (np.issubdtype(scores.dtype, np.number) or scores.dtype == np.bool_) or np.iscomplexobj(scores):
            raise ConfigurationError(f"{name} must hold real numbers; got dtype {scores.dtype}")
        n_score_rows, width_scores = scores.shape

    if width_true is not None and width_scores is not None and width_true != width_scores:
        raise ConfigurationError(f"{name} has {width_scores} columns but {true_name} has {width_true} labels")
    width = width_true if width_true is not None else width_scores
    if width is None:  # label lists with top-k predictions: the ids seen (or the caller's hint) fix the width
        max_pred = int(topk[0].max()) if topk is not None and topk[0].size else -1
        Y = as_label_matrix(Y_true, name=true_name)
        width = max(Y.shape[1], max_pred + 1) if n_labels is None else int(n_labels)
    Y = as_label_matrix(Y_true, n_labels=width, name=true_name)
    if Y.shape[0] != n_score_rows:
        raise ConfigurationError(f"{name} has {n_score_rows} rows but {true_name} has {Y.shape[0]} rows")

    S: Scores
    if topk is not None:
        S = _topk_to_csr(topk[0], topk[1], width, name)
    elif sp.issparse(scores):
        S = sp.csr_matrix(scores, copy=True)
        S = S.astype(_score_dtype(S.dtype), copy=False)
        S.sum_duplicates()  # also sorts indices; explicit zeros stay stored (= predicted)
        _check_no_nan(S.data, name, "a stored entry")
    else:
        dense = np.asarray(scores)  # already an array (made above): no copy; it tells the type checker
        S = dense.astype(_score_dtype(dense.dtype), copy=False)
        if np.issubdtype(S.dtype, np.floating) and np.isnan(S).any():
            row, col = (int(v) for v in np.argwhere(np.isnan(S))[0])
            raise ConfigurationError(f"{name} holds a NaN score (row {row}, column {col}); scores must be numbers")
    return Y, S


def propensity_width(inv_propensity: Any) -> int | None:
    """The label-space width an ``inv_propensity`` vector implies (None if it is absent or not 1-D); a hint
    for when neither the true labels nor the scores fix the width."""
    if inv_propensity is None or np.ndim(inv_propensity) != 1:
        return None
    return int(np.shape(inv_propensity)[0])


def check_inv_propensity(inv_propensity: Any, n_labels: int, true_name: str = "Y_true") -> np.ndarray:
    """Return ``inv_propensity`` as a float64 vector of length ``n_labels`` (finite, >= 0) or raise."""
    w = np.asarray(inv_propensity)
    if w.ndim != 1:
        raise ConfigurationError(f"inv_propensity must be a 1-D array over labels; got shape {w.shape}")
    if not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
        raise ConfigurationError(f"inv_propensity must hold real numbers; got dtype {w.dtype}")
    if w.shape[0] != n_labels:
        raise ConfigurationError(f"inv_propensity has {w.shape[0]} entries but {true_name} has {n_labels} labels")
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)) or (w < 0).any():
        bad = int(np.flatnonzero(~np.isfinite(w) | (w < 0))[0])
        raise ConfigurationError(f"inv_propensity must be finite and >= 0; entry {bad} is {w[bad]}")
    return w


def row_of_entry(indptr: np.ndarray) -> np.ndarray:
    """The row of every stored entry of a CSR matrix with this ``indptr``."""
    return np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))


def _positions_in_rows(M: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Rank the stored entries of each row: (order, position) with ``order`` the entries sorted by row, then
    decreasing score, then increasing label id, and ``position[e]`` the 0-based rank of entry ``e`` in its row."""
    rows = row_of_entry(M.indptr)
    # Stable sort by decreasing score keeps the (row, label) order of the CSR among ties; that unique
    # score rank then breaks ties in one integer sort by (row, score rank). Faster than a 3-key lexsort.
    score_rank = np.empty(M.nnz, dtype=np.int64)
    score_rank[np.argsort(-M.data, kind="stable")] = np.arange(M.nnz, dtype=np.int64)
    order = np.argsort(rows * np.int64(M.nnz) + score_rank)
    position = np.empty(M.nnz, dtype=np.int64)
    position[order] = np.arange(M.nnz, dtype=np.int64) - M.indptr[rows[order]]
    return order, position


def _dense_blocks(n_rows: int, n_cols: int):
    step = max(1, _DENSE_BLOCK_ELEMENTS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


def _dense_topk_block(S: np.ndarray, k: int) -> np.ndarray:
    n_rows, n_cols = S.shape
    if k >= n_cols:
        cols = np.argsort(-S, axis=1, kind="stable")
    else:
        # Keep everything above the k-th largest value, then the lowest-id labels that tie with it: exactly
        # k per row, chosen as the stable full sort would choose them.
        kth = np.partition(S, n_cols - k, axis=1)[:, n_cols - k][:, None]
        above = kth < S
        tied = kth == S
        room = k - above.sum(axis=1, keepdims=True)
        chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
        cols = np.nonzero(chosen)[1].reshape(n_rows, k)  # row-major, so ids increase within a row
        values = np.take_along_axis(S, cols, axis=1)
        cols = np.take_along_axis(cols, np.argsort(-values, axis=1, kind="stable"), axis=1)
    out = np.full((n_rows, k), -1, dtype=np.int64)
    out[:, : cols.shape[1]] = cols
    return out


def top_k_indices(S: Scores, k: int) -> np.ndarray:
    """The ``k`` best-ranked label ids of every row, best first; shape (n_samples, k), -1 where a row has
    fewer than ``k`` predicted labels (sparse scores) or fewer than ``k`` labels."""
    n_rows, n_cols = S.shape
    if isinstance(S, np.ndarray):
        out = np.full((n_rows, k), -1, dtype=np.int64)
        for start, stop in _dense_blocks(n_rows, n_cols):
            out[start:stop] = _dense_topk_block(S[start:stop], k)
        return out
    _, position = _positions_in_rows(S)
    keep = position < k
    out = np.full((n_rows, k), -1, dtype=np.int64)
    out[row_of_entry(S.indptr)[keep], position[keep]] = S.indices[keep]
    return out


def label_hits(Y: sp.csr_matrix, top_indices: np.ndarray) -> np.ndarray:
    """Boolean (n_samples, k): whether ``top_indices[i, j]`` is a true label of row ``i`` (False for -1)."""
    n_rows, k = top_indices.shape
    n_labels = np.int64(Y.shape[1])
    # One sorted key per stored (row, label) pair; CSR with sorted indices gives them already in order.
    true_keys = row_of_entry(Y.indptr) * n_labels + Y.indices
    pred_keys = np.arange(n_rows, dtype=np.int64)[:, None] * n_labels + top_indices
    if true_keys.size == 0:
        return np.zeros((n_rows, k), dtype=bool)
    at = np.minimum(np.searchsorted(true_keys, pred_keys), true_keys.size - 1)
    return (top_indices >= 0) & (true_keys[at] == pred_keys)


def true_label_ranks(Y: sp.csr_matrix, S: Scores) -> np.ndarray:
    """The 1-based rank of every true label in its row's full ranking, aligned with ``Y.indices``.

    The full ranking is the one described in the module docstring: decreasing score, ties by lower label id;
    for sparse scores the stored entries first, then the missing labels in increasing id order.
    """
    rows = row_of_entry(Y.indptr)
    n_rows, n_labels = Y.shape
    ranks = np.empty(Y.nnz, dtype=np.int64)
    if isinstance(S, np.ndarray):
        for start, stop in _dense_blocks(n_rows, n_labels):
            lo, hi = Y.indptr[start], Y.indptr[stop]
            if lo == hi:
                continue
            order = np.argsort(-S[start:stop], axis=1, kind="stable")
            rank_of = np.empty_like(order)
            np.put_along_axis(rank_of, order, np.arange(1, n_labels + 1, dtype=order.dtype)[None, :], axis=1)
            ranks[lo:hi] = rank_of[rows[lo:hi] - start, Y.indices[lo:hi]]
        return ranks
    _, position = _positions_in_rows(S)
    width = np.int64(n_labels)
    stored_keys = row_of_entry(S.indptr) * width + S.indices
    true_keys = rows * width + Y.indices
    at = np.searchsorted(stored_keys, true_keys)  # = number of stored keys before this (row, label)
    found = at < stored_keys.size
    found[found] = stored_keys[at[found]] == true_keys[found]
    ranks[found] = position[at[found]] + 1
    missing = ~found
    n_stored = np.diff(S.indptr)[rows[missing]]
    stored_below = at[missing] - S.indptr[rows[missing]]  # stored labels of the row with a lower id
    ranks[missing] = n_stored + (Y.indices[missing] - stored_below) + 1
    return ranks


def transpose_scores(S: Scores) -> Scores:
    """Scores with examples and labels swapped (for per-label rankings of examples)."""
    if isinstance(S, np.ndarray):
        return np.ascontiguousarray(S.T)
    T = sp.csr_matrix(S.T)
    T.sort_indices()
    return T
