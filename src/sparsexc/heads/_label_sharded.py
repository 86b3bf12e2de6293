"""Heads whose output layer can be split over the ranks of a process group by label (``shard_labels``).

A head built with ``shard_labels=True`` inside a ``torch.distributed`` group of S ranks holds, on rank r,
only the labels ``[floor(rC/S), floor((r+1)C/S))`` of its output layer
(:class:`sparsexc.distributed.ShardedOutputLayer`); every rank sees the same rows, and whatever needs all
C labels goes through a collective (normalisers by all-reduce, top-k by all-gather and merge, label sets by
gathering each shard's sparse sets). In one process the same head is the ordinary head (the layer's only
shard is all labels), so a model trained sharded loads and predicts in one process. See
``docs/distributed.md``.
"""

from __future__ import annotations

import torch

from sparsexc.core.labels import LabelBatch
from sparsexc.core.layers import OutputLayer
from sparsexc.core.topk import topk_lower_id_ties
from sparsexc.distributed.sharded import (
    ShardedOutputLayer,
    gather_column_sets,
    gather_columns,
    sharded_softmax,
    sharded_topk,
)
from sparsexc.heads.protocol import ScalarTunedHead
from sparsexc.heads.tuning import RowCounts

__all__ = ["LabelShardedHead", "full_precision", "output_layer"]


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is bfloat16/float16 (autocast output), unchanged otherwise (float32, float64):
    losses with a logsumexp or a softplus are computed at least in float32."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def output_layer(in_dim: int, n_labels: int, shard_labels: bool) -> OutputLayer | ShardedOutputLayer:
    """The head's affine output layer: this rank's :class:`ShardedOutputLayer` when ``shard_labels``, else an
    :class:`OutputLayer`.

    The sharded layer's block-wise seed is drawn from torch's global generator (seeded identically on every
    rank by whoever builds the model), so the weights are those of one seeded full matrix, whatever the
    number of ranks.
    """
    if shard_labels:
        # torch's CPU generator, whatever the default device: the one seeded alike on every rank
        seed = int(torch.randint(0, 2**31 - 1, (1,), device="cpu").item())
        return ShardedOutputLayer(in_dim, n_labels, seed=seed)
    return OutputLayer(in_dim, n_labels)


class LabelShardedHead(ScalarTunedHead):
    """A :class:`ScalarTunedHead` whose output layer ``self.output`` may be label-sharded.

    Subclasses implement :meth:`local_logits` (the logits of this rank's labels, (B, C_r)) and, when their
    scores are not those logits, :meth:`local_scores`. The default set rule is ``{j : softmax_j > t / C}`` on
    the C-way softmax of the logits (softmax-like heads); a head with another rule overrides
    :meth:`local_set_scores` (the sigmoid head thresholds its per-label probabilities).
    ``scores``, ``set_scores``, ``topk``, ``predict_sets`` and tuning are derived here and are collectives
    when the layer is split (every rank must call them with the same rows).
    """

    output: OutputLayer | ShardedOutputLayer  # what output_layer builds

    @property
    def label_range(self) -> tuple[int, int]:
        """``[start, stop)`` of the labels this rank's output layer holds."""
        if isinstance(self.output, ShardedOutputLayer):
            return self.output.start, self.output.stop
        return 0, self.n_labels

    @property
    def is_split(self) -> bool:
        """Whether the output layer is spread over several ranks."""
        return isinstance(self.output, ShardedOutputLayer) and self.output.is_split

    def local_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits of this rank's labels, (B, C_r) (all C labels when the layer is whole)."""
        raise NotImplementedError

    def local_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores of this rank's labels, (B, C_r); default: the logits."""
        return self.local_logits(hidden)

    def local_set_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        # softmax over all C labels, times C: the rule {j : p_j > t / C} thresholds C p at t
        return sharded_softmax(self.local_logits(hidden), self.is_split) * self.n_labels

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores of all C labels, (B, C) (all-gathered from the shards when split; moderate C only)."""
        return gather_columns(self.local_scores(hidden), self.n_labels, self.is_split)

    def set_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        return gather_columns(self.local_set_scores(hidden), self.n_labels, self.is_split)

    def topk(self, hidden: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k by score, ties to the lower id; split layers: each shard's top-k all-gathered and merged."""
        if not self.is_split:
            return topk_lower_id_ties(self.local_scores(hidden), k)
        return sharded_topk(self.local_scores(hidden), k, self.label_range[0], self.n_labels)

    def predict_sets(self, hidden: torch.Tensor) -> LabelBatch:
        if not self.is_split:
            return super().predict_sets(hidden)
        mask = self.sets_from(self.local_set_scores(hidden), self.tuned_value)
        return LabelBatch.from_csr(gather_column_sets(mask, self.n_labels), mask.device)

    def add_tuning_counts(self, counts: RowCounts, hidden: torch.Tensor, labels: LabelBatch) -> None:
        """As :meth:`ScalarTunedHead.add_tuning_counts`; split layers gather each grid value's (sparse) sets
        from the shards (a collective: every rank calls it with the same rows)."""
        if not self.is_split:
            return super().add_tuning_counts(counts, hidden, labels)
        local = self.local_set_scores(hidden).detach()
        counts.add_sets(lambda value: gather_column_sets(self.sets_from(local, value), self.n_labels), labels)
        return None
