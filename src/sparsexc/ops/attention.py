"""Scaled dot-product attention with sparsemax weights: a drop-in for torch's SDPA with sparse weights."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .sparsemax import sparsemax

__all__ = ["SparsemaxAttention", "sparsemax_attention"]


def _scores(
    query: Tensor, key: Tensor, mask: Tensor | None, key_mask: Tensor | None, causal: bool, scale: float | None
) -> Tensor:
    if query.dim() < 2 or key.dim() < 2:
        raise ValueError(
            f"query and key must be at least 2-d, (..., L, E) and (..., S, E); "
            f"got shapes {tuple(query.shape)} and {tuple(key.shape)}"
        )
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query and key must share the embedding size E; got {query.shape[-1]} and {key.shape[-1]}")
    n_queries, n_keys = query.shape[-2], key.shape[-2]
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = torch.matmul(query, key.transpose(-2, -1)) * scale
    if mask is not None:
        try:
            torch.broadcast_shapes(mask.shape, scores.shape)
        except RuntimeError:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
                f"{tuple(scores.shape)} (..., L, S)"
            ) from None
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        elif mask.is_floating_point():
            scores = scores + mask  # additive, as SDPA's float attn_mask
        else:
            raise TypeError(f"mask must be a bool (True = attend) or float (added) tensor; got {mask.dtype}")
    if key_mask is not None:
        if (
            key_mask.dtype != torch.bool
            or key_mask.dim() != 2
            or key_mask.shape[1] != n_keys
            or scores.dim() < 3
            or key_mask.shape[0] not in (1, scores.shape[0])
        ):
            raise ValueError(
                f"key_mask must be a bool (B, S) tensor with S = {n_keys} and B the leading size of "
                f"the scores {tuple(scores.shape)}; got {key_mask.dtype} {tuple(key_mask.shape)}"
            )
        shape = (key_mask.shape[0],) + (1,) * (scores.dim() - 2) + (n_keys,)
        scores = scores.masked_fill(~key_mask.view(shape), float("-inf"))
    if causal:
        allowed = torch.ones(n_queries, n_keys, dtype=torch.bool, device=scores.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    return scores


def sparsemax_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    mask: Tensor | None = None,
    causal: bool = False,
    scale: float | None = None,
    return_weights: bool = False,
    *,
    key_mask: Tensor | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""Attention whose weights are ``sparsemax(q k^T * scale)`` instead of softmax.

    .. math:: \mathrm{out} = \mathrm{sparsemax}(\mathrm{scale} \cdot Q K^\top + M)\, V

    Shapes and mask conventions follow :func:`torch.nn.functional.scaled_dot_product_attention`.

    Parameters
    ----------
    query : Tensor (..., L, E)
    key : Tensor (..., S, E)
    value : Tensor (..., S, Ev)
    mask : Tensor, optional
        Broadcastable to (..., L, S). Boolean: True = attend (as SDPA's ``attn_mask``); float: added to
        the scores (-inf = masked).
    causal : bool
        Query i attends to keys j <= i (the top-left aligned lower triangle, as SDPA's ``is_causal``).
        May be combined with the masks.
    scale : float, optional
        Default ``1 / sqrt(E)``.
    return_weights : bool
        Also return the weights (..., L, S).
    key_mask : BoolTensor (B, S), optional
        Key padding mask, True = a real key (attend). Note: the opposite of
        ``nn.MultiheadAttention``'s ``key_padding_mask``, where True means padding. B is the leading
        dimension of the inputs; it broadcasts over the others (heads, queries).

    Returns
    -------
    Tensor (..., L, Ev), or (output, weights)
        Masked keys get weight exactly 0; a query whose keys are all masked gets zero weights and a
        zero output (SDPA's softmax would give NaN there).
    """
    if value.dim() < 2 or value.shape[-2] != key.shape[-2]:
        raise ValueError(f"value must be (..., S, Ev) with S = {key.shape[-2]} keys; got shape {tuple(value.shape)}")
    weights = sparsemax(_scores(query, key, mask, key_mask, causal, scale), dim=-1)
    output = torch.matmul(weights, value)
    return (output, weights) if return_weights else output


class SparsemaxAttention(nn.Module):
    """Module form of :func:`sparsemax_attention` (no parameters); ``causal`` and ``scale`` fixed at build."""

    def __init__(self, causal: bool = False, scale: float | None = None) -> None:
        super().__init__()
        self.causal, self.scale = causal, scale

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        mask: Tensor | None = None,
        *,
        key_mask: Tensor | None = None,
        return_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        return sparsemax_attention(query, key, value, mask, self.causal, self.scale, return_weights, key_mask=key_mask)

    def extra_repr(self) -> str:
        return f"causal={self.causal}, scale={self.scale}"
