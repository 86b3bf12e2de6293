"""benchmarks/tree_set_rule.py: the threshold rule's sets from the public API equal the tree model's own, and the
page counts the sets where the sparsemax rule was kept."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc import XCClassifier


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("tree_set_rule")


def test_threshold_sets_are_the_tree_models_threshold_rule(bench):
    rng = np.random.default_rng(0)
    X = sp.random(400, 50, density=0.2, format="csr", dtype=np.float32, random_state=rng)
    Y = sp.csr_matrix((X @ rng.normal(size=(50, 12))) > 0.8, dtype=np.float32)
    clf = XCClassifier(model="tree", tree_params={"max_leaf_size": 4}, preprocess="none").fit(X[:300], Y[:300])
    for t in (0.05, 0.3, clf.tuned_["threshold"]):
        want = dataclasses.replace(clf.model_, threshold=t, scale=None).sets(X[300:], 10)
        assert (bench.threshold_sets(clf, X[300:], t) != want).nnz == 0


def test_the_page(bench):
    def row(rule: dict, thr: float, chosen: float) -> dict:
        scores = {"micro-F1": thr, "example-F1": thr, "mean_set_size": 2.0}
        return {"tuned": {"threshold": 0.2, "micro-F1": 0.5, **rule}, "threshold": scores,
                "chosen": {**scores, "micro-F1": chosen}}  # fmt: skip

    result = {"environment": {"processor": "x", "cpu_count": 2}, "date": "d", "command": "c",
              "metrics": ["micro-F1"], "datasets": {
                  "a": {"metrics": {"micro-F1": row({"sparsemax_scale": 0.5}, 50.0, 52.0)}},
                  "b": {"metrics": {"micro-F1": row({}, 40.0, 40.0)}},
                  "c": {"metrics": {"micro-F1": {"tuned": {}, "model": "neural"}}}}}  # fmt: skip
    page = bench.markdown(result)
    assert "| a | sparsemax 0.5 | 50.00 | 50.00 | 52.00 | +2.00 |" in page
    assert "| b | threshold 0.2 |" in page and "| c | not the tree model (neural) |" in page
    assert "Sparsemax kept on 1/2 sets; test micro-F1 higher on 1, lower on 0; mean difference +1.00" in page


def test_the_holdout_section(bench):
    def run(seed, scale, thr, chosen):
        tuned = {"threshold": 0.2, **({"sparsemax_scale": scale} if scale else {})}
        return {"seed": seed, "tuned": tuned, "threshold": {"example-F1": thr}, "chosen": {"example-F1": chosen}}

    result = {"datasets": {"a": {"holdout": {"example-F1": [run(123, 0.5, 50.0, 53.0), run(124, None, 40.0, 40.0)]}},
                           "b": {"holdout": {}}}}  # fmt: skip
    lines = bench.holdout_lines(result)
    assert "| a | example-F1 | 1/2 | +1.50 +- 1.50 | +3.00, +0.00 |" in lines
    assert not any(line.startswith("| b ") for line in lines)
    assert bench.holdout_lines({"datasets": {"b": {"holdout": {}}}}) == []
