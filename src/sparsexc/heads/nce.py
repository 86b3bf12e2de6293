"""Noise-contrastive estimation on any sampler (Gutmann & Hyvaerinen 2010; Mnih & Teh 2012): the baseline that
Bamler & Mandt (2020) compare with, using the sampler as the noise (base) distribution in training only."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from sparsexc._params import NON_NEGATIVE, setting
from sparsexc.core.labels import LabelBatch
from sparsexc.heads._sampled import SampledHead, SampledHeadParams, binary_pair_loss
from sparsexc.heads.registry import register_head

__all__ = ["BIAS_INITS", "NCEHead", "NCEHeadParams", "log_prior"]

BIAS_INITS = ("log_prior", "zero")


def log_prior(Y: sp.csr_matrix) -> np.ndarray:
    r"""Each label's add-one smoothed log frequency among the training pairs, (C,) float64:
    :math:`\log \frac{n_y + 1}{\sum_{y'} n_{y'} + C}`, a normalised distribution (it sums to 1 over the labels)."""
    counts = np.bincount(Y.indices, minlength=Y.shape[1]).astype(np.float64)
    return np.log((counts + 1.0) / (counts.sum() + Y.shape[1]))


@dataclasses.dataclass
class NCEHeadParams(SampledHeadParams):
    """:class:`SampledHeadParams` plus ``reg`` (:math:`\\lambda` of the L2 penalty on the raw logits, >= 0)."""

    reg: float = setting(1e-3, "lambda of the L2 penalty on the raw logits of the scored pairs.", range=NON_NEGATIVE)
    bias_init: str = setting(
        "log_prior",
        "Output biases at the start: log_prior (each label's smoothed log training frequency, so the logits "
        "start as a normalised distribution) or zero.",
        choices=BIAS_INITS,
    )


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

    The start matters because a label moves only when it is drawn. With zero biases every logit starts at
    about 0, i.e. :math:`\sum_y e^{\xi_y} \approx C`, far above the normalised optimum; the negatives, drawn
    from a proposal that is good (the tree puts its mass on the plausible labels, the true one included), push
    exactly the plausible labels down, while the labels the proposal never draws keep their logit of 0 and
    rank first. Measured (``tests/heads/test_heads_nce.py``, a 1,000-label latent-hierarchy set, 5 epochs of
    Adagrad at 0.01): P@1 0 with zero biases, 0.25 with ``log_prior``, 0.13 for always the most frequent label;
    ``benchmarks/adversarial_sampling.py``'s first NCE runs, with zero biases, scored P@1 0 on every set.
    ``bias_init="log_prior"`` (default) starts the logits at the labels' smoothed log frequencies, a
    normalised distribution, so that training has only to move the plausible labels up.
    """

    name = "nce"
    score_meaning = "logits xi_j, estimates of log p(j|x) (self-normalised at the NCE optimum)"
    Params = NCEHeadParams
    params: NCEHeadParams
    default_optimizer: ClassVar[str] = "adagrad"  # the paper trains its baselines with Adagrad too

    def init_output(self, X: sp.csr_matrix, Y: sp.csr_matrix) -> None:
        """With ``bias_init="log_prior"``, set each label's bias to :func:`log_prior` of the training labels (this
        rank's labels when the layer is split); the last step of :meth:`prepare`."""
        if self.params.bias_init == "log_prior":
            self.set_biases(log_prior(sp.csr_matrix(Y)))

    def loss(self, hidden: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        sampled = self.sampled_logits(hidden, labels)
        if sampled is None:
            return self.empty_loss()
        _, _, logits, log_q = sampled
        return binary_pair_loss(logits - log_q, self.params.reg * logits**2, labels)

    def local_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits :math:`\\xi_y(x)` of this rank's labels, (B, C_r); the scores (no noise correction)."""
        return self.output(hidden)
