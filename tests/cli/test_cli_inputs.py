"""The CLI's inputs: files that do not fit together, Mulan ARFF label files, headerless svmlight files, test
sets without labels, the recorded data folder, setting errors before the data, and the data-parallel
launcher's single error line. Small files, one or two epochs: every test here takes a few seconds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import scipy.sparse as sp

from sparsexc.cli import main

FAST = ["--epochs", "1", "--hidden-sizes", "", "--seed", "0", "--quiet"]


@pytest.fixture(scope="module")
def emotions(shared_datasets) -> Path:
    """Mulan's emotions folder: emotions-train.arff, emotions-test.arff and their emotions.xml."""
    return shared_datasets / "mulan-emotions"


@pytest.fixture(scope="module")
def svm_files(tmp_path_factory, emotions) -> tuple[Path, Path]:
    """emotions as headerless 1-based svmlight files ('l1,l2 f:v ...'), written by scikit-learn."""
    from sklearn.datasets import dump_svmlight_file

    from sparsexc.io import read_all

    folder = tmp_path_factory.mktemp("svm")
    parts = read_all([emotions / "emotions-train.arff", emotions / "emotions-test.arff"])
    paths = (folder / "train.svm", folder / "test.svm")
    for path, part in zip(paths, parts):
        dump_svmlight_file(part.X, part.Y, str(path), zero_based=False, multilabel=True)
    return paths


def _xc(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


# ------------------------------------------------------------------------- train and test must fit (#2)


def test_train_rejects_a_test_file_of_other_widths(tmp_path, one_error_line):
    train = _xc(tmp_path / "a.txt", "2 4 3", "0 1:1", "2 3:0.5")
    for header, counts in (("1 5 3", "5 features and 3 labels"), ("1 4 2", "4 features and 2 labels")):
        test = _xc(tmp_path / "b.txt", header, "1 1:1")
        assert main(["train", "--train", str(train), "--test", str(test), "--out", str(tmp_path / "o"), *FAST]) == 2
        line = one_error_line()
        assert f"b.txt has {counts}" in line and "a.txt has 4 features and 3 labels" in line
        assert not (tmp_path / "o").exists()  # nothing trained or written


# ------------------------------------------------------------------------- Mulan ARFF + XML (#8), no labels (#13)


def test_mulan_arff_with_its_label_file(tmp_path, emotions, capsys, one_error_line):
    train, test = emotions / "emotions-train.arff", emotions / "emotions-test.arff"
    out = tmp_path / "run"
    # emotions.xml beside the ARFF files is found without --label-xml
    assert main(["train", "--train", str(train), "--test", str(test), "--out", str(out), *FAST]) == 0
    run = json.loads((out / "run.json").read_text())
    assert (run["n_features"], run["n_labels"]) == (72, 6)
    # copies without the XML beside them: the error names the CLI flag; --label-xml then reads them
    for path in (train, test):
        shutil.copy(path, tmp_path / path.name)
    copy_train, copy_test = tmp_path / train.name, tmp_path / test.name
    capsys.readouterr()
    assert main(["predict", str(out), "--input", str(copy_test), "--top-k", "2"]) == 2
    line = one_error_line()
    assert "--label-xml PATH" in line and "label_xml" not in line
    xml = emotions / "emotions.xml"
    assert main(["predict", str(out), "--input", str(copy_test), "--top-k", "2", "--label-xml", str(xml)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "202 6"
    evaluation = tmp_path / "e.json"
    args = ["evaluate", str(out), "--test", str(copy_test), "--label-xml", str(xml), "--json", str(evaluation)]
    assert main(args) == 0
    assert json.loads(evaluation.read_text()) == pytest.approx(json.loads((out / "metrics.json").read_text()))
    args = ["train", "--train", str(copy_train), "--test", str(copy_test), "--label-xml", str(xml),
            "--out", str(tmp_path / "run2"), *FAST]  # fmt: skip
    assert main(args) == 0
    assert json.loads((tmp_path / "run2" / "run.json").read_text())["data"]["label_xml"] == str(xml.resolve())


def test_test_set_without_labels_warns(tmp_path, emotions, capsys):
    from sparsexc.io import read_any, write_xc

    test = read_any(emotions / "emotions-test.arff")
    unlabelled = tmp_path / "unlabelled.txt"
    write_xc(unlabelled, test.X, sp.csr_matrix(test.Y.shape, dtype="float32"))  # 6 labels declared, none used
    args = ["train", "--train", str(emotions / "emotions-train.arff"), "--test", str(unlabelled),
            "--out", str(tmp_path / "run"), *FAST]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [f"sparsexc: warning: {unlabelled} holds no labels at all, so every metric is 0"]


# ------------------------------------------------------------------------- headerless svmlight (#9)


def test_headerless_svmlight_train_predict_evaluate(tmp_path, svm_files, capsys, one_error_line):
    train, test = svm_files
    out = tmp_path / "run"
    assert main(["train", "--train", str(train), "--test", str(test), "--out", str(out), *FAST]) == 0
    run = json.loads((out / "run.json").read_text())
    assert (run["n_train"], run["n_test"], run["n_features"], run["n_labels"]) == (391, 202, 72, 6)
    capsys.readouterr()
    assert main(["predict", str(out), "--input", str(test), "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "202 6" and len(lines) == 203
    evaluation = tmp_path / "e.json"
    assert main(["evaluate", str(out), "--test", str(test), "--json", str(evaluation)]) == 0
    assert json.loads(evaluation.read_text()) == pytest.approx(json.loads((out / "metrics.json").read_text()))
    bad = tmp_path / "bad.svm"
    bad.write_text("1 1:1\n2,x 3:1\n")
    capsys.readouterr()
    assert main(["predict", str(out), "--input", str(bad), "--top-k", "1"]) == 2
    assert "bad.svm, line 2" in one_error_line()


def test_a_lone_svmlight_file_gets_the_training_files_id_base(tmp_path, emotions, capsys):
    # 0-based training files; a file to score that never uses feature 0 would pass for 1-based on its own
    import numpy as np
    from sklearn.datasets import dump_svmlight_file

    from sparsexc.estimator import XCClassifier
    from sparsexc.io import read_all

    train, test = read_all([emotions / "emotions-train.arff", emotions / "emotions-test.arff"])
    X_test = test.X.tolil()
    X_test[:, 0] = 0
    X_test = X_test.tocsr()
    X_test.eliminate_zeros()
    paths = (tmp_path / "train.svm", tmp_path / "test.svm")
    for path, X, Y in zip(paths, (train.X, X_test), (train.Y, test.Y)):
        dump_svmlight_file(X, Y, str(path), zero_based=True, multilabel=True)
    out = tmp_path / "run"
    assert main(["train", "--train", str(paths[0]), "--test", str(paths[1]), "--out", str(out), *FAST]) == 0
    assert json.loads((out / "run.json").read_text())["svmlight_zero_based"] is True
    capsys.readouterr()
    assert main(["predict", str(out), "--input", str(paths[1]), "--top-k", "2", "--format", "jsonl"]) == 0
    rows = [json.loads(line)["labels"] for line in capsys.readouterr().out.splitlines()]
    indices, _ = XCClassifier.load(out / "model").predict_topk(X_test, k=2)
    np.testing.assert_array_equal(rows, indices)


# ------------------------------------------------------------------------- the recorded data folder (#14)


def test_evaluate_finds_the_data_without_sparsexc_data(tmp_path, shared_datasets, monkeypatch):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "emotions", "--out", str(out), *FAST]) == 0
    assert json.loads((out / "run.json").read_text())["data"]["data_dir"] == str(shared_datasets.resolve())
    monkeypatch.delenv("SPARSEXC_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))  # the default ~/sparsexc_data does not hold it either
    assert main(["evaluate", str(out), "--json", str(tmp_path / "e.json")]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert json.loads((tmp_path / "e.json").read_text()) == pytest.approx(metrics)


# ------------------------------------------------------------------------- setting errors: exit 2 before the data (#11)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--val-metric", "P@0"], "P@0"),
        (["--device", "cuda:0"], "CUDA"),
        (["--config", "CONFIG"], "not valid TOML"),
        # a head's own check of its encoder (Head.check_encoder): the tree sampler needs the linear model
        (["--head", "negative-sampling", "--head-param", "sampler=tree", "--hidden-sizes", "8"], "sampler='tree'"),
    ],
)
def test_setting_errors_exit_2_before_the_data(tmp_path, monkeypatch, args, expected, one_error_line):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = tmp_path / "bad.toml"
    config.write_text('dataset = "emotions\n')
    bad_data = _xc(tmp_path / "bad.txt", "1 4 3", "0 1:x")  # read first, its error would be the line
    args = [str(config) if a == "CONFIG" else a for a in args]
    assert main(["train", "--train", str(bad_data), "--test", str(bad_data), "--out", str(tmp_path / "o"), *args]) == 2
    line = one_error_line()
    assert expected in line and "bad.txt" not in line


# ------------------------------------------------------------------------- data-parallel launcher (#10)


def test_nonzero_ranks_stay_silent_on_settings_errors(tmp_path, capsys, monkeypatch):
    # as torchrun starts them: WORLD_SIZE and RANK set; a mistake every rank meets is said by rank 0 alone
    monkeypatch.setenv("WORLD_SIZE", "2")
    args = ["train", "--dataset", "bibtex", "--head", "no-such-head", "--out", str(tmp_path)]
    monkeypatch.setenv("RANK", "1")
    assert main(args) == 2
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    assert main(args) == 2
    assert "no-such-head" in capsys.readouterr().err
    # an error of the run itself may be one rank's own: every rank says it, naming itself
    # (here: joining the process group fails, as MASTER_ADDR is not set)
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    good = _xc(tmp_path / "good.txt", "2 4 3", "0 1:1", "2 2:1")
    monkeypatch.setenv("RANK", "1")
    assert main(["train", "--train", str(good), "--test", str(good), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sparsexc: error (rank 1): ") and "MASTER_ADDR" in err and len(err.splitlines()) == 1


def test_data_parallel_data_error_is_one_line(tmp_path):
    bad = _xc(tmp_path / "bad.txt", "2 4 3", "0 1:1", "5 2:1")  # label 5 >= n_labels=3
    script = shutil.which("sparsexc") or str(Path(sys.executable).parent / "sparsexc")
    result = subprocess.run(
        [script, "train", "--train", str(bad), "--test", str(bad), "--nproc-per-node", "2", "--out",
         str(tmp_path / "o"), "--quiet"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sparsexc: error: ") and "bad.txt, line 3" in lines[0]
