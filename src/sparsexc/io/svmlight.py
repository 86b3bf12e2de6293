"""Headerless svmlight / LibSVM multi-label files (the napkinXC and LibMultiLabel format), via scikit-learn.

File layout, one row per line, no header::

    1,5 3:0.5 10:1.2           <- comma-separated label ids, then feature:value pairs (ids sorted, unique)
    3:0.25                     <- a row with no label starts with a pair
    # a comment                <- '#' starts a comment (to the end of the line); blank lines are skipped

Parsing is :func:`sklearn.datasets.load_svmlight_files` with ``multilabel=True``; several files read together
share their widths. **Feature ids**: scikit-learn's ``zero_based="auto"`` rule -- the ids are taken as
1-based (and shifted down by one) when every file has a feature and none uses id 0, else as 0-based; pass
``zero_based=True``/``False`` to decide. The choice made is in ``meta["zero_based"]``. **Label ids** are used
as written (0-based column numbers); ``n_labels`` is the largest label id + 1 over the files, unless given.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from itertools import chain

import numpy as np
import scipy.sparse as sp

from sparsexc.errors import ConfigurationError

from ._files import read_bytes
from ._numbers import MAX_WIDTH, float32_finite
from .data import MultiLabelData
from .errors import DataFormatError

__all__ = ["FORMAT_HINT", "read_svmlight"]

FORMAT_HINT = "a headerless svmlight/LibSVM multi-label file ('l1,l2 f:v f:v ...', one row per line)"
# The failing line of a malformed file is found by bisection over line prefixes (log2(lines) parses); above
# this size that is too slow for an error path and the message says the line is unknown.
_BISECT_MAX_BYTES = 64 << 20
# Bytes a row may hold outside a '#' comment (besides "qid:"): scikit-learn converts tokens with Python's
# int()/float(), which also take '_' ("1_0" is 10), "nan", "inf", "infinity" and non-ASCII digits.
_ODD_BYTE = re.compile(rb"[^0-9.eE+\-:, \t\r\n]")
_ROW_START = re.compile(rb"^[ \t\r]*[^#\s]", re.MULTILINE)  # a line that holds a row


def _load(raw: list[bytes]) -> list:
    from sklearn.datasets import load_svmlight_files

    try:
        return load_svmlight_files([io.BytesIO(r) for r in raw], dtype=np.float64, multilabel=True, zero_based=True)
    except OverflowError as exc:  # an id beyond its C integer type
        raise ValueError(f"a number too large ({exc})") from None


def _check_text(path: str, raw: bytes) -> None:
    """Raise at the first line whose row part (before any '#') holds a byte that no number or separator has,
    or when the file holds no row at all."""
    pos = 0
    while (m := _ODD_BYTE.search(raw, pos)) is not None:
        start = raw.rfind(b"\n", 0, m.start()) + 1
        end = raw.find(b"\n", m.start())
        end = len(raw) if end < 0 else end
        line = raw[start:end]
        if _ODD_BYTE.search(line.split(b"#", 1)[0].replace(b"qid:", b"")):
            raise DataFormatError(
                path,
                "ids and finite decimal numbers only ('l1,l2 f:v ...'; no '_', nan or inf)",
                line=raw.count(b"\n", 0, start) + 1,
                field="row",
                found=line.decode("ascii", "backslashreplace"),
            )
        pos = end + 1
    if _ROW_START.search(raw) is None:
        raise DataFormatError(path, FORMAT_HINT + " with at least one row", found="no row (an empty file)")


def _data_lines(raw: bytes) -> list[int]:
    """1-based line numbers of the lines that hold a row (what is left after '#' comments is not blank)."""
    return [k + 1 for k, line in enumerate(raw.split(b"\n")) if line.split(b"#", 1)[0].strip()]


def _parse_error(path: str, raw: bytes, exc: ValueError) -> DataFormatError:
    # scikit-learn does not say where: find the first line whose prefix fails (its errors are per line).
    if len(raw) > _BISECT_MAX_BYTES:
        return DataFormatError(path, FORMAT_HINT, found=f"{exc} (line unknown: the file is too large to locate it)")
    lines = raw.split(b"\n")
    lo, hi = 0, len(lines)  # the prefix of hi lines fails, of lo lines parses
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            _load([b"\n".join(lines[:mid]) + b"\n"])
            lo = mid
        except ValueError:
            hi = mid
    return DataFormatError(path, FORMAT_HINT, line=hi, field="row", found=f"{exc}")


def _width(name: str, given: int | None, needed: int, paths: Sequence[str]) -> int:
    if given is None:
        return needed
    if isinstance(given, bool) or not isinstance(given, (int, np.integer)) or given < 0:
        raise ConfigurationError(f"{name}={given!r} must be a non-negative integer")
    if given < needed:
        raise DataFormatError(
            ", ".join(paths), f"ids below {name}={given}", field=name, found=f"an id that needs {name} >= {needed}"
        )
    return int(given)


def _labels(path: str, raw: bytes, y: list, n_labels: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """(label ids, labels per row, largest id + 1) of one file; ids must be integers >= 0, unique in a row."""
    counts = np.fromiter(map(len, y), dtype=np.int64, count=len(y))
    flat = np.fromiter(chain.from_iterable(y), dtype=np.float64, count=int(counts.sum()))
    with np.errstate(invalid="ignore"):
        ids = flat.astype(np.int64)
    bad = ~np.isfinite(flat) | (flat < 0) | (flat >= MAX_WIDTH) | (ids != flat)
    if n_labels is not None:
        bad |= ids >= n_labels
    rows = np.repeat(np.arange(len(y)), counts)
    order = np.lexsort((ids, rows))
    dup = np.zeros(ids.size, dtype=bool)
    dup[order[1:]] = (ids[order[1:]] == ids[order[:-1]]) & (rows[order[1:]] == rows[order[:-1]])
    if bad.any() or dup.any():
        first = int(np.flatnonzero(bad | dup)[0])
        line = _data_lines(raw)[int(rows[first])]
        expected = (
            "each label at most once in a row"
            if dup[first] and not bad[first]
            else (
                f"a label id: an integer >= 0 and < {MAX_WIDTH}"
                + ("" if n_labels is None else f" and < n_labels={n_labels}")
            )
        )
        raise DataFormatError(path, expected, line=line, field="label id", found=repr(float(flat[first])))
    ids = ids[order]
    return ids, counts, int(ids.max()) + 1 if ids.size else 0


def read_svmlight(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    n_features: int | None = None,
    n_labels: int | None = None,
    zero_based: bool | str = "auto",
) -> list[MultiLabelData]:
    """Read headerless svmlight/LibSVM multi-label files together (one :class:`MultiLabelData` per file).

    Parameters
    ----------
    paths : path-like or sequence of them
        The files (gzip detected from content). Read together, they get the same ``n_features`` and
        ``n_labels`` (e.g. a training and a test file).
    n_features, n_labels : int, optional
        Widths of the matrices; default the largest id + 1 over the files (features after the 1-based shift);
        a given width must be at least that (e.g. a model's widths for a file to score).
    zero_based : {"auto", True, False}
        Whether feature ids start at 0; "auto" is scikit-learn's rule (module docstring).

    Returns
    -------
    list of MultiLabelData
        ``X`` CSR float32 (sorted indices, no explicit zeros), ``Y`` CSR 0/1 float32, ``meta`` with
        ``source``, ``format="svmlight"`` and ``zero_based``.

    Raises
    ------
    DataFormatError
        A missing/unreadable file, a file without any row, a byte no number or separator has outside a ``#``
        comment (``_``, ``nan``, ``inf``, a BOM: Python's ``int()``/``float()`` would take some), a malformed
        line (scikit-learn's message, with the line found by bisection when the file is at most 64 MB, else
        said to be unknown), a label that is not an integer in ``0..2**31 - 2`` or is repeated in a row, a value
        not finite as float32 (``1e39`` too), a feature id that needs a width over 2**31 - 1, an id beyond a
        given width.
    """
    if zero_based not in ("auto", True, False):
        raise ConfigurationError(f"zero_based must be 'auto', True or False; got {zero_based!r}")
    files: list[str] = [os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    raws = [read_bytes(p) for p in files]
    for path, raw in zip(files, raws):
        _check_text(path, raw)
    try:
        loaded = _load(raws)
    except ValueError:
        for path, raw in zip(files, raws):  # which file, and which line
            try:
                _load([raw])
            except ValueError as exc:
                raise _parse_error(path, raw, exc) from None
        raise
    Xs, ys = loaded[0::2], loaded[1::2]
    if zero_based == "auto":  # scikit-learn's rule, applied here so that the choice can be recorded
        zero_based = not all(X.nnz and X.indices.min() > 0 for X in Xs)
    shift = 0 if zero_based else 1
    for path, raw, X in zip(files, raws, Xs):
        if shift and X.nnz and X.indices.min() == 0:
            raise DataFormatError(path, "feature ids >= 1 (zero_based=False)", field="feature id", found="0")
        finite = float32_finite(X.data)
        if not finite.all():
            first = int(np.flatnonzero(~finite)[0])
            row = int(np.searchsorted(X.indptr, first, side="right") - 1)
            raise DataFormatError(
                path,
                "a feature value that is finite as float32 (|v| <= 3.4e38)",
                line=_data_lines(raw)[row],
                field="feature value",
                found=repr(float(X.data[first])),
            )
        if X.nnz and int(X.indices.max()) - shift >= MAX_WIDTH:
            row = int(np.searchsorted(X.indptr, int(np.argmax(X.indices)), side="right") - 1)
            raise DataFormatError(
                path,
                f"a feature id < {MAX_WIDTH + shift} (2**31 - 1)",
                line=_data_lines(raw)[row],
                field="feature id",
                found=str(int(X.indices.max())),
            )
    d = _width("n_features", n_features, max((int(X.indices.max()) + 1 - shift if X.nnz else 0) for X in Xs), files)
    labels = [_labels(path, raw, y, n_labels) for path, raw, y in zip(files, raws, ys)]
    n_lab = _width("n_labels", n_labels, max(top for _, _, top in labels), files)
    out = []
    for path, X, (ids, counts, _) in zip(files, Xs, labels):
        X = sp.csr_matrix((X.data.astype(np.float32), X.indices - shift, X.indptr), shape=(X.shape[0], d))
        X.eliminate_zeros()
        X.sort_indices()
        indptr = np.concatenate([[0], np.cumsum(counts)])
        Y = sp.csr_matrix((np.ones(ids.size, np.float32), ids, indptr), shape=(X.shape[0], n_lab))
        Y.has_sorted_indices = True
        out.append(MultiLabelData(X, Y, meta={"source": path, "format": "svmlight", "zero_based": zero_based}))
    return out
