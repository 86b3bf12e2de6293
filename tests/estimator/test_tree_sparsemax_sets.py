"""The tree model's sparsemax set rule: the support of sparsemax(a log s) over each row's best labels, found as a
threshold on margins (checked against the sparsemax op), tuned beside the threshold rule and kept where it scores
higher on the tuning rows; saved and loaded with the model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sparsexc.errors import ModelFormatError
from sparsexc.estimator import XCClassifier
from sparsexc.estimator import _families as families
from sparsexc.heads._metric_bridge import set_metric
from sparsexc.ops import sparsemax


def _support(idx: np.ndarray, scores: np.ndarray, scale: float, n_labels: int) -> np.ndarray:
    """Brute force: the dense 0/1 support of sparsemax(scale x log s) over each row's candidates (float64)."""
    logs = torch.from_numpy(np.log(np.maximum(scores.astype(np.float64), np.finfo(np.float32).tiny)))
    p = sparsemax(scale * logs, dim=1).numpy()
    out = np.zeros((idx.shape[0], n_labels), dtype=np.float32)
    np.put_along_axis(out, idx, (p > 0).astype(np.float32), axis=1)
    return out


def _candidates(rng: np.random.Generator, n: int, m: int, C: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.stack([rng.choice(C, m, replace=False) for _ in range(n)])
    scores = rng.random((n, m)).astype(np.float32) ** 3
    scores[:5, 3:6] = scores[:5, 2:3]  # ties
    scores[5:8, -2:] = 0.0  # labels the search filled in with score 0
    scores[8] = 0.25  # a row of equal scores: all in the support
    return idx, scores


@pytest.mark.parametrize("scale", families.SPARSEMAX_SCALES)
def test_the_margins_threshold_is_the_sparsemax_support(scale):
    rng = np.random.default_rng(int(scale * 100))
    idx, scores = _candidates(rng, 60, 12, 40)
    ranked, margins = families.sparsemax_margins(idx, scores)
    assert (np.diff(margins, axis=1) <= 1e-12).all()  # not increasing along a row: the support is a prefix
    got = sp.csr_matrix(families.candidate_sets(ranked, margins, families.sparsemax_threshold(scale), 40)).toarray()
    want = _support(idx, scores, scale, 40)
    # the same sets, but for a label exactly at the support's edge (sparsemax gives it 0; the rule keeps it)
    edge = np.zeros_like(want)
    np.put_along_axis(edge, ranked, (np.abs(margins + 1.0 / scale) < 1e-9).astype(np.float32), axis=1)
    assert ((got != want) <= (edge > 0)).all()
    assert got[8, idx[8]].all()  # equal scores


def _planted(seed: int = 0, n: int = 300, m: int = 20, C: int = 50):
    """Rows whose true labels are their first few candidates, of varying number, with scores that fall off after
    them by a row-dependent amount: a per-row cut (sparsemax's) beats any one threshold."""
    rng = np.random.default_rng(seed)
    idx = np.stack([rng.choice(C, m, replace=False) for _ in range(n)])
    level = rng.uniform(0.05, 0.9, size=(n, 1))
    k = rng.integers(1, 6, size=n)
    scores = np.where(np.arange(m)[None, :] < k[:, None], level, level * 0.1 * rng.random((n, m)))
    rows = np.repeat(np.arange(n), k)
    Y = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, np.concatenate([idx[i, : k[i]] for i in range(n)]))),
                      shape=(n, C))  # fmt: skip
    return idx, scores.astype(np.float32), Y


def test_tuning_keeps_the_sparsemax_rule_where_it_scores_higher():
    idx, scores, Y = _planted()
    grid = [families.default_tree_threshold("logistic"), *families.THRESHOLD_GRID]
    tuned = families.tune_tree_sets(idx, scores, Y, grid, "example-F1")
    f1 = set_metric("example-F1")
    best_threshold = max(f1(Y, families.candidate_sets(idx, scores, t, 50)) for t in grid)
    assert "sparsemax_scale" in tuned and tuned["example-F1"] > best_threshold
    got = f1(Y, sp.csr_matrix(_support(idx, scores, tuned["sparsemax_scale"], 50)))
    assert got == pytest.approx(tuned["example-F1"], abs=1e-12)
    assert tuned["example-F1"] == pytest.approx(
        max(f1(Y, sp.csr_matrix(_support(idx, scores, a, 50))) for a in families.SPARSEMAX_SCALES), abs=1e-12
    )


def test_a_tie_keeps_the_threshold_rule():
    # one true label per row, far above the rest: every rule of both kinds near the top finds it exactly
    idx, scores, Y = _planted()
    scores = np.broadcast_to(np.where(np.arange(20) == 0, 0.9, 1e-9), idx.shape).astype(np.float32)
    Y = sp.csr_matrix((np.ones(300, np.float32), (np.arange(300), idx[:, 0])), shape=(300, 50))
    tuned = families.tune_tree_sets(idx, scores, Y, [0.5, 0.1], "example-F1")
    assert tuned == {"threshold": 0.5, "example-F1": 1.0}


@pytest.fixture(scope="module")
def chosen(tmp_path_factory):
    """A tree model on a planted problem where tuning for example-F1 keeps the sparsemax rule, saved."""
    rng = np.random.default_rng(3)
    X = sp.random(900, 60, density=0.15, format="csr", dtype=np.float32, random_state=rng)
    W = rng.normal(size=(60, 24)) * (rng.random((60, 24)) < 0.25)
    S = np.asarray(X @ W)
    Y = sp.csr_matrix(np.quantile(S, 0.9, axis=1, keepdims=True) * rng.uniform(0.6, 1.0, (900, 1)) <= S)
    Y = sp.csr_matrix(Y, dtype=np.float32)
    clf = XCClassifier(model="tree", tree_params={"loss": "logistic", "max_leaf_size": 4}, tune_metric="example-F1",
                       preprocess="none").fit(X[:600], Y[:600], X[600:800], Y[600:800])  # fmt: skip
    folder = tmp_path_factory.mktemp("tree-sparsemax") / "model"
    clf.save(folder)
    return clf, folder, X[800:]


def test_the_estimator_predicts_the_sparsemax_support_and_saves_the_rule(chosen, tmp_path):
    clf, folder, X = chosen
    scale = clf.tuned_.get("sparsemax_scale")
    assert scale is not None and clf.model_.scale == scale  # the planted problem's tuning chose it
    assert "sparsemax" in clf.fit_summary_["message"]
    idx, scores = clf.model_.candidates(X, 10)
    np.testing.assert_array_equal(clf.predict(X).toarray(), _support(idx, scores, scale, 24))
    loaded = XCClassifier.load(folder)
    assert loaded.tuned_ == clf.tuned_ and loaded.model_.scale == scale
    assert (loaded.predict(X) != clf.predict(X)).nnz == 0
    for bad in (0.0, -1.0):
        damaged = tmp_path / f"scale{bad}"
        damaged.mkdir()
        for f in folder.iterdir():
            (damaged / f.name).write_bytes(f.read_bytes())
        config = json.loads((damaged / "config.json").read_text())
        config["tuned"]["sparsemax_scale"] = bad
        (damaged / "config.json").write_text(json.dumps(config))
        with pytest.raises(ModelFormatError, match=r"tuned\.sparsemax_scale"):
            XCClassifier.load(damaged)
