"""Where a CLI run's data come from, recorded in ``run.json`` so that ``evaluate`` can find them again.

A data source is a small JSON-able dict, one of ``{"dataset": NAME, "split": N|None, "data_dir": DIR|None}``
(a registered data set, via :func:`sparsexc.datasets.load`), ``{"train": FILE, "test": FILE}`` (files in
any format :func:`sparsexc.io.read_any` reads; absolute paths) or ``{"bundled": "bibtex"}`` (the copy
shipped inside the package, via :func:`sparsexc.datasets.load_bundled`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

__all__ = ["data_source", "describe_source", "load_source", "read_features"]


def describe_source(source: dict[str, Any]) -> str:
    """A few words naming a data source, for log lines."""
    if "bundled" in source:
        return f"{source['bundled']} (bundled copy)"
    if "dataset" in source:
        split = "" if source.get("split") is None else f" split {source['split']}"
        return f"{source['dataset']}{split}"
    return f"{source['train']} / {source['test']}"


def data_source(
    dataset: str | None,
    split: int | None,
    data_dir: str | None,
    train: str | None,
    test: str | None,
) -> dict[str, Any]:
    """Check that exactly one way of giving data was used and return it as a data-source dict."""
    if dataset is not None:
        if train is not None or test is not None:
            raise click.UsageError("give either --dataset or --train/--test, not both")
        return {
            "dataset": dataset,
            "split": split,
            "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
        }
    if split is not None or data_dir is not None:
        raise click.UsageError("--split and --data-dir go with --dataset")
    if train is None or test is None:
        raise click.UsageError("give the data: --dataset NAME, or both --train FILE and --test FILE")
    return {"train": str(Path(train).resolve()), "test": str(Path(test).resolve())}


def load_source(source: dict[str, Any], *, need_train: bool = True) -> tuple[Any, Any]:
    """``(train, test)`` as ``MultiLabelData`` for a data-source dict; ``train`` is None if not needed.

    Raises KeyError (unknown data set), OSError (missing file) or ValueError (bad file) with clear messages.
    """
    if "bundled" in source:
        from sparsexc.datasets import load_bundled

        train, test = load_bundled()
        return (train if need_train else None), test
    if "dataset" in source:
        from sparsexc.datasets import load

        kwargs = {k: source[k] for k in ("split", "data_dir") if source.get(k) is not None}
        train, test = load(source["dataset"], **kwargs)
        return (train if need_train else None), test
    from sparsexc.io import read_any

    train = read_any(source["train"]) if need_train else None
    return train, read_any(source["test"])


def read_features(path: str | Path):
    """The feature matrix (CSR) of a file in any readable format, with or without labels."""
    from sparsexc.io import read_any

    data = read_any(path)
    return data.X
