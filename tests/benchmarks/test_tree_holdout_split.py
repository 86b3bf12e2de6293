"""benchmarks/tree_holdout.py: the hold-out is 20% of the TRAINING rows, seeded, disjoint from the fitted 80%."""

from __future__ import annotations

import numpy as np
import tree_holdout  # benchmarks/ is on sys.path (conftest.py)

from sparsexc.datasets import load


def test_the_holdout_is_a_seeded_fifth_of_the_training_rows():
    train = load("bibtex").train
    Xf, Yf, Xh, Yh = tree_holdout.split("bibtex", 123)
    assert Xf.shape[0] + Xh.shape[0] == train.X.shape[0] and Xh.shape[0] == round(0.2 * train.X.shape[0])
    assert Yf.shape[0] == Xf.shape[0] and Yh.shape[0] == Xh.shape[0]
    # the rows are the training rows, split without overlap (every training row once, in one of the two parts)
    rows = {r.tobytes() for r in np.vstack([Xf.toarray(), Xh.toarray()])}
    assert rows == {r.tobytes() for r in train.X.toarray()}
    again = tree_holdout.split("bibtex", 123)
    assert (again[2] != Xh).nnz == 0
    assert (tree_holdout.split("bibtex", 124)[2] != Xh).nnz > 0
