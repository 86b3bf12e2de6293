"""Headerless svmlight / LibSVM multi-label files (napkinXC, LibMultiLabel): read through ``read_any`` /
``read_all``, checked against files written by scikit-learn's independent writer, and bad lines reported
with file and line."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file

from sparsexc._sparse import labels_to_lists
from sparsexc.datasets import synthetic
from sparsexc.io import DataFormatError, read_all, read_any, read_svmlight


@pytest.fixture(scope="module")
def parts():
    data = synthetic(120, 40, 12, seed=4)
    return data.train, data.test


def _dump(path, part, zero_based):
    # scikit-learn writes "l1,l2 f:v ..." with multilabel=True; rows without a label start with a blank
    dump_svmlight_file(part.X, part.Y, str(path), zero_based=zero_based, multilabel=True)


@pytest.mark.parametrize("zero_based", [True, False])
def test_train_and_test_written_by_sklearn_read_back(tmp_path, parts, zero_based):
    train, test = parts
    paths = [tmp_path / "train.svm", tmp_path / "test.svm"]
    for path, part in zip(paths, parts):
        _dump(path, part, zero_based)
    got = read_all(paths)
    for data, part in zip(got, parts):
        assert data.meta["format"] == "svmlight" and data.meta["zero_based"] is zero_based
        assert data.X.dtype == np.float32 and data.X.has_sorted_indices
        # widths: the largest id + 1 over both files (here the generator's full widths)
        assert data.X.shape == part.X.shape and data.Y.shape[1] == max(train.Y.indices.max(), test.Y.indices.max()) + 1
        assert abs(data.X - part.X).max() <= 1e-6 * abs(part.X).max()
        np.testing.assert_array_equal(data.Y.toarray(), part.Y[:, : data.Y.shape[1]].toarray())
    # one file alone, through the same dispatch as the XC files
    alone = read_any(paths[0])
    assert alone.meta["format"] == "svmlight" and (alone.X != got[0].X).nnz == 0


def test_example_lines_and_given_widths(tmp_path):
    path = tmp_path / "napkin.txt"
    path.write_text("# napkinXC-style\n1,5 3:0.5 10:1.2\n\n 2:1\n0 1:2 # trailing comment\n")
    data = read_any(path)  # no feature id 0: 1-based (scikit-learn's "auto"), shifted down by one
    assert data.meta["zero_based"] is False
    assert data.X.shape == (3, 10) and data.Y.shape == (3, 6)
    np.testing.assert_array_equal(data.X.toarray()[0, [2, 9]], np.float32([0.5, 1.2]))
    assert labels_to_lists(data.Y) == [[1, 5], [], [0]]
    wide = read_any(path, n_features=20, n_labels=8)
    assert wide.X.shape == (3, 20) and wide.Y.shape == (3, 8) and (wide.X[:, :10] != data.X).nnz == 0
    with pytest.raises(DataFormatError, match="n_labels"):
        read_any(path, n_labels=3)
    with pytest.raises(DataFormatError, match="n_features"):
        read_any(path, n_features=5)
    gz = tmp_path / "napkin.bin"  # gzip found from the content, whatever the name
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert (read_any(gz).X != data.X).nnz == 0


@pytest.mark.parametrize(
    "body, line, match",
    [
        ("1,2 1:0.5 3:1\n0 2:1\n7.5 1:1\n", 3, "label id.*integer >= 0.*7.5"),
        ("1 1:1\n\n-1 1:1\n", 3, "label id"),
        ("1,1 1:0.5\n", 1, "at most once"),
        ("1 1:1\n0 2:1e\n", 2, "could not convert"),  # scikit-learn's message, line found by bisection
        ("1 1:1\n0 2:x\n", 2, "finite decimal numbers only"),  # bytes no number has: found before scikit-learn
        ("1 1:1\n0 2:1_0\n", 2, "no '_'"),  # Python's float() would read 10
        ("1 1:1\n0 2:inf\n", 2, "nan or inf"),
        ("1 1:1\n0 2:1e39\n", 2, "finite as float32"),  # float64-finite, float32 inf
        ("1 1:1\n0 2147483648:1\n", 2, "too large"),  # beyond scikit-learn's int32 feature ids
        ("1 0:1\n0 2147483647:1\n", 2, "feature id < 2147483647"),  # 0-based: width 2**31 would be needed
        ("1 1:1\n2147483647 1:1\n", 2, "label id.*< 2147483647"),
        ("1 1:1\n0 3:1 2:1\n2 1:1\n", 2, "sorted and unique"),
        ("1 1:1\n# c\n0 2:nan\n", 3, "finite"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, body, line, match):
    path = tmp_path / "bad.svm"
    path.write_text(body)
    with pytest.raises(DataFormatError, match=match) as info:
        read_any(path)
    assert info.value.line == line and info.value.path == str(path) and "bad.svm" in str(info.value)


@pytest.mark.parametrize("body", ["", "\n\n", "# only a comment\n"])
def test_a_file_without_rows_is_an_error(tmp_path, body):
    path = tmp_path / "empty.svm"
    path.write_text(body)
    with pytest.raises(DataFormatError, match="at least one row") as info:
        read_svmlight(path)
    assert info.value.path == str(path)


def test_the_failing_file_of_several_is_named(tmp_path):
    good, bad = tmp_path / "good.svm", tmp_path / "bad.svm"
    good.write_text("1 1:1\n")
    bad.write_text("1 1:1\n1 1:1\n2 5:y\n")
    with pytest.raises(DataFormatError, match=r"bad\.svm, line 3"):
        read_svmlight([good, bad])


def test_large_file_line_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr("sparsexc.io.svmlight._BISECT_MAX_BYTES", 4)
    path = tmp_path / "big.svm"
    path.write_text("1 1:1\n2 1:1e\n")
    with pytest.raises(DataFormatError, match="line unknown") as info:
        read_any(path)
    assert info.value.line is None


def test_an_xc_file_is_not_taken_for_svmlight(tmp_path):
    path = tmp_path / "xc.txt"
    path.write_text("2 4 3\n0,2 1:0.5\n3:1\n")
    data = read_any(path)
    assert data.meta["format"] == "xc" and data.X.shape == (2, 4) and data.Y.shape == (2, 3)
    assert sp.isspmatrix_csr(data.Y)
