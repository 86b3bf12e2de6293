"""``sparsexc datasets list|info|convert`` through sparsexc.cli.main, and once as a real process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from sparsexc.cli import main
from sparsexc.datasets import list_datasets
from sparsexc.io import read_arff, read_xc


@pytest.mark.usefixtures("shared_datasets")  # every set "found" there
def test_list_shows_every_name_with_its_status(capsys, tmp_path):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    table, _legend = out.strip().split("\n\n")
    lines = table.split("\n")
    assert lines[0].startswith("data directory:")
    by_name = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert list(by_name) == list_datasets()
    large_xc = {"eurlex-4k", "wiki10-31k", "amazoncat-13k", "wiki-500k", "amazon-670k"}  # not in ../shared
    assert {by_name[name] for name in by_name if name not in large_xc} == {"found"}
    assert {by_name[name] for name in large_xc} == {"missing"}
    assert main(["datasets", "list", "--data-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().split("\n\n")[0].split("\n")[1:]
    status = {line.split()[0]: line.split()[1] for line in lines}
    assert status["bibtex"] == "bundled" and status["scene"] == "missing"


def test_list_names_each_sets_source_and_its_licence(capsys, tmp_path):
    assert main(["datasets", "list", "--data-dir", str(tmp_path)]) == 0
    table, legend = capsys.readouterr().out.strip().split("\n\n")
    source = {line.split()[0]: line.split()[2] for line in table.split("\n")[1:]}
    assert source["bibtex"] == source["eurlex-4k"] == "xc"
    assert source["emotions"] == "mulan" and source["imdb"] == "meka" and source["slashdot"] == "mld"
    assert source["wordnet-hypernyms"] == "wordnet"
    licences = {line.split()[0]: line for line in legend.split("\n")[1:]}
    assert set(licences) == set(source.values())
    for key in ("xc", "mulan", "meka", "mld"):  # no data licence is stated by these sources: say so
        assert "data licence: none stated" in licences[key] and "cite" in licences[key]
    assert "tsoumakas/mulan" in licences["mulan"]


def test_info_prints_an_aligned_train_test_table(capsys, loaded):
    loaded("flags")
    assert main(["datasets", "info", "flags"]) == 0
    out = capsys.readouterr().out
    cells = [re.split(r"\s{2,}", line.strip()) for line in out.split("\n")]
    rows = {c[0]: c[1:] for c in cells if len(c) == 3}
    assert rows["rows"] == ["129", "65"]
    assert rows["features"] == ["39", "39"] and rows["labels"] == ["7", "7"]  # 19 attributes, 4 nominal: indicators
    assert rows["labels per row (mean)"] == [f"{441 / 129:.3f}", f"{217 / 65:.3f}"]
    assert "rows per label, quantile 50%" in rows
    assert '"kind": "published"' in out


@pytest.mark.parametrize("name", ["debtags", "debian-deps", "wordnet-hypernyms"])
def test_info_shows_the_built_text_tasks(name, capsys, loaded):
    data = loaded(name)
    assert main(["datasets", "info", name, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["train"]["rows"] == data.train.n_samples and report["test"]["rows"] == data.test.n_samples
    assert report["train"]["labels"] == data.n_labels and report["info"]["tfidf_fitted_on"] == "train"


def test_info_split_option(capsys, loaded):
    loaded("bibtex", 2)
    assert main(["datasets", "info", "bibtex", "--split", "2"]) == 0
    assert '"split": 2' in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["datasets", "info", "scenee"], "did you mean 'scene'"),
        (["datasets", "info", "bibtex", "--split", "12"], "1..10"),
        (["datasets", "info", "scene", "--data-dir", "/no/such/dir"], "/no/such/dir/mulan-scene/scene-train.arff"),
        (["datasets", "convert", "nosuchname", "out"], "neither an existing file nor a data set"),
    ],
)
def test_errors_are_one_line(argv, needle, capsys):
    assert main(argv) != 0
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("sparsexc: error:") and "\n" not in err and needle in err
    assert "Traceback" not in captured.err


def test_convert_arff_file_to_xc(tmp_path, capsys, shared_datasets):
    folder = shared_datasets / "mulan-emotions"
    out = tmp_path / "emotions_train.txt"
    argv = [
        "datasets",
        "convert",
        str(folder / "emotions-train.arff"),
        str(out),
        "--label-xml",
        str(folder / "emotions.xml"),
    ]
    assert main(argv) == 0
    assert "391 rows" in capsys.readouterr().out
    X, Y = read_xc(out)
    reference = read_arff(folder / "emotions-train.arff", folder / "emotions.xml")
    assert X.shape == reference.X.shape and Y.shape == reference.Y.shape
    assert (Y != reference.Y).nnz == 0
    assert abs(X - reference.X).max() <= 1e-6 * max(1.0, abs(reference.X).max())


def test_convert_named_set_exports_both_parts(tmp_path, capsys, loaded):
    data = loaded("yeast")
    assert main(["datasets", "convert", "yeast", str(tmp_path / "out")]) == 0
    for part in ("train", "test"):
        X, Y = read_xc(tmp_path / "out" / f"yeast_{part}.txt")
        reference = getattr(data, part)
        assert (Y != reference.Y).nnz == 0 and X.shape == reference.X.shape
    assert main(["datasets", "convert", "yeast", str(tmp_path / "o2"), "--label-xml", __file__]) != 0
    assert "--label-xml" in capsys.readouterr().err


def test_real_process_uses_the_bundled_bibtex(tmp_path):
    env = dict(os.environ, SPARSEXC_DATA=str(tmp_path / "empty"), SPARSEXC_CACHE=str(tmp_path / "cache"))
    done = subprocess.run(
        [sys.executable, "-m", "sparsexc.cli", "datasets", "info", "bibtex"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "bundled" in done.stdout
    rows = [line.split() for line in done.stdout.split("\n") if line.startswith("rows ")]
    assert ["rows", "4880", "2515"] in rows
    failed = subprocess.run(
        [sys.executable, "-m", "sparsexc.cli", "datasets", "info", "scene"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert failed.returncode == 2
    assert failed.stderr.count("\n") == 1 and "does not exist" in failed.stderr
