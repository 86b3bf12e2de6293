"""Mulan and MEKA ARFF multi-label files.

* Mulan: an ARFF file plus an XML file listing the label attributes by name (``<label name="..."/>``,
  possibly nested); the labels may sit anywhere among the attributes.
* MEKA: no XML; the relation name carries ``-C n``: the first ``n`` attributes are labels (``n > 0``) or
  the last ``|n|`` (``n < 0``).

Rows are dense (``v1,v2,...``) or sparse (``{i v, j v}``, 0-based attribute indices; omitted entries are 0,
i.e. a nominal attribute's first value). Numeric attributes are read as numbers; a nominal attribute's value
becomes its index in the declared list (so ``{0,1}`` gives 0/1, ``{YES,NO}`` gives YES=0, NO=1). Label
attributes must hold 0/1. Missing values ``?`` are an error unless ``missing="zero"``. ``string``, ``date``
and ``relational`` attributes are not supported (error naming the attribute) unless dropped.
Feature columns keep the attributes' order; label columns follow the attributes' order too (as Mulan does),
with ``label_names`` in that order.
"""

from __future__ import annotations

import os
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._files import read_bytes
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
            raise ValueError(f"expected ',' after a quoted value at {text[pos:pos + 20]!r}")
        pos += 1


def _parse_header(lines: list[str], path: str):
    relation = None
    attrs: list[_Attribute] = []
    for k, line in enumerate(lines):
        s = line.strip()
        if not s or s.startswith("%"):
            continue
        low = s.lower()
        if low.startswith("@relation"):
            got = _take_name(s[len("@relation") :])
            relation = got[0] if got else ""
        elif low.startswith("@attribute"):
            got = _take_name(s[len("@attribute") :])
            if got is None:
                raise DataFormatError(path, "'@attribute <name> <type>'", line=k + 1, field="attribute", found=s)
            name, rest = got
            rest = rest.strip()
            rlow = rest.lower()
            if rest.startswith("{"):
                if not rest.endswith("}"):
                    raise DataFormatError(path, "a nominal value list '{a,b,...}'", line=k + 1, field=f"attribute {name!r}", found=rest)
                try:
                    values = _split_values(rest[1:-1])
                except ValueError as exc:
                    raise DataFormatError(path, "a nominal value list '{a,b,...}'", line=k + 1, field=f"attribute {name!r}", found=str(exc)) from None
                attrs.append(_Attribute(name, "nominal", values, k + 1))
            elif rlow in ("numeric", "real", "integer"):
                attrs.append(_Attribute(name, "numeric", None, k + 1))
            elif rlow.split()[:1] and rlow.split()[0] in ("string", "date", "relational"):
                attrs.append(_Attribute(name, rlow.split()[0], None, k + 1))
            else:
                raise DataFormatError(path, "an attribute type: numeric, real, integer or {nominal,...}", line=k + 1,
                                      field=f"attribute {name!r}", found=rest or "(nothing)")
        elif low.startswith("@data"):
            return relation, attrs, k + 1
        elif low.startswith("@"):
            raise DataFormatError(path, "@relation, @attribute or @data", line=k + 1, field="header", found=s)
        else:
            raise DataFormatError(path, "a header line (@relation, @attribute, @data) or a % comment", line=k + 1,
                                  field="header", found=s)
    raise DataFormatError(path, "an '@data' line after the attributes", field="header", found="end of file")


def _xml_labels(xml_path: str) -> list[str]:
    try:
        root = ET.fromstring(read_bytes(xml_path))
    except ET.ParseError as exc:
        raise DataFormatError(xml_path, "a well-formed Mulan label XML file", found=str(exc)) from None
    names = [el.get("name") for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "label"]
    if not names or any(n is None for n in names):
        raise DataFormatError(xml_path, "<label name=\"...\"> elements", field="labels", found="none" if not names else "a label without name")
    return names


_SPLIT_SUFFIX = re.compile(r"[-_.](?:train|test|sparse|dense)$", re.IGNORECASE)


def sibling_label_xml(path: str | os.PathLike[str]) -> str | None:
    """The Mulan label file shipped beside an ARFF file, or None.

    Mulan ships ``NAME.xml`` with ``NAME.arff`` or with ``NAME-train.arff`` / ``NAME-test.arff`` (also
    ``NAME-train-sparse.arff``): the candidates are the file's stem, then the stem without trailing
    ``-train``/``-test``/``-sparse``/``-dense`` parts (``-``, ``_`` or ``.``), the first existing one wins.
    """
    folder, name = os.path.split(os.fspath(path))
    stem = re.sub(r"\.arff(?:\.gz)?$", "", name, flags=re.IGNORECASE)
    while stem:
        candidate = os.path.join(folder, stem + ".xml")
        if os.path.isfile(candidate):
            return candidate
        shorter = _SPLIT_SUFFIX.sub("", stem)
        if shorter == stem:
            return None
        stem = shorter
    return None


def _meka_count(relation: str | None) -> int:
    """MEKA's ``n`` of ``-C n`` in the relation name (label attributes: the first n, or the last -n); 0 if none."""
    m = re.search(r"-C\s+(-?\d+)", relation or "")
    return int(m.group(1)) if m else 0


def _meka_label_columns(relation: str | None, n_attrs: int, path: str, label_xml_option: str) -> list[int]:
    n = _meka_count(relation)
    if n == 0:
        stem = re.sub(r"\.arff(?:\.gz)?$", "", os.path.basename(path), flags=re.IGNORECASE)
        raise DataFormatError(path, f"the labels: a Mulan label file ({label_xml_option} PATH, or {stem}.xml beside "
                              "the file) or a MEKA relation name with '-C n', n != 0",
                              field="@relation", found=relation or "(none)")
    if abs(n) > n_attrs:
        raise DataFormatError(path, f"|n| <= {n_attrs} attributes in '-C n'", field="@relation", found=relation)
    return list(range(n)) if n > 0 else list(range(n_attrs + n, n_attrs))


class _Converter:
    """Turns a column's text value into a number (nominal -> index in the declared list)."""

    def __init__(self, attrs: list[_Attribute], missing: str, path: str):
        self.attrs = attrs
        self.missing = missing
        self.path = path
        self.maps = [
            {v: float(i) for i, v in enumerate(a.values)} if a.kind == "nominal" else None for a in attrs
        ]

    def __call__(self, col: int, text: str, line_no: int) -> float:
        attr = self.attrs[col]
        if text == "?":
            if self.missing == "zero":
                return 0.0
            raise DataFormatError(self.path, "a value (missing values '?' need missing='zero')", line=line_no,
                                  field=f"attribute {attr.name!r}", found="?")
        mapping = self.maps[col]
        if mapping is not None:
            got = mapping.get(text)
            if got is None:
                raise DataFormatError(self.path, f"one of the nominal values {attr.values[:10]}", line=line_no,
                                      field=f"attribute {attr.name!r}", found=text)
            return got
        if attr.kind != "numeric":
            raise DataFormatError(self.path, "numeric or nominal attributes (drop this one with drop_attributes=)",
                                  line=line_no, field=f"attribute {attr.name!r}", found=attr.kind)
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not np.isfinite(value) or "_" in text:
            raise DataFormatError(self.path, "a finite number", line=line_no, field=f"attribute {attr.name!r}", found=text)
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
    joined = " ".join(inner).replace(",", " ")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            nums = np.fromstring(joined, dtype=np.float64, sep=" ")  # noqa: NPY201
        except (ValueError, DeprecationWarning):
            return None
    if nums.size != 2 * counts.sum():
        return None
    cols_f, vals = nums[0::2], nums[1::2]
    cols = cols_f.astype(np.int64)
    if np.any(cols != cols_f) or (cols.size and (cols.min() < 0 or cols.max() >= n_attrs)) or not np.all(np.isfinite(vals)):
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
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            nums = np.fromstring(" ".join(texts).replace(",", " "), dtype=np.float64, sep=" ")  # noqa: NPY201
        except (ValueError, DeprecationWarning):
            return None
    if nums.size != len(rows) * n_attrs or not np.all(np.isfinite(nums)):
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
                if len(parts) != 2 or not parts[0].isdigit():
                    raise DataFormatError(path, "'index value' pairs in a sparse row", line=line_no, field="row", found=item)
                col = int(parts[0])
                if col >= n_attrs:
                    raise DataFormatError(path, f"an attribute index < {n_attrs}", line=line_no, field="sparse index", found=parts[0])
                if col in seen:
                    raise DataFormatError(path, "each attribute index at most once per row", line=line_no,
                                          field="sparse index", found=parts[0])
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
                raise DataFormatError(path, "comma-separated values", line=line_no, field="row", found=str(exc)) from None
            if len(items) != n_attrs:
                raise DataFormatError(path, f"{n_attrs} comma-separated values (one per attribute)", line=line_no,
                                      field="row", found=f"{len(items)} values")
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
        Mulan's XML label list. Without it: MEKA's ``-C n`` in the relation name, else the Mulan label file
        beside the ARFF file (:func:`sibling_label_xml`, e.g. ``emotions.xml`` for ``emotions-train.arff``).
    drop_attributes : sequence of str
        Attribute names to leave out (e.g. genbase's ``protein`` identifier). Must exist; labels cannot be dropped.
    missing : {"error", "zero"}
        What a ``?`` value does: raise :class:`DataFormatError`, or read as 0.
    label_xml_option : str
        How the caller names ``label_xml`` in the error for an ARFF file without labels (the CLI: ``--label-xml``).

    Returns
    -------
    MultiLabelData
        ``X`` CSR float32 (features in attribute order), ``Y`` CSR 0/1 float32 (labels in attribute order),
        ``feature_names``, ``label_names``, ``meta={"relation": ..., "format": "mulan" | "meka", "label_xml": ...}``
        (``label_xml``: the XML file used, Mulan only).
    """
    path = os.fspath(path)
    if missing not in ("error", "zero"):
        raise ValueError(f"missing must be 'error' or 'zero'; got {missing!r}")
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_no = raw.count(b"\n", 0, exc.start) + 1
        raise DataFormatError(path, "UTF-8 text", line=line_no, found=repr(raw[exc.start : exc.start + 10])) from None
    lines = text.split("\n")
    relation, attrs, data_start = _parse_header(lines, path)
    if not attrs:
        raise DataFormatError(path, "at least one @attribute", field="header", found="none")
    names = [a.name for a in attrs]
    index_of: dict[str, int] = {}
    for i, a in enumerate(attrs):
        if a.name in index_of:
            raise DataFormatError(path, "unique attribute names", line=a.line, field="attribute", found=a.name)
        index_of[a.name] = i

    if label_xml is None and _meka_count(relation) == 0:
        label_xml = sibling_label_xml(path)  # a Mulan file without MEKA's -C: its labels are in the XML beside it
    if label_xml is not None:
        label_xml = os.fspath(label_xml)
        label_cols = []
        for name in _xml_labels(label_xml):
            col = index_of.get(name, index_of.get(_unescape(name)))
            if col is None:
                raise DataFormatError(label_xml, f"label names that are attributes of {os.path.basename(path)}",
                                      field="label", found=name)
            label_cols.append(col)
        if len(set(label_cols)) != len(label_cols):
            raise DataFormatError(label_xml, "each label listed once", field="label", found="a repeated label")
        label_cols.sort()  # attribute order, as Mulan
        fmt = "mulan"
    else:
        label_cols = _meka_label_columns(relation, len(attrs), path, label_xml_option)
        fmt = "meka"
    dropped = []
    for name in drop_attributes:
        if name not in index_of:
            raise ValueError(f"drop_attributes: {name!r} is not an attribute of {path}")
        if index_of[name] in label_cols:
            raise ValueError(f"drop_attributes: {name!r} is a label of {path}")
        dropped.append(index_of[name])
    is_label = np.zeros(len(attrs), dtype=bool)
    is_label[label_cols] = True
    keep = np.ones(len(attrs), dtype=bool)
    keep[dropped] = False
    feature_cols = np.flatnonzero(keep & ~is_label)
    for c in np.flatnonzero(keep):
        a = attrs[c]
        if a.kind not in ("numeric", "nominal"):
            raise DataFormatError(path, "numeric or nominal attributes (drop this one with drop_attributes=)",
                                  line=a.line, field=f"attribute {a.name!r}", found=a.kind)

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
    r_idx, c_idx, vals = got
    n = len(rows)
    col_pos = np.full(n_attrs, -1, dtype=np.int64)
    col_pos[feature_cols] = np.arange(feature_cols.size)
    lab_pos = np.full(n_attrs, -1, dtype=np.int64)
    lab_pos[label_cols] = np.arange(len(label_cols))

    in_x = col_pos[c_idx] >= 0
    X = sp.csr_matrix(
        (vals[in_x].astype(np.float32), (r_idx[in_x], col_pos[c_idx[in_x]])), shape=(n, feature_cols.size)
    )
    in_y = lab_pos[c_idx] >= 0
    y_vals = vals[in_y]
    bad = np.flatnonzero((y_vals != 0) & (y_vals != 1))
    if bad.size:
        r = int(r_idx[in_y][bad[0]])
        col = int(c_idx[in_y][bad[0]])
        raise DataFormatError(path, "0 or 1 for a label attribute", line=rows[r][0], field=f"label {attrs[col].name!r}",
                              found=repr(float(y_vals[bad[0]])))
    on = y_vals == 1
    Y = sp.csr_matrix(
        (np.ones(int(on.sum()), np.float32), (r_idx[in_y][on], lab_pos[c_idx[in_y][on]])), shape=(n, len(label_cols))
    )
    for M in (X, Y):
        M.sum_duplicates()
        M.eliminate_zeros()
        M.sort_indices()
    return MultiLabelData(
        X, Y, [names[c] for c in feature_cols], [names[c] for c in label_cols],
        {"relation": relation, "format": fmt, "source": path, **({"label_xml": label_xml} if label_xml else {})},
    )


class _AnyValue(dict):
    """Mapping for dropped attributes: any text is accepted and ignored."""

    def get(self, key, default=None):  # noqa: D102
        return 0.0


_ANY = _AnyValue()
