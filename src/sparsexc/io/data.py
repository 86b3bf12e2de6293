"""The in-memory form of a multi-label data set."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from sparsexc.errors import ConfigurationError

__all__ = ["MultiLabelData"]


@dataclass
class MultiLabelData:
    """Features, labels and their names, as every reader and data set returns them.

    Attributes
    ----------
    X : scipy.sparse.csr_matrix, shape (n_samples, n_features), float32, sorted indices
    Y : scipy.sparse.csr_matrix, shape (n_samples, n_labels), float32 0/1 indicator, sorted indices
    feature_names : list of str or None
    label_names : list of str or None
    """

    X: sp.csr_matrix
    Y: sp.csr_matrix
    feature_names: list[str] | None = None
    label_names: list[str] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.X.shape[0] != self.Y.shape[0]:
            raise ConfigurationError(f"X has {self.X.shape[0]} rows but Y has {self.Y.shape[0]}")
        if self.feature_names is not None and len(self.feature_names) != self.X.shape[1]:
            raise ConfigurationError(f"{len(self.feature_names)} feature names for {self.X.shape[1]} features")
        if self.label_names is not None and len(self.label_names) != self.Y.shape[1]:
            raise ConfigurationError(f"{len(self.label_names)} label names for {self.Y.shape[1]} labels")

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_labels(self) -> int:
        return int(self.Y.shape[1])

    def subset(self, rows: np.ndarray) -> MultiLabelData:
        """Rows ``rows`` (an index array), names and meta kept."""
        rows = np.asarray(rows)
        return MultiLabelData(self.X[rows], self.Y[rows], self.feature_names, self.label_names, dict(self.meta))

    def __iter__(self):
        # ``X, Y = data`` works as for the (X, Y) tuples of read_xc.
        return iter((self.X, self.Y))
