"""Negative sampling with bias removal (Bamler & Mandt 2020): the adversarial head when the sampler is a tree."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
import torch.nn.functional as F

from sparsexc._params import NON_NEGATIVE, setting
from sparsexc.core.labels import LabelBatch
from sparsexc.heads._sampled import SampledHead, SampledHeadParams
from sparsexc.heads.registry import register_head

__all__ = ["NegativeSamplingHead", "NegativeSamplingHeadParams"]


# where Eq. 6's quadratic penalty is centred: -log p_n (the paper's Eq. 6: it pulls the corrected logit to 0), or
# 0 (the authors' code for the uniform and frequency baselines: it pulls the raw logit to 0)
REG_CENTRES = ("log_pn", "zero")


@dataclasses.dataclass
class NegativeSamplingHeadParams(SampledHeadParams):
    """:class:`SampledHeadParams` plus ``reg`` (:math:`\\lambda` of Eq. 6, >= 0; 1e-3 as in the paper) and
    ``reg_centre`` (what the penalty pulls to 0: the corrected logit, or the raw logit as the authors' code does for
    its uniform and frequency baselines)."""

    reg: float = setting(1e-3, "lambda of Eq. 6: weight of the squared corrected logits.", range=NON_NEGATIVE)
    reg_centre: str = setting(
        "log_pn",
        "Eq. 6's penalty on (logit + log p_n) (log_pn, the paper) or on the logit alone (zero, the authors' "
        "baselines).",
        choices=REG_CENTRES,
    )


@register_head
class NegativeSamplingHead(SampledHead):
    r"""Binary logistic loss on positives and sampled negatives, predictions corrected by :math:`\log p_n`.

    For each positive pair (x, y) of the batch and n negatives :math:`y'_j \sim p_n(\cdot \mid x)` (drawn with
    replacement; a negative may equal a positive, as the theory assumes), the loss is Eq. 6 of the paper in
    the form of the authors' code,

    .. math:: -\log\sigma(\xi_y) + \lambda (\xi_y + \log p_n(y|x))^2
              + \frac{1}{n}\sum_j \left[-\log\sigma(-\xi_{y'_j}) + \lambda (\xi_{y'_j} + \log p_n(y'_j|x))^2\right],

    where ``reg_centre="zero"`` drops :math:`\log p_n` from both penalties (:math:`\lambda \xi^2`), as the
    authors' code does for its uniform and frequency baselines (with the tree sampler it uses the form above);

    summed over the row's positive pairs and averaged over the rows that have a label (rows without one
    have no pair; a batch of only such rows has loss 0). Theorem 1: at the optimum
    :math:`\xi_y + \log p_n(y|x) = \log p_D(y|x) + \text{const}(x)`, so :meth:`scores` are these corrected
    logits (a softmax over them is the predictive distribution). Adagrad is the default optimiser, as in
    the paper.
    """

    name = "negative-sampling"
    score_meaning = "corrected logits xi_j + log p_n(j|x), defined up to a per-row constant"
    Params = NegativeSamplingHeadParams
    params: NegativeSamplingHeadParams
    default_optimizer: ClassVar[str] = "adagrad"

    def loss(self, hidden: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        sampled = self.sampled_logits(hidden, labels)
        if sampled is None:
            return self.empty_loss()
        _, _, logits, log_q = sampled
        lam = self.params.reg
        centred = logits + log_q if self.params.reg_centre == "log_pn" else logits
        penalty = lam * centred**2
        positive_term = F.softplus(-logits[:, 0]) + penalty[:, 0]
        negative_term = (F.softplus(logits[:, 1:]) + penalty[:, 1:]).mean(dim=1)
        n_rows = int((labels.sizes() > 0).sum())
        return (positive_term + negative_term).sum() / n_rows

    def local_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Corrected logits :math:`\\xi_y(x) + \\log p_n(y|x)` of this rank's labels, (B, C_r); the scores.

        The sampler is replicated, so a split layer's rank evaluates :math:`\\log p_n` of all C labels and keeps
        its own columns (O(B C) per rank: prediction on moderate C, like ``scores``)."""
        logits = self.output(hidden)
        start, stop = self.label_range
        return logits + self.ready_sampler.log_prob_all(hidden)[:, start:stop].to(logits.dtype)
