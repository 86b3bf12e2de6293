"""The affine output layer every head uses, on dense hidden vectors or on the raw sparse features."""

from __future__ import annotations

import math

import torch
from torch import nn

from sparsexc.ops.affine import affine

__all__ = ["OutputLayer"]


class OutputLayer(nn.Module):
    r"""Affine scores :math:`Z = H W^\top + b`, ``W`` of shape (n_out, in_dim), ``b`` of shape (n_out,).

    ``H`` is either a dense (B, in_dim) tensor (the output of an MLP encoder) or a ``torch.sparse_csr``
    (B, in_dim) tensor: the raw features, passed through by the encoder with no hidden layer. In that case
    ``W`` is the full-rank linear model over the features (``n_labels x n_features``) and ``H`` is never
    densified (sparse @ dense matmul, whose backward gives the dense gradient of ``W``).

    The weights start uniform in :math:`\pm 1/\sqrt{in\_dim}` (``torch.nn.Linear``'s rule), the bias at 0.
    """

    def __init__(self, in_dim: int, n_out: int, bias: bool = True) -> None:
        super().__init__()
        self.in_dim, self.n_out = int(in_dim), int(n_out)
        self.weight = nn.Parameter(torch.empty(self.n_out, self.in_dim))
        self.bias = nn.Parameter(torch.zeros(self.n_out)) if bias else None
        bound = 1.0 / math.sqrt(max(self.in_dim, 1))
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores of all outputs, dense (B, n_out)."""
        return affine(hidden, self.weight, self.bias)

    def forward_subset(self, hidden: torch.Tensor, output_ids: torch.Tensor) -> torch.Tensor:
        """Scores of the outputs ``output_ids`` (LongTensor (m,), shared by the batch): dense (B, m)."""
        bias = self.bias[output_ids] if self.bias is not None else None
        return affine(hidden, self.weight[output_ids], bias)
