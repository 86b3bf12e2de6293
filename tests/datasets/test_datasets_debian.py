"""Debian index builders: stanza and relation parsing, label rules, TF-IDF on train only, real shapes."""

from __future__ import annotations

import gzip
import time

import numpy as np
import pytest

from sparsexc.datasets import load, seeded_split
from sparsexc.datasets.debian import parse_relations, read_packages
from sparsexc.io.errors import DataFormatError

PACKAGES = """\
Package: alpha
Version: 1.0
Depends: libc6 (>= 2.34), python3:any, foo | bar (>= 2), libc6 (<< 3)
Pre-Depends: dpkg (>= 1.15.6~)
Recommends: baz [amd64] <!nocheck>, alpha
Description: alpha tool for testing
 Long description line one.
 .
 Second paragraph.
Tag: devel::lang:python,
 role::program
Section: devel

Package: beta
Version: 2
Description: beta has no relations
Tag: role::program

Package: alpha
Version: 0.9
Depends: other
Description: an older alpha that must be ignored
Tag: x::y
"""


def test_relations_strip_versions_arch_and_profiles():
    assert parse_relations("libc6 (>= 2.34), python3:any, foo | bar (>= 2)") == [
        ("libc6",),
        ("python3",),
        ("foo", "bar"),
    ]
    assert parse_relations("baz [amd64 i386] <!nocheck>, qux:native (= 1:2.0-1)") == [("baz",), ("qux",)]
    assert parse_relations(" a ,\n b|c ") == [("a",), ("b", "c")]
    with pytest.raises(DataFormatError, match="Depends"):
        parse_relations("foo (>= 1", path="Packages", line=3)
    with pytest.raises(DataFormatError, match="package name"):
        parse_relations("Foo_Bar")


def test_stanzas_first_wins_and_fields(tmp_path):
    path = tmp_path / "Packages.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(PACKAGES)
    packages = read_packages(path)
    assert [p.name for p in packages] == ["alpha", "beta"]
    alpha = packages[0]
    assert alpha.description == "alpha tool for testing\nLong description line one.\nSecond paragraph."
    assert alpha.tags == ("devel::lang:python", "role::program")
    # Pre-Depends, Depends, Recommends in that order; alternatives kept in the record.
    assert alpha.relations == (("dpkg",), ("libc6",), ("python3",), ("foo", "bar"), ("libc6",), ("baz",), ("alpha",))
    assert packages[1].relations == ()


@pytest.mark.parametrize(
    "text, line",
    [
        ("Package: a\nnot a field line\n", 2),
        (" continuation first\nPackage: a\n", 1),
        ("Package: a\nDepends: b (>= 1\n", 1),
        ("Version: 1\nDescription: no package\n\nPackage: b\n", 1),
    ],
)
def test_malformed_index_names_file_and_line(tmp_path, text, line):
    path = tmp_path / "Packages"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=rf"Packages, line {line}"):
        read_packages(path)


def _write_index(folder, stanzas):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Packages").write_text("\n".join(stanzas) + "\n")


def _fixture_data_dir(tmp_path):
    """40 packages with deps; words chosen with the split known in advance (seed 1, 20% test)."""
    n = 40
    train_rows, test_rows = seeded_split(n, 0.2, 1)
    test_set = set(test_rows.tolist())
    stanzas = []
    for i in range(n):
        words = [f"topic{i % 4}", f"flavour{i % 3}"]
        if i in test_set:
            words.append("onlyintestword")  # in >= 2 test rows, in no training row
        if i in (train_rows[0], train_rows[1]):
            words.append("twotrainword")
        # dep-common: everywhere; dep-pair{k}: rows 2k, 2k+1 (so some pairs are split across train/test);
        # dep-once{i}: a single row (never kept); an alternative whose second choice must be ignored.
        deps = [f"dep-common (>= 1.{i})", f"dep-pair{i // 2}:any", f"dep-once{i}", "mta-first | mta-second"]
        tags = f"role::program, topic::t{i % 4}"
        stanzas.append(
            f"Package: pkg{i:02d}\nDepends: {', '.join(deps)}\nDescription: {' '.join(words)}\nTag: {tags}\n"
        )
    stanzas.append("Package: pkg00\nDepends: dup-only\nDescription: duplicate stanza\nTag: dup::tag\n")
    _write_index(tmp_path / "raw" / "debian-packages", stanzas)
    return tmp_path, train_rows, test_rows


def test_debian_deps_label_rules_and_train_only_vocabulary(tmp_path):
    data_dir, train_rows, test_rows = _fixture_data_dir(tmp_path)
    data = load("debian-deps", data_dir)
    assert data.row_ids["train"] == [f"pkg{i:02d}" for i in train_rows]
    assert data.row_ids["test"] == [f"pkg{i:02d}" for i in test_rows]
    names = data.train.label_names
    assert "mta-first" in names and "mta-second" not in names  # first alternative only
    assert "dep-common" in names  # version constraint stripped
    assert not any(n.startswith("dep-once") for n in names)  # seen once: below the min count of 2
    assert "dup-only" not in names  # the duplicate stanza of pkg00 is ignored
    train_freq = np.asarray(data.train.Y.sum(0)).ravel()
    assert train_freq.min() >= 2
    expected_pairs = {f"dep-pair{k}" for k in range(20) if 2 * k in train_rows and 2 * k + 1 in train_rows}
    assert {n for n in names if n.startswith("dep-pair")} == expected_pairs
    vocabulary = set(data.train.feature_names)
    assert "twotrainword" in vocabulary
    assert "onlyintestword" not in vocabulary
    assert data.info["tfidf_fitted_on"] == "train"


def test_debtags_fixture_and_determinism(tmp_path, monkeypatch):
    data_dir, _, _ = _fixture_data_dir(tmp_path / "data")
    monkeypatch.setenv("SPARSEXC_CACHE", str(tmp_path / "cache-a"))
    first = load("debtags", data_dir)
    monkeypatch.setenv("SPARSEXC_CACHE", str(tmp_path / "cache-b"))
    second = load("debtags", data_dir)
    assert first.info["cache"] != second.info["cache"]
    for part in ("train", "test"):
        a, b = getattr(first, part), getattr(second, part)
        assert (a.X != b.X).nnz == 0 and (a.Y != b.Y).nnz == 0 and a.feature_names == b.feature_names
    assert first.train.label_names == ["role::program", "topic::t0", "topic::t1", "topic::t2", "topic::t3"]
    assert "dup::tag" not in first.train.label_names


def test_real_debtags_shapes(loaded):
    data = loaded("debtags")
    # 29,793 tagged packages (SOURCE.md), all with a description; tags seen only in test are removed.
    assert data.train.n_samples + data.test.n_samples == 29793
    assert (data.train.n_samples, data.test.n_samples) == (23834, 5959)
    assert (data.n_features, data.n_labels) == (23617, 593)
    assert data.n_labels <= 597
    assert np.asarray(data.train.Y.sum(0)).min() >= 1
    assert np.diff(data.train.X.tocsc().indptr).min() >= 2  # min_df=2 counted on training rows


def test_real_debian_deps_shapes_and_one_row(loaded):
    data = loaded("debian-deps")
    assert (data.train.n_samples, data.test.n_samples) == (44469, 10870)
    assert (data.n_features, data.n_labels) == (40497, 19005)
    info = data.info
    kept = data.train.n_samples + data.test.n_samples
    assert (
        kept + info["dropped_train_rows_without_labels"] + info["dropped_test_rows_without_labels"]
        == info["source_rows"]
    )
    assert np.asarray(data.train.Y.sum(0)).min() >= 2
    # 0ad-data-common: Pre-Depends dpkg; Depends fonts-dejavu-core | ttf-dejavu-core, ... (first alternatives)
    part = "train" if "0ad-data-common" in data.row_ids["train"] else "test"
    Y = getattr(data, part).Y
    row = data.row_ids[part].index("0ad-data-common")
    labels = {data.train.label_names[j] for j in Y.indices[Y.indptr[row] : Y.indptr[row + 1]]}
    assert labels <= {"dpkg", "fonts-dejavu-core", "fonts-freefont-ttf", "fonts-texgyre"}
    assert "dpkg" in labels


def test_debian_deps_second_load_is_fast(loaded):
    loaded("debian-deps")  # built (or read) once for the session
    start = time.perf_counter()
    data = load("debian-deps")
    elapsed = time.perf_counter() - start
    assert data.train.n_samples == 44469
    assert elapsed < 2.0, f"second load took {elapsed:.2f} s"
