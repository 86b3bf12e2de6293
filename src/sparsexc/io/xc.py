"""The Extreme Classification Repository text format: reader, writer and split files.

File layout (0-based ids)::

    n_rows n_features n_labels
    l1,l2,... f:v f:v ...        <- one line per row; the label field may be absent (row with no label)
    ...

``read_xc`` streams the (optionally gzipped) file in blocks of whole lines. Each block is parsed by a
vectorised numpy parser; if that parser finds anything unusual the block is re-read line by line by a careful
parser that either accepts it (same result) or raises :class:`DataFormatError` at the exact line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from sparsexc.errors import ConfigurationError

from .._sparse import as_features, as_label_matrix
from ._files import atomic_writer, read_blocks, read_bytes
from ._xc_parse import Parsed, parse_header, parse_lines_careful, parse_lines_fast
from .errors import DataFormatError

__all__ = ["read_xc", "read_xc_splits", "write_xc"]

_BLOCK_BYTES = 1 << 22  # ~4 MB of lines per vectorised step: cache-friendly, bounded memory


def _line_blocks(path: str) -> tuple[bytes | None, Iterator[bytes]]:
    """Header line and an iterator over blocks of whole lines (each block ends with ``\\n``)."""
    blocks = read_blocks(path, _BLOCK_BYTES)
    pending = b""
    header = None
    for block in blocks:
        pending += block
        cut = pending.find(b"\n")
        if cut >= 0:
            header, pending = pending[: cut + 1], pending[cut + 1 :]
            break
    else:
        return (pending if pending else None), iter(())

    def rest() -> Iterator[bytes]:
        nonlocal pending
        for block in blocks:
            pending += block
            cut = pending.rfind(b"\n")
            if cut >= 0:
                yield pending[: cut + 1]
                pending = pending[cut + 1 :]
        if pending:
            yield pending if pending.endswith(b"\n") else pending + b"\n"  # last line may lack its newline

    return header, rest()


def _check_width(name: str, given: int | None, declared: int) -> int:
    if given is None:
        return declared
    if isinstance(given, bool) or not isinstance(given, (int, np.integer)) or given < declared:
        raise ConfigurationError(f"{name}={given!r} must be an integer >= the header's {name} ({declared})")
    return int(given)


def read_xc(
    path: str | os.PathLike[str], *, n_features: int | None = None, n_labels: int | None = None
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Read an Extreme Classification Repository text file.

    Parameters
    ----------
    path : path-like
        The file; gzip-compressed content is detected from its first bytes (any name).
    n_features, n_labels : int, optional
        Widths of the returned matrices; default the header's values, and never smaller than them (a larger
        value widens the matrices with empty columns, e.g. to match a training set).

    Returns
    -------
    X : csr_matrix, shape (n_rows, n_features), float32, sorted indices, no explicit zeros
    Y : csr_matrix, shape (n_rows, n_labels), float32 0/1 indicator, sorted indices

    Raises
    ------
    DataFormatError
        Missing/unreadable file, truncated gzip, an empty file, bad header (a count over 2**31 - 1 too), a row
        count different from the header's, an id outside ``0..n-1`` (of any length), a malformed token (``_``,
        ``nan``, ``inf`` included), a value not finite as float32 (``1e39`` too), a feature or label repeated in
        a row. The message names the file, the 1-based line and the field. A header ``0 d L`` reads as 0 rows. Whitespace-only lines after the declared
        ``n_rows`` rows are ignored (they hold no data); any other extra line is an error.
    """
    path = os.fspath(path)
    header, blocks = _line_blocks(path)
    if header is None:
        raise DataFormatError(
            path, "header 'n_rows n_features n_labels'", line=1, field="header", found="an empty file"
        )
    n_rows, d_header, l_header = parse_header(header, path)
    d = _check_width("n_features", n_features, d_header)
    n_lab = _check_width("n_labels", n_labels, l_header)

    parts: list[Parsed] = []
    rows_read = 0
    for block in blocks:
        got = parse_lines_fast(block, d, n_lab)
        if got is None:
            got = parse_lines_careful(block, rows_read + 2, path, d, n_lab)
        parts.append(got)
        rows_read += got.x_counts.size
    x_counts = np.concatenate([p.x_counts for p in parts]) if parts else np.zeros(0, np.int64)
    y_counts = np.concatenate([p.y_counts for p in parts]) if parts else np.zeros(0, np.int64)
    if rows_read > n_rows:
        extra = np.flatnonzero((x_counts[n_rows:] > 0) | (y_counts[n_rows:] > 0))
        if extra.size:
            raise DataFormatError(
                path,
                f"{n_rows} rows as declared in the header",
                line=n_rows + 2 + int(extra[0]),
                field="row count",
                found="another row",
            )
        x_counts, y_counts = x_counts[:n_rows], y_counts[:n_rows]
    elif rows_read < n_rows:
        raise DataFormatError(
            path, f"{n_rows} rows as declared in the header", line=1, field="row count", found=f"{rows_read} rows"
        )
    X = _csr([p.feature_ids for p in parts], [p.values for p in parts], x_counts, (n_rows, d), np.float32)
    Y = _csr([p.label_ids for p in parts], None, y_counts, (n_rows, n_lab), np.float32)
    X.eliminate_zeros()  # "f:0" entries carry no information; as_features drops them too
    return X, Y


def _csr(index_parts, value_parts, counts, shape, dtype) -> sp.csr_matrix:
    indices = np.concatenate(index_parts) if index_parts else np.zeros(0, np.int64)
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = indices[: indptr[-1]]
    if value_parts is None or not value_parts:
        data = np.ones(indices.size, dtype=dtype)
    else:
        data = np.concatenate(value_parts)[: indptr[-1]].astype(dtype, copy=False)
    index_dtype = np.int32 if max(shape[1], indices.size) < 2**31 else np.int64
    M = sp.csr_matrix((data, indices.astype(index_dtype), indptr.astype(index_dtype)), shape=shape)
    M.has_sorted_indices = True
    return M


# ----------------------------------------------------------------------------------------------- writer


def _float32_text(values: np.ndarray) -> list[bytes]:
    """Shortest text for each float32 that reads back (via float64, as every reader does) to the same float32."""
    out = []
    for v in values.astype(np.float32):
        s = str(v)
        if s.endswith(".0"):
            s = s[:-2]
        if np.float32(float(s)) != v:  # never seen; %.9g always round-trips float32 through float64
            s = f"{v:.9g}"
        out.append(s.encode("ascii"))
    return out


def _table(strings: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate byte strings: (bytes array, offsets, lengths)."""
    lens = np.fromiter((len(s) for s in strings), dtype=np.int64, count=len(strings))
    offs = np.cumsum(lens) - lens
    return np.frombuffer(b"".join(strings), dtype=np.uint8), offs, lens


def write_xc(path: str | os.PathLike[str], X, Y) -> None:
    """Write ``X`` (features) and ``Y`` (labels) in the XC repository text format, atomically.

    Parameters
    ----------
    path : path-like
        Output file; gzip-compressed when the name ends with ``.gz``.
    X : sparse matrix or 2-D array, shape (n_rows, n_features)
    Y : sparse/dense 0/1 matrix, shape (n_rows, n_labels), or a list of label-id lists (then
        ``n_labels = max id + 1``).

    Values are written as the shortest decimal that reads back to the same float32 (``read_xc`` after
    ``write_xc`` is the identity on float32 data); explicit zeros are not written. A row with no label
    starts with its first pair; a row with nothing is an empty line.
    """
    X = as_features(X, name="X")
    Y = as_label_matrix(Y, name="Y")
    if X.shape[0] != Y.shape[0]:
        raise ConfigurationError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
    n_rows = X.shape[0]
    # byte tables: "id," for labels (the last label of a row uses it without the comma), " id:" for
    # features (the first pair of a row without labels drops the space), the value texts, and "\n"
    lab_used = np.unique(Y.indices)
    feat_used = np.unique(X.indices)
    val_used, val_inv = np.unique(X.data, return_inverse=True)
    strings = [b"\n"]
    strings += [b"%d," % i for i in lab_used]
    strings += [b" %d:" % i for i in feat_used]
    strings += _float32_text(val_used)
    tab, offs, lens = _table(strings)
    lab_piece = 1 + np.searchsorted(lab_used, Y.indices)
    feat_piece = 1 + lab_used.size + np.searchsorted(feat_used, X.indices)
    val_piece = 1 + lab_used.size + feat_used.size + val_inv.ravel()

    n_lab = np.diff(Y.indptr)
    n_feat = np.diff(X.indptr)
    per_row = n_lab + 2 * n_feat + 1
    base = np.cumsum(per_row) - per_row
    pieces = np.zeros(int(per_row.sum()), dtype=np.int64)  # default piece 0 = "\n" (row ends)
    trim_start = np.zeros(pieces.size, dtype=np.int64)
    trim_end = np.zeros(pieces.size, dtype=np.int64)
    lab_row = np.repeat(np.arange(n_rows), n_lab)
    lab_pos = base[lab_row] + (np.arange(Y.indices.size) - Y.indptr[lab_row])
    pieces[lab_pos] = lab_piece
    last_lab = base[n_lab > 0] + n_lab[n_lab > 0] - 1
    trim_end[last_lab] = 1
    x_row = np.repeat(np.arange(n_rows), n_feat)
    x_pos = base[x_row] + n_lab[x_row] + 2 * (np.arange(X.indices.size) - X.indptr[x_row])
    pieces[x_pos] = feat_piece
    pieces[x_pos + 1] = val_piece
    bare = (n_lab == 0) & (n_feat > 0)
    trim_start[base[bare]] = 1
    piece_off = offs[pieces] + trim_start
    piece_len = lens[pieces] - trim_start - trim_end

    with atomic_writer(path) as fh:
        fh.write(b"%d %d %d\n" % (n_rows, X.shape[1], Y.shape[1]))
        step = 1 << 21  # pieces per write: bounds the byte-index array
        for a in range(0, pieces.size, step):
            o, ln = piece_off[a : a + step], piece_len[a : a + step]
            out_start = np.cumsum(ln) - ln
            src = np.repeat(o - out_start, ln) + np.arange(int(ln.sum()))
            fh.write(tab[src].tobytes())


# ----------------------------------------------------------------------------------------------- splits


def read_xc_splits(path: str | os.PathLike[str], *, n_rows: int | None = None) -> np.ndarray:
    """Read an XC repository split file (e.g. ``bibtex_trSplit.txt``).

    Each line holds one row id per split, **1-based**, separated by blanks; column ``j`` lists the rows of
    split ``j``. Returns an int64 array of shape ``(n_lines, n_splits)`` of **0-based** row ids. Ids must be
    integers >= 1 (and <= ``n_rows`` when given), every line must have the same number of columns, and a row
    must not appear twice in one column. Blank lines are ignored.
    """
    path = os.fspath(path)
    text = read_bytes(path)
    rows: list[list[int]] = []
    width = None
    for k, raw in enumerate(text.split(b"\n")):
        line_no = k + 1
        fields = raw.split()
        if not fields:
            continue
        ids = []
        for tok in fields:
            if not tok.isdigit():
                raise DataFormatError(
                    path,
                    "a positive integer row id (1-based)",
                    line=line_no,
                    field="row id",
                    found=tok.decode("ascii", "backslashreplace"),
                )
            v = int(tok)
            if v < 1:
                raise DataFormatError(
                    path, "a row id >= 1 (the files are 1-based)", line=line_no, field="row id", found=tok.decode()
                )
            if n_rows is not None and v > n_rows:
                raise DataFormatError(
                    path, f"a row id <= n_rows={n_rows}", line=line_no, field="row id", found=tok.decode()
                )
            ids.append(v - 1)
        if width is None:
            width = len(ids)
        elif len(ids) != width:
            raise DataFormatError(
                path,
                f"{width} columns (one per split) as on the first line",
                line=line_no,
                field="columns",
                found=f"{len(ids)} columns",
            )
        rows.append(ids)
    if not rows:
        raise DataFormatError(path, "at least one line of row ids", found="an empty file")
    out = np.asarray(rows, dtype=np.int64)
    for j in range(out.shape[1]):
        col = np.sort(out[:, j])
        dup = np.flatnonzero(col[1:] == col[:-1])
        if dup.size:
            raise DataFormatError(
                path,
                "each row id at most once per split (column)",
                line=_line_of_id(text, j, int(col[dup[0]])),
                field=f"split {j + 1}",
                found=f"row id {int(col[dup[0]]) + 1} twice",
            )
    return out


def _line_of_id(text: bytes, column: int, row_id: int) -> int | None:
    seen = 0
    for k, raw in enumerate(text.split(b"\n")):
        fields = raw.split()
        if fields and int(fields[column]) - 1 == row_id:
            seen += 1
            if seen == 2:
                return k + 1
    return None
