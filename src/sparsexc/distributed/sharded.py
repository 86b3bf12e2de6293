r"""A label-sharded output layer: rank :math:`r` of :math:`S` holds the weights of labels
:math:`[\lfloor rC/S \rfloor, \lfloor (r+1)C/S \rfloor)`, so C can exceed what one device holds.

All ranks see the same rows (this is model parallelism over the labels, not data parallelism). Scores
stay local; what needs every label goes through a collective:

* the softmax normaliser :math:`\log\sum_{j=1}^{C} e^{z_j}` (:func:`sharded_logsumexp`): all-reduce the
  maximum :math:`m = \max_r m_r`, then all-reduce :math:`\sum_r \sum_{j \in r} e^{z_j - m}`, so no
  exponential overflows whatever the shards hold;
* top-k (:func:`sharded_topk`): each shard's top-k, all-gathered and merged (ties to the lower label id,
  as :func:`sparsexc.core.topk.topk_lower_id_ties`);
* logits of given (row, label) pairs (:func:`sharded_pair_logits`): each shard scores the pairs whose label
  it holds, zeros elsewhere, and an all-reduce assembles the full (P, m) matrix on every rank.

Every function takes ``split``: False makes it the plain one-process computation even inside a process
group (for a layer that is not sharded), so a head has one code path.

Autograd follows the usual tensor-parallel rules: a value summed over the shards and then used identically
on every rank back-propagates to each shard unchanged (forward all-reduce, backward identity), and a
replicated input that every shard uses gets the sum of the shards' gradients (forward identity, backward
all-reduce).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.distributed as dist
from torch import nn

from sparsexc.core.layers import OutputLayer
from sparsexc.core.topk import topk_lower_id_ties
from sparsexc.distributed.context import all_gather_objects, is_distributed, rank, shard_bounds, world_size
from sparsexc.ops.affine import affine, pair_logits_of

__all__ = [
    "INIT_BLOCK",
    "ShardedOutputLayer",
    "full_state_dict",
    "gather_column_sets",
    "gather_columns",
    "label_shard",
    "label_sharded",
    "sharded_layers",
    "sharded_logsumexp",
    "sharded_pair_logits",
    "sharded_softmax",
    "sharded_topk",
    "sum_over_shards",
]  # fmt: skip

# labels per block of the seeded initialisation: block b is drawn from its own generator, so the full
# weight matrix is the same whatever the number of shards
INIT_BLOCK = 4096


def label_shard(n_labels: int) -> tuple[int, int]:
    """``[start, stop)`` of the labels this rank holds (all of them without a process group)."""
    return shard_bounds(n_labels, world_size(), rank())


def _collective(split: bool) -> bool:
    return bool(split) and is_distributed()


class _SumOverShards(torch.autograd.Function):
    """Forward: all-reduce (sum). Backward: identity, since the sum is used identically on every rank."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        dist.all_reduce(y, op=dist.ReduceOp.SUM)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


class _CopyToShards(torch.autograd.Function):
    """Forward: identity on a replicated input. Backward: all-reduce (sum) the shards' gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        if is_distributed():
            dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def sum_over_shards(x: torch.Tensor, split: bool = True) -> torch.Tensor:
    """:math:`\\sum_r x_r` on every rank, differentiable (each rank's ``x`` gets the upstream gradient)."""
    return _SumOverShards.apply(x) if _collective(split) else x


def sharded_logsumexp(local_logits: torch.Tensor, split: bool = True) -> torch.Tensor:
    r"""Row-wise :math:`\log\sum_j e^{z_j}` over all shards' columns of ``local_logits`` (B, C_r): (B,).

    Stable: :math:`m = \max_r \max_{j \in r} z_j` (all-reduce MAX, no gradient needed since the result does
    not depend on it), then :math:`m + \log \sum_r \sum_{j \in r} e^{z_j - m}` (all-reduce SUM). A shard
    with no column contributes :math:`-\infty` to the max and 0 to the sum. The gradient on shard r is the
    softmax restricted to its columns. Without a process group: ``torch.logsumexp``.
    """
    if local_logits.dim() != 2:
        raise ValueError(f"local_logits must be 2-D (B, C_shard); got shape {tuple(local_logits.shape)}")
    if not _collective(split):
        return torch.logsumexp(local_logits, dim=1)
    if local_logits.shape[1] == 0:
        m = local_logits.new_full((local_logits.shape[0],), -math.inf)
    else:
        m = local_logits.detach().amax(dim=1)
    dist.all_reduce(m, op=dist.ReduceOp.MAX)
    total = sum_over_shards(torch.exp(local_logits - m.unsqueeze(1)).sum(dim=1))
    return m + torch.log(total)


def sharded_softmax(local_logits: torch.Tensor, split: bool = True) -> torch.Tensor:
    """This shard's columns of the softmax over all C labels: :math:`e^{z_j - \\mathrm{lse}(z)}`, (B, C_r)."""
    if not _collective(split):
        return torch.softmax(local_logits, dim=1)
    return torch.exp(local_logits - sharded_logsumexp(local_logits).unsqueeze(1))


def sharded_topk(
    local_scores: torch.Tensor, k: int, offset: int, n_labels: int | None = None, split: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
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
    if _collective(split) and n_labels is None:
        dist.all_reduce(width, op=dist.ReduceOp.SUM)
    k = min(int(k), int(width.item()) if n_labels is None else int(n_labels))
    with torch.no_grad():
        idx, val = topk_lower_id_ties(local_scores, k)
        pad = k - idx.shape[1]
        idx = torch.cat([idx + offset, idx.new_full((idx.shape[0], pad), -1)], dim=1)
        val = torch.cat([val, val.new_full((val.shape[0], pad), -math.inf)], dim=1)
        if _collective(split):
            all_idx = [torch.empty_like(idx) for _ in range(world_size())]
            all_val = [torch.empty_like(val) for _ in range(world_size())]
            dist.all_gather(all_idx, idx)
            dist.all_gather(all_val, val)
            idx, val = torch.cat(all_idx, dim=1), torch.cat(all_val, dim=1)
        order = torch.sort(-val, dim=1, stable=True).indices[:, :k]
        return torch.gather(idx, 1, order), torch.gather(val, 1, order)


def gather_columns(local: torch.Tensor, n_labels: int, split: bool = True) -> torch.Tensor:
    """The (B, C) matrix whose columns the shards hold as ``local`` (B, C_r): all-gathered, no gradient.

    Shards differ in width by at most one; each is padded to ``ceil(C / S)`` columns for the all-gather.
    Only for moderate C (every rank ends up with all B x C entries). Without a process group: ``local``.
    """
    if not _collective(split):
        return local
    S = world_size()
    width = -(-n_labels // S)
    with torch.no_grad():
        padded = local.new_zeros(local.shape[0], width)
        padded[:, : local.shape[1]] = local
        parts = [torch.empty_like(padded) for _ in range(S)]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat(
            [p[:, : b - a] for p, (a, b) in zip(parts, (shard_bounds(n_labels, S, r) for r in range(S)))], dim=1
        )


def gather_column_sets(local_mask: torch.Tensor, n_labels: int) -> sp.csr_matrix:
    """Label sets from each shard's boolean (B, C_r) membership mask: a CSR 0/1 float32 (B, C).

    Each rank sends only its set entries (a sparse matrix), so the cost is the size of the sets, not B x C.
    """
    local = sp.csr_matrix(local_mask.detach().cpu().numpy(), dtype=np.float32)
    parts = all_gather_objects(local)
    out = sp.hstack(parts, format="csr") if len(parts) > 1 else parts[0]
    if out.shape[1] != n_labels:
        raise ValueError(f"the shards' sets have {out.shape[1]} columns; expected n_labels={n_labels}")
    return sp.csr_matrix(out, dtype=np.float32)


def sharded_pair_logits(
    layer: ShardedOutputLayer, hidden: torch.Tensor, rows: torch.Tensor, label_ids: torch.Tensor
) -> torch.Tensor:
    r"""Logits :math:`z_{pj} = w_{\ell_{pj}}^\top h_{r_p} + b_{\ell_{pj}}` of labels ``label_ids`` (P, m) for rows
    ``rows`` (P,), with the weights spread over the shards: (P, m), the same on every rank.

    Shard r scores only the entries whose label it holds (with :func:`sparsexc.ops.affine.pair_logits_of`,
    one label per entry), scatters them into a (P, m) matrix of zeros, and the matrices are summed over the
    shards (each entry is held by exactly one). The backward pass hands every shard the full upstream
    gradient; its entries' share reaches its weights (and, through the replicated ``hidden``, the all-reduced
    input gradient).
    """
    mine = layer.owns(label_ids)
    where = torch.nonzero(mine, as_tuple=True)
    local_ids = (label_ids[where] - layer.start).unsqueeze(1)
    hidden = layer._input(hidden)
    own = pair_logits_of(layer.weight, layer.bias, hidden, rows[where[0]], local_ids).squeeze(1)
    out = torch.zeros(label_ids.shape, dtype=own.dtype, device=own.device).index_put((where[0], where[1]), own)
    return sum_over_shards(out)


class ShardedOutputLayer(nn.Module):
    r"""This rank's slice of an affine output layer :math:`Z = H W^\top + b` over C labels.

    Holds ``weight`` (C_r, in_dim) and ``bias`` (C_r,) for the labels ``[start, stop)`` of
    :func:`label_shard`. ``forward``/``forward_subset`` have :class:`sparsexc.core.OutputLayer`'s contract
    restricted to the shard: ``forward(H)`` gives the (B, C_r) local scores, ``forward_subset(H, ids)`` the
    scores of global label ids that this shard holds (other ids are an error; see :meth:`owns`). Combine
    shards with :func:`sharded_logsumexp`, :func:`sharded_topk` and :func:`sharded_pair_logits` (the heads'
    losses are built on them, e.g. :func:`sparsexc.heads.softmax.sharded_softmax_loss`). ``H`` may be dense
    (then its gradient is summed over the shards) or ``torch.sparse_csr``. Parameter names are
    ``OutputLayer``'s (``weight``, ``bias``), and ``load_state_dict`` also accepts the full (C, in_dim) / (C,)
    tensors and keeps this shard's rows, so an unsharded state loads into any number of shards (and a
    one-process layer, ``S = 1``, is the whole layer).

    Parameters
    ----------
    in_dim, n_labels : int
        Input width and the total number of labels C.
    bias : bool
    seed : int
        The weights are uniform in :math:`\pm 1/\sqrt{in\_dim}` (``torch.nn.Linear``'s rule); the labels are
        cut into blocks of :data:`INIT_BLOCK` and block b is drawn from a generator seeded with
        ``seed * 1_000_003 + b``, so each rank builds its slice without ever holding the whole matrix and
        the full matrix is the same for every number of shards. Use :meth:`from_full` to slice an existing
        layer instead. The bias starts at 0.
    """

    def __init__(self, in_dim: int, n_labels: int, bias: bool = True, seed: int = 0) -> None:
        super().__init__()
        if in_dim < 1 or n_labels < 1:
            raise ValueError(f"ShardedOutputLayer: in_dim and n_labels must be positive; got {in_dim}, {n_labels}")
        self.in_dim, self.n_labels = int(in_dim), int(n_labels)
        self.n_shards, self.index = world_size(), rank()
        self.start, self.stop = label_shard(self.n_labels)
        self.weight = nn.Parameter(_block_uniform(self.start, self.stop, self.in_dim, int(seed)))
        self.bias = nn.Parameter(torch.zeros(self.stop - self.start)) if bias else None

    @classmethod
    def from_full(cls, layer: OutputLayer) -> ShardedOutputLayer:
        """This rank's slice of an unsharded ``layer`` (a copy; ``layer`` is left alone)."""
        out = cls(layer.in_dim, layer.n_out, bias=layer.bias is not None)
        out.to(device=layer.weight.device, dtype=layer.weight.dtype)  # copy at full precision
        with torch.no_grad():
            out.weight.copy_(layer.weight[out.start : out.stop])
            if out.bias is not None and layer.bias is not None:  # built with a bias exactly when layer has one
                out.bias.copy_(layer.bias[out.start : out.stop])
        return out

    @property
    def is_split(self) -> bool:
        """Whether the labels are really spread over several ranks (False for the one-shard layer)."""
        return self.n_shards > 1

    def owns(self, output_ids: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the global ids held by this shard."""
        return (output_ids >= self.start) & (output_ids < self.stop)

    def _input(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.is_split and hidden.layout == torch.strided and hidden.requires_grad:
            return _CopyToShards.apply(hidden)
        return hidden

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores of this shard's labels, dense (B, C_r)."""
        return affine(self._input(hidden), self.weight, self.bias)

    def forward_subset(self, hidden: torch.Tensor, output_ids: torch.Tensor) -> torch.Tensor:
        """Scores of the global label ids ``output_ids`` (LongTensor (m,), all held here): dense (B, m)."""
        if not bool(self.owns(output_ids).all()):
            raise ValueError(f"output_ids must lie in this shard's labels [{self.start}, {self.stop})")
        local = output_ids - self.start
        bias = self.bias[local] if self.bias is not None else None
        return affine(self._input(hidden), self.weight[local], bias)

    def pair_logits(self, hidden: torch.Tensor, rows: torch.Tensor, label_ids: torch.Tensor) -> torch.Tensor:
        """Logits of the pairs (``rows[p]``, ``label_ids[p, j]``) over all shards: :func:`sharded_pair_logits`."""
        return sharded_pair_logits(self, hidden, rows, label_ids)

    def topk(self, hidden: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Global top-k label ids and scores of ``hidden`` (same on every rank)."""
        return sharded_topk(self(hidden), k, self.start, self.n_labels, self.is_split)

    def logsumexp(self, hidden: torch.Tensor) -> torch.Tensor:
        """:math:`\\log\\sum_{j=1}^{C} e^{z_j}` per row (same on every rank), differentiable."""
        return sharded_logsumexp(self(hidden), self.is_split)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any, **kwargs: Any) -> None:
        # a full (unsharded) tensor is cut to this shard's rows before the usual shape-checked copy
        for name in ("weight", "bias"):
            key = prefix + name
            value = state_dict.get(key)
            if value is not None and value.dim() >= 1 and value.shape[0] == self.n_labels != self.stop - self.start:
                state_dict[key] = value[self.start : self.stop]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _block_uniform(start: int, stop: int, in_dim: int, seed: int) -> torch.Tensor:
    # rows [start, stop) of the (C, in_dim) matrix drawn block by block (see ShardedOutputLayer's seed)
    bound = 1.0 / math.sqrt(in_dim)
    parts = []
    for block in range(start // INIT_BLOCK, -(-stop // INIT_BLOCK)):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + block)
        first = block * INIT_BLOCK
        rows = torch.rand(INIT_BLOCK, in_dim, generator=generator)[max(start, first) - first : stop - first]
        parts.append((rows * 2 - 1) * bound)
    return torch.cat(parts) if parts else torch.empty(0, in_dim)


def sharded_layers(module: nn.Module) -> dict[str, ShardedOutputLayer]:
    """The :class:`ShardedOutputLayer` s inside ``module`` by their name prefix (``"head.output."``)."""
    return {(name + "." if name else ""): m for name, m in module.named_modules() if isinstance(m, ShardedOutputLayer)}


def label_sharded(module: nn.Module) -> bool:
    """Whether ``module`` holds a label-sharded layer split over several ranks (model-parallel training)."""
    return any(layer.is_split for layer in sharded_layers(module).values())


def full_state_dict(module: nn.Module, dst: int = 0) -> dict[str, torch.Tensor] | None:
    """``module.state_dict()`` with every sharded layer's tensors gathered whole, on rank ``dst`` (CPU).

    A collective: every rank must call it. Returns None on the other ranks. Needs the full layer to fit in
    ``dst``'s memory ("gather when it fits"); checkpoints never gather (see
    :mod:`sparsexc.train.checkpoint`).
    """
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    if not label_sharded(module):
        return state if rank() == dst else None
    sharded = {
        prefix + name
        for prefix, layer in sharded_layers(module).items()
        for name in ("weight", "bias")
        if getattr(layer, name) is not None
    }
    mine = {k: state[k] for k in sorted(sharded)}
    parts: list[Any] = [None] * world_size() if rank() == dst else None  # type: ignore[assignment]
    dist.gather_object(mine, parts, dst=dst)
    if rank() != dst:
        return None
    for key in sorted(sharded):
        state[key] = torch.cat([p[key] for p in parts])
    return state
