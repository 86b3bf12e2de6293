"""Mulan / MEKA ARFF files: every shared data set, the Bibtex cross-check, and malformed input."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from sparsexc.io import DataFormatError, MultiLabelData, read_arff, read_xc
from sparsexc.io.arff import sibling_label_xml

# (folder, file, rows, feature attributes, labels, label cardinality) as verified in each SOURCE.md (genbase:
# 1186 attributes less the 'protein' row identifier, which read_arff drops)
MULAN = [
    ("mulan-bibtex", "bibtex-train.arff", "bibtex.xml", 4880, 1836, 159, 2.38),
    ("mulan-bibtex", "bibtex-test.arff", "bibtex.xml", 2515, 1836, 159, 2.444),
    ("mulan-birds", "birds-train.arff", "birds.xml", 322, 260, 19, 1.059),
    ("mulan-birds", "birds-test.arff", "birds.xml", 323, 260, 19, 0.969),
    ("mulan-cal500", "cal500.arff", "cal500.xml", 502, 68, 174, 26.044),
    ("mulan-corel5k", "Corel5k-train-sparse.arff", "Corel5k.xml", 4500, 499, 374, 3.522),
    ("mulan-corel5k", "Corel5k-test-sparse.arff", "Corel5k.xml", 500, 499, 374, 3.526),
    ("mulan-delicious", "delicious-train.arff", "delicious.xml", 12920, 500, 983, 19.047),
    ("mulan-delicious", "delicious-test.arff", "delicious.xml", 3185, 500, 983, 18.91),
    ("mulan-emotions", "emotions-train.arff", "emotions.xml", 391, 72, 6, 1.813),
    ("mulan-emotions", "emotions-test.arff", "emotions.xml", 202, 72, 6, 1.975),
    ("mulan-enron", "enron-train.arff", "enron.xml", 1123, 1001, 53, 3.386),
    ("mulan-enron", "enron-test.arff", "enron.xml", 579, 1001, 53, 3.363),
    ("mulan-flags", "flags-train.arff", "flags.xml", 129, 19, 7, 3.419),
    ("mulan-flags", "flags-test.arff", "flags.xml", 65, 19, 7, 3.338),
    ("mulan-genbase", "genbase-train.arff", "genbase.xml", 463, 1185, 27, 1.261),
    ("mulan-genbase", "genbase-test.arff", "genbase.xml", 199, 1185, 27, 1.231),
    ("mulan-medical", "medical-train.arff", "medical.xml", 333, 1449, 45, 1.255),
    ("mulan-medical", "medical-test.arff", "medical.xml", 645, 1449, 45, 1.24),
    ("mulan-scene", "scene-train.arff", "scene.xml", 1211, 294, 6, 1.062),
    ("mulan-scene", "scene-test.arff", "scene.xml", 1196, 294, 6, 1.086),
    ("mulan-tmc2007-500", "tmc2007-500-train.arff", "tmc2007-500.xml", 21519, 500, 22, 2.226),
    ("mulan-tmc2007-500", "tmc2007-500-test.arff", "tmc2007-500.xml", 7077, 500, 22, 1.952),
    ("mulan-yeast", "yeast-train.arff", "yeast.xml", 1500, 103, 14, 4.228),
    ("mulan-yeast", "yeast-test.arff", "yeast.xml", 917, 103, 14, 4.252),
]


@pytest.mark.parametrize("folder,name,xml,rows,features,labels,cardinality", MULAN)
def test_mulan_shapes_and_cardinality(shared_datasets, folder, name, xml, rows, features, labels, cardinality):
    data = read_arff(shared_datasets / folder / name, shared_datasets / folder / xml)
    assert isinstance(data, MultiLabelData)
    assert len(data.meta["feature_attributes"]) == features  # birds, flags: more columns (nominal indicators)
    assert data.X.shape == (rows, len(data.feature_names)) and data.Y.shape == (rows, labels)
    assert data.X.dtype == np.float32 and data.Y.dtype == np.float32
    assert data.X.has_sorted_indices and data.Y.has_sorted_indices
    assert set(np.unique(data.Y.data)) <= {1.0}
    assert round(data.Y.nnz / rows, 3) == cardinality
    assert len(data.label_names) == labels
    assert np.all(np.isfinite(data.X.data))


def test_birds_has_rows_without_labels_and_quoted_names(shared_datasets):
    d = read_arff(shared_datasets / "mulan-birds" / "birds-test.arff", shared_datasets / "mulan-birds" / "birds.xml")
    assert int((d.Y.getnnz(axis=1) == 0).sum()) > 0
    assert "Stellar's Jay" in d.label_names  # ARFF 'Stellar\'s Jay' unescaped, matched to the XML name
    # hasSegments {0,1} is one 0/1 column; location {2,10,1,...} one indicator per value but the first
    assert d.feature_names[0] == "audio-ssd1"
    assert "hasSegments" in d.feature_names and "location=10" in d.feature_names
    assert "location=2" not in d.feature_names  # the first declared value: all zeros


def test_delicious_backslash_label_name(shared_datasets):
    d = read_arff(
        shared_datasets / "mulan-delicious" / "delicious-test.arff",
        shared_datasets / "mulan-delicious" / "delicious.xml",
    )
    assert "TAG_m\\'usica" in d.label_names and "TAG_musica" in d.label_names


def test_genbase_protein_id_dropped_and_yes_no_nominals(shared_datasets):
    folder = shared_datasets / "mulan-genbase"
    d = read_arff(folder / "genbase-train.arff", folder / "genbase.xml")
    assert d.n_features == 1185 and "protein" not in d.feature_names  # the row identifier is dropped by rule
    assert list(d.meta["dropped_attributes"]) == ["protein"]
    # {YES,NO}: YES -> 1, NO -> 0; the first row holds YES for exactly the motifs listed as YES in the file
    first = next(
        row for row in (folder / "genbase-train.arff").read_text().split("@data")[1].splitlines() if row.strip()
    )
    yes = [i - 1 for i, v in enumerate(first.split(",")[1:1186], start=1) if v == "YES"]
    assert d.X[0].indices.tolist() == yes and set(d.X.data) == {1.0}


def test_flags_nominal_values_become_indicators(shared_datasets):
    folder = shared_datasets / "mulan-flags"
    d = read_arff(folder / "flags-train.arff", folder / "flags.xml")
    first = (folder / "flags-train.arff").read_text().split("@data")[1].split()[0].split(",")
    row = dict(zip(d.feature_names, d.X[0].toarray().ravel()))
    # landmass {1,...,6} -> landmass=2..landmass=6 (landmass=1 is all zeros); zone {1,2,3,4}: '1' sets nothing
    assert first[:2] == ["4", "1"] and row["landmass=4"] == 1 and sum(row[f"landmass={v}"] for v in "23456") == 1
    assert sum(row[f"zone={v}"] for v in "234") == 0 and row["area"] == float(first[2])


def test_cal500_dense_values(shared_datasets):
    folder = shared_datasets / "mulan-cal500"
    d = read_arff(folder / "cal500.arff", folder / "cal500.xml")
    text = (folder / "cal500.arff").read_text()
    first = next(row for row in text.split("@data")[1].splitlines() if row.strip()).split(",")
    np.testing.assert_array_equal(d.X[0].toarray().ravel(), np.float32([float(v) for v in first[:68]]))


def test_meka_imdb(shared_datasets):
    d = read_arff(shared_datasets / "meka-imdb" / "Imdb.arff.gz")
    assert d.X.shape == (120919, 1001) and d.Y.shape == (120919, 28)
    assert round(d.Y.nnz / d.n_samples, 2) == 2.0
    assert d.label_names[:2] == ["Sci-Fi", "Crime"] and d.meta["format"] == "meka"


def test_bibtex_xc_rows_equal_mulan_arff_rows(shared_datasets):
    X, Y = read_xc(shared_datasets / "Bibtex" / "Bibtex_data.txt.gz")
    folder = shared_datasets / "mulan-bibtex"
    parts = [read_arff(folder / f, folder / "bibtex.xml") for f in ("bibtex-train.arff", "bibtex-test.arff")]

    def rows(Xm, Ym):
        return Counter(
            (tuple(Xm.indices[Xm.indptr[i] : Xm.indptr[i + 1]]), tuple(Ym.indices[Ym.indptr[i] : Ym.indptr[i + 1]]))
            for i in range(Xm.shape[0])
        )

    arff_rows = rows(parts[0].X, parts[0].Y) + rows(parts[1].X, parts[1].Y)
    assert sum(arff_rows.values()) == 7395
    assert rows(X, Y) == arff_rows


# ------------------------------------------------------------------------------------------ synthetic

XML = '<?xml version="1.0"?><labels xmlns="http://mulan.sourceforge.net/labels"><label name="y1"></label><label name="y 2"></label></labels>'

HEAD = """% a comment
@RELATION test
@attribute f1 numeric
@attribute 'y 2' {0,1}
@attribute color {red, 'dark blue', green}
@attribute y1 {0,1}
@attribute f2 REAL
"""


def _write(tmp_path, body, head=HEAD, xml=XML):
    arff = tmp_path / "t.arff"
    arff.write_text(head + body)
    (tmp_path / "t.xml").write_text(xml)
    return arff, tmp_path / "t.xml"


def test_synthetic_dense_and_sparse_rows(tmp_path):
    arff, xml = _write(tmp_path, "@DATA\n1.5,1,'dark blue',0,-2\n% comment\n\n{0 3, 2 green, 3 1}\n{}\n")
    d = read_arff(arff, xml)
    assert d.feature_names == ["f1", "color=dark blue", "color=green", "f2"]  # color=red: both 0
    assert d.label_names == ["y 2", "y1"]  # attribute order
    np.testing.assert_array_equal(d.X.toarray(), [[1.5, 1, 0, -2], [3, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(d.Y.toarray(), [[1, 0], [0, 1], [0, 0]])


def test_meka_last_labels(tmp_path):
    head = "@relation 'x: -C -2'\n@attribute a numeric\n@attribute b {0,1}\n@attribute c {0,1}\n@data\n"
    arff = tmp_path / "m.arff"
    arff.write_text(head + "0.5,1,0\n{0 2, 2 1}\n")
    d = read_arff(arff)
    assert d.label_names == ["b", "c"] and d.feature_names == ["a"]
    np.testing.assert_array_equal(d.Y.toarray(), [[1, 0], [0, 1]])


def test_missing_values(tmp_path):
    arff, xml = _write(tmp_path, "@data\n1.5,1,red,0,?\n")
    with pytest.raises(DataFormatError) as info:
        read_arff(arff, xml)
    assert info.value.line == 9 and "f2" in info.value.field
    d = read_arff(arff, xml, missing="zero")
    assert d.X[0, d.feature_names.index("f2")] == 0 and d.X[0, d.feature_names.index("f1")] == 1.5


@pytest.mark.parametrize(
    "body,line,match",
    [
        ("@data\n1.5,1,red,0\n", 9, "5 comma-separated values"),
        ("@data\n1.5,1,red,0,1,2\n", 9, "5 comma-separated values"),
        ("@data\n1.5,1,blue,0,1\n", 9, "nominal values"),
        ("@data\n1.5,2,red,0,1\n", 9, "nominal values"),
        ("@data\nabc,1,red,0,1\n", 9, "finite number"),
        ("@data\nnan,1,red,0,1\n", 9, "finite number"),
        ("@data\n{0 1, 7 1}\n", 9, "attribute index < 5"),
        ("@data\n{0 1, 0 2}\n", 9, "at most once"),
        ("@data\n{0 1, x}\n", 9, "index value"),
        ("@data\n{0 1\n", 9, "ending with"),
        ("", None, "@data"),
    ],
)
def test_malformed_arff(tmp_path, body, line, match):
    arff, xml = _write(tmp_path, body)
    with pytest.raises(DataFormatError, match=match) as info:
        read_arff(arff, xml)
    assert info.value.line == line


def test_label_values_must_be_binary_and_known(tmp_path):
    head = "@relation r\n@attribute f numeric\n@attribute y1 numeric\n@attribute 'y 2' {0,1}\n@data\n"
    arff, xml = _write(tmp_path, "1,2,0\n", head=head)
    with pytest.raises(DataFormatError, match="0 or 1") as info:
        read_arff(arff, xml)
    assert info.value.line == 6
    arff, xml = _write(tmp_path, "@data\n", xml=XML.replace('"y1"', '"nope"'))
    with pytest.raises(DataFormatError, match="nope"):
        read_arff(arff, xml)
    arff, xml = _write(tmp_path, "@data\n")
    with pytest.raises(ValueError, match="not an attribute"):
        read_arff(arff, xml, drop_attributes=["zzz"])
    xml.unlink()
    with pytest.raises(DataFormatError, match=r"no MEKA '-C n'; pass label_xml PATH .* or put t\.xml beside the file"):
        read_arff(arff)  # no XML (given or beside the file) and no MEKA -C
    with pytest.raises(DataFormatError, match="--label-xml PATH"):
        read_arff(arff, label_xml_option="--label-xml")  # the CLI names its flag


@pytest.mark.parametrize("name", ["d.arff", "d-train.arff", "d-test.arff", "d_train-sparse.arff", "d.arff.gz"])
def test_mulan_label_file_beside_the_arff_is_found(tmp_path, name):
    # Mulan ships NAME.xml with NAME.arff or NAME-train.arff / NAME-test.arff (Corel5k: -train-sparse)
    given = read_arff(*_write(tmp_path, "@data\n1.5,1,red,0,-2\n0,0,green,1,3\n"))
    arff = tmp_path / name
    (tmp_path / "t.arff").rename(arff)
    (tmp_path / "t.xml").rename(tmp_path / "d.xml")
    assert sibling_label_xml(arff) == str(tmp_path / "d.xml")
    found = read_arff(arff)
    assert found.label_names == given.label_names and found.meta["label_xml"] == str(tmp_path / "d.xml")
    assert (found.Y != given.Y).nnz == 0 and (found.X != given.X).nnz == 0
    assert sibling_label_xml(tmp_path / "other-train.arff") is None


def test_missing_arff_file(tmp_path):
    with pytest.raises(DataFormatError, match="an existing file"):
        read_arff(tmp_path / "none.arff", tmp_path / "none.xml")
