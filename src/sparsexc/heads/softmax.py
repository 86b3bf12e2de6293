"""Softmax output trained against label proportions (the sparsemax paper's softmax baseline)."""

from __future__ import annotations

import dataclasses
from typing import Any, Union

import numpy as np
import torch

from sparsexc._params import Params
from sparsexc.heads.base import Head, register_head, tune_threshold
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
class SoftmaxHead(Head):
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

    def __init__(self, in_dim: int, n_labels: int, params: SoftmaxHeadParams | dict | None = None) -> None:
        super().__init__(in_dim, n_labels, params)
        self.output = OutputLayer(in_dim, n_labels)
        self.threshold_: float = self.params.threshold if self.params.threshold is not None else 1.0

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

    def predict_sets(self, hidden: torch.Tensor) -> LabelBatch:
        return LabelBatch.from_mask(self.scores(hidden) > self.threshold_ / self.n_labels)

    def tune(self, hidden: torch.Tensor, labels: LabelBatch, metric: str = "micro-F1") -> dict[str, Any]:
        if self.params.threshold is None:
            # p_j > t/C  <=>  C p_j > t: tune t directly on C p
            self.threshold_, value = tune_threshold(self.scores(hidden) * self.n_labels, labels, T_GRID, metric)
            return {"threshold": self.threshold_, metric: value}
        return {"threshold": self.threshold_}

    def tuned_state(self) -> dict[str, Any]:
        return {"threshold": self.threshold_}

    def load_tuned_state(self, state: dict[str, Any]) -> None:
        if "threshold" in state:
            self.threshold_ = float(state["threshold"])
