"""From parsed ARFF values to the feature and label matrices.

The row parsers give one ``(row, attribute, code)`` triple per value: a numeric attribute's number, or a
nominal attribute's index in its declared list (NaN for a missing nominal value read with ``missing="zero"``).
This module turns the codes into columns:

* numeric attribute: one column, the number;
* binary nominal attribute whose two values are a yes/no pair (:func:`positive_index`: ``{0,1}``,
  ``{YES,NO}``, ``{no,yes}``, ``{false,true}``, ``{n,y}``, ``{f,t}``, any order, any case): one 0/1 column,
  1 for the positive value (``1``, ``yes``, ``true``, ``y``, ``t``);
* any other nominal attribute with values ``v0, v1, ..., vk``: ``k`` indicator columns ``name=v1`` ...
  ``name=vk``; ``v0`` is all zeros. This is the ARFF sparse convention (an omitted value is ``v0``) and,
  unlike the value's position as a number, implies no order between categories;
* labels: a yes/no nominal (1 for the positive value) or a numeric 0/1 attribute.

In a sparse row an omitted attribute holds code 0 (its first declared value): for a yes/no attribute whose
positive value comes first (``{YES,NO}``), that is a 1, filled in by :func:`fill_sparse_defaults`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from .errors import DataFormatError

__all__ = [
    "ID_MIN_VALUES",
    "check_label_attribute",
    "encode",
    "fill_sparse_defaults",
    "identifier_columns",
    "positive_index",
]

_POSITIVE = frozenset({"1", "yes", "true", "y", "t"})
_NEGATIVE = frozenset({"0", "no", "false", "n", "f"})

#: A nominal feature attribute is taken for a row identifier (and dropped) only if it declares more values
#: than this and holds a different value on every row (see :func:`identifier_columns`).
ID_MIN_VALUES = 100

_NUMERIC, _BOOLEAN, _CATEGORICAL = 0, 1, 2


def positive_index(values: Sequence[str] | None) -> int | None:
    """The index of the positive value of a yes/no nominal attribute (``{NO,YES}`` -> 1), else None."""
    if values is None or len(values) != 2:
        return None
    low = [v.strip().lower() for v in values]
    for i in (0, 1):
        if low[i] in _POSITIVE and low[1 - i] in _NEGATIVE:
            return i
    return None


def identifier_columns(
    attrs, candidates: Sequence[int], r_idx: np.ndarray, c_idx: np.ndarray, codes: np.ndarray, n_rows: int
) -> list[int]:
    """The nominal ``candidates`` that are row identifiers (genbase's ``protein``).

    An identifier declares more than :data:`ID_MIN_VALUES` values, is not a yes/no attribute, and holds a
    value (not missing) that differs on every one of at least 2 rows. The threshold keeps a small categorical
    attribute whose few rows happen to differ (a 3-row test file) from being taken for one.
    """
    found: list[int] = []
    if n_rows < 2:
        return found
    for c in candidates:
        a = attrs[c]
        if a.kind != "nominal" or len(a.values) <= ID_MIN_VALUES or positive_index(a.values) is not None:
            continue
        column = np.zeros(n_rows)  # an omitted sparse value is the first declared value, code 0
        mask = c_idx == c
        column[r_idx[mask]] = codes[mask]
        if not np.isnan(column).any() and np.unique(column).size == n_rows:
            found.append(c)
    return found


def fill_sparse_defaults(
    attrs, columns: Sequence[int], sparse_rows: np.ndarray, r_idx: np.ndarray, c_idx: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add the omitted values of sparse rows (code 0) for the yes/no ``columns`` whose first value is positive."""
    extra_r, extra_c = [], []
    for c in columns:
        a = attrs[c]
        if a.kind != "nominal" or positive_index(a.values) != 0 or not sparse_rows.size:
            continue
        missing = np.setdiff1d(sparse_rows, r_idx[c_idx == c], assume_unique=False)
        extra_r.append(missing)
        extra_c.append(np.full(missing.size, c, dtype=np.int64))
    if not extra_r:
        return r_idx, c_idx, codes
    more_r = np.concatenate(extra_r)
    return (
        np.concatenate([r_idx, more_r]),
        np.concatenate([c_idx, *extra_c]),
        np.concatenate([codes, np.zeros(more_r.size)]),
    )


def check_label_attribute(a, path: str) -> None:
    """A label attribute must be a yes/no nominal or numeric (its values then checked to be 0/1)."""
    if a.kind == "numeric" or (a.kind == "nominal" and positive_index(a.values) is not None):
        return
    found = "{" + ",".join(a.values[:6]) + (",...}" if len(a.values) > 6 else "}") if a.kind == "nominal" else a.kind
    raise DataFormatError(
        path,
        "a label attribute of type {0,1} (or another yes/no pair such as {NO,YES}) or numeric 0/1",
        line=a.line,
        field=f"label {a.name!r}",
        found=found,
    )


def _layout(attrs, feature_cols: Sequence[int]):
    n_attrs = len(attrs)
    kind = np.full(n_attrs, -1, dtype=np.int64)
    base = np.full(n_attrs, -1, dtype=np.int64)
    pos = np.full(n_attrs, -1, dtype=np.int64)
    names: list[str] = []
    for c in feature_cols:
        a = attrs[c]
        base[c] = len(names)
        p = positive_index(a.values) if a.kind == "nominal" else None
        if a.kind == "numeric" or p is not None:
            kind[c] = _NUMERIC if p is None else _BOOLEAN
            pos[c] = -1 if p is None else p
            names.append(a.name)
        else:
            kind[c] = _CATEGORICAL
            names.extend(f"{a.name}={v}" for v in a.values[1:])
    return kind, base, pos, names


def _matrix(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    M = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=shape)
    M.sum_duplicates()
    M.eliminate_zeros()
    M.sort_indices()
    return M


def encode(
    attrs,
    feature_cols: Sequence[int],
    label_cols: Sequence[int],
    r_idx: np.ndarray,
    c_idx: np.ndarray,
    codes: np.ndarray,
    line_of_row: Sequence[int],
    path: str,
):
    """``(X, Y, feature_names)`` from the parsed triples, by the rules in this module's docstring.

    ``line_of_row[r]`` is the file line of row ``r`` (for the error on a numeric label that is not 0/1).
    """
    n_rows = len(line_of_row)
    kind, base, pos, names = _layout(attrs, feature_cols)
    k = kind[c_idx]
    missing = np.isnan(codes)
    safe = np.where(missing, 0.0, codes)
    plain = k == _NUMERIC
    boolean = (k == _BOOLEAN) & ~missing
    category = (k == _CATEGORICAL) & ~missing & (safe > 0)
    x_rows = np.concatenate([r_idx[plain], r_idx[boolean], r_idx[category]])
    x_cols = np.concatenate(
        [base[c_idx[plain]], base[c_idx[boolean]], base[c_idx[category]] + safe[category].astype(np.int64) - 1]
    )
    x_vals = np.concatenate(
        [safe[plain], (safe[boolean] == pos[c_idx[boolean]]).astype(np.float64), np.ones(int(category.sum()))]
    )
    X = _matrix(x_rows, x_cols, x_vals, (n_rows, len(names)))

    lab_pos = np.full(len(attrs), -1, dtype=np.int64)
    lab_pos[list(label_cols)] = np.arange(len(label_cols))
    label_pos_value = np.full(len(attrs), -1, dtype=np.int64)  # a numeric label: -1
    for c in label_cols:
        if attrs[c].kind == "nominal":
            positive = positive_index(attrs[c].values)
            assert positive is not None  # check_label_attribute refused every other nominal label
            label_pos_value[c] = positive
    in_y = (lab_pos[c_idx] >= 0) & ~missing
    y_r, y_c, y_v = r_idx[in_y], c_idx[in_y], codes[in_y]
    nominal = label_pos_value[y_c] >= 0
    numeric_bad = np.flatnonzero(~nominal & (y_v != 0) & (y_v != 1))
    if numeric_bad.size:
        i = numeric_bad[0]
        raise DataFormatError(
            path,
            "0 or 1 for a label attribute",
            line=int(line_of_row[y_r[i]]),
            field=f"label {attrs[y_c[i]].name!r}",
            found=repr(float(y_v[i])),
        )
    on = np.where(nominal, y_v == label_pos_value[y_c], y_v == 1)
    Y = _matrix(y_r[on], lab_pos[y_c[on]], np.ones(int(on.sum())), (n_rows, len(label_cols)))
    return X, Y, names
