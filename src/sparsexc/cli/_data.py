"""Where a CLI run's data come from, recorded in ``run.json`` so that ``evaluate`` can find them again.

A data source is a small JSON-able dict, one of ``{"dataset": NAME, "split": N|None, "data_dir": DIR,
"data_dir_from": WORDS}`` (a registered data set, via :func:`sparsexc.datasets.load`; ``DIR`` is the data
folder as resolved when the run started -- ``--data-dir``, else ``$SPARSEXC_DATA``, else the default -- so
that ``evaluate`` finds the files again in a shell where the variable is not set; ``WORDS`` say which of the
three it was, for messages), ``{"train": FILE, "test": FILE}`` (files in
any format :func:`sparsexc.io.read_all` reads, read together; absolute paths; plus ``"label_xml": FILE``
for Mulan ARFF files given ``--label-xml``) or ``{"bundled": "bibtex"}`` (the copy shipped inside the
package, via :func:`sparsexc.datasets.load_bundled`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

__all__ = [
    "LABEL_XML_FLAG",
    "WidthMismatch",
    "check_widths",
    "data_source",
    "describe_source",
    "describe_test",
    "load_source",
    "read_file",
]  # fmt: skip

LABEL_XML_FLAG = "--label-xml"
# A training file may declare more feature/label columns than its rows (and the test file's) use, e.g. labels
# that occur only in other splits, or Mulan's genbase (1,185 feature columns, 111 ever non-zero); the model
# is as wide as declared, so the unused columns are bounded: at most max(used, UNUSED_WIDTH_SLACK) of them
# (10,000 unused outputs of a 512-wide layer: 20 MB of weights), unless ALLOW_UNUSED_WIDTH_ENV is set to 1.
UNUSED_WIDTH_SLACK = 10_000
ALLOW_UNUSED_WIDTH_ENV = "SPARSEXC_ALLOW_UNUSED_WIDTH"


class WidthMismatch(click.ClickException):
    """Inputs that do not fit together (a test file and its training file or model): exit code 2, as for a
    usage error, since the fix is to give the right file."""

    exit_code = 2


def check_widths(
    name: str,
    n_features: int,
    n_labels: int | None,
    reference: str,
    ref_features: int,
    ref_labels: int | None,
) -> None:
    """Raise :class:`WidthMismatch` unless ``name``'s feature and label counts equal ``reference``'s.

    ``n_labels=None`` compares the features only (a file of rows to score). The message names both sides
    and both counts, e.g. ``test.txt has 3 features and 3 labels, but train.txt has 72 features and 6 labels``.
    """
    if n_features == ref_features and (n_labels is None or n_labels == ref_labels):
        return
    if n_labels is None:
        have, want = f"{n_features} features", f"{ref_features}"
        raise WidthMismatch(f"{name} has {have}; {reference} expects {want}")
    raise WidthMismatch(
        f"{name} has {n_features} features and {n_labels} labels, but {reference} has {ref_features} features "
        f"and {ref_labels} labels"
    )


def describe_source(source: dict[str, Any]) -> str:
    """A few words naming a data source, for log lines."""
    if "bundled" in source:
        return f"{source['bundled']} (bundled copy)"
    if "dataset" in source:
        split = "" if source.get("split") is None else f" split {source['split']}"
        return f"{source['dataset']}{split}"
    return f"{source['train']} / {source['test']}"


def describe_test(source: dict[str, Any]) -> str:
    """The test set of a data source, in words (for messages)."""
    return source["test"] if "test" in source else f"the test set of {describe_source(source)}"


def data_source(
    dataset: str | None,
    split: int | None,
    data_dir: str | None,
    train: str | None,
    test: str | None,
    label_xml: str | None = None,
) -> dict[str, Any]:
    """Check that exactly one way of giving data was used and return it as a data-source dict."""
    if dataset is not None:
        if train is not None or test is not None:
            raise click.UsageError("give either --dataset or --train/--test, not both")
        if label_xml is not None:
            raise click.UsageError(f"{LABEL_XML_FLAG} goes with --train/--test ARFF files, not --dataset")
        from sparsexc.datasets import resolve_data_dir

        root, origin = resolve_data_dir(data_dir)
        return {"dataset": dataset, "split": split, "data_dir": str(root.resolve()), "data_dir_from": origin}
    if split is not None or data_dir is not None:
        raise click.UsageError("--split and --data-dir go with --dataset")
    if train is None or test is None:
        raise click.UsageError("give the data: --dataset NAME, or both --train FILE and --test FILE")
    source = {"train": str(Path(train).resolve()), "test": str(Path(test).resolve())}
    if label_xml is not None:
        source["label_xml"] = str(Path(label_xml).resolve())
    return source


def load_source(source: dict[str, Any], *, need_train: bool = True, recorded_in: str | None = None) -> tuple[Any, Any]:
    """``(train, test)`` as ``MultiLabelData`` for a data-source dict; ``train`` is None if not needed.

    ``recorded_in``: the run.json the source was read from, named as the data folder's origin in messages.
    Raises KeyError (unknown data set), OSError (missing file), ValueError (bad file) with clear messages, or
    :class:`WidthMismatch` when a test file's feature or label count differs from its training file's.
    """
    if "bundled" in source:
        from sparsexc.datasets import load_bundled

        train, test = load_bundled()
        return (train if need_train else None), test
    if "dataset" in source:
        from sparsexc.datasets import load
        from sparsexc.datasets._paths import data_dir_from

        kwargs = {k: source[k] for k in ("split", "data_dir") if source.get(k) is not None}
        origin = source.get("data_dir_from") if isinstance(source.get("data_dir_from"), str) else None
        if recorded_in is not None:  # evaluate: the folder is the one the run was trained on
            origin = f"{recorded_in}" + (f"; at training time from {origin}" if origin else "")
        with data_dir_from(origin):  # the message names --data-dir / SPARSEXC_DATA / the default, not "data_dir="
            train, test = load(source["dataset"], **kwargs)
        return (train if need_train else None), test
    from sparsexc.io import read_all

    # read together: headerless svmlight files then share their widths and the 0/1-based feature ids
    train, test = read_all(
        [source["train"], source["test"]], label_xml=source.get("label_xml"), label_xml_option=LABEL_XML_FLAG
    )
    check_widths(source["test"], test.n_features, test.n_labels,
                 source["train"], train.n_features, train.n_labels)  # fmt: skip
    if need_train:
        check_unused_width(source["train"], source["test"], train, test)
    return (train if need_train else None), test


def check_unused_width(train_name: str, test_name: str, train: Any, test: Any) -> None:
    """Refuse a declared feature or label count far beyond the ids the two files use (see UNUSED_WIDTH_SLACK).

    A 23-byte file declaring 250,000 labels would otherwise build (and save) a model of 250,000 outputs.
    Raises :class:`sparsexc.io.DataFormatError` naming the training file and the count.
    """
    import numpy as np

    from sparsexc.io import DataFormatError

    if os.environ.get(ALLOW_UNUSED_WIDTH_ENV) == "1":
        return
    for field, width, a, b in (("n_features", train.n_features, train.X, test.X),
                               ("n_labels", train.n_labels, train.Y, test.Y)):  # fmt: skip
        used = int(np.unique(np.concatenate([a.indices, b.indices])).size)
        if width - used > max(used, UNUSED_WIDTH_SLACK):
            raise DataFormatError(
                train_name,
                f"at most max({used}, {UNUSED_WIDTH_SLACK}) declared {field[2:]} that no row of it or of "
                f"{test_name} uses (set {ALLOW_UNUSED_WIDTH_ENV}=1 to build a model this wide anyway)",
                field=field,
                found=f"{width} declared, {used} used",
            )


def read_file(
    path: str | Path,
    model: Any,
    name: str,
    *,
    label_xml: str | None = None,
    labels: bool = True,
    zero_based: bool | str = "auto",
):
    """A file of rows for a fitted model (``MultiLabelData``), checked against the model's widths.

    A headerless svmlight file gets the model's widths (and ``zero_based``, the training files' choice when
    known); any other format must declare them. ``labels=False``: only the features are compared (rows to
    score).
    """
    from sparsexc.io import read_any

    n_features, n_labels = int(model.n_features_in_), int(model.n_labels_)
    try:
        data = read_any(
            path,
            label_xml=label_xml,
            n_features=n_features,
            n_labels=n_labels if labels else None,
            zero_based=zero_based,
            label_xml_option=LABEL_XML_FLAG,
        )
    except ValueError as exc:
        from sparsexc.io import DataFormatError

        if isinstance(exc, DataFormatError) and exc.field in ("n_features", "n_labels"):
            raise WidthMismatch(f"{exc}; the model has {n_features} features and {n_labels} labels") from None
        raise
    check_widths(name, data.n_features, data.n_labels if labels else None, "the model", n_features,
                 n_labels if labels else None)  # fmt: skip
    if zero_based == "auto" and data.meta.get("format") == "svmlight" and data.meta.get("zero_based") is False:
        # a guess (no row uses feature 0), and the model's files do not say: a misread shifts every feature
        click.echo(
            f"sparsexc: note: {name} has no header, so it is read as svmlight/LibSVM; no row uses feature "
            "0, so its feature ids are taken as 1-based (id 1 = the model's feature 0). For 0-based ids, "
            "give it an XC header line 'n_rows n_features n_labels'",
            err=True,
        )
    return data
