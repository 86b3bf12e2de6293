"""A seeded mutation corpus of multi-label files for the reader fuzz test (tests/io/test_fuzz_readers.py).

Seeds are small slices of real files: the bundled Bibtex (always there) written as XC text, svmlight, Mulan
and MEKA ARFF and ``.mat``, plus slices of ../shared/datasets files when that folder exists. Each variant is
one mutation of one seed, chosen by ``(format, index)`` alone (``numpy.random.default_rng``), so a run is
reproducible and a failure names its variant. A mutation also says what a correct reader must do with it:

* ``"reject"``: raise :class:`sparsexc.io.DataFormatError` (a non-finite or float32-overflowing value, an id
  of 2**31 or more, ``_`` in a number, an empty file, a truncated gzip stream, a corrupt sparse array);
* ``"same"``: read exactly as the seed does (CRLF line ends, the whole file gzipped);
* ``"any"``: either (a truncation, byte flips, a deleted line, ...), but never anything else.
"""

from __future__ import annotations

import functools
import gzip
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

from sparsexc.datasets.registry import BUNDLED_DIR

FORMATS = ("xc", "svmlight", "arff_mulan", "arff_meka", "mat")
BUNDLED_BIBTEX = BUNDLED_DIR / "Bibtex_data.txt.gz"
HUGE_IDS = (b"2147483648", b"9223372036854775808", b"18446744073709551616", b"7" * 5000)
BAD_VALUES = (b"1e400", b"-1e400", b"1e39", b"-1e39", b"nan", b"NaN", b"inf", b"-inf", b"Infinity")


@dataclass
class Seed:
    """A valid file of one format: its bytes, and a side file (Mulan XML) it needs."""

    name: str
    data: bytes
    suffix: str
    label_xml: bytes | None = None
    path: str | None = None  # where the test wrote it
    xml_path: str | None = None


@dataclass
class Variant:
    """One mutated file: what was done and what a correct reader must do (``reject``, ``same`` or ``any``)."""

    fmt: str
    index: int
    seed: Seed
    kind: str
    data: bytes
    expect: str
    note: str = field(default="")


# ----------------------------------------------------------------------------------------------- seeds


@functools.lru_cache(maxsize=1)
def _bibtex() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    from sparsexc.io import read_xc

    X, Y = read_xc(BUNDLED_BIBTEX)
    return X.astype(np.float64), Y.astype(np.float64)


def _bibtex_rows(rows: slice) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    X, Y = _bibtex()
    return X[rows], Y[rows]


def _xc_text(X: sp.csr_matrix, Y: sp.csr_matrix, header: bool = True, newline: bytes = b"\n") -> bytes:
    lines = [b"%d %d %d" % (X.shape[0], X.shape[1], Y.shape[1])] if header else []
    for i in range(X.shape[0]):
        labels = b",".join(b"%d" % j for j in Y.indices[Y.indptr[i] : Y.indptr[i + 1]])
        pairs = [
            b"%d:%s" % (j, repr(float(v)).encode())
            for j, v in zip(X.indices[X.indptr[i] : X.indptr[i + 1]], X.data[X.indptr[i] : X.indptr[i + 1]])
        ]
        lines.append(b" ".join(([labels] if labels else []) + pairs))
    return newline.join(lines) + newline


def _arff_sparse(X: sp.csr_matrix, Y: sp.csr_matrix, relation: str, labels_first: bool) -> tuple[bytes, bytes]:
    d, L = X.shape[1], Y.shape[1]
    feats = [f"@attribute f{j} numeric" for j in range(d)]
    labs = [f"@attribute lab{j} {{0,1}}" for j in range(L)]
    head = [f"@relation '{relation}'", ""] + (labs + feats if labels_first else feats + labs) + ["", "@data"]
    x_off, y_off = (L, 0) if labels_first else (0, d)
    rows = []
    for i in range(X.shape[0]):
        items = [
            (x_off + int(j), repr(float(v)))
            for j, v in zip(X.indices[X.indptr[i] : X.indptr[i + 1]], X.data[X.indptr[i] : X.indptr[i + 1]])
        ]
        items += [(y_off + int(j), "1") for j in Y.indices[Y.indptr[i] : Y.indptr[i + 1]]]
        rows.append("{" + ",".join(f"{c} {v}" for c, v in sorted(items)) + "}")
    xml = '<?xml version="1.0" encoding="utf-8"?>\n<labels xmlns="http://mulan.sourceforge.net/labels">\n'
    xml += "".join(f'<label name="lab{j}"></label>\n' for j in range(L)) + "</labels>\n"
    return ("\n".join(head + rows) + "\n").encode(), xml.encode()


def _mat_bytes(variables: dict, compress: bool, version: str = "5") -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, variables, do_compression=compress, format=version)
    return buf.getvalue()


def _arff_slice(path: Path, n_rows: int) -> bytes:
    """Header and the first ``n_rows`` data lines of an ARFF file (gzip or not)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    lines = raw.split(b"\n")
    start = next(k for k, line in enumerate(lines) if line.strip().lower().startswith(b"@data")) + 1
    return b"\n".join(lines[: start + n_rows]) + b"\n"


def build_seeds(shared: Path | None) -> dict[str, list[Seed]]:
    """The seed files of every format (``shared``: the ../shared/datasets folder, or None)."""
    X, Y = _bibtex_rows(slice(0, 40))
    X2, Y2 = _bibtex_rows(slice(2000, 2030))
    mulan, xml = _arff_sparse(X, Y, "bibtex-slice", labels_first=False)
    meka, _ = _arff_sparse(X2, Y2, f"bibtex-slice: -C {Y2.shape[1]}", labels_first=True)
    Xc, Tc = X.tocsc(), sp.csc_matrix(Y.T)
    split = {
        "train_data": X2[:20].tocsc(),
        "train_target": sp.csc_matrix(Y2[:20].T),
        "test_data": X2[20:].tocsc(),
        "test_target": sp.csc_matrix(Y2[20:].T),
    }
    seeds: dict[str, list[Seed]] = {
        "xc": [
            Seed("bibtex-40", _xc_text(X, Y), ".txt"),
            Seed("bibtex-30-crlf", _xc_text(X2, Y2, newline=b"\r\n"), ".txt"),
        ],
        "svmlight": [
            Seed("bibtex-40", _xc_text(X, Y, header=False), ".svm"),
            Seed("bibtex-30", _xc_text(X2, Y2, header=False), ".svm"),
        ],
        "arff_mulan": [Seed("bibtex-40", mulan, ".arff", xml)],
        "arff_meka": [Seed("bibtex-30", meka, ".arff")],
        "mat": [
            Seed("bibtex-40-sparse", _mat_bytes({"data": Xc, "target": Tc}, compress=False), ".mat"),
            Seed("bibtex-40-sparse-z", _mat_bytes({"data": Xc, "target": Tc}, compress=True), ".mat"),
            Seed("bibtex-split-sparse", _mat_bytes(split, compress=False), ".mat"),
            Seed("bibtex-40-sparse-v4", _mat_bytes({"data": Xc, "target": Tc}, compress=False, version="4"), ".mat"),
        ],
    }
    if shared is not None and shared.is_dir():
        emo = shared / "mulan-emotions"
        seeds["arff_mulan"] += [
            Seed(
                "emotions-25",
                _arff_slice(emo / "emotions-train.arff", 25),
                ".arff",
                (emo / "emotions.xml").read_bytes(),
            ),
            Seed(
                "corel5k-25",
                _arff_slice(shared / "mulan-corel5k" / "Corel5k-train-sparse.arff", 25),
                ".arff",
                (shared / "mulan-corel5k" / "Corel5k.xml").read_bytes(),
            ),
        ]
        seeds["arff_meka"].append(
            Seed("imdb-25", gzip.compress(_arff_slice(shared / "meka-imdb" / "Imdb.arff.gz", 25), mtime=0), ".arff.gz")
        )
        xc_full = gzip.decompress((shared / "Bibtex" / "Bibtex_data.txt.gz").read_bytes()).split(b"\n")
        body = xc_full[1001:1031]  # 30 rows from the middle of the real file, its CRLF line ends kept
        seeds["xc"].append(Seed("Bibtex-real-30", b"30 1836 159\r\n" + b"\n".join(body) + b"\n", ".txt"))
        slash = scipy.io.loadmat(shared / "slashdot-mat" / "slashdot.mat")
        seeds["mat"] += [
            Seed("languagelog-real", (shared / "languagelog-mat" / "languagelog.mat").read_bytes(), ".mat"),
            Seed(
                "slashdot-40-dense",
                _mat_bytes({"data": slash["data"][:40], "target": slash["target"][:, :40]}, compress=False),
                ".mat",
            ),
        ]
    return seeds


# ----------------------------------------------------------------------------------------------- mutations

_NUMBER = re.compile(rb"[0-9]+(?:\.[0-9]+)?(?:e-?[0-9]+)?")


def _data_lines(fmt: str, text: bytes) -> tuple[list[bytes], int]:
    """Lines of a text seed (ends kept apart) and the index of the first data line."""
    lines = text.split(b"\n")
    if fmt == "xc":
        return lines, 1
    if fmt.startswith("arff"):
        return lines, next(k for k, line in enumerate(lines) if line.strip().lower().startswith(b"@data")) + 1
    return lines, 0


def _pick_line(rng, lines: list[bytes], first: int, need: bytes = b"") -> int:
    candidates = [k for k in range(first, len(lines)) if lines[k].strip() and need in lines[k]]
    return int(rng.choice(candidates))


def _replace_token(rng, fmt: str, text: bytes, what: str, new: bytes) -> tuple[bytes, bool]:
    """Put ``new`` in place of a feature id (``what="id"``) or a value (``"value"``) of a data line; also
    whether it went where asked (a dense ARFF row has no ids: there it replaces a value)."""
    lines, first = _data_lines(fmt, text)
    k = _pick_line(rng, lines, first, b":" if fmt in ("xc", "svmlight") else b"")
    line = lines[k]
    if fmt in ("xc", "svmlight"):
        pairs = [m for m in re.finditer(rb"([0-9]+):([^ \r\n]+)", line)]
        m = pairs[int(rng.integers(len(pairs)))]
        span = m.span(1) if what == "id" else m.span(2)
    elif line.startswith(b"{"):
        pairs = [m for m in re.finditer(rb"([0-9]+) ([^,}]+)", line)]
        m = pairs[int(rng.integers(len(pairs)))]
        span = m.span(1) if what == "id" else m.span(2)
    else:  # dense ARFF: any value
        fields = [m for m in re.finditer(rb"[^,\r]+", line)]
        m = fields[int(rng.integers(len(fields)))]
        lines[k] = line[: m.start()] + new + line[m.end() :]
        return b"\n".join(lines), what == "value"
    lines[k] = line[: span[0]] + new + line[span[1] :]
    return b"\n".join(lines), True


def _text_mutation(rng, fmt: str, kind: str, text: bytes) -> tuple[bytes, str]:
    lines, first = _data_lines(fmt, text)
    if kind == "truncate":
        return text[: int(rng.integers(0, len(text)))], "any"
    if kind == "flip":
        b = bytearray(text)
        for _ in range(int(rng.integers(1, 6))):
            b[int(rng.integers(len(b)))] ^= int(rng.integers(1, 256))
        return bytes(b), "any"
    if kind == "delete_line":
        del lines[int(rng.integers(len(lines)))]
        return b"\n".join(lines), "any"
    if kind == "duplicate_line":
        k = int(rng.integers(len(lines)))
        lines.insert(k, lines[k])
        return b"\n".join(lines), "any"
    if kind == "header_count":
        if fmt == "xc":
            fields = lines[0].split()
            j = int(rng.integers(3))
            choices = [
                b"%d" % max(0, int(fields[j]) + int(rng.integers(-3, 4))),
                b"0",
                b"18446744073709551616",
                b"2147483648",
                b"9" * 5000,
            ]
            new = choices[int(rng.integers(len(choices)))]
            fields[j] = new
            lines[0] = b" ".join(fields) + (b"\r" if lines[0].endswith(b"\r") else b"")
            return b"\n".join(lines), "reject" if len(new) > 10 or int(new) > 2**31 - 1 else "any"
        if fmt == "arff_meka":
            new = [b"0", b"-1", b"1", b"99999", b"-99999", b"9" * 5000][int(rng.integers(6))]
            return re.sub(rb"-C -?[0-9]+", b"-C " + new, text, count=1), "any"
        if fmt == "arff_mulan":
            attrs = [k for k, line in enumerate(lines) if line.lower().startswith(b"@attribute")]
            del lines[int(rng.choice(attrs))]  # one attribute fewer than the rows hold
            return b"\n".join(lines), "any"
        return text, "any"  # svmlight has no header
    if kind == "huge_id":  # as a value (dense ARFF), 2**31 .. 2**64 are ordinary finite numbers
        new = HUGE_IDS[int(rng.integers(len(HUGE_IDS)))]
        out, as_id = _replace_token(rng, fmt, text, "id", new)
        return out, "reject" if as_id or len(new) > 40 else "any"
    if kind == "bad_value":
        return _replace_token(rng, fmt, text, "value", BAD_VALUES[int(rng.integers(len(BAD_VALUES)))])[0], "reject"
    if kind == "underscore":
        k = _pick_line(rng, lines, first)
        runs = [m for m in re.finditer(rb"[0-9]{2,}", lines[k])]
        if not runs:
            return text, "same"
        m = runs[int(rng.integers(len(runs)))]
        cut = int(rng.integers(m.start() + 1, m.end()))
        lines[k] = lines[k][:cut] + b"_" + lines[k][cut:]
        return b"\n".join(lines), "reject"
    if kind == "bom":
        return b"\xef\xbb\xbf" + text, "any"
    if kind == "crlf":
        return re.sub(rb"\r?\n", b"\r\n", text), "same"
    if kind == "gzip":
        return gzip.compress(text, mtime=0), "same"
    if kind == "gzip_truncate":
        z = gzip.compress(text, mtime=0)
        return z[: int(rng.integers(2, len(z) - 1))], "reject"
    if kind == "empty":
        return b"", "reject"
    if kind == "garbage_line":
        junk = bytes(rng.integers(32, 127, size=int(rng.integers(1, 40)), dtype=np.uint8))
        lines.insert(int(rng.integers(first, len(lines) + 1)), junk)
        return b"\n".join(lines), "any"
    raise ValueError(kind)


TEXT_KINDS = (
    "truncate",
    "flip",
    "delete_line",
    "duplicate_line",
    "header_count",
    "huge_id",
    "bad_value",
    "underscore",
    "bom",
    "crlf",
    "gzip",
    "gzip_truncate",
    "empty",
    "garbage_line",
    "flip",
    "truncate",
)
MAT_KINDS = (
    "truncate",
    "flip",
    "flip",
    "csc_index",
    "csc_pointer",
    "csc_shape",
    "bad_value",
    "complex",
    "huge_rows",
    "empty",
    "garbage_tail",
    "flip",
)


def _find_array(data: bytes, arr: np.ndarray) -> int:
    """Offset of ``arr``'s bytes (as int32 or float64, little-endian) in ``data``; -1 if absent."""
    return data.find(arr.tobytes())


def _mat_mutation(rng, kind: str, seed: Seed) -> tuple[bytes, str]:
    data = seed.data
    if kind == "truncate":
        return data[: int(rng.integers(0, len(data)))], "any"
    if kind in ("flip", "garbage_tail"):
        b = bytearray(data)
        if kind == "garbage_tail":
            return bytes(b) + bytes(rng.integers(0, 256, size=int(rng.integers(1, 200)), dtype=np.uint8)), "any"
        for _ in range(int(rng.integers(1, 6))):
            b[int(rng.integers(len(b)))] ^= int(rng.integers(1, 256))
        return bytes(b), "any"
    if kind == "empty":
        return b"", "reject"
    # structured corruptions of a sparse seed, written uncompressed so the arrays can be found and edited
    X, Y = _bibtex_rows(slice(100, 120))
    Xc, Tc = X.tocsc(), sp.csc_matrix(Y.T)
    if kind == "complex":
        Z = sp.csc_matrix(Xc.astype(np.complex128) * (1 + 1j)) if rng.integers(2) else Xc.toarray() * (1 + 0.5j)
        return _mat_bytes({"data": Z, "target": Tc}, compress=False), "reject"
    if kind == "bad_value":
        v = [1e39, -1e39, np.inf, -np.inf, np.nan, 1e300][int(rng.integers(6))]
        if rng.integers(2):
            Xd = Xc.copy()
            Xd.data[int(rng.integers(Xd.nnz))] = v
        else:
            Xd = Xc.toarray()
            Xd[int(rng.integers(Xd.shape[0])), int(rng.integers(Xd.shape[1]))] = v
        return _mat_bytes({"data": Xd, "target": Tc}, compress=False), "reject"
    if kind == "huge_rows":  # a sparse matrix's row count costs nothing in the file
        big = 10**9 if rng.integers(2) else 2**31 - 1
        if rng.integers(2):
            M = sp.csc_matrix((Xc.data, Xc.indices, Xc.indptr), shape=(big, Xc.shape[1]))
            T = sp.csc_matrix((big, Tc.shape[0]))  # instances x labels, so that its pointers stay small too
            return _mat_bytes({"data": M, "target": T}, compress=False), "reject"
        T = sp.csc_matrix((Tc.data, Tc.indices, Tc.indptr), shape=(big, Tc.shape[1]))  # 10**9 labels x 20 rows
        return _mat_bytes({"data": Xc, "target": T}, compress=True), "any"
    raw = _mat_bytes({"data": Xc, "target": Tc}, compress=False)
    b = bytearray(raw)
    if kind == "csc_index":
        at = _find_array(raw, Xc.indices.astype("<i4"))
        pos = int(rng.integers(Xc.nnz))
        new = [20, 10**6, -1, 2**31 - 1, -(2**31)][int(rng.integers(5))]
        b[at + 4 * pos : at + 4 * pos + 4] = np.int32(new).tobytes()
        return bytes(b), "reject"
    if kind == "csc_pointer":
        at = _find_array(raw, Xc.indptr.astype("<i4"))
        pos = int(rng.integers(1, Xc.shape[1] + 1))
        # beyond the stored entries, negative, or below the previous pointer (not monotone)
        new = [Xc.nnz + 1, Xc.nnz + 10**6, -5, 2**31 - 1, int(Xc.indptr[pos - 1]) - 1][int(rng.integers(5))]
        b[at + 4 * pos : at + 4 * pos + 4] = np.int32(new).tobytes()
        return bytes(b), "reject"
    if kind == "csc_shape":  # the dimensions subelement: [int32 5, int32 8, rows, cols]
        dims = np.array([5, 8, Xc.shape[0], Xc.shape[1]], dtype="<i4")
        at = _find_array(raw, dims)
        j = int(rng.integers(2))
        new = [0, 1, 2**31 - 1, -1, Xc.shape[j] - 1][int(rng.integers(5))]
        b[at + 8 + 4 * j : at + 12 + 4 * j] = np.int32(new).tobytes()
        return bytes(b), "any"
    raise ValueError(kind)


def variant(fmt: str, index: int, seeds: dict[str, list[Seed]]) -> Variant:
    """Variant ``index`` of format ``fmt``: the kind cycles through the mutation list, the rest is drawn from
    ``numpy.random.default_rng([format number, index])``."""
    rng = np.random.default_rng([FORMATS.index(fmt), index])
    seed = seeds[fmt][int(rng.integers(len(seeds[fmt])))]
    if fmt == "mat":
        kind = MAT_KINDS[index % len(MAT_KINDS)]
        data, expect = _mat_mutation(rng, kind, seed)
    else:
        kind = TEXT_KINDS[index % len(TEXT_KINDS)]
        text = gzip.decompress(seed.data) if seed.data[:2] == b"\x1f\x8b" else seed.data
        data, expect = _text_mutation(rng, fmt, kind, text)
        if seed.data[:2] == b"\x1f\x8b" and kind not in ("gzip", "gzip_truncate", "empty"):
            data = gzip.compress(data, mtime=0)  # a gzipped seed stays gzipped
    return Variant(fmt, index, seed, kind, data, expect)
