"""What :class:`~sparsexc.estimator.XCClassifier` accepts as targets, and the label names (``classes_``) they carry.

Three kinds of ``Y``:

* an **indicator**: a sparse matrix or a 2-D array of 0/1, one column per label;
* **label sets**: a list of per-row lists, holding label ids (non-negative integers: column numbers, as
  ever) or label names (anything hashable that is not a number: ``[["rock", "pop"], ["jazz"]]``);
* a **class vector**: a 1-D array or a list of scalars, one class per row (single-label, as scikit-learn's
  classifiers take it).

Every kind becomes the CSR 0/1 indicator the model trains on; the names, when there are any, become
``classes_`` (column ``j`` is the label ``classes_[j]``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from sparsexc._sparse import as_label_matrix
from sparsexc.errors import ConfigurationError

__all__ = [
    "FitTargets",
    "classes_array",
    "encode_targets",
    "fit_targets",
    "saveable_names",
    "target_kind",
]

INDICATOR, SETS, VECTOR = "indicator", "sets", "vector"


@dataclasses.dataclass
class FitTargets:
    """``fit``'s targets as the model trains on them.

    ``classes`` is None for label ids without names (``classes_`` is then ``0..C-1``).
    """

    Y: sp.csr_matrix
    Y_val: sp.csr_matrix | None
    classes: list[Any] | None
    multilabel: bool


def _is_scalar(item: Any) -> bool:
    return isinstance(item, (str, bytes)) or not isinstance(item, Iterable)


def target_kind(Y: Any, name: str = "Y") -> tuple[str, Any]:
    """``(kind, Y)``: INDICATOR, SETS (``Y`` as a list of lists) or VECTOR (``Y`` as a 1-D ndarray)."""
    if sp.issparse(Y):
        return INDICATOR, Y
    if not isinstance(Y, (list, tuple, np.ndarray)) and hasattr(Y, "__array__"):
        Y = np.asarray(Y)  # pandas Series / DataFrame and other array-likes
    if isinstance(Y, np.ndarray):
        if Y.ndim == 1:
            return VECTOR, Y
        if Y.ndim == 2:
            return INDICATOR, Y
        raise ConfigurationError(
            f"{name} must be 1-D (one class per row) or 2-D (n_samples, n_labels); got an array of shape {Y.shape}"
        )
    if _is_scalar(Y):
        raise ConfigurationError(
            f"{name} must be a label indicator matrix, a list of label lists or a 1-D vector of classes; "
            f"got {type(Y).__name__}"
        )
    rows = list(Y)
    scalars = [_is_scalar(row) for row in rows]
    if rows and all(scalars):
        return VECTOR, _vector(rows)
    if any(scalars):
        i = scalars.index(True) if not scalars[0] else scalars.index(False)
        raise ConfigurationError(
            f"{name} mixes label lists and single classes (row 0 is a {type(rows[0]).__name__}, row {i} "
            f"a {type(rows[i]).__name__}); give one label list per row, or one class per row"
        )
    return SETS, [list(row) for row in rows]


def _vector(items: Sequence[Any]) -> np.ndarray:
    arr = np.empty(len(items), dtype=object)
    arr[:] = list(items)
    # a plain dtype when the classes share one (numbers or strings), so np.unique and comparisons work as usual
    if all(isinstance(v, str) for v in items):
        return arr.astype(str)
    if all(isinstance(v, numbers.Number) for v in items):
        return np.asarray(list(items))
    return arr


def _is_number(item: Any) -> bool:
    return isinstance(item, (numbers.Number, np.number))


def classes_array(names: Sequence[Any]) -> np.ndarray:
    """``classes_`` for ``names``: an int64 / float64 / bool / str array when they share that type, else object."""
    values = [v.item() if isinstance(v, np.generic) else v for v in names]
    # bool before int: True is an int too
    kinds = {next((t for t in (bool, int, float, str) if isinstance(v, t)), object) for v in values}
    if len(kinds) == 1 and object not in kinds:
        dtype = {bool: np.bool_, int: np.int64, float: np.float64, str: np.str_}[kinds.pop()]
        return np.asarray(values, dtype=dtype)
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _checked_names(label_names: Any) -> list[Any]:
    """``label_names`` as a list of distinct hashable names."""
    if sp.issparse(label_names) or _is_scalar(label_names):
        raise ConfigurationError(
            f"label_names must be a list of names, one per label; got {type(label_names).__name__}"
        )
    names = [v.item() if isinstance(v, np.generic) else v for v in label_names]
    seen: dict[Any, int] = {}
    for i, v in enumerate(names):
        try:
            j = seen.setdefault(v, i)
        except TypeError:
            raise ConfigurationError(f"label_names[{i}] is a {type(v).__name__}, which is not hashable") from None
        if j != i:
            raise ConfigurationError(
                f"label_names holds {v!r} twice (positions {j} and {i}); label names must be distinct"
            )
    if not names:
        raise ConfigurationError("label_names is empty")
    return names


def _sorted_names(values: Iterable[Any], name: str) -> list[Any]:
    found = {v.item() if isinstance(v, np.generic) else v for v in values}
    try:
        return sorted(found)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in found})
        raise ConfigurationError(
            f"{name} holds label names of types that cannot be ordered together ({', '.join(kinds)}); "
            "use one type, or give label_names= to fix the order"
        ) from None


def _set_items(rows: list[list[Any]]) -> Iterable[Any]:
    return (item for row in rows for item in row)


def _hashable_rows(rows: list[list[Any]], name: str) -> None:
    for i, row in enumerate(rows):
        for item in row:
            try:
                hash(item)
            except TypeError:
                raise ConfigurationError(
                    f"{name}[{i}] holds a {type(item).__name__}, which cannot be a label name (not hashable)"
                ) from None


def _from_sets(rows: list[list[Any]], index: dict[Any, int], n_labels: int, name: str, strict: bool) -> sp.csr_matrix:
    """CSR indicator of label-name lists; names missing from ``index`` are an error (``strict``) or dropped."""
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indices: list[int] = []
    for i, row in enumerate(rows):
        ids = set()
        for item in row:
            j = index.get(item.item() if isinstance(item, np.generic) else item)
            if j is None:
                if strict:
                    raise ConfigurationError(
                        f"{name}[{i}] holds the label {item!r}, which is not one of the label names ({_preview(index)})"
                    )
                continue
            ids.add(j)
        indices.extend(sorted(ids))
        indptr[i + 1] = len(indices)
    data = np.ones(len(indices), dtype=np.float32)
    return sp.csr_matrix((data, np.asarray(indices, dtype=np.int64), indptr), shape=(len(rows), n_labels))


def _preview(index: dict[Any, int]) -> str:
    names = list(index)
    shown = ", ".join(map(repr, names[:5]))
    return f"{shown}, ... ({len(names)} in all)" if len(names) > 5 else shown


def _check_classification_vector(y: np.ndarray, name: str) -> None:
    """A class vector must hold classes, not continuous values (scikit-learn's rule and message)."""
    from sklearn.utils.multiclass import type_of_target

    kind = type_of_target(y, input_name=name)
    if kind not in ("binary", "multiclass"):
        raise ConfigurationError(
            f"Unknown label type: {kind}. {name} as a 1-D vector holds one class per row; continuous "
            "values are not classes"
        )


def _holds_ids(rows: list[list[Any]]) -> bool:
    """Whether label lists hold ids (every item a number), as ever; names otherwise."""
    return all(_is_number(item) for item in _set_items(rows))


def fit_targets(Y: Any, Y_val: Any = None, label_names: Any = None) -> FitTargets:
    """Turn ``fit``'s ``Y`` (and ``Y_val``) into indicators and the label names they carry.

    ``label_names`` (one per label, distinct) fixes ``classes_``: an indicator's columns are those labels, and
    label lists or a class vector then hold names from it (a name not in it is a ``ValueError``). Without it,
    names found in label lists or a class vector (of ``Y`` and ``Y_val`` together) are sorted into
    ``classes_``; label lists of numbers are label ids, as before names existed.
    """
    kind, Y = target_kind(Y, "Y")
    val_kind, Y_val = target_kind(Y_val, "Y_val") if Y_val is not None else (None, None)
    if kind == SETS:
        _hashable_rows(Y, "Y")
    if val_kind == SETS:
        _hashable_rows(Y_val, "Y_val")
    multilabel = kind != VECTOR
    if label_names is not None:
        classes = _checked_names(label_names)
        if kind == INDICATOR:
            M = as_label_matrix(Y, name="Y")
            if M.shape[1] != len(classes):
                raise ConfigurationError(f"label_names has {len(classes)} names but Y has {M.shape[1]} label columns")
        else:
            M = encode_targets(Y, classes, len(classes), "Y", strict=True, kind=kind)
        M_val = None
        if Y_val is not None:
            M_val = encode_targets(Y_val, classes, len(classes), "Y_val", strict=True, kind=val_kind)
        return FitTargets(M, M_val, classes, multilabel)
    if kind == INDICATOR or (kind == SETS and _holds_ids(Y)):
        # label ids (columns), the meaning Y had before names: classes_ is 0..C-1; Y_val is encoded by the caller
        return FitTargets(as_label_matrix(Y, name="Y"), None, None, multilabel)
    if kind == VECTOR:
        _check_classification_vector(Y, "Y")
        found = [Y.tolist()]
    else:
        found = [list(_set_items(Y))]
    if val_kind in (VECTOR, SETS):  # labels seen only in validation still get an output
        found.append(Y_val.tolist() if val_kind == VECTOR else list(_set_items(Y_val)))
    elif val_kind == INDICATOR:
        raise ConfigurationError(
            "Y holds label names but Y_val is an indicator matrix, whose columns name no label; give "
            "Y_val as label lists or classes too"
        )
    classes = _sorted_names((v for part in found for v in part), "Y")
    encoded = encode_targets(Y, classes, len(classes), "Y", strict=True, kind=kind)
    encoded_val = (
        None if Y_val is None else encode_targets(Y_val, classes, len(classes), "Y_val", strict=True, kind=val_kind)
    )
    return FitTargets(encoded, encoded_val, classes, multilabel)


def encode_targets(
    Y: Any,
    classes: Sequence[Any] | None,
    n_labels: int,
    name: str = "Y",
    *,
    strict: bool,
    kind: str | None = None,
) -> sp.csr_matrix:
    """``Y`` (any kind) as a CSR indicator over the model's labels.

    ``classes=None``: the model knows label ids only; label lists hold ids and a class vector is refused.
    With names, an indicator's columns are the labels; label lists and a class vector hold names, and a name
    the model does not know is an error (``strict``) or left out (it can never be predicted, so for a metric
    it is a miss either way).
    """
    if kind is None:
        kind, Y = target_kind(Y, name)
    if kind == INDICATOR:
        return as_label_matrix(Y, name=name, n_labels=n_labels)
    if classes is None:
        if kind == VECTOR:
            raise ConfigurationError(
                f"{name} is a 1-D vector of classes, but the model was fitted on label ids without "
                "names; give label lists or an indicator matrix"
            )
        return as_label_matrix(Y, name=name, n_labels=n_labels)
    index = {v.item() if isinstance(v, np.generic) else v: j for j, v in enumerate(classes)}
    rows = [[v] for v in Y.tolist()] if kind == VECTOR else Y
    return _from_sets(rows, index, n_labels, name, strict)


def saveable_names(classes: Sequence[Any]) -> list[Any]:
    """``classes`` as JSON values (strings, integers, finite floats, booleans), for ``config.json``.

    Raises
    ------
    ValueError
        Naming the first name of another type (a tuple, None, ...): such a model cannot be saved.
    """
    out = []
    for i, v in enumerate(classes):
        v = v.item() if isinstance(v, np.generic) else v
        if not isinstance(v, (str, int, float)) or (isinstance(v, float) and not math.isfinite(v)):
            raise ConfigurationError(
                f"classes_[{i}] is {v!r} ({type(v).__name__}); a saved model's label names must be "
                "strings, integers, finite floats or booleans"
            )
        out.append(v)
    return out
