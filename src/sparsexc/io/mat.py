"""MATLAB ``.mat`` multi-label files (as distributed by the PALM lab / ZesenChen/multi-label-dataset).

Two layouts are recognised:

* ``data`` (n x d) and ``target`` (L x n) -> one part, key ``"all"``;
* ``train_data``/``train_target`` and ``test_data``/``test_target`` -> keys ``"train"`` and ``"test"``.

Targets are stored labels x instances; a target that is only consistent as instances x labels (its first
dimension equals n, the second does not) is accepted as such. Target entries must be in {-1, 0, 1}; 1 is
positive. Dense or sparse matrices are both accepted.
"""

from __future__ import annotations

import os
import zlib

import numpy as np
import scipy.io
import scipy.sparse as sp

from .data import MultiLabelData
from .errors import DataFormatError

__all__ = ["read_mat"]

_LAYOUTS = ([("all", "data", "target")], [("train", "train_data", "train_target"), ("test", "test_data", "test_target")])


def _as_csr(M, path: str, key: str) -> sp.csr_matrix:
    if sp.issparse(M):
        out = sp.csr_matrix(M, dtype=np.float32)
    else:
        arr = np.asarray(M)
        if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise DataFormatError(path, "a 2-D numeric matrix", field=key, found=f"{arr.dtype} array of shape {arr.shape}")
        out = sp.csr_matrix(arr.astype(np.float32))
    if out.nnz and not np.all(np.isfinite(out.data)):
        raise DataFormatError(path, "finite values", field=key, found="NaN or inf")
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
        Unreadable file, neither layout present, a shape mismatch between data and target, target values
        outside {-1, 0, 1}, or train/test parts with different feature or label counts.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataFormatError(path, "an existing file", found="no such file")
    try:
        m = scipy.io.loadmat(path)
    except (ValueError, TypeError, OSError, EOFError, zlib.error, NotImplementedError) as exc:
        raise DataFormatError(path, "a MATLAB v4-v7.2 .mat file (scipy.io.loadmat)", found=f"{type(exc).__name__}: {exc}") from None
    for layout in _LAYOUTS:
        if all(xk in m and yk in m for _, xk, yk in layout):
            break
    else:
        present = sorted(k for k in m if not k.startswith("__"))
        raise DataFormatError(path, "variables 'data'+'target' or 'train_data'+'train_target'+'test_data'+'test_target'",
                              field="variables", found=", ".join(present) or "none")
    out: dict[str, MultiLabelData] = {}
    for part, xk, yk in layout:
        X = _as_csr(m[xk], path, xk)
        T = _as_csr(m[yk], path, yk)
        n = X.shape[0]
        if T.shape[1] == n:
            Y = T.T.tocsr()
        elif T.shape[0] == n:
            Y = T
        else:
            raise DataFormatError(path, f"{yk} of shape (n_labels, {n}) to match {xk} {X.shape}", field=yk, found=str(T.shape))
        bad = (Y.data != 1) & (Y.data != -1)
        if bad.any():
            raise DataFormatError(path, "target values in {-1, 0, 1}", field=yk, found=repr(float(Y.data[bad][0])))
        Y.data = (Y.data == 1).astype(np.float32)
        Y.eliminate_zeros()
        Y.sort_indices()
        out[part] = MultiLabelData(X, Y, meta={"source": path, "part": part})
    if len(out) == 2 and (out["train"].n_features != out["test"].n_features or out["train"].n_labels != out["test"].n_labels):
        raise DataFormatError(path, "train and test parts with the same numbers of features and labels", field="test_data",
                              found=f"train {out['train'].X.shape[1]}x{out['train'].Y.shape[1]}, test {out['test'].X.shape[1]}x{out['test'].Y.shape[1]}")
    return out
