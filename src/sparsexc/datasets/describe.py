"""Summary statistics of a multi-label data set, shared by ``sparsexc datasets info`` and the tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from sparsexc.io.data import MultiLabelData

__all__ = ["LABEL_FREQUENCY_QUANTILES", "describe"]

#: Quantiles reported for the label frequencies (rows per label, over all labels including unused ones).
LABEL_FREQUENCY_QUANTILES = (0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)


def describe(data: MultiLabelData | tuple[Any, Any]) -> dict[str, Any]:
    """Describe the shape and label statistics of ``data`` (a ``MultiLabelData`` or an ``(X, Y)`` pair).

    With ``n_i = |{c : Y[i, c] = 1}|`` labels in row ``i`` and ``f_c = |{i : Y[i, c] = 1}|`` rows of label
    ``c``, the result holds

    - ``rows``, ``features``, ``labels``: the shape;
    - ``label_cardinality``: mean of ``n_i``; ``labels_per_row_max``: max of ``n_i``;
    - ``rows_without_labels``: count of ``n_i = 0``; ``labels_without_rows``: count of ``f_c = 0``;
    - ``label_frequency_quantiles``: ``{"q0": .., "q25": .., ...}`` quantiles of ``f_c`` over all labels
      (numpy's linear interpolation), see ``LABEL_FREQUENCY_QUANTILES``;
    - ``features_per_row``: mean stored non-zeros of ``X`` per row; ``features_per_row_max``; ``density``:
      ``nnz(X) / (rows * features)``.
    """
    X, Y = data if not isinstance(data, MultiLabelData) else (data.X, data.Y)
    X = sp.csr_matrix(X)
    Y = sp.csr_matrix(Y)
    n_rows, n_features = X.shape
    n_labels = Y.shape[1]
    labels_per_row = np.diff(Y.indptr)
    features_per_row = np.diff(X.indptr)
    label_frequency = np.bincount(Y.indices, minlength=n_labels) if Y.nnz else np.zeros(n_labels, dtype=np.int64)
    quantiles: dict[str, float] = {}
    for q in LABEL_FREQUENCY_QUANTILES:
        quantiles[f"q{round(q * 100):d}"] = float(np.quantile(label_frequency, q)) if n_labels else 0.0
    return {
        "rows": int(n_rows),
        "features": int(n_features),
        "labels": int(n_labels),
        "label_cardinality": float(labels_per_row.mean()) if n_rows else 0.0,
        "labels_per_row_max": int(labels_per_row.max()) if n_rows else 0,
        "rows_without_labels": int(np.count_nonzero(labels_per_row == 0)),
        "labels_without_rows": int(np.count_nonzero(label_frequency == 0)),
        "label_frequency_quantiles": quantiles,
        "features_per_row": float(features_per_row.mean()) if n_rows else 0.0,
        "features_per_row_max": int(features_per_row.max()) if n_rows else 0,
        "density": float(X.nnz / (n_rows * n_features)) if n_rows and n_features else 0.0,
    }
