"""Every real ARFF set reads with the right labels on every path: read_arff, datasets.load and the CLI.

The references are independent of the reader: the shapes and label cardinalities verified by parsing in each
folder's SOURCE.md, the label names taken from the XML with a regular expression, and the attribute names
from the ARFF header by a plain line scan (SOURCE.md: in every Mulan file the labels are the last L attributes).
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from sparsexc.cli import main
from sparsexc.cli._data import load_source
from sparsexc.datasets import REGISTRY, load
from sparsexc.io import read_arff, read_xc

SETS = [
    "mulan-bibtex",
    "mulan-birds",
    "mulan-cal500",
    "mulan-corel5k",
    "mulan-delicious",
    "mulan-emotions",
    "mulan-enron",
    "mulan-flags",
    "mulan-genbase",
    "mulan-medical",
    "mulan-scene",
    "mulan-tmc2007-500",
    "mulan-yeast",
    "meka-imdb",
]
ID_ATTRIBUTES = {"mulan-genbase": ["protein"]}  # SOURCE.md: "the first attribute protein ... (drop it)"
ARFF_SETS = sorted(name for name, spec in REGISTRY.items() if spec.kind in ("mulan", "arff"))


def _folder(shared_datasets: Path, name: str) -> Path:
    folder = shared_datasets / name
    if not folder.is_dir():
        pytest.skip(f"data set {name} is not in {shared_datasets}")
    return folder


def _verified_shapes(folder: Path) -> dict[str, dict]:
    text = (folder / "SOURCE.md").read_text()
    section = text.split("## Verified shapes", 1)[1]
    found = re.findall(r"^\s*(\S+\.arff(?:\.gz)?): (\{.*\})\s*$", section, re.MULTILINE)
    return {name: json.loads(shapes) for name, shapes in found}


def _xml_label_names(folder: Path) -> list[str] | None:
    xml = list(folder.glob("*.xml"))
    return re.findall(r'<label\s+name="([^"]+)"', xml[0].read_text()) if xml else None


def _attribute_names(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    names = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if s.lower().startswith("@data"):
                return names
            if s.lower().startswith("@attribute"):
                rest = s[len("@attribute") :].strip()
                quote = rest[0] if rest[0] in "'\"" else None
                name = re.match(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"", rest) if quote else None
                names.append(re.sub(r"\\(.)", r"\1", name.group(1) or name.group(2)) if name else rest.split()[0])
    raise AssertionError(f"{path}: no @data")


@pytest.mark.parametrize("name", SETS)
def test_read_arff_matches_source_md_and_xml(shared_datasets, name):
    folder = _folder(shared_datasets, name)
    shapes = _verified_shapes(folder)
    assert shapes, f"{folder}/SOURCE.md lists no verified shapes"
    xml_names = _xml_label_names(folder)
    for file, want in shapes.items():
        d = read_arff(folder / file)  # no label_xml: the XML beside the file (or MEKA -C for imdb) decides
        attributes = _attribute_names(folder / file)
        L = want["labels"]
        assert d.Y.shape == (want["rows"], L) and d.X.shape[0] == want["rows"], file
        assert round(d.Y.nnz / d.n_samples, 3) == want["label_cardinality"], file
        dropped = ID_ATTRIBUTES.get(name, [])
        assert list(d.meta["dropped_attributes"]) == dropped, file
        assert len(d.meta["feature_attributes"]) + len(dropped) == want["features"], file
        if xml_names is None:  # MEKA (imdb): '-C 28' -> the first 28 attributes
            assert d.meta["format"] == "meka" and d.label_names == attributes[:L]
            assert d.meta["feature_attributes"] == attributes[L:]
        else:
            assert d.meta["format"] == "mulan" and sorted(d.label_names) == sorted(xml_names), file
            assert d.label_names == attributes[-L:], file  # SOURCE.md: the last L attributes, in attribute order
            assert d.meta["feature_attributes"] == [a for a in attributes[:-L] if a not in dropped], file


def test_medical_labels_come_from_its_xml_not_the_relation_c_option(shared_datasets):
    # issue 16: '-C 45' in medical's relation name made the first 45 word attributes the labels
    folder = _folder(shared_datasets, "mulan-medical")
    d = read_arff(folder / "medical-train.arff")
    assert d.label_names[:3] != ["-", "/", "0"] and sorted(d.label_names) == sorted(_xml_label_names(folder))
    assert d.feature_names[:3] == ["-", "/", "0"]


@pytest.mark.parametrize("name", ARFF_SETS)
def test_datasets_load_agrees_with_read_arff(shared_datasets, name):
    spec = REGISTRY[name]
    folder = _folder(shared_datasets, spec.folder)
    data = load(name, shared_datasets)
    first = next(folder / f for f in spec.files[0] if (folder / f).is_file())
    attributes = _attribute_names(first)
    L = data.train.n_labels
    labels, features = (
        (attributes[:L], attributes[L:]) if spec.folder.startswith("meka") else (attributes[-L:], attributes[:-L])
    )
    for part in (data.train, data.test):
        assert part.label_names == labels
        assert part.meta["feature_attributes"] == [a for a in features if a not in ID_ATTRIBUTES.get(spec.folder, [])]
    if spec.kind == "mulan":  # the published train file, row for row
        ref = read_arff(first)
        assert (data.train.X != ref.X).nnz == 0 and (data.train.Y != ref.Y).nnz == 0


@pytest.mark.parametrize("name", [s for s in SETS if s.startswith("mulan-")])
def test_cli_convert_writes_what_read_arff_reads(shared_datasets, tmp_path, name):
    folder = _folder(shared_datasets, name)
    source = max(folder.glob("*.arff"))  # a train file (or cal500.arff)
    ref = read_arff(source)
    out = tmp_path / "out.txt"
    assert main(["datasets", "convert", str(source), str(out)]) == 0
    X, Y = read_xc(out)
    assert X.shape == ref.X.shape and Y.shape == ref.Y.shape
    assert (X != ref.X).nnz == 0 and (Y != ref.Y).nnz == 0


@pytest.mark.parametrize(
    "name,stem", [("mulan-medical", "medical"), ("mulan-genbase", "genbase"), ("mulan-flags", "flags")]
)
def test_cli_train_files_read_like_read_arff(shared_datasets, name, stem):
    # `sparsexc train --train X.arff --test Y.arff` reads its data with load_source
    folder = _folder(shared_datasets, name)
    train, test = load_source({"train": str(folder / f"{stem}-train.arff"), "test": str(folder / f"{stem}-test.arff")})
    ref = read_arff(folder / f"{stem}-train.arff", folder / f"{stem}.xml")
    assert train.label_names == test.label_names == ref.label_names
    assert sorted(train.label_names) == sorted(_xml_label_names(folder))
    assert train.feature_names == test.feature_names == ref.feature_names
    assert (train.X != ref.X).nnz == 0 and (train.Y != ref.Y).nnz == 0
    assert "protein" not in train.feature_names
