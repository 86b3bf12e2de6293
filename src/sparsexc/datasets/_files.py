"""Builders for the data sets published as files (XC text, Mulan/MEKA ARFF, MATLAB .mat).

They only arrange what ``sparsexc.io`` reads into train/test parts; every parser lives in ``sparsexc.io``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sparsexc.errors import ConfigurationError, DataFormatError
from sparsexc.io.data import MultiLabelData

from .splits import Splits, seeded_split

__all__ = ["build_arff_seeded", "build_mat", "build_mulan", "build_xc", "build_xc_published"]


def _part(data: MultiLabelData, name: str, part: str, rows: np.ndarray | None = None) -> MultiLabelData:
    picked = data if rows is None else data.subset(rows)
    meta = dict(picked.meta)
    meta.update({"name": name, "part": part})
    return MultiLabelData(picked.X, picked.Y, picked.feature_names, picked.label_names, meta)


def _seeded(name: str, data: MultiLabelData, *, seed: int, test_fraction: float, info: dict) -> Splits:
    train_rows, test_rows = seeded_split(data.n_samples, test_fraction, seed)
    info = dict(info)
    info["split"] = {
        "kind": "seeded",
        "seed": seed,
        "test_fraction": test_fraction,
        "rule": "test = first round(test_fraction * n) of numpy.random.default_rng(seed).permutation(n)",
    }
    return Splits(name, _part(data, name, "train", train_rows), _part(data, name, "test", test_rows), info)


def build_xc(
    name: str, data_path: Path, train_split_path: Path, test_split_path: Path, split: int, info: dict
) -> Splits:
    """One of the XC repository's random splits: column ``split - 1`` of the split files (1-based rows)."""
    from sparsexc.io import read_xc, read_xc_splits

    X, Y = read_xc(data_path)
    data = MultiLabelData(X, Y)
    parts = {}
    for part, path in (("train", train_split_path), ("test", test_split_path)):
        columns = read_xc_splits(path)
        if not 1 <= split <= columns.shape[1]:
            raise ConfigurationError(f"{path} holds splits 1..{columns.shape[1]}; split={split} asked for")
        rows = columns[:, split - 1]
        if rows.size and (rows.min() < 0 or rows.max() >= data.n_samples):
            raise DataFormatError(path, f"rows within 1..{data.n_samples} of {data_path}", field=f"split {split}")
        parts[part] = _part(data, name, part, rows)
    info = dict(info)
    info["split"] = {"kind": "xc", "split": split, "files": [os.fspath(train_split_path), os.fspath(test_split_path)]}
    return Splits(name, parts["train"], parts["test"], info)


def build_xc_published(name: str, train_path: Path, test_path: Path, info: dict) -> Splits:
    """The XC repository's published train and test files (the large sets' legacy zips): each has its own
    ``n d L`` header; both parts get the wider of the two widths."""
    from sparsexc.io import read_xc

    X_train, Y_train = read_xc(train_path)
    X_test, Y_test = read_xc(test_path)
    d = max(X_train.shape[1], X_test.shape[1])
    n_labels = max(Y_train.shape[1], Y_test.shape[1])
    parts = []
    for X, Y in ((X_train, Y_train), (X_test, Y_test)):
        X.resize((X.shape[0], d))  # extra empty columns only: ids are checked against each file's header
        Y.resize((Y.shape[0], n_labels))
        parts.append(MultiLabelData(X, Y))
    info = dict(info)
    info["split"] = {
        "kind": "published",
        "by": "XC train/test files",
        "files": [os.fspath(train_path), os.fspath(test_path)],
    }
    return Splits(name, _part(parts[0], name, "train"), _part(parts[1], name, "test"), info)


def _same_space(name: str, train: MultiLabelData, test: MultiLabelData, train_path: Path, test_path: Path) -> None:
    for what in ("feature_names", "label_names"):
        if getattr(train, what) != getattr(test, what):
            raise DataFormatError(test_path, f"the same {what.replace('_', ' ')} as {train_path}", field=name)


def build_mulan(name: str, train_path: Path, test_path: Path, xml_path: Path, info: dict) -> Splits:
    """Mulan's published train/test ARFF pair with its XML label header (row identifiers such as genbase's
    ``protein`` are dropped by ``read_arff`` itself, as on every other path)."""
    from sparsexc.io import read_arff

    train = read_arff(train_path, xml_path)
    test = read_arff(test_path, xml_path)
    _same_space(name, train, test, train_path, test_path)
    info = dict(info)
    info["split"] = {"kind": "published", "by": "Mulan train/test files"}
    return Splits(name, _part(train, name, "train"), _part(test, name, "test"), info)


def build_arff_seeded(
    name: str, path: Path, xml_path: Path | None, *, seed: int, test_fraction: float, info: dict
) -> Splits:
    """A single ARFF file (Mulan with XML, or MEKA without) split by ``seeded_split``."""
    from sparsexc.io import read_arff

    data = read_arff(path, xml_path)
    return _seeded(name, data, seed=seed, test_fraction=test_fraction, info=info)


def build_mat(name: str, path: Path, *, seed: int, test_fraction: float | None, info: dict) -> Splits:
    """A .mat file: its stored train/test parts, or a seeded split of ``all``."""
    from sparsexc.io import read_mat

    parts = read_mat(path)
    if "train" in parts and "test" in parts:
        train, test = parts["train"], parts["test"]
        _same_space(name, train, test, path, path)
        info = dict(info)
        info["split"] = {"kind": "published", "by": "train_data/test_data stored in the .mat file"}
        return Splits(name, _part(train, name, "train"), _part(test, name, "test"), info)
    if "all" not in parts:
        raise DataFormatError(path, "parts 'all' or 'train'/'test'", found=str(sorted(parts)))
    if test_fraction is None:
        raise DataFormatError(path, f"a stored train/test split ({name} is registered with one)", found="'all' only")
    return _seeded(name, parts["all"], seed=seed, test_fraction=test_fraction, info=info)
