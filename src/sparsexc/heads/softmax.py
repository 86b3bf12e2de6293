"""Softmax output trained against label proportions (the sparsemax paper's softmax baseline)."""

from __future__ import annotations

import dataclasses
from typing import Union

import numpy as np
import torch

from sparsexc._params import Params
from sparsexc.heads.base import ScalarTunedHead, register_head
from sparsexc.heads.labels import LabelBatch
from sparsexc.heads.layers import OutputLayer

__all__ = ["SoftmaxHead", "SoftmaxHeadParams"]

# candidate values of t (sets are p_j > t / C), geometric: t = 1 is "above uniform"
T_GRID: tuple[float, ...] = tuple(np.round(np.geomspace(0.05, 50.0, 61), 6).tolist())


@dataclasses.dataclass
class SoftmaxHeadParams(Params):
    """Parameters of :class:`SoftmaxHead`.

    threshold : float or None
        The ``t`` of the set rule ``{j : p_j > t / C}``. None (default): tuned on validation data over a
        geometric grid from 0.05 to 50 (1.0 until tuned); a number fixes it.
    """

    threshold: Union[float, None] = None

    def validate(self) -> None:
        if self.threshold is not None and not self.threshold > 0.0:
            raise ValueError(f"SoftmaxHeadParams: threshold={self.threshold} must be positive")


@register_head
class SoftmaxHead(ScalarTunedHead):
    r"""Multinomial logistic regression against the label proportions :math:`q = y / |y|`.

    Logits :math:`z = W h + b`, :math:`p = \mathrm{softmax}(z)`; loss per row
    :math:`-\sum_j q_j \log p_j = \log\sum_k e^{z_k} - \frac{1}{|y|}\sum_{j \in y} z_j`, averaged over the
    rows that have at least one label (rows with no label carry no target distribution and are skipped;
    a batch of only such rows has loss 0). Scores are :math:`p`; the predicted set is
    :math:`\{j : p_j > t / C\}` with :math:`t` tuned on validation data.
    """

    name = "softmax"
    Params = SoftmaxHeadParams
    probabilistic = True
    tuned_key = "threshold"
    tuning_grid = T_GRID
    default_tuned = 1.0

    def __init__(self, in_dim: int, n_labels: int, params: SoftmaxHeadParams | dict | None = None) -> None:
        super().__init__(in_dim, n_labels, params)
        self.output = OutputLayer(in_dim, n_labels)

    def loss(self, hidden: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        logits = self.output(hidden)
        sizes = labels.sizes()
        has_labels = sizes > 0
        n_rows = int(has_labels.sum())
        if n_rows == 0:
            return logits.sum() * 0.0  # keeps the graph; no target distribution in this batch
        rows = labels.row_ids()
        weight = 1.0 / sizes[rows].to(logits.dtype)  # q_j = 1/|y| on the positives
        target_term = (logits[rows, labels.indices] * weight).sum()
        normaliser = torch.logsumexp(logits, dim=1)[has_labels].sum()
        return (normaliser - target_term) / n_rows

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.output(hidden), dim=1)

    def set_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        # p_j > t/C  <=>  C p_j > t: the rule thresholds C p
        return self.scores(hidden) * self.n_labels
