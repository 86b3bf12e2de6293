"""Label names through the CLI: a data set with names (a Mulan ARFF + XML pair, the registered Mulan sets)
trains a model that keeps them, and ``sparsexc predict`` prints them in every format (``--ids``: the ids)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from _shared_data import requires_dataset

from sparsexc.cli import main
from sparsexc.estimator import XCClassifier

NAMES = [
    "Brown Creeper",
    "use::editing",
    "jazz 100%",
]  # a space, colons and a '%' (the xc format's escape)
FAST = [
    "--epochs",
    "10",
    "--hidden-sizes",
    "",
    "--lr",
    "0.5",
    "--batch-size",
    "512",
    "--seed",
    "0",
    "--preprocess",  # the features as written (the raw values these fast settings were chosen for; issue 20)
    "none",
    "--quiet",
]


def _arff(path: Path, n_rows: int, rng: np.random.Generator) -> Path:
    quoted = ["'Brown Creeper'", "use::editing", "'jazz 100%'"]
    lines = ["@relation tiny", *(f"@attribute f{j} numeric" for j in range(3)),
             *(f"@attribute {name} {{0,1}}" for name in quoted), "@data"]  # fmt: skip
    for i in range(n_rows):
        x = rng.normal(0.0, 0.1, 3)
        x[i % 3] += 1.0  # row i has label i % 3, and its feature stands out
        lines.append(",".join(f"{v:.4f}" for v in x) + "," + ",".join("1" if j == i % 3 else "0" for j in range(3)))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def named_run(tmp_path_factory) -> tuple[Path, Path]:
    """(run folder, test ARFF) of ``sparsexc train`` on a tiny Mulan ARFF + XML pair whose labels have names."""
    folder = tmp_path_factory.mktemp("named")
    rng = np.random.default_rng(0)
    train, test = (
        _arff(folder / "tiny-train.arff", 30, rng),
        _arff(folder / "tiny-test.arff", 9, rng),
    )
    (folder / "tiny.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<labels xmlns="http://mulan.sourceforge.net/labels">\n'
        + "".join(f'<label name="{name}"></label>\n' for name in NAMES) + "</labels>\n")  # fmt: skip
    out = folder / "run"
    assert (
        main(
            [
                "train",
                "--train",
                str(train),
                "--test",
                str(test),
                "--out",
                str(out),
                *FAST,
            ]
        )
        == 0
    )
    return out, test


def test_train_saves_the_data_sets_label_names(named_run):
    out, _ = named_run
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["classes"] == NAMES
    assert XCClassifier.load(out / "model").classes_.tolist() == NAMES


def test_predict_jsonl_prints_names(named_run, capsys):
    out, test = named_run
    capsys.readouterr()
    assert (
        main(
            [
                "predict",
                str(out),
                "--input",
                str(test),
                "--top-k",
                "2",
                "--format",
                "jsonl",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["labels"][0] for row in rows] == [NAMES[i % 3] for i in range(9)]
    assert all(set(row["labels"]) <= set(NAMES) and len(row["scores"]) == 2 for row in rows)


def test_predict_xc_prints_percent_encoded_names(named_run, tmp_path):
    out, test = named_run
    path = tmp_path / "pred.txt"
    assert (
        main(
            [
                "predict",
                str(out),
                "--input",
                str(test),
                "--top-k",
                "3",
                "--output",
                str(path),
            ]
        )
        == 0
    )
    lines = path.read_text().splitlines()
    assert lines[0] == "9 3"
    assert lines[1].startswith("Brown%20Creeper:") and "jazz%20100%25:" in lines[1]
    pairs = [[item.rsplit(":", 1) for item in line.split(" ")] for line in lines[1:]]  # names may hold ':'
    assert all(len(row) == 3 for row in pairs)
    assert [unquote(row[0][0]) for row in pairs] == [NAMES[i % 3] for i in range(9)]
    assert all(sorted(unquote(name) for name, _ in row) == sorted(NAMES) for row in pairs)


def test_predict_ids_prints_label_ids(named_run, capsys):
    out, test = named_run
    capsys.readouterr()
    assert (
        main(
            [
                "predict",
                str(out),
                "--input",
                str(test),
                "--top-k",
                "1",
                "--format",
                "jsonl",
                "--ids",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["labels"] for row in rows] == [[i % 3] for i in range(9)]


@requires_dataset("emotions")
def test_registered_mulan_set_carries_its_names(tmp_path):
    from sparsexc.datasets import load

    out = tmp_path / "run"
    assert main(["train", "--dataset", "emotions", "--out", str(out), *FAST]) == 0
    names = load("emotions").train.label_names
    assert json.loads((out / "model" / "config.json").read_text())["classes"] == names
    assert "amazed-suprised" in names
