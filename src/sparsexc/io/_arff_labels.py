"""Which ARFF attributes are the labels: the Mulan XML label file, else an unambiguous MEKA ``-C n``.

The rule (in this order; the first that applies decides):

1. ``label_xml`` given (``--label-xml FILE``): its ``<label name="..."/>`` attributes are the labels.
2. Otherwise a Mulan label file beside the ARFF file (:func:`sibling_label_xml`), e.g. ``medical.xml`` for
   ``medical-train.arff``, is used. The XML always wins over a ``-C n`` in the relation name: Mulan files
   often carry a stale MEKA relation name (``medical``'s says ``-C 45`` twice, but its Weka ``Remove``
   filters moved the 45 labels to the end).
3. Otherwise MEKA's ``-C n`` in the relation name: the first ``n`` attributes (``n > 0``) or the last ``-n``
   (``n < 0``), but only when it is unambiguous: exactly one ``-C n`` option, ``0 < |n| <`` the number of
   attributes, and no Weka attribute filter (``weka.filters.*.attribute.*``: Remove, Reorder, ...) named in
   the relation, since such a filter may have moved or removed attributes after ``-C`` was written.
4. Otherwise: :class:`DataFormatError` saying how to decide (give the XML file, or put it beside the file).
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence

from ._files import read_bytes
from .errors import DataFormatError

__all__ = ["decide_label_columns", "sibling_label_xml"]

_SPLIT_SUFFIX = re.compile(r"[-_.](?:train|test|sparse|dense)$", re.IGNORECASE)
_MEKA_C = re.compile(r"(?:^|[\s:'\"])-C\s+(-?\d+)(?![\w.])")  # Weka appends filters: '-C 28-weka.filters...'
_ATTRIBUTE_FILTER = re.compile(r"weka\.filters\.(?:un)?supervised\.attribute\.", re.IGNORECASE)


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


def _xml_labels(xml_path: str) -> list[str]:
    try:
        root = ET.fromstring(read_bytes(xml_path))
    except ET.ParseError as exc:
        raise DataFormatError(xml_path, "a well-formed Mulan label XML file", found=str(exc)) from None
    names = [el.get("name") for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "label"]
    if not names or any(n is None for n in names):
        raise DataFormatError(
            xml_path,
            '<label name="..."> elements',
            field="labels",
            found="none" if not names else "a label without name",
        )
    return [n for n in names if n is not None]  # all of them (checked above); the filter tells the type checker


def _xml_label_columns(xml_path: str, arff_path: str, find: Callable[[str], int | None]) -> list[int]:
    cols = []
    for name in _xml_labels(xml_path):
        col = find(name)
        if col is None:
            raise DataFormatError(
                xml_path, f"label names that are attributes of {os.path.basename(arff_path)}", field="label", found=name
            )
        cols.append(col)
    if len(set(cols)) != len(cols):
        raise DataFormatError(xml_path, "each label listed once", field="label", found="a repeated label")
    return sorted(cols)  # attribute order, as Mulan


def _how_to_decide(path: str, label_xml_option: str) -> str:
    stem = re.sub(r"\.arff(?:\.gz)?$", "", os.path.basename(path), flags=re.IGNORECASE)
    stem = _SPLIT_SUFFIX.sub("", _SPLIT_SUFFIX.sub("", stem))
    return f"pass {label_xml_option} PATH (the Mulan label XML) or put {stem}.xml beside the file"


def _meka_label_columns(
    relation: str | None, n_attrs: int, path: str, line: int | None, label_xml_option: str
) -> list[int]:
    found = _MEKA_C.findall(relation or "")
    how = _how_to_decide(path, label_xml_option)
    if not found:
        raise DataFormatError(
            path,
            f"the labels: no Mulan label XML was found and the relation name has no MEKA '-C n'; {how}",
            line=line,
            field="@relation",
            found=relation or "(none)",
        )
    if len(found) > 1 or _ATTRIBUTE_FILTER.search(relation or ""):
        why = (
            f"{len(found)} '-C' options"
            if len(found) > 1
            else "a Weka attribute filter that may have moved the labels after '-C' was set"
        )
        raise DataFormatError(
            path,
            f"an unambiguous label count: the relation name has {why}, so the labels cannot be told from it; {how}",
            line=line,
            field="@relation",
            found=relation,
        )
    n = int(found[0]) if len(found[0]) <= 12 else n_attrs  # longer is out of range (and int() refuses 4,301+ digits)
    if n == 0 or abs(n) >= n_attrs:
        raise DataFormatError(
            path,
            f"'-C n' with 0 < |n| < {n_attrs} (the number of attributes); {how}",
            line=line,
            field="@relation",
            found=relation,
        )
    return list(range(n)) if n > 0 else list(range(n_attrs + n, n_attrs))


def decide_label_columns(
    path: str,
    relation: str | None,
    relation_line: int | None,
    names: Sequence[str],
    find: Callable[[str], int | None],
    label_xml: str | os.PathLike[str] | None,
    label_xml_option: str,
) -> tuple[list[int], str, str | None]:
    """The label attributes of an ARFF file, by the rule in this module's docstring.

    Parameters
    ----------
    path : str
        The ARFF file (named in errors; its folder is searched for the label XML).
    relation, relation_line : str or None, int or None
        The relation name and its line.
    names : sequence of str
        The attribute names, in order.
    find : callable
        The attribute index of a label name from the XML (None if there is none).
    label_xml : path-like, optional
        The label XML the caller gave.
    label_xml_option : str
        How the caller names ``label_xml`` in errors (``label_xml``, ``--label-xml``).

    Returns
    -------
    columns : list of int
        Label attribute indices, ascending.
    format : str
        ``"mulan"`` (decided by an XML file) or ``"meka"`` (by ``-C n``).
    xml : str or None
        The XML file used.
    """
    if label_xml is None:
        label_xml = sibling_label_xml(path)
    if label_xml is not None:
        label_xml = os.fspath(label_xml)
        return _xml_label_columns(label_xml, path, find), "mulan", label_xml
    return _meka_label_columns(relation, len(names), path, relation_line, label_xml_option), "meka", None
