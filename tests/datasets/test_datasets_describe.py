"""describe(): every statistic against a brute-force count on small dense matrices."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsexc.datasets import describe
from sparsexc.io.data import MultiLabelData


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(1, 9), st.integers(1, 7), st.integers(0, 2**31 - 1))
def test_describe_matches_brute_force(n_rows, n_features, n_labels, seed):
    rng = np.random.default_rng(seed)
    X = (rng.random((n_rows, n_features)) < 0.4) * rng.random((n_rows, n_features))
    Y = (rng.random((n_rows, n_labels)) < 0.3).astype(np.float32)
    stats = describe(MultiLabelData(sp.csr_matrix(X.astype(np.float32)), sp.csr_matrix(Y)))

    labels_per_row = [sum(1 for c in range(n_labels) if Y[i, c]) for i in range(n_rows)]
    rows_per_label = [sum(1 for i in range(n_rows) if Y[i, c]) for c in range(n_labels)]
    features_per_row = [sum(1 for j in range(n_features) if X[i, j] != 0) for i in range(n_rows)]
    assert (stats["rows"], stats["features"], stats["labels"]) == (n_rows, n_features, n_labels)
    assert np.isclose(stats["label_cardinality"], sum(labels_per_row) / n_rows)
    assert stats["labels_per_row_max"] == max(labels_per_row)
    assert stats["rows_without_labels"] == labels_per_row.count(0)
    assert stats["labels_without_rows"] == rows_per_label.count(0)
    assert np.isclose(stats["features_per_row"], sum(features_per_row) / n_rows)
    assert stats["features_per_row_max"] == max(features_per_row)
    ordered = sorted(rows_per_label)
    assert stats["label_frequency_quantiles"]["q0"] == ordered[0]
    assert stats["label_frequency_quantiles"]["q100"] == ordered[-1]
    assert np.isclose(stats["label_frequency_quantiles"]["q50"], np.median(ordered))


def test_describe_accepts_a_pair():
    X = sp.csr_matrix(np.eye(3, dtype=np.float32))
    Y = sp.csr_matrix(np.array([[1, 0], [1, 1], [0, 0]], dtype=np.float32))
    stats = describe((X, Y))
    assert stats["label_cardinality"] == 1.0
    assert stats["rows_without_labels"] == 1
    assert stats["label_frequency_quantiles"]["q100"] == 2
