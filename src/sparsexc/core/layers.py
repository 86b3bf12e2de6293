r"""The affine output layers every head uses: dense, and over raw sparse features with a row-sparse gradient.

:class:`OutputLayer` computes :math:`Z = H W^\top + b` on dense hidden vectors or on the raw sparse features.

The linear model's output layer ``W`` (``n_labels x n_features``) is the largest tensor of a linear
extreme classifier (wordnet-hypernyms: 15,931 x 50,000 = 800M floats). Its batch gradient
:math:`G = dZ^\top X` is zero outside the columns of the features present in the batch, so a dense gradient,
and an optimiser step over the whole matrix, waste memory and time. :class:`SparseGradientOutputLayer`
stores the weight transposed, :math:`V = W^\top` (``n_features x n_labels``), and computes
:math:`Z = X V + b` with ``embedding_bag(mode="sum", per_sample_weights=x, sparse=True)``, whose gradient
is a sparse COO tensor holding only the rows of the present features (``EncoderParams.sparse_gradients``).
Its parameter is a :class:`~sparsexc.ops.sparse_grad.SparseGradientParameter`, so that
:func:`sparsexc.train.optim.build_optimizer` can hand it to an optimiser that accepts sparse gradients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sparsexc.ops.affine import affine
from sparsexc.ops.sparse_grad import SparseGradientParameter

__all__ = ["OutputLayer", "SparseGradientOutputLayer", "use_sparse_output_layers"]


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


class SparseGradientOutputLayer(OutputLayer):
    r""":class:`OutputLayer` over raw sparse features with a row-sparse gradient.

    Same function :math:`Z = X W^\top + b`, but the parameter is ``weight_t`` :math:`= W^\top`
    (``in_dim x n_out``, one row per feature) and ``weight`` is the (n_out, in_dim) view of it, so code that
    reads ``layer.weight`` sees the usual layout. On a ``torch.sparse_csr`` input the product is
    ``embedding_bag(col_indices, weight_t, crow_indices, per_sample_weights=values, mode="sum")`` with
    ``sparse=True``: the gradient of ``weight_t`` is a sparse COO tensor whose rows are the features present
    in the batch (uncoalesced: one row per stored entry). Dense inputs use ``H @ weight_t`` (dense gradient;
    the encoder never produces them for this layer).

    ``state_dict`` stores ``weight`` in the (n_out, in_dim) layout of :class:`OutputLayer` and
    ``load_state_dict`` accepts it, so saved models and checkpoints load into either layer.
    """

    def __init__(self, in_dim: int, n_out: int, bias: bool = True) -> None:
        super().__init__(in_dim, n_out, bias)  # OutputLayer's initialisation, then the transposed layout
        weight = self._parameters.pop("weight")
        assert weight is not None  # OutputLayer.__init__ registered it
        self._adopt(weight, self.bias)

    @classmethod
    def from_dense(cls, layer: OutputLayer) -> SparseGradientOutputLayer:
        """The same weights as ``layer`` (copied transposed) in the sparse-gradient layout."""
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        new.in_dim, new.n_out = layer.in_dim, layer.n_out
        new._adopt(layer.weight, layer.bias)
        return new

    def _adopt(self, weight: torch.Tensor, bias: nn.Parameter | None) -> None:
        self.weight_t = SparseGradientParameter(weight.detach().t().contiguous())
        self.bias = bias
        self.register_state_dict_post_hook(_save_dense_layout)
        self.register_load_state_dict_pre_hook(_load_dense_layout)

    @property
    def weight(self) -> torch.Tensor:  # type: ignore[override]
        """:math:`W` (n_out, in_dim), a view of ``weight_t``."""
        return self.weight_t.t()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores of all outputs, dense (B, n_out)."""
        if hidden.layout != torch.sparse_csr:
            out = hidden.matmul(self.weight_t)
        else:
            out = F.embedding_bag(
                hidden.col_indices(),
                self.weight_t,
                hidden.crow_indices(),
                mode="sum",
                per_sample_weights=hidden.values(),
                include_last_offset=True,
                sparse=True,
            )
        return out + self.bias if self.bias is not None else out

    def forward_subset(self, hidden: torch.Tensor, output_ids: torch.Tensor) -> torch.Tensor:
        """Scores of the outputs ``output_ids``: all outputs are computed (the row-sparse product gives every
        column of a present feature's row at once), then the subset is taken."""
        return self.forward(hidden)[:, output_ids]


def _save_dense_layout(
    module: SparseGradientOutputLayer, state: dict[str, Any], prefix: str, local_metadata: Any
) -> None:
    # rebuild the dict in OutputLayer's key order: weight (n_out, in_dim), then bias
    items = list(state.items())
    state.clear()
    for key, value in items:
        if key == prefix + "weight_t":
            state[prefix + "weight"] = value.t()
        else:
            state[key] = value


def _load_dense_layout(module: SparseGradientOutputLayer, state: dict[str, Any], prefix: str, *args: Any) -> None:
    if prefix + "weight" in state and prefix + "weight_t" not in state:
        state[prefix + "weight_t"] = state.pop(prefix + "weight").t()


def use_sparse_output_layers(module: nn.Module, in_dim: int) -> int:
    """Replace every :class:`OutputLayer` of ``module`` whose input is ``in_dim`` wide (the raw features) by a
    :class:`SparseGradientOutputLayer` with the same weights; return how many were replaced."""
    replaced = 0
    for parent in list(module.modules()):
        children: Mapping[str, nn.Module] = dict(parent.named_children())
        for name, child in children.items():
            if type(child) is OutputLayer and child.in_dim == in_dim:
                setattr(parent, name, SparseGradientOutputLayer.from_dense(child))
                replaced += 1
    return replaced
