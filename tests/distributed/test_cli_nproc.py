"""``sparsexc train --nproc-per-node 2`` (torchrun, gloo) runs, writes one set of run files, and trains like
one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from _shared_data import requires_dataset

from sparsexc.cli import main

pytestmark = requires_dataset("emotions")
ARGS = [
    "train",
    "--dataset",
    "emotions",
    "--hidden-sizes",
    "",
    "--epochs",
    "2",
    "--batch-size",
    "64",
    "--device",
    "cpu",
    "--validation-fraction",
    "0",
    "--quiet",
]


def _losses(out):
    return [json.loads(line)["train_loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_nproc_per_node_two_matches_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = tmp_path / "two"
    done = subprocess.run(
        [sys.executable, "-m", "sparsexc.cli", *ARGS, "--nproc-per-node", "2", "--out", str(two)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("micro-F1") == 1  # rank 0 alone prints the metrics table
    assert sorted(p.name for p in two.iterdir()) == [
        "curves.png",
        "launch_config.json",
        "metrics.json",
        "model",
        "run.json",
        "train_log.jsonl",
    ]  # curves: matplotlib (test extra)
    one = tmp_path / "one"
    assert main([*ARGS, "--out", str(one)]) == 0
    np.testing.assert_allclose(_losses(two), _losses(one), rtol=1e-4)
    assert json.loads((two / "run.json").read_text())["options"]["epochs"] == 2


def test_nproc_per_node_two_with_label_shards(tmp_path):
    """``--head-param shard_labels=true``: the run (each rank holding half the labels) saves a model that loads
    whole in one process and scores the test set as the 2-rank evaluation did (sharded training = one process
    is tested with the Trainer in test_label_sharded_training.py)."""
    from sparsexc.cli._evaluation import test_metrics
    from sparsexc.datasets import load
    from sparsexc.estimator import XCClassifier

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sharded = [*ARGS, "--head", "softmax", "--head-param", "shard_labels=true"]
    two = tmp_path / "two"
    done = subprocess.run(
        [sys.executable, "-m", "sparsexc.cli", *sharded, "--nproc-per-node", "2", "--out", str(two)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("micro-F1") == 1
    clf = XCClassifier.load(two / "model")
    assert clf.model_.head.output.weight.shape[0] == clf.n_labels_  # gathered whole
    splits = load("emotions")
    again = test_metrics(clf, splits.test.X, splits.test.Y, splits.train.Y)
    saved = json.loads((two / "metrics.json").read_text())
    assert again == pytest.approx(saved, rel=1e-6, abs=1e-9)  # 2-rank evaluation (labels split) = one process
