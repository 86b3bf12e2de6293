r"""A label-sharded output layer: rank :math:`r` of :math:`S` holds the weights of labels
:math:`[\lfloor rC/S \rfloor, \lfloor (r+1)C/S \rfloor)`, so C can exceed what one device holds.

All ranks see the same rows (this is model parallelism over the labels, not data parallelism). Scores
stay local; what needs every label goes through a collective:

* the softmax normaliser :math:`\log\sum_{j=1}^{C} e^{z_j}` (:func:`sharded_logsumexp`): all-reduce the
  maximum :math:`m = \max_r m_r`, then all-reduce :math:`\sum_r \sum_{j \in r} e^{z_j - m}`, so no
  exponential overflows whatever the shards hold;
* top-k (:func:`sharded_topk`): each shard's top-k, all-gathered and merged (ties to the lower label id,
  as :func:`sparsexc.heads.base.topk_lower_id_ties`).

Autograd follows the usual tensor-parallel rules: a value summed over the shards and then used identically
on every rank back-propagates to each shard unchanged (forward all-reduce, backward identity), and a
replicated input that every shard uses gets the sum of the shards' gradients (forward identity, backward
all-reduce).
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn

from sparsexc.distributed.context import is_distributed, rank, shard_bounds, world_size
from sparsexc.heads.base import topk_lower_id_ties
from sparsexc.heads.labels import LabelBatch
from sparsexc.heads.layers import OutputLayer

__all__ = [
    "ShardedOutputLayer", "label_shard", "sharded_logsumexp", "sharded_topk", "sharded_softmax_loss", "sum_over_shards",
]


def label_shard(n_labels: int) -> tuple[int, int]:
    """``[start, stop)`` of the labels this rank holds (all of them without a process group)."""
    return shard_bounds(n_labels, world_size(), rank())


class _SumOverShards(torch.autograd.Function):
    """Forward: all-reduce (sum). Backward: identity, since the sum is used identically on every rank."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = x.clone()
        if is_distributed():
            dist.all_reduce(y, op=dist.ReduceOp.SUM)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad


class _CopyToShards(torch.autograd.Function):
    """Forward: identity on a replicated input. Backward: all-reduce (sum) the shards' gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        if is_distributed():
            dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def sum_over_shards(x: torch.Tensor) -> torch.Tensor:
    """:math:`\\sum_r x_r` on every rank, differentiable (each rank's ``x`` gets the upstream gradient)."""
    return _SumOverShards.apply(x)


def sharded_logsumexp(local_logits: torch.Tensor) -> torch.Tensor:
    r"""Row-wise :math:`\log\sum_j e^{z_j}` over all shards' columns of ``local_logits`` (B, C_r): (B,).

    Stable: :math:`m = \max_r \max_{j \in r} z_j` (all-reduce MAX, no gradient needed since the result does
    not depend on it), then :math:`m + \log \sum_r \sum_{j \in r} e^{z_j - m}` (all-reduce SUM). A shard
    with no column contributes :math:`-\infty` to the max and 0 to the sum. The gradient on shard r is the
    softmax restricted to its columns.
    """
    if local_logits.dim() != 2:
        raise ValueError(f"local_logits must be 2-D (B, C_shard); got shape {tuple(local_logits.shape)}")
    if local_logits.shape[1] == 0:
        m = local_logits.new_full((local_logits.shape[0],), -math.inf)
    else:
        m = local_logits.detach().amax(dim=1)
    if is_distributed():
        dist.all_reduce(m, op=dist.ReduceOp.MAX)
    total = sum_over_shards(torch.exp(local_logits - m.unsqueeze(1)).sum(dim=1))
    return m + torch.log(total)


def sharded_topk(local_scores: torch.Tensor, k: int, offset: int,
                 n_labels: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Global top-k of scores spread over the shards: (indices (B, k) global label ids, scores (B, k)).

    Parameters
    ----------
    local_scores : (B, C_r) scores of labels ``offset .. offset + C_r - 1``.
    k : int
        Capped at ``n_labels`` (default: the sum of the shards' widths).
    offset : int
        Global id of this shard's first label.

    Each rank takes its own top-k (ties to the lower id), pads to k with ``-inf`` / id ``-1``, all-gathers,
    and sorts the ``S k`` candidates stably by score. Candidates arrive in rank order and so in increasing
    id among equal scores, hence the merged ties also go to the lower id. No gradient flows through it.
    """
    if k < 1:
        raise ValueError(f"k={k} must be at least 1")
    width = torch.tensor([local_scores.shape[1]], device=local_scores.device)
    if is_distributed() and n_labels is None:
        dist.all_reduce(width, op=dist.ReduceOp.SUM)
    k = min(int(k), int(width.item()) if n_labels is None else int(n_labels))
    with torch.no_grad():
        idx, val = topk_lower_id_ties(local_scores, k)
        pad = k - idx.shape[1]
        idx = torch.cat([idx + offset, idx.new_full((idx.shape[0], pad), -1)], dim=1)
        val = torch.cat([val, val.new_full((val.shape[0], pad), -math.inf)], dim=1)
        if is_distributed():
            all_idx = [torch.empty_like(idx) for _ in range(world_size())]
            all_val = [torch.empty_like(val) for _ in range(world_size())]
            dist.all_gather(all_idx, idx)
            dist.all_gather(all_val, val)
            idx, val = torch.cat(all_idx, dim=1), torch.cat(all_val, dim=1)
        order = torch.sort(-val, dim=1, stable=True).indices[:, :k]
        return torch.gather(idx, 1, order), torch.gather(val, 1, order)


def sharded_softmax_loss(local_logits: torch.Tensor, labels: LabelBatch, offset: int) -> torch.Tensor:
    r"""The softmax head's loss (:class:`sparsexc.heads.SoftmaxHead`) from label-sharded logits.

    :math:`\frac{1}{n}\sum_{i : |y_i|>0}\big(\log\sum_{j=1}^{C} e^{z_{ij}} - \frac{1}{|y_i|}\sum_{j\in y_i}
    z_{ij}\big)`, the normaliser by :func:`sharded_logsumexp`, the positives' term summed over the shards
    (each positive lives on exactly one). The same scalar on every rank.
    """
    sizes = labels.sizes()
    has_labels = sizes > 0
    n_rows = int(has_labels.sum())
    if n_rows == 0:
        return local_logits.sum() * 0.0
    rows = labels.row_ids()
    ids = labels.indices - offset
    mine = (ids >= 0) & (ids < local_logits.shape[1])  # positives held by this shard
    weight = 1.0 / sizes[rows[mine]].to(local_logits.dtype)
    target_term = sum_over_shards((local_logits[rows[mine], ids[mine]] * weight).sum())
    normaliser = sharded_logsumexp(local_logits)[has_labels].sum()
    return (normaliser - target_term) / n_rows


class ShardedOutputLayer(nn.Module):
    r"""This rank's slice of an affine output layer :math:`Z = H W^\top + b` over C labels.

    Holds ``weight`` (C_r, in_dim) and ``bias`` (C_r,) for the labels ``[start, stop)`` of
    :func:`label_shard`. ``forward``/``forward_subset`` have :class:`sparsexc.heads.OutputLayer`'s contract
    restricted to the shard: ``forward(H)`` gives the (B, C_r) local scores, ``forward_subset(H, ids)`` the
    scores of global label ids that this shard holds (other ids are an error; see :meth:`owns`). Combine
    shards with :func:`sharded_logsumexp`, :func:`sharded_topk` and :func:`sharded_softmax_loss`.
    ``H`` may be dense (then its gradient is summed over the shards) or ``torch.sparse_csr``.

    Parameters
    ----------
    in_dim, n_labels : int
        Input width and the total number of labels C.
    bias : bool
    seed : int
        Shard r's weights are drawn uniform in :math:`\pm 1/\sqrt{in\_dim}` from a generator seeded with
        ``(seed, r)``, so each rank can build its slice without ever holding the whole matrix. Use
        :meth:`from_full` to slice an existing layer instead.
    """

    def __init__(self, in_dim: int, n_labels: int, bias: bool = True, seed: int = 0) -> None:
        super().__init__()
        if in_dim < 1 or n_labels < 1:
            raise ValueError(f"ShardedOutputLayer: in_dim and n_labels must be positive; got {in_dim}, {n_labels}")
        self.in_dim, self.n_labels = int(in_dim), int(n_labels)
        self.start, self.stop = label_shard(self.n_labels)
        generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + rank())
        bound = 1.0 / math.sqrt(self.in_dim)
        weight = (torch.rand(self.stop - self.start, self.in_dim, generator=generator) * 2 - 1) * bound
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(self.stop - self.start)) if bias else None

    @classmethod
    def from_full(cls, layer: OutputLayer) -> "ShardedOutputLayer":
        """This rank's slice of an unsharded ``layer`` (a copy; ``layer`` is left alone)."""
        out = cls(layer.in_dim, layer.n_out, bias=layer.bias is not None)
        out.to(device=layer.weight.device, dtype=layer.weight.dtype)  # copy at full precision
        with torch.no_grad():
            out.weight.copy_(layer.weight[out.start : out.stop])
            if out.bias is not None:
                out.bias.copy_(layer.bias[out.start : out.stop])
        return out

    def owns(self, output_ids: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the global ids held by this shard."""
        return (output_ids >= self.start) & (output_ids < self.stop)

    def _input(self, hidden: torch.Tensor) -> torch.Tensor:
        if hidden.layout == torch.strided and hidden.requires_grad:
            return _CopyToShards.apply(hidden)
        return hidden

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores of this shard's labels, dense (B, C_r)."""
        return OutputLayer._affine(self._input(hidden), self.weight, self.bias)

    def forward_subset(self, hidden: torch.Tensor, output_ids: torch.Tensor) -> torch.Tensor:
        """Scores of the global label ids ``output_ids`` (LongTensor (m,), all held here): dense (B, m)."""
        if not bool(self.owns(output_ids).all()):
            raise ValueError(f"output_ids must lie in this shard's labels [{self.start}, {self.stop})")
        local = output_ids - self.start
        bias = self.bias[local] if self.bias is not None else None
        return OutputLayer._affine(self._input(hidden), self.weight[local], bias)

    def topk(self, hidden: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Global top-k label ids and scores of ``hidden`` (same on every rank)."""
        return sharded_topk(self(hidden), k, self.start, self.n_labels)

    def logsumexp(self, hidden: torch.Tensor) -> torch.Tensor:
        """:math:`\\log\\sum_{j=1}^{C} e^{z_j}` per row (same on every rank), differentiable."""
        return sharded_logsumexp(self(hidden))
