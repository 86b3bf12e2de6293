"""The nodes of a level train in the calling thread (one worker) or on a thread pool (several): the weights are
the same bit for bit, for both solvers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_multilabel_classification

from sparsexc.tree import LabelTreeModel, LabelTreeParams


@pytest.mark.parametrize("loss", ["squared_hinge", "logistic"])
def test_one_worker_and_a_pool_train_the_same_weights(loss):
    X, Y = make_multilabel_classification(200, 30, n_classes=12, sparse=True, return_indicator="sparse", random_state=1)
    X = sp.csr_matrix(X, dtype=np.float32)
    settings = {"branching": 3, "max_leaf_size": 4, "loss": loss, "C": 1.0}
    inline = LabelTreeModel(LabelTreeParams(**settings, n_jobs=1)).fit(X, Y)
    pooled = LabelTreeModel(LabelTreeParams(**settings, n_jobs=3)).fit(X, Y)
    assert len(inline.weights_[0]) >= 2  # a tree of several levels, each with several nodes
    for a, b in zip(inline.weights_[0], pooled.weights_[0], strict=True):
        assert a.shape == b.shape and (a != b).nnz == 0


@pytest.mark.parametrize("n_trees", [1, 3])
def test_ranking_on_several_threads_gives_what_one_thread_gives(n_trees, monkeypatch):
    import sparsexc.tree.model as tree_model

    X, Y = make_multilabel_classification(
        3000, 30, n_classes=40, sparse=True, return_indicator="sparse", random_state=2
    )
    X = sp.csr_matrix(X, dtype=np.float32)
    settings = {"branching": 3, "max_leaf_size": 5, "C": 1.0, "n_trees": n_trees, "n_jobs": 1}
    model = LabelTreeModel(LabelTreeParams(**settings)).fit(X[:1000], Y[:1000])
    inline = model.predict_topk(X, 7)
    ran = []
    pool = tree_model.ThreadPoolExecutor

    def counting_pool(workers):
        ran.append(workers)
        return pool(workers)

    monkeypatch.setattr(tree_model, "ThreadPoolExecutor", counting_pool)
    for jobs in (2, 3):
        model.params = model.params.replace(n_jobs=jobs)
        threaded = model.predict_topk(X, 7)
        np.testing.assert_array_equal(threaded[0], inline[0])
        np.testing.assert_array_equal(threaded[1], inline[1])
    assert ran == [2, 3]  # 3,000 rows: three batches of 1,024 rows at most, so up to three threads
