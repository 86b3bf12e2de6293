"""``sparsexc train --model tree``: the label-tree model trained, saved, evaluated and queried through the CLI
on the bundled Bibtex data (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sparsexc.cli import main

TREE_ARGS = ["--model", "tree", "--tree-param", "loss=logistic", "--tree-param", "max_leaf_size=20"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli-tree") / "run"
    code = main(["train", "--dataset", "bibtex", *TREE_ARGS, "--seed", "2", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_train_writes_a_tree_model_and_its_run(run_dir):
    config = json.loads((run_dir / "model" / "config.json").read_text())
    assert config["family"] == "tree"
    assert config["params"]["tree_params"] == {"loss": "logistic", "max_leaf_size": 20}
    assert config["model"]["params"]["seed"] == 2  # the tree's seed is --seed
    run = json.loads((run_dir / "run.json").read_text())
    assert run["options"]["model"] == "tree" and run["options"]["tree-param"] == {
        "loss": "logistic",
        "max_leaf_size": 20,
    }
    assert run["epochs_run"] == 0 and run["best_epoch"] is None
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["P@1"] > 0.4  # a tree model on Bibtex (159 labels) ranks far above chance
    assert 0.0 < metrics["micro-F1"] <= 1.0


def test_evaluate_and_predict_on_the_folder(run_dir, tmp_path, capsys):
    from sparsexc.datasets import load
    from sparsexc.estimator import XCClassifier
    from sparsexc.io import write_xc

    out_json = tmp_path / "eval.json"
    assert main(["evaluate", str(run_dir), "--json", str(out_json)]) == 0
    assert json.loads(out_json.read_text()) == pytest.approx(json.loads((run_dir / "metrics.json").read_text()))
    test = load("bibtex").test
    write_xc(tmp_path / "rows.txt", test.X[:20], test.Y[:20])
    capsys.readouterr()
    for beam in ("10", "2"):
        path = tmp_path / f"pred{beam}.jsonl"
        args = ["predict", str(run_dir), "--input", str(tmp_path / "rows.txt"), "--top-k", "3", "--beam", beam]
        assert main([*args, "--format", "jsonl", "--ids", "--output", str(path)]) == 0
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        idx, scores = XCClassifier.load(run_dir / "model").predict_topk(test.X[:20], 3, beam=int(beam))
        assert [r["labels"] for r in rows] == idx.tolist()
        np.testing.assert_allclose([r["scores"] for r in rows], scores, rtol=1e-6)


def test_print_config_shows_model_and_tree_params(capsys):
    assert main(["train", "--dataset", "bibtex", *TREE_ARGS, "--print-config"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["model"] == "tree"
    assert config["tree-param"]["loss"] == "logistic" and config["tree-param"]["max_leaf_size"] == 20
    assert config["tree-param"]["branching"] is None  # every field, defaults included (None: chosen at fit)
    assert main(["train", "--dataset", "bibtex", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "auto"  # today's default


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "forest"], "'forest' is not one of 'auto', 'neural', 'ridge', 'tree'"),
        (["--model", "tree", "--tree-param", "depth=3"], "tree_params: LabelTreeParams: unknown key 'depth'"),
        (["--model", "tree", "--tree-param", "loss=hinge"], "loss='hinge' is not allowed; choose one of"),
        (["--model", "ridge", "--ridge-param", "kernel=poly"], "kernel='poly' is not allowed; choose one of"),
        (["--model", "ridge", "--ridge-param", "width=3"], "ridge_params: RidgeParams: unknown key 'width'"),
    ],
)
def test_bad_model_or_tree_param_is_one_error_line(args, message, tmp_path, one_error_line):
    assert main(["train", "--dataset", "bibtex", *args, "--out", str(tmp_path / "run")]) == 2
    assert message in one_error_line()
    assert not (tmp_path / "run").exists()  # refused before any data were read or written


def test_report_shows_a_tree_run(run_dir, capsys):
    capsys.readouterr()
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "training curves: none (a model trained without epochs)" in out
    assert "label-tree model: trained to convergence (no epochs)" in out and "P@1" in out
    assert not (run_dir / "curves.png").exists()
