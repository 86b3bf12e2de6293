"""Affine output scores :math:`z = w^\top h + b` of a weight matrix: for every output, or per (row, label) pair.

The products themselves, below :mod:`sparsexc.heads` (``OutputLayer``, the sampled heads' pairs) and
:mod:`sparsexc.distributed` (the label-sharded layer), so both import them at module level.
"""

from __future__ import annotations

import torch

from sparsexc.ops.sparse_grad import gather_sparse_grad, has_sparse_gradient

__all__ = ["affine", "pair_logits_of"]


def affine(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    r""":math:`H W^\top + b` for dense ``hidden`` (B, in_dim) or ``torch.sparse_csr`` ``hidden`` (the raw features)."""
    if hidden.layout == torch.sparse_csr:
        # sparse @ dense has no bfloat16 kernel on CPU and gains little from it: float32 under autocast too
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            out = hidden @ weight.t()
    else:
        out = hidden.matmul(weight.t())
    return out + bias if bias is not None else out


def pair_logits_of(
    weight: torch.Tensor, bias: torch.Tensor | None, hidden: torch.Tensor, rows: torch.Tensor, label_ids: torch.Tensor
) -> torch.Tensor:
    r"""Logits :math:`z_{p j} = w_{\ell_{pj}}^\top h_{r_p} + b_{\ell_{pj}}` of labels ``label_ids`` (P, m) for rows ``rows`` (P,).

    Unlike :meth:`OutputLayer.forward_subset` (one label set shared by the batch), every pair has its own m
    labels. Dense ``hidden`` (B, in_dim): O(P m in_dim). ``torch.sparse_csr`` ``hidden`` (the linear model's raw
    features): only the stored entries of each row are read, O(P m nnz(row)), and W is never gathered whole.
    Differentiable with respect to ``weight`` (C, in_dim), ``bias`` (C,) (and to dense ``hidden``).

    A ``weight`` or ``bias`` marked by :func:`sparsexc.ops.sparse_grad.mark_sparse_gradient` is read with
    :func:`~sparsexc.ops.sparse_grad.gather_sparse_grad`: its gradient is a sparse COO tensor holding only
    the gathered labels (dense ``hidden``: their rows; sparse ``hidden``: the read (label, feature) entries),
    so backward costs O(P m in_dim) or O(P m nnz(row)) instead of O(C in_dim); same values, and the same
    gradient once densified. Unmarked tensors use plain indexing, whose backward builds a dense gradient.
    """
    P, m = label_ids.shape
    if hidden.layout == torch.sparse_csr:
        crow, col, val = hidden.crow_indices(), hidden.col_indices(), hidden.values()
        per_pair = (crow[1:] - crow[:-1])[rows]  # stored entries of each pair's row
        entry_pair = torch.repeat_interleave(torch.arange(P, device=rows.device), per_pair)
        first = torch.cumsum(per_pair, 0) - per_pair
        position = crow[rows][entry_pair] + torch.arange(entry_pair.numel(), device=rows.device) - first[entry_pair]
        contrib = (
            _gather(weight, label_ids[entry_pair], col[position][:, None]) * val[position].to(weight.dtype)[:, None]
        )
        out = torch.zeros(P, m, dtype=weight.dtype, device=weight.device).index_add(0, entry_pair, contrib)
    else:
        out = torch.einsum("pmd,pd->pm", _gather(weight, label_ids), hidden[rows])
    return out + _gather(bias, label_ids) if bias is not None else out


def _gather(param: torch.Tensor, *indices: torch.Tensor) -> torch.Tensor:
    """``param[indices]``: with a sparse gradient when ``param`` is marked for one, else plain indexing."""
    return gather_sparse_grad(param, *indices) if has_sparse_gradient(param) else param[indices]
