"""load(): every named set with its documented shapes, splits, data directory rules and the cache."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
from _shared_data import require_dataset, requires_dataset

from sparsexc.datasets import (
    REGISTRY,
    UnknownDatasetError,
    list_datasets,
    load,
    load_bundled,
    seeded_split,
)
from sparsexc.io import read_arff, read_xc, read_xc_splits

BUILT = {"debtags", "debian-deps", "wordnet-hypernyms"}  # shapes checked in test_datasets_{debian,wordnet}
# the large XC repository sets: not in ../shared (test_datasets_download.py loads their layout from a mirror)
LARGE_XC = {"eurlex-4k", "wiki10-31k", "amazoncat-13k", "wiki-500k", "amazon-670k"}

# name: (train rows, test rows, features, labels, label cardinality as in SOURCE.md)
# The cardinality is (train, test) for published splits, the whole file's for seeded ones.
EXPECTED = {
    "bibtex": (4880, 2515, 1836, 159, 2.402),
    "scene": (1211, 1196, 294, 6, (1.062, 1.086)),
    "emotions": (391, 202, 72, 6, (1.813, 1.975)),
    "birds": (322, 323, 270, 19, (1.059, 0.969)),  # 260 attributes; location {12 values} -> 11 indicators
    "cal500": (351, 151, 68, 174, 26.044),
    "yeast": (1500, 917, 103, 14, (4.228, 4.252)),
    "enron": (1123, 579, 1001, 53, (3.386, 3.363)),
    "medical": (333, 645, 1449, 45, (1.255, 1.24)),
    "genbase": (463, 199, 1185, 27, (1.261, 1.231)),  # 1186 attributes less the 'protein' id
    "corel5k": (4500, 500, 499, 374, (3.522, 3.526)),
    "tmc2007-500": (21519, 7077, 500, 22, (2.226, 1.952)),
    "flags": (129, 65, 39, 7, (3.419, 3.338)),  # 19 attributes; 4 nominal ones (6, 4, 10, 8 values) -> 24 columns
    "delicious": (12920, 3185, 500, 983, (19.047, 18.91)),
    "mulan-bibtex": (4880, 2515, 1836, 159, (2.38, 2.444)),
    "imdb": (84643, 36276, 1001, 28, 2.0),
    "rcv1-subset1": (4200, 1800, 944, 101, 2.88),
    "rcv1-subset2": (4200, 1800, 944, 101, 2.634),
    "rcv1-subset3": (4200, 1800, 944, 101, 2.614),
    "rcv1-subset4": (4200, 1800, 944, 101, 2.267),
    "rcv1-subset5": (4200, 1800, 944, 101, 2.625),
    "yahoo-arts": (2000, 3000, 462, 26, 1.636),
    "yahoo-recreation": (2000, 3000, 606, 22, (1.414, 1.429)),
    "yahoo-science": (2000, 3000, 743, 40, 1.451),
    "slashdot": (2647, 1135, 1079, 22, 1.177),
    "languagelog": (1021, 438, 1004, 75, 1.18),
    "corel16k": (9636, 4130, 500, 153, 2.859),
}


def _same(a, b):
    return a.shape == b.shape and (a != b).nnz == 0


def test_expected_table_covers_the_registry():
    assert set(EXPECTED) | BUILT | LARGE_XC == set(list_datasets())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_named_set_loads_with_documented_shapes(name, loaded):
    n_train, n_test, n_features, n_labels, cardinality = EXPECTED[name]
    data = loaded(name)
    assert data.name == name
    assert (data.train.n_samples, data.test.n_samples) == (n_train, n_test)
    assert data.train.X.shape[1] == data.test.X.shape[1] == n_features
    assert data.train.Y.shape[1] == data.test.Y.shape[1] == n_labels
    assert data.train.feature_names == data.test.feature_names
    assert data.train.label_names == data.test.label_names
    for part in (data.train, data.test):
        assert part.X.dtype == np.float32 and part.Y.dtype == np.float32
        assert set(np.unique(part.Y.data)) <= {1.0}
    if isinstance(cardinality, tuple):
        assert data.train.Y.nnz / n_train == pytest.approx(cardinality[0], abs=6e-4)
        assert data.test.Y.nnz / n_test == pytest.approx(cardinality[1], abs=6e-4)
    else:
        assert (data.train.Y.nnz + data.test.Y.nnz) / (n_train + n_test) == pytest.approx(cardinality, abs=6e-4)
    assert data.info["split"]["kind"] == REGISTRY[name].split_rule


def test_genbase_drops_the_protein_id(loaded):
    assert "protein" not in loaded("genbase").train.feature_names


def test_bibtex_split_k_is_column_k_of_the_split_files(shared_datasets, loaded):
    folder = shared_datasets / "Bibtex"
    X, Y = read_xc(folder / "Bibtex_data.txt.gz")
    train_rows = read_xc_splits(folder / "bibtex_trSplit.txt")[:, 2]
    test_rows = read_xc_splits(folder / "bibtex_tstSplit.txt")[:, 2]
    data = loaded("bibtex", 3)
    assert _same(data.train.X, X[train_rows]) and _same(data.train.Y, Y[train_rows])
    assert _same(data.test.X, X[test_rows]) and _same(data.test.Y, Y[test_rows])
    assert not _same(data.train.X, loaded("bibtex").train.X)
    assert data.info["split"] == {
        "kind": "xc",
        "split": 3,
        "files": [str(folder / "bibtex_trSplit.txt"), str(folder / "bibtex_tstSplit.txt")],
    }


def test_seeded_split_is_the_documented_permutation(shared_datasets, loaded):
    folder = shared_datasets / "mulan-cal500"
    whole = read_arff(folder / "cal500.arff", folder / "cal500.xml")
    train_rows, test_rows = seeded_split(502, 0.3, 1)
    perm = np.random.default_rng(1).permutation(502)
    assert set(test_rows.tolist()) == set(perm[:151].tolist())
    data = loaded("cal500")
    assert _same(data.train.X, whole.X[train_rows]) and _same(data.test.Y, whole.Y[test_rows])
    assert data.info["split"]["seed"] == 1 and data.info["split"]["test_fraction"] == 0.3


def test_seeded_split_properties():
    for n, fraction, seed in ((10, 0.3, 1), (502, 0.3, 2), (7, 0.5, 3)):
        train, test = seeded_split(n, fraction, seed)
        assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
        assert sorted(train.tolist() + test.tolist()) == list(range(n))
        assert test.size == round(fraction * n)
        again = seeded_split(n, fraction, seed)
        assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    assert not np.array_equal(seeded_split(100, 0.3, 1)[1], seeded_split(100, 0.3, 2)[1])
    with pytest.raises(ValueError, match="test_fraction"):
        seeded_split(10, 1.5, 0)


@pytest.mark.parametrize("name", ["cal500", "rcv1-subset2", "slashdot"])
def test_split_is_identical_from_two_fresh_caches(name, tmp_path, monkeypatch):
    require_dataset(name)
    parts = []
    for cache in ("one", "two"):
        monkeypatch.setenv("SPARSEXC_CACHE", str(tmp_path / cache))
        parts.append(load(name))
    first, second = parts
    assert first.info["cache"] != second.info["cache"]
    for part in ("train", "test"):
        assert _same(getattr(first, part).X, getattr(second, part).X)
        assert _same(getattr(first, part).Y, getattr(second, part).Y)
    other = load(name, split=2)
    assert not _same(other.test.Y, first.test.Y) or not _same(other.test.X, first.test.X)


def test_unknown_name_lists_close_matches():
    with pytest.raises(KeyError) as excinfo:
        load("scenes")
    assert isinstance(excinfo.value, ValueError) and isinstance(excinfo.value, UnknownDatasetError)
    assert "unknown dataset 'scenes'" in str(excinfo.value) and "'scene'" in str(excinfo.value)
    with pytest.raises(ValueError, match="'debian-deps'"):
        load("debian-dep")


@pytest.mark.parametrize(
    "name, split, match",
    [("bibtex", 11, r"1\.\.10"), ("scene", 2, "published"), ("cal500", 0, ">= 1"), ("bibtex", "two", "integer")],
)
def test_bad_split_is_named(name, split, match):
    with pytest.raises(ValueError, match=match):
        load(name, split=split)


def test_data_dir_argument_overrides_environment(tmp_path, monkeypatch, shared_datasets):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("SPARSEXC_DATA", str(empty))
    data = load("flags", shared_datasets)
    assert data.train.n_samples == 129 and data.info["data_dir_from"] == "the data_dir= argument"
    with pytest.raises(FileNotFoundError) as excinfo:
        load("flags")
    message = str(excinfo.value)
    assert str(empty / "mulan-flags" / "flags-train.arff") in message and "SPARSEXC_DATA" in message
    monkeypatch.setenv("SPARSEXC_DATA", str(shared_datasets))
    with pytest.raises(FileNotFoundError, match="mulan-flags/ is not in the data directory"):
        load("flags", empty)


def test_missing_data_directory_is_a_clear_error(tmp_path):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(FileNotFoundError) as excinfo:
        load("debtags", missing)
    message = str(excinfo.value)
    assert f"the data directory {missing} (from the data_dir= argument) does not exist" in message
    assert "raw/debian-packages/Packages.txt.gz" in message


def test_default_data_home_when_nothing_is_set(monkeypatch, tmp_path):
    monkeypatch.delenv("SPARSEXC_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/sparsexc_data.*~/sparsexc_data"):
        load("scene")


def test_bibtex_falls_back_to_the_bundled_copy(tmp_path, loaded):
    empty = tmp_path / "empty"
    empty.mkdir()
    bundled = load("bibtex", empty)
    assert bundled.info["bundled"] is True
    require_dataset("bibtex", 2)  # the reference: the shared copy (split 2 only there), not the bundled one again
    reference = loaded("bibtex")
    for part in ("train", "test"):
        assert _same(getattr(bundled, part).X, getattr(reference, part).X)
        assert _same(getattr(bundled, part).Y, getattr(reference, part).Y)
    assert _same(load_bundled().test.Y, reference.test.Y)
    with pytest.raises(FileNotFoundError, match="Bibtex"):
        load("bibtex", empty, split=2)  # only split 1 is bundled


def test_cache_hit_then_rebuild_when_the_source_changes(tmp_path, monkeypatch, shared_datasets):
    monkeypatch.setenv("SPARSEXC_CACHE", str(tmp_path / "cache"))
    shared_entry = load("flags").info["cache"]
    data_dir = tmp_path / "data"
    shutil.copytree(shared_datasets / "mulan-flags", data_dir / "mulan-flags")
    for path in (data_dir / "mulan-flags").iterdir():
        path.chmod(0o644)
    first = load("flags", data_dir)
    assert first.info["cache"] != shared_entry
    entry = first.info["cache"]
    assert sorted(os.listdir(entry)) == ["meta.json", "test_X.npz", "test_Y.npz", "train_X.npz", "train_Y.npz"]
    again = load("flags", data_dir)
    assert again.info["cache"] == entry and _same(again.train.X, first.train.X)
    assert again.train.label_names == first.train.label_names

    train_file = data_dir / "mulan-flags" / "flags-train.arff"
    lines = train_file.read_text().rstrip("\n").split("\n")
    train_file.write_text("\n".join(lines[:-1]) + "\n")  # drop the last data row
    changed = load("flags", data_dir)
    assert changed.train.n_samples == first.train.n_samples - 1
    assert changed.info["cache"] != entry and not os.path.exists(entry)  # stale entry removed
    # Same content, new modification time: also a new key (size/mtime are the stamp).
    stat = train_file.stat()
    os.utime(train_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load("flags", data_dir).info["cache"] != changed.info["cache"]
    # Entries built from another data directory are left alone.
    assert load("flags").info["cache"] == shared_entry and os.path.isdir(shared_entry)
    leftovers = [p for p in (tmp_path / "cache" / "flags").iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temporary folders left behind


@requires_dataset("emotions")
def test_cache_false_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEXC_CACHE", str(tmp_path / "cache"))
    data = load("emotions", cache=False)
    assert data.train.n_samples == 391 and "cache" not in data.info
    assert not (tmp_path / "cache").exists()


@requires_dataset("scene")
def test_cached_load_is_faster_than_parsing(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEXC_CACHE", str(tmp_path / "cache"))
    start = time.perf_counter()
    load("scene")
    build = time.perf_counter() - start
    start = time.perf_counter()
    load("scene")
    assert time.perf_counter() - start < build


@requires_dataset("emotions")
def test_damaged_cache_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEXC_CACHE", str(tmp_path / "cache"))
    first = load("emotions")
    entry = first.info["cache"]
    with open(os.path.join(entry, "train_X.npz"), "wb") as fh:
        fh.write(b"not an npz file")
    second = load("emotions")
    assert second.info["cache"] == entry
    assert _same(second.train.X, first.train.X)
    assert _same(load("emotions").train.X, first.train.X)  # and the entry is whole again
