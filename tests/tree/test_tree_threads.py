"""One thread pool over every (tree, level, node) job: the model is the same for every n_jobs, bit for bit."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc.tree import LabelTreeModel, LabelTreeParams
from sparsexc.tree.model import _workers


def _data(n: int = 300, d: int = 60, C: int = 40, seed: int = 4) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.1, random_state=seed, format="csr", dtype=np.float32)
    top = np.argsort(-(X @ rng.normal(size=(d, C))), axis=1)[:, :2]
    Y = sp.csr_matrix((np.ones(2 * n, np.float32), top.ravel(), np.arange(0, 2 * n + 1, 2)), shape=(n, C))
    return X, Y


@pytest.mark.parametrize("loss", ["squared_hinge", "logistic"])
def test_every_n_jobs_trains_the_same_ensemble(loss):
    X, Y = _data()
    params = LabelTreeParams(branching=3, max_leaf_size=6, n_trees=2, loss=loss, C=1.0)
    one = LabelTreeModel(params.replace(n_jobs=1)).fit(X, Y)
    for n_jobs in (3, -1):
        many = LabelTreeModel(params.replace(n_jobs=n_jobs)).fit(X, Y)
        for a_levels, b_levels in zip(one.weights_, many.weights_, strict=True):
            for a, b in zip(a_levels, b_levels, strict=True):
                assert a.shape == b.shape and (a != b).nnz == 0
                np.testing.assert_array_equal(a.indptr, b.indptr)


def test_workers():
    assert LabelTreeParams().n_jobs == -1  # every core by default
    assert _workers(1) == 1 and _workers(0) == 1 and _workers(5) == 5
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert _workers(-1) == cores  # the cores this process may use, not the machine's
