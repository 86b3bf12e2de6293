"""Conversions to the interchange types every package of sparsexc shares.

Features and label indicators travel as ``scipy.sparse.csr_matrix`` float32 with sorted indices; users may
also hand over a label matrix as a list of label-id lists. These helpers turn whatever the user gave into
that form once, at the public boundary, and raise a clear ``ValueError`` naming the argument otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp

from sparsexc.errors import ConfigurationError

LabelsLike: TypeAlias = sp.spmatrix | sp.sparray | np.ndarray | Sequence[Iterable[int]]

__all__ = ["LabelsLike", "as_features", "as_label_matrix", "labels_to_lists"]


def _is_sparse(obj: Any) -> bool:
    return sp.issparse(obj)


def as_features(X: Any, *, name: str = "X", n_features: int | None = None, owner: str = "the model") -> sp.csr_matrix:
    """Return ``X`` as a float32 CSR matrix with sorted indices and no explicit zeros.

    Parameters
    ----------
    X : sparse matrix or 2-D array-like, shape (n_samples, n_features)
    name : str
        The argument's name, used in error messages.
    n_features : int, optional
        If given, X must have exactly this many columns (scikit-learn's rule); any other width is a
        ``ValueError`` naming both counts. A data file that never uses the last feature ids is widened by its
        reader (``sparsexc.io.read_xc(..., n_features=...)``), which knows the file's declared width.
    owner : str
        What expects ``n_features`` columns, for the error message (e.g. ``"XCClassifier"``).
    """
    if _is_sparse(X):
        out = sp.csr_matrix(X, dtype=np.float32, copy=True)
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ConfigurationError(f"{name} must be 2-D (n_samples, n_features); got an array of shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number) and arr.dtype != np.bool_:
            raise ConfigurationError(f"{name} must hold numbers; got dtype {arr.dtype}")
        out = sp.csr_matrix(arr.astype(np.float32, copy=False))
    if out.nnz and not np.all(np.isfinite(out.data)):
        bad = int(np.flatnonzero(~np.isfinite(out.data))[0])
        row = int(np.searchsorted(out.indptr, bad, side="right") - 1)
        raise ConfigurationError(f"{name} holds a NaN or infinite value (row {row}, column {out.indices[bad]})")
    if n_features is not None and out.shape[1] != n_features:
        raise ConfigurationError(
            f"{name} has {out.shape[1]} features, but {owner} is expecting {n_features} features as input"
        )
    out.sum_duplicates()
    out.eliminate_zeros()
    out.sort_indices()
    return out


def as_label_matrix(Y: Any, *, n_labels: int | None = None, name: str = "Y") -> sp.csr_matrix:
    """Return labels as a CSR 0/1 float32 indicator with sorted indices.

    Parameters
    ----------
    Y : sparse matrix, dense 0/1 array, or list of label-id lists
        A list of lists gives, for each row, the ids of its positive labels (any order, duplicates merged).
    n_labels : int, optional
        Width of the label space. Required to be >= every label id; inferred as ``max id + 1`` otherwise.
    name : str
        The argument's name, used in error messages.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_samples, n_labels), float32, entries in {0, 1}
    """
    if _is_sparse(Y) or isinstance(Y, np.ndarray):
        M = sp.csr_matrix(Y, copy=True)
        if M.ndim != 2:
            raise ConfigurationError(f"{name} must be 2-D (n_samples, n_labels)")
        M.sum_duplicates()
        M.eliminate_zeros()
        if M.nnz and not np.all((M.data == 1) | (M.data == True)):  # noqa: E712 - bool arrays
            raise ConfigurationError(f"{name} must be a 0/1 indicator matrix; found values other than 0 and 1")
        if n_labels is not None:
            if M.shape[1] > n_labels:
                raise ConfigurationError(f"{name} has {M.shape[1]} label columns; expected at most n_labels={n_labels}")
            M = sp.csr_matrix((M.data, M.indices, M.indptr), shape=(M.shape[0], n_labels))
        M = M.astype(np.float32)
        M.sort_indices()
        return M
    if isinstance(Y, (str, bytes)) or not isinstance(Y, Iterable):
        raise ConfigurationError(
            f"{name} must be a sparse indicator matrix, a dense 0/1 array or a list of label-id lists"
        )
    rows = [Y_row for Y_row in Y]
    lengths = np.empty(len(rows), dtype=np.int64)
    parts = []
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes)) or not isinstance(row, Iterable):
            raise ConfigurationError(f"{name}[{i}] must be a list of label ids; got {type(row).__name__}")
        ids = np.asarray(list(row))
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            if np.issubdtype(ids.dtype, np.floating) and np.all(ids == np.round(ids)):
                ids = ids.astype(np.int64)
            else:
                raise ConfigurationError(f"{name}[{i}] holds non-integer label ids: {list(row)[:5]}")
        ids = np.unique(ids.astype(np.int64, copy=False))
        if ids.size and ids[0] < 0:
            raise ConfigurationError(f"{name}[{i}] holds a negative label id ({int(ids[0])})")
        lengths[i] = ids.size
        parts.append(ids)
    indices = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    max_id = int(indices.max()) if indices.size else -1
    if n_labels is None:
        n_labels = max_id + 1
    elif max_id >= n_labels:
        row = next(i for i, p in enumerate(parts) if p.size and p[-1] == max_id)
        raise ConfigurationError(
            f"{name}[{row}] holds label id {max_id}, outside 0..{n_labels - 1} (n_labels={n_labels})"
        )
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    data = np.ones(indices.size, dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), n_labels))


def labels_to_lists(Y: sp.csr_matrix) -> list[list[int]]:
    """Return the positive label ids of each row of a CSR indicator, in increasing order."""
    Y = sp.csr_matrix(Y)
    Y.sort_indices()
    return [Y.indices[Y.indptr[i] : Y.indptr[i + 1]].tolist() for i in range(Y.shape[0])]
