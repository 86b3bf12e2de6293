"""``sparsexc train``, ``evaluate`` and ``predict`` of a label-tree model never import torch (a second or two
of start-up and about 175 MiB that a numpy/scipy/numba model does not need): each command runs in a process
where importing torch fails, naming the line that tried."""

from __future__ import annotations

import json

from _no_torch import run_without_torch

# the command line is sys.argv[1:]; any import of torch is an ImportError (the CLI then exits 1 with it)
RUNNER = """
from sparsexc.cli import main

code = main(sys.argv[1:])
print("torch" in sys.modules)
sys.exit(code)
"""


def _run(*args: str) -> None:
    run_without_torch(RUNNER, *args)


def test_train_evaluate_and_predict_a_tree_model_without_torch(tmp_path):
    from sparsexc.datasets import load
    from sparsexc.estimator import XCClassifier
    from sparsexc.io import write_xc

    out = tmp_path / "run"
    tree = ["--tree-param", "max_leaf_size=20", "--tree-param", "n_trees=2"]
    _run("train", "--dataset", "bibtex", "--model", "tree", *tree, "--out", str(out), "--quiet")
    _run("evaluate", str(out), "--json", str(tmp_path / "eval.json"))
    test = load("bibtex").test
    write_xc(tmp_path / "rows.txt", test.X[:20], test.Y[:20])
    rows = tmp_path / "rows.txt"
    _run(
        "predict",
        str(out),
        "--input",
        str(rows),
        "--top-k",
        "3",
        "--ids",
        "--format",
        "jsonl",
        "--output",
        str(out / "p"),
    )
    idx, _ = XCClassifier.load(out / "model").predict_topk(test.X[:20], 3)  # here, torch or not: the same labels
    assert [json.loads(line)["labels"] for line in (out / "p").read_text().splitlines()] == idx.tolist()
