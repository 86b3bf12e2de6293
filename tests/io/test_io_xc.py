"""XC repository text format: real Bibtex files, round trips, agreement with sklearn, malformed input."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_svmlight_file

import sparsexc.io.xc as xc_module
from sparsexc.datasets.registry import BUNDLED_DIR
from sparsexc.io import DataFormatError, read_xc, read_xc_splits, write_xc
from sparsexc.io._xc_parse import parse_lines_careful, parse_lines_fast

# the published Bibtex file, byte for byte the one in ../shared/datasets/Bibtex (so these tests run everywhere)
BIBTEX = BUNDLED_DIR / "Bibtex_data.txt.gz"


@pytest.fixture
def careful_only(monkeypatch):
    """Force the line-by-line parser (the fast one declines every block)."""
    monkeypatch.setattr(xc_module, "parse_lines_fast", lambda *a: None)


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks of a few lines, so that line numbers must carry across blocks."""
    monkeypatch.setattr(xc_module, "_BLOCK_BYTES", 64)


def _assert_same(A, B):
    assert A.shape == B.shape
    assert A.dtype == B.dtype == np.float32
    A, B = sp.csr_matrix(A), sp.csr_matrix(B)
    assert A.has_sorted_indices and B.has_sorted_indices
    np.testing.assert_array_equal(A.indptr, B.indptr)
    np.testing.assert_array_equal(A.indices, B.indices)
    np.testing.assert_array_equal(A.data, B.data)


# ------------------------------------------------------------------------------------------ real data


def test_bibtex_shapes_and_statistics():
    X, Y = read_xc(BIBTEX)
    assert X.shape == (7395, 1836) and Y.shape == (7395, 159)
    assert X.dtype == np.float32 and Y.dtype == np.float32
    assert X.has_sorted_indices and Y.has_sorted_indices
    assert round(Y.nnz / Y.shape[0], 3) == 2.402
    assert round(X.nnz / X.shape[0], 2) == 68.66
    assert set(np.unique(Y.data)) == {1.0}
    assert X.indices.max() == 1835 and Y.indices.max() == 158


def test_bibtex_fast_and_careful_parsers_agree():
    raw = gzip.decompress(BIBTEX.read_bytes())
    body = raw[raw.index(b"\n") + 1 :]
    cut = 0
    for _ in range(1500):  # the first 1500 rows (CRLF line ends as published)
        cut = body.index(b"\n", cut) + 1
    block = body[:cut]
    fast = parse_lines_fast(block, 1836, 159)
    assert fast is not None  # the published file takes the vectorised path
    careful = parse_lines_careful(block, 2, "bibtex", 1836, 159)
    assert fast.x_counts.size == 1500
    for a, b in zip(fast, careful):
        np.testing.assert_array_equal(a, b)


def test_bibtex_splits(shared_datasets):
    tr = read_xc_splits(shared_datasets / "Bibtex" / "bibtex_trSplit.txt", n_rows=7395)
    te = read_xc_splits(shared_datasets / "Bibtex" / "bibtex_tstSplit.txt", n_rows=7395)
    assert tr.shape == (4880, 10) and te.shape == (2515, 10)
    assert tr.dtype == np.int64
    assert tr.min() == 0 and max(tr.max(), te.max()) == 7394  # 0-based
    for j in range(10):
        assert np.intersect1d(tr[:, j], te[:, j]).size == 0
        np.testing.assert_array_equal(np.union1d(tr[:, j], te[:, j]), np.arange(7395))


# ------------------------------------------------------------------------------------------ round trips


def _random_xy(rng, n=40, d=30, L=12):
    X = sp.random(n, d, density=0.2, format="csr", random_state=rng, dtype=np.float64).astype(np.float32)
    X.data = (rng.standard_normal(X.nnz) * 10.0 ** rng.integers(-8, 8, X.nnz)).astype(np.float32)
    Y = (sp.random(n, L, density=0.15, format="csr", random_state=rng) > 0).astype(np.float32)
    return X, Y


@pytest.mark.parametrize("name", ["data.txt", "data.txt.gz"])
def test_round_trip_with_empty_rows(tmp_path, name):
    rng = np.random.default_rng(0)
    X, Y = _random_xy(rng)
    X = X.tolil()
    Y = Y.tolil()
    X[3, :] = 0  # no feature, labels kept
    Y[5, :] = 0  # no label, features kept
    X[7, :] = 0
    Y[7, :] = 0  # nothing at all: an empty line
    X[39, :] = 0
    Y[39, :] = 0  # ... also as the last row
    X, Y = sp.csr_matrix(X), sp.csr_matrix(Y)
    X.eliminate_zeros()
    Y.eliminate_zeros()
    path = tmp_path / name
    write_xc(path, X, Y)
    with open(path, "rb") as fh:
        assert (fh.read(2) == b"\x1f\x8b") == name.endswith(".gz")
    X2, Y2 = read_xc(path)
    _assert_same(X2, X)
    _assert_same(Y2, Y)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind


def test_write_accepts_label_lists_and_is_atomic(tmp_path):
    path = tmp_path / "d.txt"
    X = sp.csr_matrix(np.array([[0, 1.5], [2, 0]], dtype=np.float32))
    write_xc(path, X, [[1, 0], []])
    assert path.read_bytes() == b"2 2 2\n0,1 1:1.5\n0:2\n"
    before = path.read_bytes()
    with pytest.raises(ValueError):
        write_xc(path, X, [[0]])  # row count mismatch: the old file stays
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.txt"]


def test_gzip_detected_by_content_not_name(tmp_path):
    plain = b"2 3 2\n0 0:1 2:0.5\n 1:2\n"
    path = tmp_path / "data.txt"  # gzip content, no .gz suffix
    path.write_bytes(gzip.compress(plain))
    X, Y = read_xc(path)
    assert X.toarray().tolist() == [[1, 0, 0.5], [0, 2, 0]]
    assert Y.toarray().tolist() == [[1, 0], [0, 0]]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 8),
    d=st.integers(1, 9),
    L=st.integers(1, 7),
    seed=st.integers(0, 2**32 - 1),
    values=st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=40),
)
def test_property_write_then_read_is_identity(tmp_path_factory, n, d, L, seed, values):
    rng = np.random.default_rng(seed)
    mask = rng.random((n, d)) < 0.4
    dense = np.zeros((n, d), dtype=np.float32)
    dense[mask] = np.resize(np.asarray(values, dtype=np.float32), int(mask.sum()))
    X = sp.csr_matrix(dense)
    X.eliminate_zeros()
    Y = sp.csr_matrix((rng.random((n, L)) < 0.3).astype(np.float32))
    path = tmp_path_factory.mktemp("rt") / "p.txt"
    write_xc(path, X, Y)
    X2, Y2 = read_xc(path)
    _assert_same(X2, X)
    _assert_same(Y2, Y)


# ------------------------------------------------------------------------------------------ sklearn


def test_agrees_with_sklearn_load_svmlight_file(tmp_path):
    rng = np.random.default_rng(1)
    n, d, L = 300, 500, 40
    lines = [f"{n} {d} {L}"]
    for _ in range(n):
        labels = np.sort(rng.choice(L, rng.integers(1, 5), replace=False))
        feats = np.sort(rng.choice(d, rng.integers(1, 30), replace=False))
        vals = rng.standard_normal(feats.size) * 10.0 ** rng.integers(-6, 4, feats.size)
        toks = [f"{f}:{v:.6g}" if k % 3 else f"{f}:{v:.6f}" for k, (f, v) in enumerate(zip(feats, vals))]
        lines.append(",".join(map(str, labels)) + " " + " ".join(toks))
    path = tmp_path / "gen.txt"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    X, Y = read_xc(path)
    header_end = path.read_bytes().index(b"\n")
    # offset points at the header's newline: sklearn drops the (here empty) line it lands in
    Xs, ys = load_svmlight_file(
        str(path), multilabel=True, zero_based=True, offset=header_end, n_features=d, dtype=np.float32
    )
    Xs.eliminate_zeros()
    _assert_same(X, Xs)
    assert [tuple(Y.indices[Y.indptr[i] : Y.indptr[i + 1]]) for i in range(n)] == [tuple(int(v) for v in t) for t in ys]


# ------------------------------------------------------------------------------------------ fast vs careful


_line = st.builds(
    lambda labels, feats, sep, lead, crlf, fmt: (
        lead
        + ",".join(str(x) for x in labels)
        + (sep if labels and feats else "")
        + sep.join(f"{f}:{fmt.format(v)}" for f, v in feats)
        + ("\r" if crlf else "")
    ),
    st.lists(st.integers(0, 9), unique=True, max_size=4),
    st.lists(
        st.tuples(st.integers(0, 19), st.floats(-1e6, 1e6, allow_nan=False)), max_size=5, unique_by=lambda t: t[0]
    ),
    st.sampled_from([" ", "\t", "  "]),
    st.sampled_from(["", " "]),
    st.booleans(),
    st.sampled_from(["{}", "{:.3f}", "{:.4e}", "{:+g}", "{:.0f}", "{:.17g}"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_line, max_size=12))
def test_property_fast_parser_matches_careful_parser(lines):
    block = ("\n".join(lines) + "\n").encode() if lines else b""
    careful = parse_lines_careful(block, 2, "mem", 20, 10)
    fast = parse_lines_fast(block, 20, 10)
    if fast is not None:
        for a, b in zip(fast, careful):
            np.testing.assert_array_equal(a, b)


@settings(max_examples=200, deadline=None)
@given(st.lists(_line, min_size=1, max_size=6), st.data())
def test_property_corrupted_files_give_data_format_error_or_the_careful_result(tmp_path_factory, lines, data):
    body = bytearray(("\n".join(lines) + "\n").encode())
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(body) - 1))
        body[pos] = data.draw(st.sampled_from(b"0123456789:,. -+eE\r\n\tx\xff"))
    n_rows = bytes(body).count(b"\n")
    path = tmp_path_factory.mktemp("fz") / "f.txt"
    path.write_bytes(b"%d 20 10\n" % n_rows + bytes(body))
    try:
        X, Y = read_xc(path)
    except DataFormatError as exc:
        assert exc.path == os.fspath(path)
        return
    careful = parse_lines_careful(bytes(body), 2, "mem", 20, 10)
    assert X.shape[0] == n_rows
    np.testing.assert_array_equal(X.indices, careful.feature_ids[careful.values != 0])
    np.testing.assert_array_equal(Y.indices, careful.label_ids)


# ------------------------------------------------------------------------------------------ malformed input

GOOD = "0,2 0:1 3:0.5\n1 1:2\n 2:1.5\n"  # three valid rows (lines 2-4)

MALFORMED = [
    # (content, expected line, field)
    ("", 1, "header"),
    ("3 4\n" + GOOD, 1, "header"),
    ("3 4 x\n" + GOOD, 1, "header"),
    ("3 4 3 1\n" + GOOD, 1, "header"),
    ("-3 4 3\n" + GOOD, 1, "header"),
    ("\n" + GOOD, 1, "header"),
    ("4 4 3\n" + GOOD, 1, "row count"),
    ("2 4 3\n" + GOOD, 4, "row count"),
    ("3 4 3\n" + GOOD.replace("1 1:2", "1 4:2"), 3, "feature id"),
    ("3 4 3\n" + GOOD.replace("1 1:2", "3 1:2"), 3, "label id"),
    ("3 4 3\n" + GOOD.replace("1 1:2", "-1 1:2"), 3, "label id"),
    ("3 4 3\n" + GOOD.replace("1 1:2", "1 -1:2"), 3, "feature id"),
    ("3 4 3\n" + GOOD.replace(" 2:1.5", " 2:abc"), 4, "feature value"),
    ("3 4 3\n" + GOOD.replace(" 2:1.5", " 2:nan"), 4, "feature value"),
    ("3 4 3\n" + GOOD.replace(" 2:1.5", " 2:inf"), 4, "feature value"),
    ("3 4 3\n" + GOOD.replace(" 2:1.5", " 2:1e39"), 4, "feature value"),
    ("3 4 3\n" + GOOD.replace(" 2:1.5", " 2:1.5.1"), 4, "feature value"),
    ("3 4 3\n" + GOOD.replace(" 2:1.5", " 2:"), 4, "feature value"),
    ("3 4 3\n" + GOOD.replace(" 2:1.5", " :1.5"), 4, "feature id"),
    ("3 4 3\n" + GOOD.replace(" 2:1.5", " 2:1:5"), 4, "feature value"),
    ("3 4 3\n" + GOOD.replace("1 1:2", "1 1=2"), 3, "feature"),
    ("3 4 3\n" + GOOD.replace("1 1:2", "1 1:2 2"), 3, "feature"),
    ("3 4 3\n" + GOOD.replace("1 1:2", "1 1:2 2,1"), 3, "feature"),
    ("3 4 3\n" + GOOD.replace("1 1:2", "1, 1:2"), 3, "label id"),
    ("3 4 3\n" + GOOD.replace("1 1:2", "1,,2 1:2"), 3, "label id"),
    ("3 4 3\n" + GOOD.replace("0,2 0:1 3:0.5", "0,2 0:1 3:0.5 0:2"), 2, "feature id"),
    ("3 4 3\n" + GOOD.replace("0,2 0:1", "2,2 0:1"), 2, "label id"),
    ("3 4 3\n" + GOOD.replace("1 1:2", "1.0 1:2"), 3, "label id"),
    ("3 4 3\n" + GOOD.replace("1 1:2", "1 1.0:2"), 3, "feature id"),
    ("3 4 3\n" + GOOD.replace("1 1:2", "1 1:2\xe9"), 3, "line"),
]


@pytest.mark.parametrize("mode", ["default", "tiny_blocks"])
@pytest.mark.parametrize("content,line,field", MALFORMED)
def test_malformed_files_raise_with_line_and_field(tmp_path, request, mode, content, line, field):
    if mode == "tiny_blocks":
        request.getfixturevalue("tiny_blocks")
    path = tmp_path / "bad.txt"
    # many good rows before the bad one: the line number must survive block boundaries
    lines = content.split("\n")
    if len(lines) > 2 and field != "header" and line > 1 and lines[0].split()[0].isdigit():
        pad = 50
        head = lines[0].split()
        lines = [f"{int(head[0]) + pad} {head[1]} {head[2]}"] + ["0 0:1"] * pad + lines[1:]
        line += pad
    path.write_bytes("\n".join(lines).encode("latin-1"))
    with pytest.raises(DataFormatError) as info:
        read_xc(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.path == os.fspath(path)
    assert err.line == line, str(err)
    assert err.field == field, str(err)
    assert f"line {line}" in str(err)


def test_trailing_blank_lines_are_not_rows(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"2 2 2\n0 0:1\n1 1:1\n\n  \n")
    X, _ = read_xc(path)
    assert X.shape == (2, 2)


def test_missing_file_truncated_gzip_and_directory(tmp_path):
    with pytest.raises(DataFormatError, match="an existing file"):
        read_xc(tmp_path / "nope.txt")
    with pytest.raises(DataFormatError, match="a file"):
        read_xc(tmp_path)
    rows = "".join(f"{i % 3} {i % 4}:{i}.5\n" for i in range(5000))
    blob = gzip.compress(f"5000 4 3\n{rows}".encode())
    (tmp_path / "t.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataFormatError, match="gzip") as info:
        read_xc(tmp_path / "t.gz")
    assert info.value.line is None
    corrupt = bytearray(blob)
    corrupt[len(blob) // 2 : len(blob) // 2 + 40] = b"\x00" * 40
    (tmp_path / "c.gz").write_bytes(bytes(corrupt))
    with pytest.raises(DataFormatError):
        read_xc(tmp_path / "c.gz")


def test_width_arguments(tmp_path):
    path = tmp_path / "w.txt"
    path.write_bytes(b"1 3 2\n1 2:1\n")
    X, Y = read_xc(path, n_features=10, n_labels=5)
    assert X.shape == (1, 10) and Y.shape == (1, 5)
    with pytest.raises(ValueError, match="n_features"):
        read_xc(path, n_features=2)


@pytest.mark.parametrize(
    "content,line,field",
    [
        ("1 2\n3 4 5\n", 2, "columns"),
        ("1 2\n0 4\n", 2, "row id"),
        ("1 2\n3 x\n", 2, "row id"),
        ("1 2\n3 -4\n", 2, "row id"),
        ("1 2\n3 9\n", 2, "row id"),  # n_rows=5
        ("1 2\n1 3\n", 2, "split 1"),
    ],
)
def test_malformed_split_files(tmp_path, content, line, field):
    path = tmp_path / "s.txt"
    path.write_text(content)
    with pytest.raises(DataFormatError) as info:
        read_xc_splits(path, n_rows=5)
    assert (info.value.line, info.value.field) == (line, field)
