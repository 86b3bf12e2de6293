"""End-to-end runs of the ``sparsexc`` command on the real Bibtex data: train, evaluate, predict, quickstart,
and every user error ending in one ``sparsexc: error:`` line with a non-zero exit code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _shared_data import SHARED_DATASETS

from sparsexc.cli import main

EPOCHS = "2"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run folder of ``sparsexc train`` on Bibtex (XC split 1), two epochs."""
    out = tmp_path_factory.mktemp("cli-run") / "run"
    code = main(["train", "--dataset", "bibtex", "--epochs", EPOCHS, "--seed", "3", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_train_writes_model_run_and_metrics(run_dir):
    assert (run_dir / "model" / "config.json").is_file()
    run = json.loads((run_dir / "run.json").read_text())
    # the data folder as resolved from $SPARSEXC_DATA (set by conftest), so evaluate works without it
    # the data folder the tests set SPARSEXC_DATA to (tests/conftest.py); without it, the bundled copy was read
    assert run["data"] == {
        "dataset": "bibtex",
        "split": None,
        "data_dir": str(SHARED_DATASETS.resolve()),
        "data_dir_from": "the SPARSEXC_DATA environment variable",
    }
    assert (run["n_train"], run["n_test"], run["n_features"], run["n_labels"]) == (4880, 2515, 1836, 159)
    assert run["options"]["epochs"] == int(EPOCHS) and run["options"]["seed"] == 3
    assert run["estimator_params"]["random_state"] == 3
    assert run["train_seconds"] > 0 and 1 <= run["best_epoch"] <= run["epochs_run"] <= int(EPOCHS)
    assert len((run_dir / "train_log.jsonl").read_text().splitlines()) == run["epochs_run"]
    assert run["environment"]["versions"]["torch"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("P@1", "P@3", "P@5", "nDCG@5", "PSP@5", "micro-F1", "macro-F1", "macro-F1 (paper)", "example-F1"):
        assert 0.0 <= metrics[key] <= 1.0, key
    # two epochs on Bibtex already rank far above chance (159 labels, ~2.4 per row)
    assert metrics["P@1"] > 0.3


def test_evaluate_reproduces_train_metrics(run_dir, tmp_path, capsys):
    capsys.readouterr()
    out_json = tmp_path / "eval.json"
    assert main(["evaluate", str(run_dir), "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    evaluated = json.loads(out_json.read_text())
    trained = json.loads((run_dir / "metrics.json").read_text())
    assert evaluated["P@1"] == trained["P@1"]
    assert evaluated == pytest.approx(trained, abs=1e-12)
    assert f"{trained['P@1']:.4f}" in printed and "PSP" in printed and "macro-F1 (paper)" in printed


def test_evaluate_on_an_explicit_test_file(run_dir, tmp_path):
    # the XC test rows written to a file give the same metrics as the data set's test split
    from sparsexc.datasets import load
    from sparsexc.io import write_xc

    test = load("bibtex").test
    path = tmp_path / "test.txt"
    write_xc(path, test.X, test.Y)
    out_json = tmp_path / "eval.json"
    assert main(["evaluate", str(run_dir), "--test", str(path), "--json", str(out_json)]) == 0
    trained = json.loads((run_dir / "metrics.json").read_text())
    assert json.loads(out_json.read_text()) == pytest.approx(trained, abs=1e-12)


@pytest.fixture(scope="module")
def features_file(tmp_path_factory) -> Path:
    """The first 50 Bibtex test rows as an XC file WITHOUT labels."""
    from sparsexc.datasets import load

    X = load("bibtex").test.X[:50]
    lines = [f"{X.shape[0]} {X.shape[1]} 159"]
    for row in range(X.shape[0]):
        start, end = X.indptr[row], X.indptr[row + 1]
        lines.append(" ".join(f"{j}:{v:.9g}" for j, v in zip(X.indices[start:end], X.data[start:end])))
    path = tmp_path_factory.mktemp("features") / "rows.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _model_topk(run_dir: Path, k: int):
    from sparsexc.datasets import load
    from sparsexc.estimator import XCClassifier

    clf = XCClassifier.load(run_dir / "model")
    return clf.predict_topk(load("bibtex").test.X[:50], k=k)


def test_predict_xc_format(run_dir, features_file, tmp_path):
    out = tmp_path / "pred.txt"
    assert main(["predict", str(run_dir), "--input", str(features_file), "--top-k", "3", "--output", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "50 159"
    pairs = [[item.split(":") for item in line.split(" ")] for line in lines[1:]]
    labels = np.array([[int(label) for label, _ in row] for row in pairs])
    scores = np.array([[float(score) for _, score in row] for row in pairs])
    indices, expected_scores = _model_topk(run_dir, 3)
    np.testing.assert_array_equal(labels, indices)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)


def test_predict_jsonl_format(run_dir, features_file, capsys):
    capsys.readouterr()
    assert main(["predict", str(run_dir), "--input", str(features_file), "--top-k", "5", "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    indices, scores = _model_topk(run_dir, 5)
    assert len(rows) == 50
    assert [row["labels"] for row in rows] == indices.tolist()
    np.testing.assert_allclose([row["scores"] for row in rows], scores, rtol=1e-6)
    # best first
    assert all(row["scores"] == sorted(row["scores"], reverse=True) for row in rows)


# ----------------------------------------------------------------------------------------------- errors


def test_unknown_head(tmp_path, one_error_line):
    assert main(["train", "--dataset", "bibtex", "--head", "no-such-head", "--out", str(tmp_path)]) != 0
    line = one_error_line()
    assert "no-such-head" in line and "softmax" in line and "sigmoid" in line


def test_unknown_dataset(tmp_path, one_error_line):
    assert main(["train", "--dataset", "no-such-set", "--out", str(tmp_path / "o")]) != 0
    assert "no-such-set" in one_error_line()
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "flag, value",
    [("--lr", "-1"), ("--hidden-sizes", "64,x"), ("--optimizer", "adamax"), ("--epochs", "zero")],
)
def test_bad_flag_value(tmp_path, flag, value, one_error_line):
    assert main(["train", "--dataset", "bibtex", flag, value, "--out", str(tmp_path)]) == 2
    assert flag in one_error_line()


def test_unknown_head_param(tmp_path, one_error_line):
    args = ["train", "--dataset", "bibtex", "--head", "sigmoid", "--head-param", "no_such=1", "--out", str(tmp_path)]
    assert main(args) != 0
    assert "no_such" in one_error_line()


def test_missing_file(tmp_path, one_error_line):
    missing = str(tmp_path / "missing.txt")
    assert main(["train", "--train", missing, "--test", missing, "--out", str(tmp_path)]) == 2
    assert "missing.txt" in one_error_line()
    assert main(["evaluate", str(tmp_path)]) != 0  # a folder that is not a run folder
    assert "run.json" in one_error_line()


def test_malformed_input_file(run_dir, tmp_path, one_error_line):
    bad = tmp_path / "bad.txt"
    bad.write_text("2 1836 159\n1,2 5:1.0 7:x\n3 4:1\n")
    assert main(["predict", str(run_dir), "--input", str(bad), "--top-k", "1"]) != 0
    assert "bad.txt" in one_error_line()
    assert main(["train", "--train", str(bad), "--test", str(bad), "--out", str(tmp_path / "o")]) != 0
    assert "bad.txt" in one_error_line()


@pytest.mark.parametrize("n_features", [100, 2000])
def test_wrong_feature_count(run_dir, tmp_path, n_features, one_error_line):
    path = tmp_path / "few.txt"
    path.write_text(f"1 {n_features} 159\n3 1:1 50:2\n")
    assert main(["predict", str(run_dir), "--input", str(path), "--top-k", "1"]) != 0
    line = one_error_line()
    assert f"{n_features} features" in line and "1836" in line


def test_top_k_larger_than_label_count(run_dir, features_file, one_error_line):
    assert main(["predict", str(run_dir), "--input", str(features_file), "--top-k", "500"]) == 2
    assert "159" in one_error_line()


def _console_script() -> str:
    script = shutil.which("sparsexc") or str(Path(sys.executable).parent / "sparsexc")
    assert Path(script).exists(), "the sparsexc console script is not installed (pip install -e .)"
    return script


def test_console_script_error_exit_code(tmp_path):
    result = subprocess.run(
        [_console_script(), "train", "--dataset", "bibtex", "--head", "nope", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sparsexc: error: ") and "'nope'" in lines[0]


# ----------------------------------------------------------------------------------------------- quickstart


def test_quickstart_without_data_folder(tmp_path):
    # the console script, with SPARSEXC_DATA pointing to an empty folder: the bundled copy is used
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "SPARSEXC_DATA": str(empty), "SPARSEXC_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "qs"
    result = subprocess.run(
        [_console_script(), "quickstart", "--epochs", "1", "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "P " in result.stdout and "micro-F1" in result.stdout and str(out) in result.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["data"] == {"bundled": "bibtex"} and run["n_train"] == 4880 and run["n_test"] == 2515
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["P@1"] > 0.2
    # the run folder works with evaluate, data still found without a data folder
    result = subprocess.run(
        [_console_script(), "evaluate", str(out), "--json", str(tmp_path / "e.json")],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "e.json").read_text()) == pytest.approx(metrics, abs=1e-12)
