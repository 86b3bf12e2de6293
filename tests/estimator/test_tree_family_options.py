"""The tree family's run options and prediction settings: checkpoint/resume options are one clear error (a tree
trains in one pass), and the beam every prediction path uses by default is ``PredictParams().beam``."""

from __future__ import annotations

import numpy as np
import pytest

from sparsexc._params import PredictParams
from sparsexc.cli import main
from sparsexc.errors import ConfigurationError
from sparsexc.estimator import XCClassifier
from sparsexc.estimator._families import TREE_CANDIDATES
from sparsexc.heads.tuning import candidate_sets

TREE = {"branching": 2, "max_leaf_size": 2}  # 8 labels: a deep, narrow tree, where the beam width matters


@pytest.mark.parametrize(
    ("run", "named"),
    [
        ({"checkpoint_dir": "CK"}, "checkpoint_dir="),
        ({"checkpoint_dir": "CK", "checkpoint_every": 3}, "checkpoint_every=3"),
        ({"checkpoint_dir": "CK", "resume": True}, "resume=True"),
        ({"resume": True}, "resume=True"),
    ],
)
def test_checkpoint_options_are_one_clear_error(data, tmp_path, run, named):
    X, Y = data
    run = {k: (str(tmp_path / v) if k == "checkpoint_dir" else v) for k, v in run.items()}
    clf = XCClassifier(model="tree", tree_params=TREE)
    with pytest.raises(ConfigurationError, match="trains in one pass") as info:
        clf.fit(X, Y, **run)
    assert named in str(info.value)
    assert not (tmp_path / "CK").exists()
    clf.fit(X, Y, log_path=str(tmp_path / "log.jsonl"))  # the log path is allowed: a tree run writes none
    assert not (tmp_path / "log.jsonl").exists()


def test_cli_checkpoint_every_with_a_tree_is_one_error_line(tmp_path, capsys):
    args = ["train", "--dataset", "bibtex", "--model", "tree", "--checkpoint-every", "5", "--out", str(tmp_path / "r")]
    assert main(args) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sparsexc: error: ")
    assert "checkpoint_every=5" in lines[0] and "trains in one pass" in lines[0] and "--checkpoint-every" in lines[0]


@pytest.fixture(scope="module")
def fitted(data):
    X, Y = data
    # preprocess="none": the checks below call the tree on the raw X
    return XCClassifier(model="tree", tree_params=TREE, validation_fraction=0.0, preprocess="none").fit(X, Y)


def test_every_prediction_path_uses_the_default_beam(fitted, data):
    X, _ = data
    beam = PredictParams().beam
    assert beam == 10
    tree = fitted.model_.tree
    narrow = tree.predict_topk(X, 8, beam=1)
    default = tree.predict_topk(X, 8, beam=beam)
    assert not np.array_equal(narrow[1], default[1])  # the beam matters here, so the checks below can fail
    idx, scores = fitted.predict_topk(X, 8)
    np.testing.assert_array_equal(idx, default[0])
    np.testing.assert_array_equal(scores, default[1])
    cand = tree.predict_topk(X, min(TREE_CANDIDATES, tree.n_labels_), beam=beam)
    want_sets = candidate_sets(*cand, fitted.model_.threshold, tree.n_labels_)
    assert (fitted.predict(X) != want_sets).nnz == 0
    dense = np.zeros((X.shape[0], tree.n_labels_), np.float32)
    np.put_along_axis(dense, cand[0], cand[1], axis=1)
    np.testing.assert_array_equal(fitted.decision_function(X), dense)


def test_cli_predict_default_beam_is_the_prediction_default(tmp_path, capsys):
    import json

    from sparsexc.datasets import load
    from sparsexc.io import write_xc

    out = tmp_path / "run"
    tree = ["--tree-param", "branching=2", "--tree-param", "max_leaf_size=4"]
    assert main(["train", "--dataset", "bibtex", "--model", "tree", *tree, "--out", str(out), "--quiet"]) == 0
    test = load("bibtex").test
    write_xc(tmp_path / "rows.txt", test.X[:30], test.Y[:30])
    rows = {}
    for beam in (None, str(PredictParams().beam), "1"):
        path = tmp_path / f"pred-{beam}.jsonl"
        args = ["predict", str(out), "--input", str(tmp_path / "rows.txt"), "--top-k", "5", "--ids"]
        args += ["--format", "jsonl", "--output", str(path)] + ([] if beam is None else ["--beam", beam])
        assert main(args) == 0
        rows[beam] = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[None] == rows[str(PredictParams().beam)]
    assert rows[None] != rows["1"]  # the beam matters on this tree
    capsys.readouterr()


@pytest.mark.parametrize(("loss", "C"), [("squared_hinge", 1.0), ("logistic", 10.0)])
def test_default_c_depends_on_the_loss_and_the_model_file_states_it(data, tmp_path, loss, C):
    """``C=None`` (the default) trains with 1 for the squared hinge and 10 for the logistic loss when it does not
    cross-validate (``cv_max_rows=0``), exactly as that C given explicitly; cross-validated (300 rows <= the
    default ``cv_max_rows``) it trains with the best of the loss's C x ``C_FACTORS``. The fitted params and the
    model folder record the C used."""
    import json

    from sparsexc.tree import LabelTreeModel, LabelTreeParams
    from sparsexc.tree.model import C_FACTORS

    X, Y = data
    assert LabelTreeParams().C is None and LabelTreeParams(loss=loss).resolved().C == C
    default = LabelTreeModel(LabelTreeParams(loss=loss, max_leaf_size=3, cv_max_rows=0)).fit(X, Y)
    explicit = LabelTreeModel(LabelTreeParams(loss=loss, max_leaf_size=3, C=C)).fit(X, Y)
    other = LabelTreeModel(LabelTreeParams(loss=loss, max_leaf_size=3, C=C * 3)).fit(X, Y)
    assert default.params.C == C and not hasattr(default, "cv_scores_")
    for a, b, c in zip(default.weights_[0], explicit.weights_[0], other.weights_[0], strict=True):
        assert (a != b).nnz == 0
        assert (a != c).nnz > 0  # C changes the weights, so the equality above can fail
    tuned = LabelTreeModel(LabelTreeParams(loss=loss, max_leaf_size=3)).fit(X, Y)
    # the loss's C x C_FACTORS, in order, up to where the path stopped (tests/tree/test_tree_cv_patience.py)
    tried = [C * f for f in C_FACTORS][: len(tuned.cv_scores_)]
    assert len(tried) >= 2 and list(tuned.cv_scores_) == pytest.approx(tried)
    assert tuned.cv_scores_[tuned.params.C] == max(tuned.cv_scores_.values())
    clf = XCClassifier(model="tree", tree_params={"loss": loss, "max_leaf_size": 3}).fit(X, Y)
    clf.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    used = clf.model_.tree.params.C
    assert used in clf.model_.tree.cv_scores_
    assert config["model"]["params"]["C"] == used  # the value used, not None
    assert config["params"]["tree_params"] == {"loss": loss, "max_leaf_size": 3}  # what was asked
    loaded = XCClassifier.load(tmp_path / "m").model_.tree.params.C
    assert loaded == used
