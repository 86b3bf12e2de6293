"""Scores of given (row, label) pairs: the affine output map evaluated only where a sampled head needs it."""

from __future__ import annotations

import torch

from sparsexc.core.layers import OutputLayer
from sparsexc.distributed.sharded import ShardedOutputLayer
from sparsexc.ops.affine import pair_logits_of

__all__ = ["pair_logits", "pair_logits_of"]


def pair_logits(
    layer: OutputLayer | ShardedOutputLayer, hidden: torch.Tensor, rows: torch.Tensor, label_ids: torch.Tensor
) -> torch.Tensor:
    r"""Logits of the pairs (``rows[p]``, ``label_ids[p, j]``), (P, m), from ``layer``'s weights (see
    :func:`sparsexc.ops.affine.pair_logits_of`). A :class:`sparsexc.distributed.ShardedOutputLayer` split over
    several ranks scores them itself (:func:`sparsexc.distributed.sharded_pair_logits`: each shard its own
    labels, summed over the shards), so the result is the same (P, m) matrix on every rank."""
    if isinstance(layer, ShardedOutputLayer) and layer.is_split:
        return layer.pair_logits(hidden, rows, label_ids)
    return pair_logits_of(layer.weight, layer.bias, hidden, rows, label_ids)
