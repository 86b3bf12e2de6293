"""Mulan and MEKA ARFF multi-label files.

* Mulan: an ARFF file plus an XML file listing the label attributes by name (``<label name="..."/>``,
  possibly nested); the labels may sit anywhere among the attributes.
* MEKA: no XML; the relation name carries ``-C n``: the first ``n`` attributes are labels (``n > 0``) or
  the last ``|n|`` (``n < 0``).

Which attributes are labels: the XML (given, or ``NAME.xml`` beside the file) always wins; else an unambiguous
``-C n``; else a :class:`DataFormatError` saying how to decide (rule in :mod:`sparsexc.io._arff_labels`).

Rows are dense (``v1,v2,...``) or sparse (``{i v, j v}``, 0-based attribute indices; an omitted entry is 0
for a numeric attribute and the first declared value for a nominal one). Numeric attributes are read as
numbers; a yes/no nominal (``{0,1}``, ``{YES,NO}``, ``{no,yes}``, ...) becomes one 0/1 column with 1 for the
positive value; any other nominal attribute ``{v0,...,vk}`` becomes indicator columns ``name=v1`` ...
``name=vk`` (rules in :mod:`sparsexc.io._arff_encode`). Label attributes are yes/no nominals or numeric 0/1.
Missing values ``?`` are an error unless ``missing="zero"`` (then 0, i.e. no indicator set).
Dropped without being asked: ``string`` attributes, and nominal row identifiers (more than
``ID_MIN_VALUES`` = 100 declared values and a different value on every row, such as genbase's ``protein``);
``meta["dropped_attributes"]`` names them and why. ``date`` and ``relational`` features are an error naming
the attribute unless dropped with ``drop_attributes``.
Feature columns keep the attributes' order; label columns follow the attributes' order too (as Mulan does),
with ``label_names`` in that order.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sparsexc.errors import ConfigurationError

from ._arff_encode import (
    check_label_attribute,
    encode,
    fill_sparse_defaults,
    identifier_columns,
)
from ._arff_labels import decide_label_columns, sibling_label_xml
from ._files import read_bytes
from ._numbers import DECIMAL, float32_finite, id_value, only_number_chars
from .data import MultiLabelData
from .errors import DataFormatError

__all__ = ["read_arff", "sibling_label_xml"]


@dataclass
class _Attribute:
    name: str
    kind: str  # "numeric" or "nominal" (others rejected when used)
    values: list[str] | None = None  # nominal values, in declared order
    line: int = 0


_QUOTED = re.compile(r"""\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")""")
_ESCAPE = re.compile(r"\\(.)")


_INDEX = re.compile(r"[0-9]+\Z")  # a sparse row's attribute index (str.isdigit would take '²')


def _unescape(s: str) -> str:
    return _ESCAPE.sub(lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), s)


def _take_name(text: str) -> tuple[str, str] | None:
    """Split ``text`` into its first (possibly quoted) word and the rest."""
    m = _QUOTED.match(text)
    if m:
        raw = m.group(1) if m.group(1) is not None else m.group(2)
        return _unescape(raw), text[m.end() :]
    parts = text.strip().split(None, 1)
    if not parts:
        return None
    # unquoted names are kept literally (Mulan's "TAG_m\'usica" is matched byte for byte by its XML)
    return parts[0], (parts[1] if len(parts) > 1 else "")


def _split_values(text: str) -> list[str]:
    """Comma-separated values, honouring ``'...'`` and ``"..."`` quoting with backslash escapes."""
    if "'" not in text and '"' not in text:
        return [v.strip() for v in text.split(",")]
    out = []
    pos = 0
    n = len(text)
    while True:
        m = _QUOTED.match(text, pos)
        if m:
            out.append(_unescape(m.group(1) if m.group(1) is not None else m.group(2)))
            pos = m.end()
            rest = text[pos:].lstrip()
            pos = n - len(rest)
        else:
            comma = text.find(",", pos)
            end = n if comma < 0 else comma
            out.append(text[pos:end].strip())
            pos = end
        if pos >= n:
            return out
        if text[pos] != ",":
            raise ValueError(f"expected ',' after a quoted value at {text[pos : pos + 20]!r}")
        pos += 1


def _nominal_values(rest: str, name: str, path: str, line: int) -> list[str]:
    """The declared values of ``{a,b,...}``: at least one, each once."""
    field = f"attribute {name!r}"
    if not rest.endswith("}"):
        raise DataFormatError(path, "a nominal value list '{a,b,...}'", line=line, field=field, found=rest)
    try:
        values = _split_values(rest[1:-1])
    except ValueError as exc:
        raise DataFormatError(
            path, "a nominal value list '{a,b,...}'", line=line, field=field, found=str(exc)
        ) from None
    if values == [""]:
        raise DataFormatError(path, "at least one value in the nominal value list", line=line, field=field, found=rest)
    seen: set[str] = set()
    for v in values:
        if v == "" or v in seen:
            raise DataFormatError(
                path,
                "distinct, non-empty nominal values",
                line=line,
                field=field,
                found=repr(v) + (" twice" if v else ""),
            )
        seen.add(v)
    return values


def _parse_header(lines: list[str], path: str):
    """``(relation, relation_line, attributes, first data line index)``; header errors name line and field."""
    relation = None
    relation_line = None
    attrs: list[_Attribute] = []
    for k, line in enumerate(lines):
        s = line.strip()
        if not s or s.startswith("%"):
            continue
        low = s.lower()
        if low.startswith("@relation"):
            if relation_line is not None or attrs:
                raise DataFormatError(
                    path, "one @relation line, before the attributes", line=k + 1, field="header", found=s
                )
            got = _take_name(s[len("@relation") :])
            relation = got[0] if got else ""
            relation_line = k + 1
        elif low.startswith("@attribute"):
            got = _take_name(s[len("@attribute") :])
            if got is None:
                raise DataFormatError(path, "'@attribute <name> <type>'", line=k + 1, field="attribute", found=s)
            name, rest = got
            rest = rest.strip()
            rlow = rest.lower()
            if rest.startswith("{"):
                attrs.append(_Attribute(name, "nominal", _nominal_values(rest, name, path, k + 1), k + 1))
            elif rlow in ("numeric", "real", "integer"):
                attrs.append(_Attribute(name, "numeric", None, k + 1))
            elif rlow.split()[:1] and rlow.split()[0] in ("string", "date", "relational"):
                attrs.append(_Attribute(name, rlow.split()[0], None, k + 1))
            else:
                raise DataFormatError(
                    path,
                    "an attribute type: numeric, real, integer or {nominal,...}",
                    line=k + 1,
                    field=f"attribute {name!r}",
                    found=rest or "(nothing)",
                )
        elif low.startswith("@data"):
            return relation, relation_line, attrs, k + 1
        elif low.startswith("@"):
            raise DataFormatError(path, "@relation, @attribute or @data", line=k + 1, field="header", found=s)
        else:
            raise DataFormatError(
                path, "a header line (@relation, @attribute, @data) or a % comment", line=k + 1, field="header", found=s
            )
    raise DataFormatError(path, "an '@data' line after the attributes", field="header", found="end of file")


class _Converter:
    """Turns a column's text value into a number (nominal -> index in the declared list)."""

    def __init__(self, attrs: list[_Attribute], missing: str, path: str):
        self.attrs = attrs
        self.missing = missing
        self.path = path
        self.maps = [
            {v: float(i) for i, v in enumerate(a.values)} if a.kind == "nominal" and a.values is not None else None
            for a in attrs
        ]

    def __call__(self, col: int, text: str, line_no: int) -> float:
        attr = self.attrs[col]
        if text == "?":
            if self.missing == "zero":
                return float("nan") if attr.kind == "nominal" else 0.0  # NaN: no indicator set (_arff_encode)
            raise DataFormatError(
                self.path,
                "a value (missing values '?' need missing='zero')",
                line=line_no,
                field=f"attribute {attr.name!r}",
                found="?",
            )
        mapping = self.maps[col]
        if mapping is not None:
            got = mapping.get(text)
            if got is None:
                raise DataFormatError(
                    self.path,
                    f"one of the nominal values {(attr.values or [])[:10]}",
                    line=line_no,
                    field=f"attribute {attr.name!r}",
                    found=text,
                )
            return got
        if attr.kind != "numeric":
            raise DataFormatError(
                self.path,
                "numeric or nominal attributes (drop this one with drop_attributes=)",
                line=line_no,
                field=f"attribute {attr.name!r}",
                found=attr.kind,
            )
        value = float(text) if DECIMAL.match(text) else float("nan")
        if not float32_finite(value):
            raise DataFormatError(
                self.path,
                "a finite number (decimal, |v| <= 3.4e38 for float32)",
                line=line_no,
                field=f"attribute {attr.name!r}",
                found=text,
            )
        return value


def _data_lines(lines: list[str], first: int) -> list[tuple[int, str]]:
    out = []
    for k in range(first, len(lines)):
        s = lines[k].strip()
        if s and not s.startswith("%"):
            out.append((k + 1, s))
    return out


def _sparse_fast(rows: list[tuple[int, str]], attrs: list[_Attribute], n_attrs: int):
    """All-numeric sparse rows parsed with numpy; ``None`` if anything needs the careful path."""
    inner = [s[1:-1] for _, s in rows]
    if any(("'" in t or '"' in t or "?" in t) for t in inner):
        return None
    counts = np.fromiter((t.count(",") + 1 if t.strip() else 0 for t in inner), dtype=np.int64, count=len(inner))
    # each row must hold exactly 2 numbers per comma-separated item, or values would shift between rows
    # ('{,3 4}' next to '{1 2 5 6}'): any other row goes to the careful path, which reports it
    tokens = np.fromiter((len(t.replace(",", " ").split()) for t in inner), dtype=np.int64, count=len(inner))
    if np.any(tokens != 2 * counts):
        return None
    joined = " ".join(inner).replace(",", " ")
    if not only_number_chars(joined):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            nums = np.fromstring(joined, dtype=np.float64, sep=" ")
        except (ValueError, DeprecationWarning):
            return None
    if nums.size != 2 * counts.sum():
        return None
    cols_f, vals = nums[0::2], nums[1::2]
    with np.errstate(invalid="ignore"):  # inf or 1e300 as an index: not equal to its cast, rejected below
        cols = cols_f.astype(np.int64)
    if (
        np.any(cols != cols_f)
        or (cols.size and (cols.min() < 0 or cols.max() >= n_attrs))
        or not np.all(float32_finite(vals))
    ):
        return None
    # numbers are right as they are for numeric attributes and for nominal {0,1}; others need the lookup
    plain = np.array([a.kind == "numeric" or (a.kind == "nominal" and a.values == ["0", "1"]) for a in attrs])
    if not np.all(plain[cols]):
        return None
    binary = np.array([a.kind == "nominal" for a in attrs])
    if np.any(binary[cols] & (vals != 0) & (vals != 1)):
        return None
    rows_idx = np.repeat(np.arange(len(rows)), counts)
    if cols.size > 1:
        step_ok = (np.diff(cols) > 0) | (np.diff(rows_idx) != 0)
        if not np.all(step_ok):
            return None  # unsorted or repeated index: the careful path reports or sorts it
    return rows_idx, cols, vals


def _dense_fast(rows: list[tuple[int, str]], attrs: list[_Attribute], n_attrs: int):
    """All-numeric dense rows parsed with numpy; ``None`` if anything needs the careful path."""
    plain = [a.kind == "numeric" or (a.kind == "nominal" and a.values == ["0", "1"]) for a in attrs]
    if not all(plain):
        return None
    texts = [s for _, s in rows]
    if any(("'" in t or '"' in t or "?" in t or t.count(",") != n_attrs - 1) for t in texts):
        return None
    joined = " ".join(texts).replace(",", " ")
    if not only_number_chars(joined):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            nums = np.fromstring(joined, dtype=np.float64, sep=" ")
        except (ValueError, DeprecationWarning):
            return None
    if nums.size != len(rows) * n_attrs or not np.all(float32_finite(nums)):
        return None
    M = nums.reshape(len(rows), n_attrs)
    binary = np.array([a.kind == "nominal" for a in attrs])
    if np.any((M[:, binary] != 0) & (M[:, binary] != 1)):
        return None
    r_idx, c_idx = np.nonzero(M)
    return r_idx.astype(np.int64), c_idx.astype(np.int64), M[r_idx, c_idx]


def _parse_rows_careful(rows, attrs, conv: _Converter, path: str):
    n_attrs = len(attrs)
    r_idx: list[int] = []
    c_idx: list[int] = []
    v_all: list[float] = []
    for r, (line_no, s) in enumerate(rows):
        if s.startswith("{"):
            if not s.endswith("}"):
                raise DataFormatError(path, "a sparse row ending with '}'", line=line_no, field="row", found=s[-20:])
            body = s[1:-1].strip()
            seen: set[int] = set()
            if not body:
                continue
            try:
                items = _split_values(body) if ("'" in body or '"' in body) else [t.strip() for t in body.split(",")]
            except ValueError as exc:
                raise DataFormatError(path, "'{index value, ...}'", line=line_no, field="row", found=str(exc)) from None
            for item in items:
                parts = item.split(None, 1)
                if len(parts) != 2 or not _INDEX.match(parts[0]):
                    raise DataFormatError(
                        path, "'index value' pairs in a sparse row", line=line_no, field="row", found=item
                    )
                col = id_value(parts[0])
                if col >= n_attrs:
                    raise DataFormatError(
                        path, f"an attribute index < {n_attrs}", line=line_no, field="sparse index", found=parts[0]
                    )
                if col in seen:
                    raise DataFormatError(
                        path,
                        "each attribute index at most once per row",
                        line=line_no,
                        field="sparse index",
                        found=parts[0],
                    )
                seen.add(col)
                text = parts[1].strip()
                if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
                    text = _unescape(text[1:-1])
                r_idx.append(r)
                c_idx.append(col)
                v_all.append(conv(col, text, line_no))
        else:
            try:
                items = _split_values(s)
            except ValueError as exc:
                raise DataFormatError(
                    path, "comma-separated values", line=line_no, field="row", found=str(exc)
                ) from None
            if len(items) != n_attrs:
                raise DataFormatError(
                    path,
                    f"{n_attrs} comma-separated values (one per attribute)",
                    line=line_no,
                    field="row",
                    found=f"{len(items)} values",
                )
            for col, text in enumerate(items):
                r_idx.append(r)
                c_idx.append(col)
                v_all.append(conv(col, text, line_no))
    return np.asarray(r_idx, np.int64), np.asarray(c_idx, np.int64), np.asarray(v_all, np.float64)


def read_arff(
    path: str | os.PathLike[str],
    label_xml: str | os.PathLike[str] | None = None,
    *,
    drop_attributes: Sequence[str] = (),
    missing: str = "error",
    label_xml_option: str = "label_xml",
) -> MultiLabelData:
    """Read a Mulan (ARFF + XML) or MEKA (ARFF with ``-C n``) multi-label file.

    Parameters
    ----------
    path : path-like
        The ARFF file (gzip detected from content, e.g. ``Imdb.arff.gz``).
    label_xml : path-like, optional
        Mulan's XML label list. Without it: the Mulan label file beside the ARFF file (:func:`sibling_label_xml`,
        e.g. ``medical.xml`` for ``medical-train.arff``), which wins over a ``-C n`` in the relation name;
        else MEKA's ``-C n`` if unambiguous; else :class:`DataFormatError` (see :mod:`sparsexc.io._arff_labels`).
    drop_attributes : sequence of str
        Attribute names to leave out besides those dropped by rule (``string`` attributes and nominal row
        identifiers, see the module docstring). Must exist; labels cannot be dropped.
    missing : {"error", "zero"}
        What a ``?`` value does: raise :class:`DataFormatError`, or read as 0 (no indicator for a nominal).
    label_xml_option : str
        How the caller names ``label_xml`` in the error for an ARFF file without labels (the CLI: ``--label-xml``).

    Returns
    -------
    MultiLabelData
        ``X`` CSR float32 (features in attribute order; a nominal attribute that is not yes/no gives one
        ``name=value`` column per declared value but the first), ``Y`` CSR 0/1 float32 (labels in attribute
        order), ``feature_names``, ``label_names``, ``meta={"relation", "format": "mulan" | "meka", "source",
        "label_xml" (the XML used, Mulan only), "feature_attributes" (the attributes behind the features),
        "dropped_attributes" ({name: reason})}``.
    """
    path = os.fspath(path)
    if missing not in ("error", "zero"):
        raise ConfigurationError(f"missing must be 'error' or 'zero'; got {missing!r}")
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_no = raw.count(b"\n", 0, exc.start) + 1
        raise DataFormatError(path, "UTF-8 text", line=line_no, found=repr(raw[exc.start : exc.start + 10])) from None
    lines = text.split("\n")
    relation, relation_line, attrs, data_start = _parse_header(lines, path)
    if not attrs:
        raise DataFormatError(path, "at least one @attribute", field="header", found="none")
    names = [a.name for a in attrs]
    index_of: dict[str, int] = {}
    for i, a in enumerate(attrs):
        if a.name in index_of:
            raise DataFormatError(path, "unique attribute names", line=a.line, field="attribute", found=a.name)
        index_of[a.name] = i

    label_cols, fmt, label_xml = decide_label_columns(
        path,
        relation,
        relation_line,
        names,
        lambda n: index_of.get(n, index_of.get(_unescape(n))),
        label_xml,
        label_xml_option,
    )
    for c in label_cols:
        check_label_attribute(attrs[c], path)
    dropped: dict[int, str] = {}
    for name in drop_attributes:
        if name not in index_of:
            raise ConfigurationError(f"drop_attributes: {name!r} is not an attribute of {path}")
        if index_of[name] in label_cols:
            raise ConfigurationError(f"drop_attributes: {name!r} is a label of {path}")
        dropped[index_of[name]] = "drop_attributes"
    is_label = np.zeros(len(attrs), dtype=bool)
    is_label[label_cols] = True
    for c, a in enumerate(attrs):
        if is_label[c] or c in dropped:
            continue
        if a.kind == "string":
            dropped[c] = "string attribute"
        elif a.kind not in ("numeric", "nominal"):
            raise DataFormatError(
                path,
                "numeric or nominal attributes (drop this one with drop_attributes=)",
                line=a.line,
                field=f"attribute {a.name!r}",
                found=a.kind,
            )

    rows = _data_lines(lines, data_start)
    n_attrs = len(attrs)
    got = None
    if rows and all(s[0] == "{" and s[-1] == "}" for _, s in rows):
        got = _sparse_fast(rows, attrs, n_attrs)
    elif rows and not dropped and not any(s[0] == "{" for _, s in rows):
        got = _dense_fast(rows, attrs, n_attrs)
    if got is None:
        # dropped columns are parsed as text only (never converted): a protein id is not a number
        conv = _Converter(attrs, missing, path)
        for c in dropped:
            conv.maps[c] = _ANY
        got = _parse_rows_careful(rows, attrs, conv, path)
    r_idx, c_idx, codes = got
    n = len(rows)
    candidates = [c for c in range(n_attrs) if not is_label[c] and c not in dropped]
    for c in identifier_columns(attrs, candidates, r_idx, c_idx, codes, n):
        dropped[c] = "identifier: a different value on every row"
    feature_cols = [c for c in candidates if c not in dropped]
    sparse_rows = np.array([r for r, (_, s) in enumerate(rows) if s.startswith("{")], dtype=np.int64)
    r_idx, c_idx, codes = fill_sparse_defaults(attrs, [*feature_cols, *label_cols], sparse_rows, r_idx, c_idx, codes)
    X, Y, feature_names = encode(attrs, feature_cols, label_cols, r_idx, c_idx, codes, [ln for ln, _ in rows], path)
    if len(set(feature_names)) != len(feature_names):
        dup = next(f for k, f in enumerate(feature_names) if f in feature_names[:k])
        raise DataFormatError(
            path,
            "feature names that stay distinct once a nominal attribute becomes 'name=value' columns",
            line=attrs[index_of[dup]].line if dup in index_of else None,
            field="attribute",
            found=dup,
        )
    meta = {
        "relation": relation,
        "format": fmt,
        "source": path,
        **({"label_xml": label_xml} if label_xml else {}),
        "feature_attributes": [names[c] for c in feature_cols],
        "dropped_attributes": {names[c]: why for c, why in sorted(dropped.items())},
    }
    return MultiLabelData(X, Y, feature_names, [names[c] for c in label_cols], meta)


class _AnyValue(dict):
    """Mapping for dropped attributes: any text is accepted and ignored."""

    def get(self, key, default=None):
        return 0.0


_ANY = _AnyValue()
