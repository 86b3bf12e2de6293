"""Shared fixtures of the estimator tests."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_multilabel_classification


@pytest.fixture(scope="module")
def data():
    """300 rows, 40 features, 8 labels (CSR float32 X, CSR Y)."""
    X, Y = make_multilabel_classification(300, 40, n_classes=8, sparse=True, return_indicator="sparse", random_state=0)
    return sp.csr_matrix(X, dtype=np.float32), sp.csr_matrix(Y)
