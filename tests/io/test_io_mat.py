"""MATLAB .mat multi-label files and read_any dispatch."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

import sparsexc.io.arff as arff_module
from sparsexc.io import DataFormatError, read_any, read_arff, read_mat, write_xc

# file -> {part: (rows, features, labels, label cardinality, rows without labels)} from each SOURCE.md
MAT = [
    ("corel16k001-mat/Corel16k001.mat", {"all": (13766, 500, 153, 2.859, 0)}),
    ("languagelog-mat/languagelog.mat", {"all": (1459, 1004, 75, 1.18, 207)}),
    ("rcv1subsets-top944-mat/rcv1subset1_top944.mat", {"all": (6000, 944, 101, 2.88, 0)}),
    ("rcv1subsets-top944-mat/rcv1subset2_top944.mat", {"all": (6000, 944, 101, 2.634, 0)}),
    ("rcv1subsets-top944-mat/rcv1subset3_top944.mat", {"all": (6000, 944, 101, 2.614, 0)}),
    ("rcv1subsets-top944-mat/rcv1subset4_top944.mat", {"all": (6000, 944, 101, 2.267, 0)}),
    ("rcv1subsets-top944-mat/rcv1subset5_top944.mat", {"all": (6000, 944, 101, 2.625, 0)}),
    ("slashdot-mat/slashdot.mat", {"all": (3782, 1079, 22, 1.177, 7)}),
    ("yahoo-arts-mat/arts.mat", {"all": (5000, 462, 26, 1.636, 0)}),
    ("yahoo-recreation-mat/recreation.mat", {"train": (2000, 606, 22, 1.414, 0), "test": (3000, 606, 22, 1.429, 0)}),
    ("yahoo-science-mat/science.mat", {"all": (5000, 743, 40, 1.451, 0)}),
]


@pytest.mark.parametrize("name,parts", MAT)
def test_mat_files(shared_datasets, name, parts):
    got = read_mat(shared_datasets / name)
    assert sorted(got) == sorted(parts)
    raw = scipy.io.loadmat(shared_datasets / name)
    for part, (rows, features, labels, cardinality, empty) in parts.items():
        d = got[part]
        assert d.X.shape == (rows, features) and d.Y.shape == (rows, labels)
        assert d.X.dtype == np.float32 and d.Y.dtype == np.float32 and sp.isspmatrix_csr(d.X)
        assert round(d.Y.nnz / rows, 3) == cardinality
        assert int((d.Y.getnnz(axis=1) == 0).sum()) == empty
        prefix = "" if part == "all" else part + "_"
        np.testing.assert_array_equal(d.Y.toarray(), (raw[prefix + "target"].T == 1).astype(np.float32))
        np.testing.assert_array_equal(d.X.toarray(), raw[prefix + "data"].astype(np.float32))


def test_read_any_concatenates_train_then_test(shared_datasets):
    d = read_any(shared_datasets / "yahoo-recreation-mat" / "recreation.mat")
    parts = read_mat(shared_datasets / "yahoo-recreation-mat" / "recreation.mat")
    assert d.X.shape == (5000, 606) and d.meta["parts"] == {"train": (0, 2000), "test": (2000, 5000)}
    assert (d.Y[2000:] != parts["test"].Y).nnz == 0


def test_read_any_dispatch(shared_datasets, tmp_path):
    path = tmp_path / "x.data"
    write_xc(path, sp.csr_matrix(np.eye(3, dtype=np.float32)), [[0], [1, 2], []])
    d = read_any(path)
    assert d.X.shape == (3, 3) and d.Y.nnz == 3
    folder = shared_datasets / "mulan-emotions"
    d = read_any(folder / "emotions-test.arff", label_xml=folder / "emotions.xml")
    assert d.Y.shape == (202, 6)


def test_dense_arff_fast_and_careful_agree(shared_datasets, monkeypatch):
    folder = shared_datasets / "mulan-yeast"
    a = read_arff(folder / "yeast-test.arff", folder / "yeast.xml")
    monkeypatch.setattr(arff_module, "_dense_fast", lambda *args: None)
    b = read_arff(folder / "yeast-test.arff", folder / "yeast.xml")
    assert (a.X != b.X).nnz == 0 and (a.Y != b.Y).nnz == 0


def test_sparse_arff_fast_and_careful_agree(shared_datasets, monkeypatch):
    folder = shared_datasets / "mulan-medical"
    a = read_arff(folder / "medical-test.arff", folder / "medical.xml")
    monkeypatch.setattr(arff_module, "_sparse_fast", lambda *args: None)
    b = read_arff(folder / "medical-test.arff", folder / "medical.xml")
    assert (a.X != b.X).nnz == 0 and (a.Y != b.Y).nnz == 0


@pytest.mark.parametrize(
    "content,match",
    [
        ({"X": np.eye(3)}, "variables"),
        ({"data": np.eye(3), "target": np.ones((2, 4))}, "shape"),
        ({"data": np.eye(3), "target": np.full((2, 3), 2.0)}, r"\{-1, 0, 1\}"),
        (
            {
                "train_data": np.eye(3),
                "train_target": np.ones((2, 3)),
                "test_data": np.ones((2, 4)),
                "test_target": np.ones((2, 2)),
            },
            "same numbers",
        ),
        ({"train_data": np.eye(3), "train_target": np.ones((2, 3))}, "variables"),
    ],
)
def test_malformed_mat(tmp_path, content, match):
    path = tmp_path / "bad.mat"
    scipy.io.savemat(path, content)
    with pytest.raises(DataFormatError, match=match):
        read_mat(path)


def test_mat_sparse_and_instances_by_labels(tmp_path):
    path = tmp_path / "s.mat"
    X = sp.csc_matrix(np.array([[0, 2.5], [1, 0], [0, 0]]))
    scipy.io.savemat(path, {"data": X, "target": np.array([[1, -1], [-1, -1], [1, 1]])})  # n x L
    d = read_mat(path)["all"]
    np.testing.assert_array_equal(d.X.toarray(), [[0, 2.5], [1, 0], [0, 0]])
    np.testing.assert_array_equal(d.Y.toarray(), [[1, 0], [0, 0], [1, 1]])


def test_mat_not_a_mat_file(tmp_path):
    path = tmp_path / "x.mat"
    path.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DataFormatError):
        read_mat(path)
    with pytest.raises(DataFormatError, match="an existing file"):
        read_mat(tmp_path / "missing.mat")
