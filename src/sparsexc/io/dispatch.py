"""``read_any`` / ``read_all``: one entry point that picks the reader from the file's name and content."""

from __future__ import annotations

import os
from collections.abc import Sequence

import scipy.sparse as sp

from sparsexc.errors import ConfigurationError

from ._files import read_blocks
from .arff import read_arff
from .data import MultiLabelData
from .mat import read_mat
from .svmlight import read_svmlight
from .xc import read_xc

__all__ = ["read_all", "read_any"]

PathLike = str | os.PathLike[str]


def _head(path: str, n: int = 4096) -> bytes:
    for block in read_blocks(path, n):
        return block
    return b""


def _first_line(head: bytes) -> bytes:
    """The first line that is not blank and not an ARFF ``%`` comment."""
    for line in head.splitlines():
        s = line.strip()
        if s and not s.startswith(b"%"):
            return s
    return b""


def _format(path: str) -> str:
    """``"mat"``, ``"arff"``, ``"svmlight"`` (headerless: the first line holds ``:`` or ``,`` or is a ``#``
    comment, which an XC header ``n_rows n_features n_labels`` never does) or ``"xc"``."""
    lower = path.lower()
    head = _head(path)
    if lower.endswith(".mat") or head.startswith(b"MATLAB"):
        return "mat"
    first = _first_line(head)
    if lower.endswith((".arff", ".arff.gz")) or first.lower().startswith(b"@relation"):
        return "arff"
    if first.startswith(b"#") or b":" in first or b"," in first:
        return "svmlight"
    return "xc"


def _mat(path: str) -> MultiLabelData:
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


def read_all(
    paths: Sequence[PathLike],
    *,
    label_xml: PathLike | None = None,
    n_features: int | None = None,
    n_labels: int | None = None,
    zero_based: bool | str = "auto",
    label_xml_option: str = "label_xml",
) -> list[MultiLabelData]:
    """Read several multi-label files (e.g. a training and a test file), each as :func:`read_any` does.

    Headerless svmlight files are read together (:func:`read_svmlight`), so that they share their widths
    and the 0/1-based choice for feature ids; every other format states its widths in the file. The keyword
    arguments are those of :func:`read_any`.
    """
    files = [os.fspath(p) for p in paths]
    formats = [_format(p) for p in files]
    if label_xml is not None and any(f != "arff" for f in formats):
        bad = files[next(i for i, f in enumerate(formats) if f != "arff")]
        raise ConfigurationError(f"{label_xml_option} applies to ARFF files only, and {bad} is not one")
    svm = [p for p, f in zip(files, formats) if f == "svmlight"]
    svm_parts = read_svmlight(svm, n_features=n_features, n_labels=n_labels, zero_based=zero_based) if svm else []
    svm_data = dict(zip(svm, svm_parts))
    out = []
    for path, fmt in zip(files, formats):
        if fmt == "svmlight":
            out.append(svm_data[path])
        elif fmt == "mat":
            out.append(_mat(path))
        elif fmt == "arff":
            out.append(read_arff(path, label_xml, label_xml_option=label_xml_option))
        else:
            X, Y = read_xc(path)
            out.append(MultiLabelData(X, Y, meta={"source": path, "format": "xc"}))
    return out


def read_any(
    path: PathLike,
    *,
    label_xml: PathLike | None = None,
    n_features: int | None = None,
    n_labels: int | None = None,
    zero_based: bool | str = "auto",
    label_xml_option: str = "label_xml",
) -> MultiLabelData:
    """Read a multi-label file in any supported format.

    Dispatch: ``.mat`` (or content starting with ``MATLAB``) -> :func:`read_mat`; ``.arff``/``.arff.gz`` or a
    first non-comment line starting with ``@relation`` -> :func:`read_arff` (labels: ``label_xml``, else the
    ``<stem>.xml`` beside the file, else an unambiguous MEKA ``-C n``, else an error); a first line holding
    ``:`` or ``,`` (or a ``#`` comment) -> :func:`read_svmlight` (headerless svmlight/LibSVM multi-label);
    otherwise the XC text format -> :func:`read_xc`. A ``.mat`` with train and test parts is returned as one
    data set, train rows first, then test rows (``meta["parts"]`` gives each part's row range).

    Parameters
    ----------
    n_features, n_labels : int, optional
        Widths for a format whose files do not state them (headerless svmlight), e.g. a model's, so that a
        file to score gets the model's width; the other formats give the widths their files declare.
    zero_based : {"auto", True, False}
        Whether a headerless svmlight file's feature ids start at 0 (see :func:`read_svmlight`); a file read
        alone with "auto" that never uses feature 0 is taken as 1-based, so give the training files' choice
        (their ``meta["zero_based"]``) when reading a file to score.
    label_xml_option : str
        How the caller names the ``label_xml`` input in error messages (the CLI passes ``--label-xml``).
    """
    return read_all(
        [path],
        label_xml=label_xml,
        n_features=n_features,
        n_labels=n_labels,
        zero_based=zero_based,
        label_xml_option=label_xml_option,
    )[0]
