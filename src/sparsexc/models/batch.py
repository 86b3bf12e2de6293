"""Mini-batches cut straight from CSR matrices: features for the encoder, label sets for the heads."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from sparsexc.core.labels import LabelBatch

__all__ = ["FeatureBatch", "LabelBatch"]


@dataclass
class FeatureBatch:
    """Feature rows in CSR layout (densified only on request: :meth:`to_dense`).

    Attributes
    ----------
    indices : LongTensor (nnz,)      feature ids, sorted within each row
    offsets : LongTensor (n_rows + 1,)  the CSR ``indptr`` (EmbeddingBag with ``include_last_offset=True``)
    values : FloatTensor (nnz,)      feature values (EmbeddingBag's ``per_sample_weights``)
    n_rows, n_features : int
    rows : int64 array (n_rows,) or None
        Where the Trainer cut the batch from: the rows' positions in the training matrix it gave
        ``model.prepare`` (a model may keep per-row data from there, as a shortlist model its shortlists).
    """

    indices: torch.Tensor
    offsets: torch.Tensor
    values: torch.Tensor
    n_rows: int
    n_features: int
    rows: np.ndarray | None = None

    @classmethod
    def from_csr(
        cls, X_rows: sp.spmatrix, device: torch.device | str | None = None, rows: np.ndarray | None = None
    ) -> FeatureBatch:
        """Build from CSR rows (float32 values, int64 indices); ``rows``: their positions in the training matrix."""
        X_rows = sp.csr_matrix(X_rows)
        indices = torch.from_numpy(np.ascontiguousarray(X_rows.indices, dtype=np.int64))
        offsets = torch.from_numpy(np.ascontiguousarray(X_rows.indptr, dtype=np.int64))
        values = torch.from_numpy(np.ascontiguousarray(X_rows.data, dtype=np.float32))
        if device is not None:
            indices, offsets, values = indices.to(device), offsets.to(device), values.to(device)
        return cls(indices, offsets, values, int(X_rows.shape[0]), int(X_rows.shape[1]), rows)

    def to(self, device: torch.device | str) -> FeatureBatch:
        return FeatureBatch(
            self.indices.to(device),
            self.offsets.to(device),
            self.values.to(device),
            self.n_rows,
            self.n_features,
            self.rows,
        )

    @property
    def density(self) -> float:
        """Stored entries / cells, ``nnz / (n_rows * n_features)`` (0 for an empty batch)."""
        cells = self.n_rows * self.n_features
        return self.values.numel() / cells if cells else 0.0

    def to_dense(self) -> torch.Tensor:
        """The batch as a dense (n_rows, n_features) tensor (a new one; duplicate entries summed, as in CSR)."""
        return self.to_sparse_csr().to_dense()

    def to_sparse_csr(self) -> torch.Tensor:
        """The batch as a ``torch.sparse_csr`` (n_rows, n_features) tensor (shares memory)."""
        # torch flags every sparse CSR tensor as "beta"; the operations used here (construction, CSR @ dense with
        # autograd on the dense side) are covered by sparsexc's tests, so the note is noise for users.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
            return torch.sparse_csr_tensor(
                self.offsets, self.indices, self.values, size=(self.n_rows, self.n_features), check_invariants=False
            )
