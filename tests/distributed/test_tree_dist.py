"""The tree model on 2 ranks: ``XCClassifier(model="tree")`` inside a process group, and ``sparsexc train --model
tree --nproc-per-node 2``, train each rank's share of the nodes and end with the one-process model, bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sparsexc.distributed import spawn

# an ensemble of squared-hinge trees (dcd) with 2 threads per rank, and a logistic tree (Newton-CG); C is not
# cross-validated (cv_max_rows=0: every rank would repeat those whole fits, and the node count below is of the split)
SETTINGS = [
    {"max_leaf_size": 20, "n_trees": 2, "n_jobs": 2, "cv_max_rows": 0},
    {"max_leaf_size": 20, "loss": "logistic", "branching": 4, "cv_max_rows": 0},
]
TREE_ARGS = ["--model", "tree", "--tree-param", "max_leaf_size=20", "--tree-param", "branching=4"]


def _fit(settings: dict) -> tuple[dict[str, np.ndarray], dict, int]:
    """Fit on bibtex's training rows (10% held out to tune the threshold); (arrays, tuned, nodes trained here)."""
    from sparsexc.datasets import load
    from sparsexc.estimator import XCClassifier
    from sparsexc.tree.model import LabelTreeModel

    trained = []
    fit_node = LabelTreeModel._fit_node

    def counting(self, X, target, reach, tree, t, node, **options):  # type: ignore[no-untyped-def]
        trained.append(1)  # list.append is atomic: the node jobs run on threads
        return fit_node(self, X, target, reach, tree, t, node, **options)

    LabelTreeModel._fit_node = counting  # type: ignore[method-assign]
    try:
        train = load("bibtex").train
        clf = XCClassifier(model="tree", tree_params=settings, random_state=3).fit(train.X, train.Y)
    finally:
        LabelTreeModel._fit_node = fit_node  # type: ignore[method-assign]
    return clf.model_.tree.to_arrays(), clf.tuned_, len(trained)


def _fit_all(jobs: list[dict]) -> list[tuple[dict[str, np.ndarray], dict, int]]:
    return [_fit(settings) for settings in jobs]


@pytest.fixture(scope="module")
def two_ranks():
    """Every 2-rank fit of this file in one spawn (starting the processes is the slow part)."""
    return spawn(_fit_all, 2, (SETTINGS,))


@pytest.mark.parametrize("job", range(len(SETTINGS)))
def test_two_ranks_fit_the_one_process_model_bit_for_bit(two_ranks, job):
    one_arrays, one_tuned, one_nodes = _fit(SETTINGS[job])
    ranks = [results[job] for results in two_ranks]
    for arrays, tuned, _ in ranks:  # every rank holds the whole model
        assert arrays.keys() == one_arrays.keys()
        for name, value in one_arrays.items():
            assert arrays[name].dtype == value.dtype
            np.testing.assert_array_equal(arrays[name], value, err_msg=name)
        assert tuned == one_tuned
    nodes = [n for _, _, n in ranks]
    assert sum(nodes) == one_nodes and min(nodes) > 0  # the nodes were split, not trained twice


def test_cli_nproc_per_node_two_trains_the_one_process_model(tmp_path):
    from sparsexc.cli import main

    common = ["train", "--dataset", "bibtex", *TREE_ARGS, "--seed", "1", "--quiet"]
    two = tmp_path / "two"
    done = subprocess.run(
        [sys.executable, "-m", "sparsexc.cli", *common, "--nproc-per-node", "2", "--out", str(two)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("micro-F1") == 1  # rank 0 alone evaluates and prints
    assert sorted(p.name for p in two.iterdir()) == ["launch_config.json", "metrics.json", "model", "run.json"]
    one = tmp_path / "one"
    assert main([*common, "--out", str(one)]) == 0
    from safetensors.numpy import load_file

    arrays_two, arrays_one = (load_file(run / "model" / "model.safetensors") for run in (two, one))
    assert arrays_two.keys() == arrays_one.keys()
    for name, value in arrays_one.items():
        assert arrays_two[name].dtype == value.dtype
        np.testing.assert_array_equal(arrays_two[name], value, err_msg=name)
    config_two, config_one = (json.loads((run / "model" / "config.json").read_text()) for run in (two, one))
    for key in ("model", "tuned", "params"):  # not the run's own paths, nor the hash of the file's header
        assert config_two[key] == config_one[key]
    assert json.loads((two / "metrics.json").read_text()) == json.loads((one / "metrics.json").read_text())
