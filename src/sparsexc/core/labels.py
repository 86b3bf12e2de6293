"""Label sets of a mini-batch as CSR pieces (indices + offsets), the currency between trainer and heads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["LabelBatch"]


@dataclass
class LabelBatch:
    """The positive labels of ``n_rows`` examples in CSR layout.

    Row ``i`` holds the label ids ``indices[offsets[i]:offsets[i + 1]]`` (sorted, no duplicates).
    Heads receive and return label sets in this form; nothing here is ever densified unless a head asks
    for :meth:`to_dense`.

    Attributes
    ----------
    indices : LongTensor, shape (nnz,)
    offsets : LongTensor, shape (n_rows + 1,)
        The CSR ``indptr``: ``offsets[0] == 0`` and ``offsets[-1] == nnz``.
    n_labels : int
        Width of the label space, C.
    """

    indices: torch.Tensor
    offsets: torch.Tensor
    n_labels: int

    @property
    def n_rows(self) -> int:
        return int(self.offsets.numel()) - 1

    @property
    def device(self) -> torch.device:
        return self.offsets.device

    @classmethod
    def from_csr(cls, Y: sp.spmatrix, device: torch.device | str | None = None) -> LabelBatch:
        """Build from the rows of a CSR 0/1 indicator (any explicit values are ignored, only the pattern counts)."""
        Y = sp.csr_matrix(Y)
        if not Y.has_sorted_indices:
            Y = Y.sorted_indices()
        indices = torch.from_numpy(np.ascontiguousarray(Y.indices, dtype=np.int64))
        offsets = torch.from_numpy(np.ascontiguousarray(Y.indptr, dtype=np.int64))
        if device is not None:
            indices, offsets = indices.to(device), offsets.to(device)
        return cls(indices, offsets, int(Y.shape[1]))

    @classmethod
    def from_mask(cls, mask: torch.Tensor) -> LabelBatch:
        """Build from a boolean (B, C) mask of chosen labels."""
        rows, cols = torch.nonzero(mask, as_tuple=True)  # row-major order, so columns come sorted per row
        counts = torch.bincount(rows, minlength=mask.shape[0])
        offsets = torch.zeros(mask.shape[0] + 1, dtype=torch.long, device=mask.device)
        torch.cumsum(counts, 0, out=offsets[1:])
        return cls(cols.long(), offsets, int(mask.shape[1]))

    def to(self, device: torch.device | str) -> LabelBatch:
        return LabelBatch(self.indices.to(device), self.offsets.to(device), self.n_labels)

    def sizes(self) -> torch.Tensor:
        """Number of labels per row, LongTensor (n_rows,)."""
        return self.offsets[1:] - self.offsets[:-1]

    def row_ids(self) -> torch.Tensor:
        """Row of every stored label, LongTensor (nnz,): the COO row coordinates."""
        return torch.repeat_interleave(torch.arange(self.n_rows, device=self.device), self.sizes())

    def to_dense(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The (n_rows, n_labels) 0/1 indicator; only for heads that need it (moderate C)."""
        out = torch.zeros(self.n_rows, self.n_labels, dtype=dtype, device=self.device)
        out[self.row_ids(), self.indices] = 1
        return out

    def to_csr(self) -> sp.csr_matrix:
        """The scipy CSR 0/1 float32 indicator, shape (n_rows, n_labels)."""
        indices = self.indices.detach().cpu().numpy()
        data = np.ones(indices.size, dtype=np.float32)
        return sp.csr_matrix((data, indices, self.offsets.detach().cpu().numpy()), shape=(self.n_rows, self.n_labels))
