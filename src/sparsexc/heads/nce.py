"""Noise-contrastive estimation on any sampler (Gutmann & Hyvaerinen 2010; Mnih & Teh 2012): the baseline that
Bamler & Mandt (2020) compare with, using the sampler as the noise (base) distribution in training only."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from sparsexc._params import NON_NEGATIVE, setting
from sparsexc.core.labels import LabelBatch
from sparsexc.heads._sampled import SampledHead, SampledHeadParams, binary_pair_loss
from sparsexc.heads.registry import register_head

__all__ = ["NCEHead", "NCEHeadParams"]


@dataclasses.dataclass
class NCEHeadParams(SampledHeadParams):
    """:class:`SampledHeadParams` plus ``reg`` (:math:`\\lambda` of the L2 penalty on the raw logits, >= 0)."""

    reg: float = setting(1e-3, "lambda of the L2 penalty on the raw logits of the scored pairs.", range=NON_NEGATIVE)


@register_head
class NCEHead(SampledHead):
    r"""Binary classification of the data label against n noise labels, with logits :math:`\xi - \log p_n`.

    For each positive pair (x, y) and n negatives :math:`y'_j \sim p_n(\cdot \mid x)` (with replacement), the loss
    is the form of the authors' NCE baseline (Bamler & Mandt's ``supervised_nce``),

    .. math:: \mathrm{softplus}(\log p_n(y|x) - \xi_y) + \frac{1}{n}\sum_j \mathrm{softplus}(\xi_{y'_j} - \log p_n(y'_j|x))
              + \lambda \Big(\xi_y^2 + \frac{1}{n}\sum_j \xi_{y'_j}^2\Big),

    summed over the row's positive pairs and averaged over the rows that have a label. With the negatives'
    term averaged (one noise draw's weight per data point), the optimum has :math:`\sigma(\xi - \log p_n) =
    p_D / (p_D + p_n)`, i.e. :math:`\xi_y = \log p_D(y|x)`: the logits are self-normalised estimates of the log
    probabilities, so :meth:`scores` are the plain logits :math:`\xi` and the noise distribution is used in training
    only (as the paper says of its NCE baseline). Compare the negative-sampling head, whose logits must be
    corrected by :math:`+\log p_n` at prediction.
    """

    name = "nce"
    score_meaning = "logits xi_j, estimates of log p(j|x) (self-normalised at the NCE optimum)"
    Params = NCEHeadParams
    params: NCEHeadParams
    default_optimizer: ClassVar[str] = "adagrad"  # the paper trains its baselines with Adagrad too

    def loss(self, hidden: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        sampled = self.sampled_logits(hidden, labels)
        if sampled is None:
            return self.empty_loss()
        _, _, logits, log_q = sampled
        return binary_pair_loss(logits - log_q, self.params.reg * logits**2, labels)

    def local_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits :math:`\\xi_y(x)` of this rank's labels, (B, C_r); the scores (no noise correction)."""
        return self.output(hidden)
