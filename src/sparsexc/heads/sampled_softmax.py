"""Sampled softmax with the log-Q correction (Jean et al. 2015; Bengio & Senecal 2008) on any sampler."""

from __future__ import annotations

import dataclasses

import torch

from sparsexc._params import setting
from sparsexc.core.labels import LabelBatch
from sparsexc.heads._sampled import SampledHead, SampledHeadParams
from sparsexc.heads.registry import register_head

__all__ = ["SampledSoftmaxHead", "SampledSoftmaxHeadParams"]


@dataclasses.dataclass
class SampledSoftmaxHeadParams(SampledHeadParams):
    """:class:`SampledHeadParams` plus ``remove_accidental_hits`` (bool, default True): sampled labels that
    are positives of the row are left out of the normaliser (TensorFlow's ``remove_accidental_hits``)."""

    remove_accidental_hits: bool = setting(
        True, "Leave sampled labels that are positives of the row out of the normaliser."
    )


@register_head
class SampledSoftmaxHead(SampledHead):
    r"""Softmax over the positive and n sampled labels, each logit shifted by :math:`-\log q(y|x)`.

    For a positive pair (x, y) and :math:`y'_j \sim q(\cdot \mid x)` (with replacement), with
    :math:`o_y = \xi_y - \log q(y|x)` and :math:`o_j = \xi_{y'_j} - \log q(y'_j|x)`,

    .. math:: \ell = -o_y + \log\left(e^{o_y} + \sum_j e^{o_j}\right),

    a consistent estimate of the full softmax loss's gradient as n grows. Positives are weighted
    :math:`1/|y_i|` ("all") like the softmax head's label proportions, or one per row ("one"); the loss is
    averaged over the rows that have a label (0 for a batch without any). Scores are the plain logits
    :math:`\xi` (the correction belongs to training only).
    """

    name = "sampled-softmax"
    score_meaning = "logits xi_j, defined up to a per-row constant"
    Params = SampledSoftmaxHeadParams
    params: SampledSoftmaxHeadParams

    def loss(self, hidden: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        sampled = self.sampled_logits(hidden, labels)
        if sampled is None:
            return self.empty_loss()
        rows, negatives, logits, log_q = sampled
        adjusted = logits - log_q
        if self.params.remove_accidental_hits:
            hit = _is_positive(labels, rows, negatives)
            adjusted = torch.cat([adjusted[:, :1], adjusted[:, 1:].masked_fill(hit, float("-inf"))], dim=1)
        per_pair = torch.logsumexp(adjusted, dim=1) - adjusted[:, 0]
        sizes = labels.sizes()
        weight = 1.0 / sizes[rows].to(logits.dtype) if self.params.positives == "all" else torch.ones_like(per_pair)
        return (weight * per_pair).sum() / int((sizes > 0).sum())

    def local_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits :math:`\\xi_y(x)` of this rank's labels, (B, C_r) (all labels in one process); the scores."""
        return self.output(hidden)


def _is_positive(labels: LabelBatch, rows: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Whether ``candidates[p, j]`` is one of row ``rows[p]``'s labels, bool (P, m) (binary search)."""
    keys = labels.row_ids() * labels.n_labels + labels.indices  # sorted: rows ascending, ids sorted per row
    query = rows[:, None] * labels.n_labels + candidates
    where = torch.searchsorted(keys, query).clamp_(max=max(keys.numel() - 1, 0))
    return keys[where] == query if keys.numel() else torch.zeros_like(query, dtype=torch.bool)
