"""Parsing the body of an Extreme Classification Repository (XC) text file, one block of lines at a time.

Two parsers with the same result:

* :func:`parse_lines_fast` works on whole blocks with numpy (byte classes, token boundaries, vectorised number
  parsing) and returns ``None`` as soon as anything is unusual (a byte outside the format, a misplaced ``:``
  or ``,``, an id out of range, a duplicate, an exponent it cannot handle, ...);
* :func:`parse_lines_careful` goes line by line in Python, accepts exactly the format, and raises
  :class:`DataFormatError` with the 1-based line number and field of the first problem.

The reader calls the careful parser on a block whenever the fast one declines it, so validation is complete
and a valid-but-unusual block is only slower, never rejected.

Format of a line: ``[l1,l2,...] [f:v f:v ...]``: an optional comma-separated label field first (no spaces
inside), then ``feature:value`` pairs separated by blanks (space, tab; ``\\r`` is a blank too, so CRLF files
read as-is). Ids are non-negative decimal integers (0-based); values are decimal floats (``1``, ``-0.5``,
``3.2e-05``), finite. A line with no label starts with a pair, or is blank (a row with nothing at all).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

from ._numbers import DECIMAL_BYTES, MAX_WIDTH, float32_finite, id_value, parse_float_tokens, parse_plain_decimals
from .errors import DataFormatError

__all__ = ["Parsed", "parse_header", "parse_lines_careful", "parse_lines_fast"]


class Parsed(NamedTuple):
    """Rows of one block: CSR pieces for X (features, values) and Y (labels), row by row."""

    feature_ids: np.ndarray  # int64, sorted within each row
    values: np.ndarray  # float32
    x_counts: np.ndarray  # int64, entries per row
    label_ids: np.ndarray  # int64, sorted within each row
    y_counts: np.ndarray  # int64, labels per row


_BLANKS = re.compile(rb"[ \t\r]+")
_ID = re.compile(rb"[0-9]+\Z")


def _show(token: bytes) -> str:
    return token.decode("ascii", "backslashreplace")


def parse_header(line: bytes, path: str) -> tuple[int, int, int]:
    """``n_rows n_features n_labels`` from the first line (three integers in ``0..MAX_WIDTH``, 2**31 - 1)."""
    fields = _BLANKS.split(line.strip(b" \t\r\n"))
    expected = (
        "header 'n_rows n_features n_labels' (three non-negative integers; a headerless svmlight/LibSVM "
        "file is recognised by a ':' or ',' on its first line)"
    )
    if len(fields) != 3 or not all(_ID.match(f) for f in fields):
        found = "an empty line" if fields == [b""] else _show(line.strip())
        raise DataFormatError(path, expected, line=1, field="header", found=found)
    n_rows, n_features, n_labels = (id_value(f) for f in fields)
    for name, value, tok in zip(("n_rows", "n_features", "n_labels"), (n_rows, n_features, n_labels), fields):
        if value > MAX_WIDTH:
            raise DataFormatError(path, f"{name} <= {MAX_WIDTH} (2**31 - 1)", line=1, field="header", found=_show(tok))
    return n_rows, n_features, n_labels


# ----------------------------------------------------------------------------------------------- careful


def parse_lines_careful(block: bytes, first_line: int, path: str, n_features: int, n_labels: int) -> Parsed:
    """Parse ``block`` (whole lines, each ending with ``\\n``) line by line; raise on the first bad line."""
    feature_ids: list[int] = []
    values: list[float] = []
    label_ids: list[int] = []
    lines = block.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    x_counts = np.zeros(len(lines), dtype=np.int64)
    y_counts = np.zeros(len(lines), dtype=np.int64)
    for k, line in enumerate(lines):
        line_no = first_line + k

        # line_no is bound as a default: the closure must not see a later line's number
        def fail(field: str, expected: str, found: bytes | str, line_no: int = line_no) -> DataFormatError:
            return DataFormatError(
                path, expected, line=line_no, field=field, found=found if isinstance(found, str) else _show(found)
            )

        try:
            line.decode("ascii")
        except UnicodeDecodeError:
            raise fail("line", "ASCII text (digits, ',', ':', '.', blanks)", line) from None
        fields = _BLANKS.split(line.strip(b" \t\r"))
        if fields == [b""]:
            continue
        start = 0
        if b":" not in fields[0]:
            start = 1
            labels = fields[0].split(b",")
            seen: set[int] = set()
            for tok in labels:
                if not _ID.match(tok):
                    if tok.startswith(b"-") and _ID.match(tok[1:]):
                        raise fail("label id", "a label id >= 0", tok)
                    raise fail(
                        "label id", "a non-negative integer label id (labels 'l1,l2,...' first)", tok or b"(empty)"
                    )
                lab = id_value(tok)
                if lab >= n_labels:
                    raise fail("label id", f"a label id < n_labels={n_labels} (from the header)", tok)
                if lab in seen:
                    raise fail("label id", "each label at most once per row", f"label {lab} twice")
                seen.add(lab)
            row_labels = sorted(seen)
            label_ids.extend(row_labels)
            y_counts[k] = len(row_labels)
        row: dict[int, float] = {}
        for tok in fields[start:]:
            fid_s, colon, val_s = tok.partition(b":")
            if not colon:
                raise fail("feature", "'feature:value' (labels come first, in one field 'l1,l2,...')", tok)
            if not _ID.match(fid_s):
                if fid_s.startswith(b"-") and _ID.match(fid_s[1:]):
                    raise fail("feature id", "a feature id >= 0", tok)
                raise fail("feature id", "a non-negative integer feature id before ':'", tok)
            fid = id_value(fid_s)
            if fid >= n_features:
                raise fail("feature id", f"a feature id < n_features={n_features} (from the header)", tok)
            if not DECIMAL_BYTES.match(val_s):
                raise fail("feature value", "a decimal number after ':'", tok)
            val = float(val_s)
            if not float32_finite(val):
                raise fail("feature value", "a finite number (float32 range)", tok)
            if fid in row:
                raise fail("feature id", "each feature at most once per row", f"feature {fid} twice")
            row[fid] = val
        for fid in sorted(row):
            feature_ids.append(fid)
            values.append(row[fid])
        x_counts[k] = len(row)
    return Parsed(
        np.asarray(feature_ids, dtype=np.int64),
        np.asarray(values, dtype=np.float64).astype(np.float32),
        x_counts,
        np.asarray(label_ids, dtype=np.int64),
        y_counts,
    )


# ----------------------------------------------------------------------------------------------- fast


def _sorted_within_rows(ids: np.ndarray, counts: np.ndarray, *payload: np.ndarray):
    """Sort ``ids`` within each row; ``None`` if a row holds an id twice."""
    if ids.size < 2:
        return (ids, *payload)
    step = np.diff(ids)
    row_start = np.cumsum(counts)[:-1]
    row_start = row_start[(row_start > 0) & (row_start < ids.size)]
    inside = np.ones(ids.size - 1, dtype=bool)
    inside[row_start - 1] = False
    if np.all(step[inside] > 0):
        return (ids, *payload)
    rows = np.repeat(np.arange(counts.size), counts)
    order = np.lexsort((ids, rows))
    ids = ids[order]
    if np.any((np.diff(ids) == 0) & (np.diff(rows[order]) == 0)):
        return None
    return (ids, *(p[order] for p in payload))


def parse_lines_fast(block: bytes, n_features: int, n_labels: int) -> Parsed | None:
    """Vectorised parse of ``block`` (whole lines ending with ``\\n``); ``None`` when anything is unusual."""
    b = np.frombuffer(b"\n" + block, dtype=np.uint8)  # a leading newline: every token has a byte before it
    digit = (b - np.uint8(48)) < 10
    exp_or_plus = ((b | np.uint8(32)) == 101) | (b == 43)
    is_tok = digit | (b == 46) | (b == 45) | exp_or_plus
    newlines = np.flatnonzero(b == 10)
    n_colons = int(np.count_nonzero(b == 58))
    n_commas = int(np.count_nonzero(b == 44))
    # every byte is a token byte, ':', ',', '\n' or a blank (the classes are disjoint, so counts add up)
    n_blanks = np.count_nonzero(b == 32) + np.count_nonzero(b == 9) + np.count_nonzero(b == 13)
    if np.count_nonzero(is_tok) + n_colons + n_commas + newlines.size + n_blanks != b.size:
        return None
    edges = np.flatnonzero(is_tok[1:] != is_tok[:-1]) + 1
    starts, ends = edges[0::2], edges[1::2]
    prv = b[starts - 1]
    nxt = b[ends]
    is_fid = nxt == 58
    is_val = prv == 58
    # every ':' sits between a feature id and its value, every ',' between two labels
    if np.count_nonzero(is_fid) != n_colons or np.count_nonzero(is_val) != n_colons:
        return None
    if np.count_nonzero(nxt == 44) != n_commas or np.count_nonzero(prv == 44) != n_commas:
        return None
    if np.any(is_fid & (is_val | (prv == 44))) or np.any(is_val & (nxt == 44)):
        return None
    is_lab = ~(is_fid | is_val)
    # a label not after a ',' must open its line (the label field comes first)
    head = np.flatnonzero(is_lab & (prv != 44))
    if head.size:
        line_open = newlines[np.searchsorted(newlines, starts[head]) - 1]
        before = head > 0
        if np.any(ends[head[before] - 1] > line_open[before]):
            return None
    # numbers: a leading '-' is a sign (values only); exponents and '+' go to strtod
    neg = b[starts] == 45
    complex_tok = np.zeros(starts.size, dtype=bool)
    exp_pos = np.flatnonzero(exp_or_plus)
    if exp_pos.size:
        complex_tok[np.searchsorted(starts, exp_pos, side="right") - 1] = True
    lens = ends - starts
    complex_tok |= is_val & (lens - neg > 15)
    if np.any(~is_val & (neg | complex_tok)):
        return None
    plain = np.flatnonzero(~complex_tok)
    parsed = parse_plain_decimals(b, starts[plain] + neg[plain], lens[plain] - neg[plain])
    if parsed is None:
        return None
    numbers = np.empty(starts.size, dtype=np.float64)
    numbers[plain] = np.where(neg[plain], -parsed[0], parsed[0])
    has_dot = np.zeros(starts.size, dtype=bool)
    has_dot[plain] = parsed[1]
    if np.any(has_dot & ~is_val):
        return None
    hard = np.flatnonzero(complex_tok)
    if hard.size:
        hard_values = parse_float_tokens(b, starts[hard], lens[hard])
        if hard_values is None:
            return None
        numbers[hard] = hard_values
    values = numbers[is_val]
    if not np.all(float32_finite(values)):
        return None
    values = values.astype(np.float32)
    feature_ids = numbers[is_fid].astype(np.int64)
    label_ids = numbers[is_lab].astype(np.int64)
    if (feature_ids.size and feature_ids.max() >= n_features) or (label_ids.size and label_ids.max() >= n_labels):
        return None
    x_counts = np.diff(np.searchsorted(starts[is_fid], newlines))
    y_counts = np.diff(np.searchsorted(starts[is_lab], newlines))
    x = _sorted_within_rows(feature_ids, x_counts, values)
    y = _sorted_within_rows(label_ids, y_counts)
    if x is None or y is None:
        return None
    return Parsed(x[0], x[1], x_counts, y[0], y_counts)
