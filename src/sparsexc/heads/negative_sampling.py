"""Negative sampling with bias removal (Bamler & Mandt 2020): the adversarial head when the sampler is a tree."""

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

__all__ = ["NegativeSamplingHead", "NegativeSamplingHeadParams"]


# where Eq. 6's quadratic penalty is centred: -log p_n (the paper's Eq. 6: it pulls the corrected logit to 0), or
# 0 (the authors' code for the uniform and frequency baselines: it pulls the raw logit to 0)
REG_CENTRES = ("log_pn", "zero")
# the output biases at the start: 0, or minus each label's mean log p_n(y|x) over its training rows (the authors'
# --initialize_to_inverse_aux), so that the corrected logits xi + log p_n start near 0 on each label's own rows
BIAS_INITS = ("zero", "inverse_aux")
_BIAS_INIT_ROWS = 4096  # training rows per log p_n evaluation in prepare


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
    bias_init: str = setting(
        "zero",
        "Output biases at the start: zero, or inverse_aux (minus each label's mean log p_n over its training rows).",
        choices=BIAS_INITS,
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

    def init_output(self, X: sp.csr_matrix, Y: sp.csr_matrix) -> None:
        """With ``bias_init="inverse_aux"``, set each label's output bias to
        :math:`b_y = -\\frac{1}{|D_y|}\\sum_{x \\in D_y} \\log p_n(y|x)` over its training rows :math:`D_y` (0 for a
        label without one). The last step of :meth:`prepare`, which runs before a checkpoint is restored, so
        resuming keeps the trained biases."""
        if self.params.bias_init == "inverse_aux":
            self.set_biases(-self._mean_log_pn(sp.csr_matrix(X), sp.csr_matrix(Y)))

    def _mean_log_pn(self, X: sp.csr_matrix, Y: sp.csr_matrix) -> np.ndarray:
        """Each label's mean :math:`\\log p_n(y|x)` over its training rows (float64, (C,); 0 where it has none)."""
        sampler = self.ready_sampler
        total, count = np.zeros(self.n_labels), np.bincount(Y.indices, minlength=self.n_labels)
        for start in range(0, X.shape[0], _BIAS_INIT_ROWS):
            Yb = Y[start : start + _BIAS_INIT_ROWS]
            if Yb.nnz == 0:
                continue
            # a sampler that ignores x (uniform, frequency) gets zeros of the head's input width
            x = X[start : start + _BIAS_INIT_ROWS] if sampler.uses_features else np.zeros((Yb.shape[0], self.in_dim))
            rows = torch.from_numpy(np.repeat(np.arange(Yb.shape[0]), np.diff(Yb.indptr)))
            labels = torch.from_numpy(Yb.indices.astype(np.int64))[:, None]
            log_pn = sampler.log_prob(x, labels, rows=rows)[:, 0].double().cpu().numpy()
            total += np.bincount(Yb.indices, weights=log_pn, minlength=self.n_labels)
        return np.divide(total, count, out=np.zeros(self.n_labels), where=count > 0)

    def loss(self, hidden: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        sampled = self.sampled_logits(hidden, labels)
        if sampled is None:
            return self.empty_loss()
        _, _, logits, log_q = sampled
        lam = self.params.reg
        centred = logits + log_q if self.params.reg_centre == "log_pn" else logits
        return binary_pair_loss(logits, lam * centred**2, labels)

    def local_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Corrected logits :math:`\\xi_y(x) + \\log p_n(y|x)` of this rank's labels, (B, C_r); the scores.

        The sampler is replicated, so a split layer's rank evaluates :math:`\\log p_n` of all C labels and keeps
        its own columns (O(B C) per rank: prediction on moderate C, like ``scores``)."""
        logits = self.output(hidden)
        start, stop = self.label_range
        return logits + self.ready_sampler.log_prob_all(hidden)[:, start:stop].to(logits.dtype)
