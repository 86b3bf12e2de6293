"""Row-sparse gradients: a parameter flag read by the optimiser factory, and a gather whose backward is sparse.

Used by the sampled heads (``sparse_gradients``: only the sampled output rows get a gradient) and by
:mod:`sparsexc.models.sparse_output` (the linear model's feature-indexed weights); it lives here, below both
the heads and the models, so neither imports the other for it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = [
    "SparseGradientParameter",
    "entry_views",
    "gather_sparse_grad",
    "has_sparse_gradient",
    "mark_sparse_gradient",
]


class SparseGradientParameter(nn.Parameter):
    """A parameter whose ``.grad`` is a sparse COO tensor (a subclass, so the flag survives ``copy.deepcopy``)."""


def mark_sparse_gradient(parameter: torch.Tensor) -> SparseGradientParameter:
    """``parameter``'s data as a :class:`SparseGradientParameter` (read by the optimiser factory); assign it back."""
    return SparseGradientParameter(parameter.detach(), parameter.requires_grad)


def has_sparse_gradient(parameter: torch.Tensor) -> bool:
    """Whether ``parameter`` receives sparse gradients (a :class:`SparseGradientParameter`)."""
    return isinstance(parameter, SparseGradientParameter)


class _GatherSparseGrad(torch.autograd.Function):
    """``param[indices]`` whose backward is a sparse COO tensor (see :func:`gather_sparse_grad`)."""

    @staticmethod
    def forward(ctx: Any, param: torch.Tensor, *indices: torch.Tensor) -> torch.Tensor:
        ctx.shape = param.shape
        ctx.save_for_backward(*indices)
        return param[indices]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        indices = ctx.saved_tensors
        k = len(indices)
        where = torch.stack([i.reshape(-1) for i in indices])
        values = grad.reshape(-1, *ctx.shape[k:])
        # uncoalesced (a repeated index is one entry per occurrence): the optimiser sums them when it coalesces
        out = torch.sparse_coo_tensor(where, values, ctx.shape, check_invariants=False)
        return (out, *([None] * k))


def gather_sparse_grad(param: torch.Tensor, *indices: torch.Tensor) -> torch.Tensor:
    r"""``param[i_1, ..., i_k]`` (advanced indexing of the first k dims by LongTensors broadcast to a shape S; result
    ``S + param.shape[k:]``) whose gradient with respect to ``param`` is a sparse COO tensor.

    The gradient is :math:`\partial L / \partial p_{j} = \sum_{s : i(s) = j} \partial L / \partial y_s`,
    held as one entry per gathered element (k sparse dims, the rest dense: with k = 1 the row-sparse gradient
    of ``F.embedding(..., sparse=True)``), so backward and a sparse-capable optimiser cost O(|S|), not
    O(numel(param)). Works on 1-d tensors (a bias) and on views (the gradient is carried back through them).
    """
    return _GatherSparseGrad.apply(param, *torch.broadcast_tensors(*indices))


def entry_views(grad: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Address the entries of a coalesced sparse COO ``grad`` in ``tensors`` of its shape (the parameter, its
    optimiser moments): ``(index, views)``, each view ``tensor.view(prod(sparse dims), *dense dims)`` and
    ``index`` (nnz,) the row-major linear index of the stored entries, so ``view[index]`` lines up with
    ``grad.values()``. A row-sparse gradient (sparse_dim 1) addresses whole rows, an element-sparse one
    (sparse_dim 2 on a matrix) single weights. The tensors must be contiguous."""
    k = grad.sparse_dim()
    indices, shape = grad._indices(), grad.shape
    index = indices[0]
    for dim in range(1, k):
        index = index * shape[dim] + indices[dim]
    views = []
    for tensor in tensors:
        if not tensor.is_contiguous():
            raise RuntimeError("entry_views needs contiguous tensors (a parameter and its optimiser moments)")
        views.append(tensor.view(-1, *shape[k:]))
    return index, views
