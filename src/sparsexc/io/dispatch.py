"""``read_any``: one entry point that picks the reader from the file's name and content."""

from __future__ import annotations

import os

import scipy.sparse as sp

from ._files import read_blocks
from .arff import read_arff
from .data import MultiLabelData
from .mat import read_mat
from .xc import read_xc

__all__ = ["read_any"]


def _head(path: str, n: int = 4096) -> bytes:
    for block in read_blocks(path, n):
        return block
    return b""


def read_any(path: str | os.PathLike[str], *, label_xml: str | os.PathLike[str] | None = None) -> MultiLabelData:
    """Read a multi-label file in any supported format.

    Dispatch: ``.mat`` (or content starting with ``MATLAB``) -> :func:`read_mat`; ``.arff``/``.arff.gz`` or a
    first non-comment line starting with ``@relation`` -> :func:`read_arff` (with ``label_xml`` for Mulan);
    otherwise the XC text format -> :func:`read_xc`. A ``.mat`` with train and test parts is returned as
    one data set, train rows first, then test rows (``meta["parts"]`` gives each part's row range).
    """
    path = os.fspath(path)
    lower = path.lower()
    head = _head(path)
    if lower.endswith(".mat") or head.startswith(b"MATLAB"):
        if label_xml is not None:
            raise ValueError("label_xml applies to ARFF files only")
        parts = read_mat(path)
        if len(parts) == 1:
            return next(iter(parts.values()))
        names = list(parts)
        X = sp.vstack([parts[k].X for k in names], format="csr")
        Y = sp.vstack([parts[k].Y for k in names], format="csr")
        ranges, start = {}, 0
        for k in names:
            ranges[k] = (start, start + parts[k].n_samples)
            start += parts[k].n_samples
        return MultiLabelData(X, Y, meta={"source": path, "parts": ranges})
    first = b""
    for line in head.splitlines():
        s = line.strip()
        if s and not s.startswith(b"%"):
            first = s
            break
    if lower.endswith((".arff", ".arff.gz")) or first.lower().startswith(b"@relation"):
        return read_arff(path, label_xml)
    if label_xml is not None:
        raise ValueError("label_xml applies to ARFF files only")
    X, Y = read_xc(path)
    return MultiLabelData(X, Y, meta={"source": path, "format": "xc"})
