"""One-vs-all logistic output: independent binary cross-entropy per label."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from sparsexc._params import UNIT_INTERVAL, Params, setting
from sparsexc.core.labels import LabelBatch
from sparsexc.distributed.sharded import sum_over_shards
from sparsexc.heads._label_sharded import LabelShardedHead, full_precision, output_layer
from sparsexc.heads.candidates import Candidates, CandidateScoring
from sparsexc.heads.registry import register_head

__all__ = ["SigmoidHead", "SigmoidHeadParams"]

# candidate probability thresholds for set prediction
THRESHOLD_GRID: tuple[float, ...] = tuple(np.round(np.arange(0.02, 0.99, 0.02), 2).tolist())


@dataclasses.dataclass
class SigmoidHeadParams(Params):
    """Parameters of :class:`SigmoidHead`.

    threshold : float or None
        Sets are ``{j : sigmoid(z_j) > threshold}``. None (default): tuned on validation data over
        0.02, 0.04, ..., 0.98 (0.5 until tuned); a number fixes it.
    shard_labels : bool
        Split the output layer over the ranks of the running ``torch.distributed`` group by label (each
        rank holds C/S labels; the loss summed over the shards by all-reduce, top-k by all-gather; see
        ``docs/distributed.md``). No effect in one process.
    """

    threshold: float | None = setting(
        None, "Probability threshold of the set rule sigmoid(z_j) > threshold; None: tuned.", range=UNIT_INTERVAL
    )
    shard_labels: bool = setting(False, "Split the output layer by label over the ranks of the process group.")


@register_head
class SigmoidHead(CandidateScoring, LabelShardedHead):
    r"""One-vs-all logistic regression on the hidden vector.

    Logits :math:`z = W h + b`; loss per row :math:`\sum_{j=1}^{C} \mathrm{BCE}(z_j, y_j)
    = \sum_j \log(1 + e^{z_j}) - \sum_{j \in y} z_j`, averaged over the rows of the batch (a row with no
    label is an all-negative example). Scores are :math:`\sigma(z_j)`; the predicted set is
    :math:`\{j : \sigma(z_j) > \tau\}` with :math:`\tau` tuned on validation data. The loss is computed in
    float32 under bfloat16 autocast. With ``shard_labels`` the layer is split by label over the ranks
    (:class:`sparsexc.heads._label_sharded.LabelShardedHead`): each rank sums the terms of its labels and an
    all-reduce adds the shards' sums; scores and sets need no collective but the final gather.

    Over a shortlist (:class:`~sparsexc.heads.candidates.CandidateScoring`) the loss sums the BCE terms of each
    row's candidates only (its positives and the shortlisted negatives); scores and sets are those of the
    candidates, every other label scoring 0.
    """

    name = "sigmoid"
    score_meaning = "sigmoid(z): the probability of each label, independently"
    Params = SigmoidHeadParams
    params: SigmoidHeadParams
    probabilistic = True
    default_lr_scale = 3.0  # C independent logistic losses train well with a 3x larger step (tuned on bibtex)
    tuned_key = "threshold"
    tuning_grid = THRESHOLD_GRID
    default_tuned = 0.5

    def __init__(self, in_dim: int, n_labels: int, params: SigmoidHeadParams | dict | None = None) -> None:
        super().__init__(in_dim, n_labels, params)
        self.output = output_layer(in_dim, n_labels, self.params.shard_labels)

    def loss(self, hidden: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        logits = full_precision(self.output(hidden))  # this rank's labels (all C when the layer is whole)
        # softplus(z) - y z summed over labels: only the positives need a gather, no dense B x C target
        rows, ids = labels.row_ids(), labels.indices - self.label_range[0]
        mine = (ids >= 0) & (ids < logits.shape[1])  # positives held by this shard
        local = F.softplus(logits).sum() - logits[rows[mine], ids[mine]].sum()
        return sum_over_shards(local, self.is_split) / logits.shape[0]

    def candidate_loss_from(self, logits: torch.Tensor, target: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        # softplus(-inf) = 0: padding adds nothing
        return (F.softplus(logits).sum() - logits[target].sum()) / logits.shape[0]

    def candidate_probabilities(self, logits: torch.Tensor, candidates: Candidates) -> torch.Tensor:
        return torch.sigmoid(logits)

    def candidate_sets(self, logits: torch.Tensor, candidates: Candidates, value: float) -> torch.Tensor:
        return torch.sigmoid(logits) > value

    def local_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output(hidden)

    def local_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        r"""Probabilities :math:`\sigma(z_j)` of this rank's labels (independent per label: no collective)."""
        return torch.sigmoid(self.local_logits(hidden))

    def local_set_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.local_scores(hidden)  # the rule thresholds the probabilities themselves
