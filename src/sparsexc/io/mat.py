"""MATLAB ``.mat`` multi-label files (as distributed by the PALM lab / ZesenChen/multi-label-dataset).

Two layouts are recognised:

* ``data`` (n x d) and ``target`` (L x n) -> one part, key ``"all"``;
* ``train_data``/``train_target`` and ``test_data``/``test_target`` -> keys ``"train"`` and ``"test"``.

Targets are stored labels x instances; a target that is only consistent as instances x labels (its first
dimension equals n, the second does not) is accepted as such. Target entries must be in {-1, 0, 1}; 1 is
positive. Dense or sparse matrices are both accepted.

A file is untrusted input. scipy's compiled v5 reader trusts the element tags (a flipped byte can crash the
process), so a v5 file is first checked element by element in Python (:mod:`sparsexc.io._mat5`) and scipy
reads the checked, decompressed bytes; ``scipy.io.loadmat`` returns a sparse matrix whose index arrays it has
not checked (scipy's later conversions would read out of bounds on a corrupt one), so every sparse matrix's
raw CSC arrays are validated with numpy before any scipy sparse method touches them; and any exception of the
loader becomes a :class:`DataFormatError` naming the file.
"""

from __future__ import annotations

import io
import os

import numpy as np
import scipy.io
import scipy.sparse as sp

from ._mat5 import checked_v5, is_v5
from ._numbers import MAX_WIDTH, float32_finite
from .data import MultiLabelData
from .errors import DataFormatError

__all__ = ["read_mat"]

_LAYOUTS = (
    [("all", "data", "target")],
    [("train", "train_data", "train_target"), ("test", "test_data", "test_target")],
)
# Rows of a sparse (CSC) matrix cost nothing in the file but 8 bytes each once converted to CSR: at most this
# many rows beyond the matrix's stored entries (128 MB of row pointers) are accepted.
MAX_EMPTY_ROWS = 1 << 24


def _load(path: str) -> dict:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DataFormatError(path, "a readable file", found=f"{type(exc).__name__}: {exc}") from None
    # a v5 file is checked element by element first: scipy's compiled reader trusts the tags and can crash
    source = io.BytesIO(checked_v5(path, raw) if is_v5(raw[:128]) else raw)
    try:
        return scipy.io.loadmat(source)
    except MemoryError:
        raise DataFormatError(
            path, "sizes that fit in memory", found="a variable too large to load (MemoryError)"
        ) from None
    except Exception as exc:
        raise DataFormatError(
            path, "a MATLAB v4-v7.2 .mat file (scipy.io.loadmat)", found=f"{type(exc).__name__}: {exc}"
        ) from None


def _check_values(values: np.ndarray, path: str, key: str) -> np.ndarray:
    """``values`` as float64 after checking they are real numbers that are finite as float32."""
    if np.iscomplexobj(values):
        raise DataFormatError(path, "real values", field=key, found="complex values")
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_):
        raise DataFormatError(path, "a numeric matrix", field=key, found=f"{values.dtype} values")
    values = values.astype(np.float64, copy=False)
    finite = float32_finite(values)
    if not finite.all():
        raise DataFormatError(
            path, "values that are finite as float32 (|v| <= 3.4e38)", field=key, found=repr(float(values[~finite][0]))
        )
    return values


def _checked_sparse(M, path: str, key: str) -> sp.csc_matrix:
    """A CSC matrix rebuilt from ``M``'s arrays once they are known to be consistent (numpy checks only)."""

    def bad(expected: str, found: str) -> DataFormatError:
        return DataFormatError(path, expected, field=key, found=found)

    shape = tuple(int(s) for s in M.shape)
    if len(shape) != 2 or min(shape) < 0 or max(shape) > MAX_WIDTH:
        raise bad(f"a 2-D sparse matrix with dimensions <= {MAX_WIDTH}", f"shape {shape}")
    n_rows, n_cols = shape
    if getattr(M, "format", None) == "coo":  # a v4 file's sparse matrix: (row, column, value) triplets
        row, col = (np.asarray(a) for a in M.coords)
        if row.size and (row.min() < 0 or row.max() >= n_rows or col.min() < 0 or col.max() >= n_cols):
            raise bad(f"(row, column) entries within {shape}", "an entry outside")
        order = np.lexsort((row, col))
        if np.any((np.diff(row[order]) == 0) & (np.diff(col[order]) == 0)):
            raise bad("each entry at most once", "a repeated (row, column) entry")
        values = _check_values(np.asarray(M.data), path, key)  # checked before scipy sums or converts them
        M = sp.csc_matrix((values, (row, col)), shape=shape)
    if getattr(M, "format", None) != "csc":
        raise bad("a sparse matrix in CSC form", f"{type(M).__name__}")
    indptr, indices, data = (np.asarray(a) for a in (M.indptr, M.indices, M.data))
    if indptr.ndim != 1 or indptr.size != n_cols + 1 or not np.issubdtype(indptr.dtype, np.integer):
        raise bad(f"{n_cols + 1} integer column pointers", f"{indptr.dtype} array of shape {indptr.shape}")
    if indices.ndim != 1 or data.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise bad(
            "1-D integer row indices and 1-D values", f"{indices.dtype} {indices.shape}, {data.dtype} {data.shape}"
        )
    indptr = indptr.astype(np.int64)
    steps = np.diff(indptr)
    if indptr[0] != 0 or (steps.size and steps.min() < 0) or indptr[-1] > min(indices.size, data.size):
        raise bad(
            f"column pointers from 0, non-decreasing, up to at most {min(indices.size, data.size)} entries",
            f"pointers {indptr[0]}..{indptr[-1]}" + (" decreasing" if steps.size and steps.min() < 0 else ""),
        )
    nnz = int(indptr[-1])
    indices = indices[:nnz].astype(np.int64)
    if nnz and (indices.min() < 0 or indices.max() >= n_rows):
        raise bad(f"row indices in 0..{n_rows - 1}", str(int(indices.min() if indices.min() < 0 else indices.max())))
    column = np.repeat(np.arange(n_cols, dtype=np.int64), steps)
    rising = (np.diff(indices) > 0) | (np.diff(column) > 0)
    if not rising.all():  # unsorted within a column: allowed, a repeated entry is not
        order = np.lexsort((indices, column))
        if np.any((np.diff(indices[order]) == 0) & (np.diff(column[order]) == 0)):
            raise bad("each entry at most once", "a repeated (row, column) entry")
    values = _check_values(data[:nnz], path, key).astype(np.float32)
    index_dtype = np.int32 if max(shape + (nnz,)) < 2**31 else np.int64
    return sp.csc_matrix((values, indices.astype(index_dtype), indptr.astype(index_dtype)), shape=shape)


def _checked(M, path: str, key: str) -> sp.csc_matrix | np.ndarray:
    """A variable as a validated CSC matrix or a 2-D float32 array."""
    if sp.issparse(M):
        return _checked_sparse(M, path, key)
    arr = np.asarray(M)
    if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise DataFormatError(path, "a 2-D numeric matrix", field=key, found=f"{arr.dtype} array of shape {arr.shape}")
    return _check_values(arr, path, key).astype(np.float32)


def _to_csr(M: sp.csc_matrix | np.ndarray, transpose: bool, path: str, key: str) -> sp.csr_matrix:
    """``M`` (or its transpose) as CSR; a CSC transpose reuses its arrays, nothing proportional to its rows."""
    if isinstance(M, np.ndarray):
        out = sp.csr_matrix(M.T if transpose else M)
    elif transpose:
        out = sp.csr_matrix((M.data, M.indices, M.indptr), shape=(M.shape[1], M.shape[0]))
    else:
        if M.shape[0] > M.nnz + MAX_EMPTY_ROWS:
            raise DataFormatError(
                path,
                f"at most {MAX_EMPTY_ROWS} rows more than stored entries ({M.nnz})",
                field=key,
                found=f"{M.shape[0]} rows",
            )
        out = M.tocsr()
    out.eliminate_zeros()
    out.sort_indices()
    return out


def read_mat(path: str | os.PathLike[str]) -> dict[str, MultiLabelData]:
    """Read a multi-label ``.mat`` file into ``{"all": data}`` or ``{"train": ..., "test": ...}``.

    Returns
    -------
    dict of str to MultiLabelData
        ``X`` CSR float32 (n x d), ``Y`` CSR 0/1 float32 (n x L; ``target`` transposed),
        ``meta={"source": path, "part": key}``.

    Raises
    ------
    DataFormatError
        Unreadable or corrupt file (whatever scipy's loader raised), neither layout present, a variable that is
        not a real 2-D numeric matrix (complex values included), a value that is not finite as float32, a sparse
        matrix whose arrays are inconsistent (column pointers not from 0 or decreasing, a row index out of range,
        an entry repeated, a dimension over 2**31 - 1, more than :data:`MAX_EMPTY_ROWS` rows beyond its stored
        entries), a shape mismatch between data and target, target values outside {-1, 0, 1}, or train/test
        parts with different feature or label counts.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataFormatError(path, "an existing file", found="no such file")
    m = _load(path)
    for layout in _LAYOUTS:
        if all(xk in m and yk in m for _, xk, yk in layout):
            break
    else:
        present = sorted(k for k in m if not k.startswith("__"))
        raise DataFormatError(
            path,
            "variables 'data'+'target' or 'train_data'+'train_target'+'test_data'+'test_target'",
            field="variables",
            found=", ".join(present) or "none",
        )
    out: dict[str, MultiLabelData] = {}
    for part, xk, yk in layout:
        X = _to_csr(_checked(m[xk], path, xk), False, path, xk)
        T = _checked(m[yk], path, yk)
        n = X.shape[0]
        if T.shape[1] == n:
            Y = _to_csr(T, True, path, yk)
        elif T.shape[0] == n:
            Y = _to_csr(T, False, path, yk)
        else:
            raise DataFormatError(
                path, f"{yk} of shape (n_labels, {n}) to match {xk} {X.shape}", field=yk, found=str(T.shape)
            )
        bad = (Y.data != 1) & (Y.data != -1)
        if bad.any():
            raise DataFormatError(path, "target values in {-1, 0, 1}", field=yk, found=repr(float(Y.data[bad][0])))
        Y.data = (Y.data == 1).astype(np.float32)
        Y.eliminate_zeros()
        out[part] = MultiLabelData(X, Y, meta={"source": path, "part": part})
    if len(out) == 2:
        a, b = out["train"], out["test"]
        if a.n_features != b.n_features or a.n_labels != b.n_labels:
            raise DataFormatError(
                path,
                "train and test parts with the same numbers of features and labels",
                field="test_data",
                found=f"train {a.n_features}x{a.n_labels}, test {b.n_features}x{b.n_labels}",
            )
    return out
