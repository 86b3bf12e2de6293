"""Softmax output trained against label proportions (the sparsemax paper's softmax baseline)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from sparsexc._params import POSITIVE, Params, setting
from sparsexc.core.labels import LabelBatch
from sparsexc.distributed.sharded import sharded_logsumexp, sharded_softmax, sum_over_shards
from sparsexc.heads._label_sharded import LabelShardedHead, full_precision, output_layer
from sparsexc.heads.candidates import Candidates, CandidateScoring
from sparsexc.heads.registry import register_head

__all__ = ["SoftmaxHead", "SoftmaxHeadParams", "sharded_softmax_loss"]

# candidate values of t (sets are p_j > t / C), geometric: t = 1 is "above uniform"
T_GRID: tuple[float, ...] = tuple(np.round(np.geomspace(0.05, 50.0, 61), 6).tolist())


@dataclasses.dataclass
class SoftmaxHeadParams(Params):
    """Parameters of :class:`SoftmaxHead`.

    threshold : float or None
        The ``t`` of the set rule ``{j : p_j > t / C}``. None (default): tuned on validation data over a
        geometric grid from 0.05 to 50 (1.0 until tuned); a number fixes it.
    shard_labels : bool
        Split the output layer over the ranks of the running ``torch.distributed`` group by label (each
        rank holds C/S labels; normaliser by all-reduce, top-k by all-gather; see ``docs/distributed.md``).
        No effect in one process.
    """

    threshold: float | None = setting(None, "t of the set rule p_j > t / C; None: tuned.", range=POSITIVE)
    shard_labels: bool = setting(False, "Split the output layer by label over the ranks of the process group.")


def sharded_softmax_loss(
    local_logits: torch.Tensor, labels: LabelBatch, offset: int = 0, split: bool = True
) -> torch.Tensor:
    r"""The softmax head's loss (:class:`SoftmaxHead`) from label-sharded logits.

    :math:`\frac{1}{n}\sum_{i : |y_i|>0}\big(\log\sum_{j=1}^{C} e^{z_{ij}} - \frac{1}{|y_i|}\sum_{j\in y_i}
    z_{ij}\big)`, the normaliser by :func:`sparsexc.distributed.sharded.sharded_logsumexp`, the positives'
    term summed over the shards (each positive lives on exactly one). The same scalar on every rank. Rows with no label are skipped; a
    batch of only such rows has loss 0 (keeping the graph).
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
    target_term = sum_over_shards((local_logits[rows[mine], ids[mine]] * weight).sum(), split)
    normaliser = sharded_logsumexp(local_logits, split)[has_labels].sum()
    return (normaliser - target_term) / n_rows


@register_head
class SoftmaxHead(CandidateScoring, LabelShardedHead):
    r"""Multinomial logistic regression against the label proportions :math:`q = y / |y|`.

    Logits :math:`z = W h + b`, :math:`p = \mathrm{softmax}(z)`; loss per row
    :math:`-\sum_j q_j \log p_j = \log\sum_k e^{z_k} - \frac{1}{|y|}\sum_{j \in y} z_j`, averaged over the
    rows that have at least one label (rows with no label carry no target distribution and are skipped;
    a batch of only such rows has loss 0). Scores are :math:`p`; the predicted set is
    :math:`\{j : p_j > t / C\}` with :math:`t` tuned on validation data. The loss is computed in float32
    under bfloat16 autocast. With ``shard_labels`` the layer is split by label over the ranks
    (:class:`sparsexc.heads._label_sharded.LabelShardedHead`), the normaliser by all-reduce.

    Over a shortlist (:class:`~sparsexc.heads.candidates.CandidateScoring`) the softmax runs over each row's
    candidates :math:`K_i` (the normaliser sums :math:`e^{z_k}` for :math:`k \in K_i` only; at training
    :math:`K_i` holds the positives) and the set rule is :math:`\{j \in K_i : p_j > t / |K_i|\}`.
    """

    name = "softmax"
    score_meaning = "softmax(z): a distribution over the labels"
    Params = SoftmaxHeadParams
    params: SoftmaxHeadParams
    probabilistic = True
    tuned_key = "threshold"
    tuning_grid = T_GRID
    default_tuned = 1.0

    def __init__(self, in_dim: int, n_labels: int, params: SoftmaxHeadParams | dict | None = None) -> None:
        super().__init__(in_dim, n_labels, params)
        self.output = output_layer(in_dim, n_labels, self.params.shard_labels)

    def loss(self, hidden: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        # float32 logits: logsumexp in bfloat16 would lose the small differences the gradient needs
        return sharded_softmax_loss(full_precision(self.output(hidden)), labels, self.label_range[0], self.is_split)

    def candidate_loss_from(self, logits: torch.Tensor, target: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        sizes = labels.sizes()
        has_labels = sizes > 0
        n_rows = int(has_labels.sum())
        if n_rows == 0:
            return logits.masked_fill(~torch.isfinite(logits), 0).sum() * 0.0
        target_term = torch.where(target, logits, 0).sum(dim=1) / sizes.clamp(min=1).to(logits.dtype)
        per_row = torch.logsumexp(logits, dim=1) - target_term
        return per_row[has_labels].sum() / n_rows

    def candidate_probabilities(self, logits: torch.Tensor, candidates: Candidates) -> torch.Tensor:
        return torch.softmax(logits, dim=1)

    def candidate_sets(self, logits: torch.Tensor, candidates: Candidates, value: float) -> torch.Tensor:
        # the full rule C p_j > t with the row's candidates in place of the C labels
        return torch.softmax(logits, dim=1) * candidates.sizes[:, None].to(logits.dtype) > value

    def local_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output(hidden)

    def local_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        r"""Probabilities :math:`p = \mathrm{softmax}(z)` of this rank's labels (normalised over all C)."""
        return sharded_softmax(self.local_logits(hidden), self.is_split)
