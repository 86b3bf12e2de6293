"""Which attributes are the labels: the Mulan XML always wins; else an unambiguous MEKA -C n; else an error."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from sparsexc.cli import main
from sparsexc.io import DataFormatError, read_any, read_arff

# labels a, b (first two attributes) for -C 2; the XML names the last two (y1, y2)
ATTRS = "@attribute a {0,1}\n@attribute b {0,1}\n@attribute f numeric\n@attribute y1 {0,1}\n@attribute y2 {0,1}\n"
ROWS = "@data\n1,0,2.5,0,1\n0,1,-1,1,1\n"
XML = '<labels xmlns="http://mulan.sourceforge.net/labels"><label name="y1"/><label name="y2"/></labels>'


def _arff(tmp_path, relation: str, name: str = "d-train.arff", xml: str | None = None):
    path = tmp_path / name
    path.write_text(f"@relation {relation}\n{ATTRS}{ROWS}")
    if xml is not None:
        (tmp_path / xml).write_text(XML)
    return path


def test_xml_beside_the_file_wins_over_the_relation_c(tmp_path):
    d = read_arff(_arff(tmp_path, "'d: -C 2'", xml="d.xml"))
    assert d.meta["format"] == "mulan" and d.label_names == ["y1", "y2"]
    assert d.feature_names == ["a", "b", "f"]
    np.testing.assert_array_equal(d.Y.toarray(), [[0, 1], [1, 1]])


def test_given_xml_wins_over_the_relation_c_and_over_the_xml_beside(tmp_path):
    (tmp_path / "d.xml").write_text(XML.replace("y1", "a").replace("y2", "b"))
    other = tmp_path / "sub"
    other.mkdir()
    (other / "labels.xml").write_text(XML)
    d = read_arff(_arff(tmp_path, "'d: -C 2'"), other / "labels.xml")
    assert d.label_names == ["y1", "y2"] and d.meta["label_xml"] == str(other / "labels.xml")
    assert read_arff(tmp_path / "d-train.arff").label_names == ["a", "b"]  # the XML beside it


@pytest.mark.parametrize(
    "relation,labels",
    [
        ("'d: -C 2'", ["a", "b"]),
        ("'d: -C -2 -split 3'", ["y1", "y2"]),
        ('"d:-C 2"', ["a", "b"]),
        ("'d: -C 2-weka.filters.unsupervised.instance.Randomize-S1'", ["a", "b"]),
    ],
)
def test_unambiguous_meka_c_without_xml(tmp_path, relation, labels):
    d = read_arff(_arff(tmp_path, relation))
    assert d.meta["format"] == "meka" and d.label_names == labels


@pytest.mark.parametrize(
    "relation,match",
    [
        ("plain", "no MEKA '-C n'"),
        ("'x-C 2'", "no MEKA '-C n'"),  # '-C' inside a word is not MEKA's option
        ("'d: -C 2 -I 0_d: -C 2'", "2 '-C' options"),
        ("'d: -C 2-weka.filters.unsupervised.attribute.Remove-R1-2'", "Weka attribute filter"),
        ("'d: -C 0'", r"0 < \|n\| < 5"),
        ("'d: -C 5'", r"0 < \|n\| < 5"),
        ("'d: -C -7'", r"0 < \|n\| < 5"),
    ],
)
def test_undecidable_label_count_is_an_error_saying_how_to_decide(tmp_path, relation, match):
    path = _arff(tmp_path, relation)
    with pytest.raises(DataFormatError, match=match) as info:
        read_arff(path, label_xml_option="--label-xml")
    assert info.value.line == 1 and info.value.field == "@relation"
    assert "pass --label-xml PATH" in str(info.value) and "put d.xml beside the file" in str(info.value)


def test_label_attribute_that_is_not_yes_no_is_an_error(tmp_path):
    path = tmp_path / "m.arff"
    path.write_text("@relation 'm: -C 1'\n@attribute c {red,green}\n@attribute f numeric\n@data\nred,1\n")
    with pytest.raises(DataFormatError, match="label attribute of type") as info:
        read_arff(path)
    assert info.value.line == 2 and info.value.field == "label 'c'"


def test_medical_copied_without_its_xml_is_an_error_not_a_wrong_reading(shared_datasets, tmp_path):
    folder = shared_datasets / "mulan-medical"
    if not folder.is_dir():
        pytest.skip(f"data set mulan-medical is not in {shared_datasets}")
    alone = tmp_path / "medical-train.arff"
    shutil.copy(folder / "medical-train.arff", alone)
    with pytest.raises(DataFormatError, match="2 '-C' options") as info:
        read_any(alone)
    assert info.value.line is not None and "medical.xml" in str(info.value)
    assert main(["datasets", "convert", str(alone), str(tmp_path / "out.txt")]) != 0
    assert not (tmp_path / "out.txt").exists()
    d = read_any(alone, label_xml=folder / "medical.xml")
    assert d.n_labels == 45 and d.feature_names[:3] == ["-", "/", "0"]
    shutil.copy(folder / "medical.xml", tmp_path / "medical.xml")
    assert main(["datasets", "convert", str(alone), str(tmp_path / "out.txt")]) == 0
