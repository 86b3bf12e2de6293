"""The reader failures found by fuzzing (issue 16), one case each: every one is a DataFormatError naming the
file (and line and field where the format has lines), with nothing silently read as inf, 10 or a 0 x 0 set."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from sparsexc.cli._data import ALLOW_UNUSED_WIDTH_ENV, check_unused_width
from sparsexc.io import (
    DataFormatError,
    MultiLabelData,
    read_any,
    read_arff,
    read_mat,
    read_svmlight,
    read_xc,
)


def _raises(reader, path, match, line=None, field=None):
    with pytest.raises(DataFormatError, match=match) as info:
        reader(path)
    assert info.value.path == str(path) and str(path) in str(info.value)
    if line is not None:
        assert info.value.line == line
    if field is not None:
        assert info.value.field == field
    return info.value


@pytest.mark.parametrize(
    "body, line, field, match",
    [
        ("2 3 2\n0 0:1\n1 1:1e39\n", 3, "feature value", "float32"),  # float64-finite, float32 inf
        ("2 3 2\n0 0:1\n1 1:-1e39\n", 3, "feature value", "float32"),
        ("2 3 2\n0 0:1\n1 1:1e400\n", 3, "feature value", "float32"),
        ("2 3 2\n0 0:nan\n1 1:1\n", 2, "feature value", "decimal number"),
        ("2 3 2\n0 0:1_0\n1 1:1\n", 2, "feature value", "decimal number"),
        ("2 3 2\n0 0:1\n1 " + "9" * 5000 + ":1\n", 3, "feature id", "n_features=3"),
        ("2 3 2\n" + "9" * 5000 + " 0:1\n1 1:1\n", 2, "label id", "n_labels=2"),
        ("2 3 18446744073709551616\n0 0:1\n1 1:1\n", 1, "header", "n_labels <= 2147483647"),
        ("2 " + "9" * 5000 + " 2\n0 0:1\n1 1:1\n", 1, "header", "n_features <= 2147483647"),
    ],
    ids=[
        "1e39",
        "-1e39",
        "1e400",
        "nan",
        "underscore",
        "feature-5000-digits",
        "label-5000-digits",
        "header-2**64",
        "header-5000-digits",
    ],
)
def test_xc(tmp_path, body, line, field, match):
    path = tmp_path / "bad.txt"
    path.write_text(body)
    _raises(read_xc, path, match, line, field)


def test_xc_empty_and_truncated_gzip(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    _raises(read_xc, path, "empty file", 1, "header")
    zero = tmp_path / "zero.txt"
    zero.write_text("0 5 3\n")  # a header that says 0 rows explicitly: an empty data set of known widths
    X, Y = read_xc(zero)
    assert X.shape == (0, 5) and Y.shape == (0, 3)
    z = gzip.compress(b"2 3 2\n0 0:1\n1 1:1\n" * 50)
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(z[: len(z) // 2])
    _raises(read_xc, cut, "gzip")


@pytest.mark.parametrize(
    "body, line, match",
    [
        ("1 1:1\n0 3:1_0\n", 2, "no '_'"),  # Python's int()/float() read 10
        ("1 1:1\n0 3:1e39\n", 2, "float32"),
        ("1 1:1\n0 2147483648:1\n", 2, "too large"),  # OverflowError inside scikit-learn before
        ("1 1:1\n0 " + "7" * 5000 + ":1\n", 2, "4300 digits"),
    ],
    ids=["underscore", "1e39", "2**31", "5000-digits"],
)
def test_svmlight(tmp_path, body, line, match):
    path = tmp_path / "bad.svm"
    path.write_text(body)
    _raises(read_svmlight, path, match, line)
    _raises(read_any, path, match, line)


def test_svmlight_empty_file_is_an_error_not_a_0x0_set(tmp_path):
    path = tmp_path / "empty.svm"
    path.write_bytes(b"")
    _raises(read_svmlight, path, "at least one row")


_ARFF = """@relation r
@attribute a numeric
@attribute b numeric
@attribute lab {0,1}
@data
"""


@pytest.mark.parametrize(
    "rows, line, match",
    [
        ("1,2,0\n3,1e39,1\n", 7, "finite number"),  # dense fast path: float64-finite, float32 inf
        ("1,2,0\n3,-1e39,1\n", 7, "finite number"),
        ("{0 1,1 2}\n{0 1e39,2 1}\n", 7, "finite number"),  # sparse fast path
        ("1,2,0\n0x10,1,1\n", 7, "finite number"),  # C strtod reads hexadecimal, Python's float() not
        ("1,2,0\n1_0,1,1\n", 7, "finite number"),
        ("1,2,0\nInfinity,1,1\n", 7, "finite number"),
        ("{0 1}\n{" + "9" * 5000 + " 1}\n", 7, "attribute index < 3"),
    ],
    ids=["dense-1e39", "dense--1e39", "sparse-1e39", "hex", "underscore", "Infinity", "index-5000-digits"],
)
def test_arff_values(tmp_path, rows, line, match):
    path = tmp_path / "bad.arff"
    path.write_text(_ARFF.replace("@relation r", "@relation 'r: -C -1'") + rows)
    _raises(read_arff, path, match, line)


def _savemat(path, **variables):
    scipy.io.savemat(path, variables, do_compression=False)
    return path


def test_mat_complex_and_non_finite_values(tmp_path):
    T = np.array([[1, -1, 1]])
    _raises(read_mat, _savemat(tmp_path / "c.mat", data=np.eye(3) * (1 + 2j), target=T), "real values")
    _raises(read_mat, _savemat(tmp_path / "cs.mat", data=sp.csc_matrix(np.eye(3) * (1 + 2j)), target=T), "real values")
    _raises(read_mat, _savemat(tmp_path / "big.mat", data=np.eye(3) * 1e39, target=T), "float32")
    _raises(read_mat, _savemat(tmp_path / "bigs.mat", data=sp.csc_matrix(np.eye(3) * 1e39), target=T), "float32")


def test_mat_corrupt_row_index_is_rejected_before_any_conversion(tmp_path):
    X = sp.csc_matrix(np.array([[0, 2.0], [1, 0], [0, 3]]))
    path = _savemat(tmp_path / "s.mat", data=X, target=np.array([[1, -1, 1]]))
    raw = bytearray(path.read_bytes())
    at = raw.find(X.indices.astype("<i4").tobytes())
    raw[at : at + 4] = np.int32(10**6).tobytes()  # a row index far outside the 3 rows
    path.write_bytes(bytes(raw))
    _raises(read_mat, path, r"row indices in 0\.\.2")


def test_mat_huge_row_counts(tmp_path):
    X = sp.csc_matrix((np.ones(2), np.array([0, 1]), np.array([0, 1, 2])), shape=(10**9, 2))
    path = _savemat(tmp_path / "rows.mat", data=X, target=sp.csc_matrix((10**9, 3)))
    tracemalloc.start()
    _raises(read_mat, path, "rows more than stored entries")
    # a target of 10**9 labels (stored labels x instances) is transposed without converting it
    path = _savemat(
        tmp_path / "labels.mat",
        data=np.eye(2),
        target=sp.csc_matrix((np.ones(2), np.array([5, 10**9 - 1]), np.array([0, 1, 2])), shape=(10**9, 2)),
    )
    Y = read_mat(path)["all"].Y
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert Y.shape == (2, 10**9) and Y[1, 10**9 - 1] == 1 and peak < 50 << 20


def test_mat_loader_errors_name_the_file(tmp_path):
    path = _savemat(tmp_path / "ok.mat", data=np.eye(2), target=np.array([[1, -1]]))
    raw = path.read_bytes()
    for k, cut in enumerate((0, 10, 128, 140, len(raw) - 3)):
        bad = tmp_path / f"cut{k}.mat"
        bad.write_bytes(raw[:cut])
        _raises(read_mat, bad, None)


def _data(n_features: int, n_labels: int, feature_ids, label_ids) -> MultiLabelData:
    def row(ids, width):
        return sp.csr_matrix((np.ones(len(ids), np.float32), ids, [0, len(ids)]), shape=(1, width))

    X, Y = row(feature_ids, n_features), row(label_ids, n_labels)
    return MultiLabelData(X, Y)


def test_declared_width_far_beyond_used_ids_is_refused(monkeypatch):
    monkeypatch.delenv(ALLOW_UNUSED_WIDTH_ENV, raising=False)
    test = _data(4, 250_000, [0], [7])
    with pytest.raises(DataFormatError, match="250000 declared, 2 used") as info:
        check_unused_width("train.txt", "test.txt", _data(4, 250_000, [1], [3]), test)
    assert info.value.field == "n_labels" and info.value.path == "train.txt"
    # the limit: unused columns at most max(used, 10000)
    check_unused_width("train.txt", "test.txt", _data(4, 10_002, [1], [3]), _data(4, 10_002, [0], [7]))
    with pytest.raises(DataFormatError, match="n_labels"):
        check_unused_width("train.txt", "test.txt", _data(4, 10_003, [1], [3]), _data(4, 10_003, [0], [7]))
    with pytest.raises(DataFormatError, match="n_features"):
        check_unused_width(
            "train.txt", "test.txt", _data(20_000, 10, [1], list(range(10))), _data(20_000, 10, [0], [0])
        )
    many = list(range(0, 40_000, 2))  # 20,000 used of 40,000 declared: within max(used, 10000)
    check_unused_width("train.txt", "test.txt", _data(40_000, 4, many, [0]), _data(40_000, 4, [1], [1]))
    monkeypatch.setenv(ALLOW_UNUSED_WIDTH_ENV, "1")
    check_unused_width("train.txt", "test.txt", _data(4, 250_000, [1], [3]), test)


def test_mat_corrupt_element_tag_is_an_error_not_a_crash(tmp_path):
    """One flipped byte in a sub-element's data type made scipy's compiled reader crash the process (found by
    the --slow fuzz run); read in a child so that a crash fails this test instead of ending the run."""
    X = sp.csc_matrix(np.array([[0, 2.0, 0], [1, 0, 0], [0, 3, 4]]))
    path = _savemat(tmp_path / "tag.mat", data=X, target=np.array([[1, -1, 1]]))
    raw = bytearray(path.read_bytes())
    jc = struct.pack("<II", 5, 4 * (X.shape[1] + 1)) + X.indptr.astype("<i4").tobytes()
    at = raw.find(jc)
    assert at > 0
    raw[at] = 103  # not a MAT data type
    path.write_bytes(bytes(raw))
    code = (
        f"from sparsexc.io import read_mat\ntry:\n    read_mat({str(path)!r})\n"
        "except Exception as e:\n    print(repr(e))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-500:]
    assert "DataFormatError" in done.stdout and "sparse column pointers" in done.stdout and str(path) in done.stdout


@pytest.mark.parametrize("compress", [False, True])
def test_mat_structural_check_accepts_every_array_class(tmp_path, compress):
    """The v5 element check must not reject valid files holding other variables: cells, structs, strings,
    logical, complex, sparse logical and empty arrays, compressed or not."""
    cell = np.empty((1, 3), dtype=object)
    cell[0, :] = ["a", "label two", np.arange(3.0)]
    X = sp.csc_matrix(np.array([[0, 2.5], [1, 0], [0, 0]]))
    variables = {
        "data": X,
        "target": np.array([[1, -1, 1], [-1, -1, 1]], dtype=np.int16),
        "names": cell,
        "info": {"source": "test", "n": np.int32(3), "nested": {"x": np.eye(2)}},
        "title": "a string",
        "mask": np.array([[True, False]]),
        "z": np.array([[1 + 2j]]),
        "slog": sp.csc_matrix(np.eye(3, dtype=bool)),
        "empty": np.zeros((0, 0)),
        "ecell": np.empty((0, 0), dtype=object),
    }
    path = tmp_path / "all.mat"
    scipy.io.savemat(path, variables, do_compression=compress)
    d = read_mat(path)["all"]
    np.testing.assert_array_equal(d.X.toarray(), X.toarray())
    np.testing.assert_array_equal(d.Y.toarray(), [[1, 0], [0, 0], [1, 1]])


def test_mat_v4_and_v73_files(tmp_path):
    X = sp.csc_matrix(np.array([[0, 2.5], [1, 0], [0, 0]]))
    path = tmp_path / "v4.mat"
    scipy.io.savemat(path, {"data": X, "target": np.array([[1, -1, 1]])}, format="4")  # sparse comes back as COO
    np.testing.assert_array_equal(read_mat(path)["all"].X.toarray(), X.toarray())
    scipy.io.savemat(path, {"data": sp.csc_matrix(X * (1 + 1j)), "target": np.array([[1, -1, 1]])}, format="4")
    _raises(read_mat, path, "real values")
    h5 = tmp_path / "v73.mat"  # MATLAB 7.3 files are HDF5: not read, said so
    h5.write_bytes(b"MATLAB 7.3 MAT-file".ljust(116) + bytes(8) + b"\x00\x02IM" + bytes(512))
    _raises(read_mat, h5, "NotImplementedError")
