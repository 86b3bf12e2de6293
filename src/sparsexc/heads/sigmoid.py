"""One-vs-all logistic output: independent binary cross-entropy per label."""

from __future__ import annotations

import dataclasses
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F

from sparsexc._params import Params
from sparsexc.heads.base import Head, register_head, tune_threshold
from sparsexc.heads.labels import LabelBatch
from sparsexc.heads.layers import OutputLayer

__all__ = ["SigmoidHead", "SigmoidHeadParams"]

# candidate probability thresholds for set prediction
THRESHOLD_GRID: tuple[float, ...] = tuple(np.round(np.arange(0.02, 0.99, 0.02), 2).tolist())


@dataclasses.dataclass
class SigmoidHeadParams(Params):
    """Parameters of :class:`SigmoidHead`.

    threshold : float or None
        Sets are ``{j : sigmoid(z_j) > threshold}``. None (default): tuned on validation data over
        0.02, 0.04, ..., 0.98 (0.5 until tuned); a number fixes it.
    """

    threshold: Union[float, None] = None

    def validate(self) -> None:
        if self.threshold is not None and not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"SigmoidHeadParams: threshold={self.threshold} must lie in [0, 1)")


@register_head
class SigmoidHead(Head):
    r"""One-vs-all logistic regression on the hidden vector.

    Logits :math:`z = W h + b`; loss per row :math:`\sum_{j=1}^{C} \mathrm{BCE}(z_j, y_j)
    = \sum_j \log(1 + e^{z_j}) - \sum_{j \in y} z_j`, averaged over the rows of the batch (a row with no
    label is an all-negative example). Scores are :math:`\sigma(z_j)`; the predicted set is
    :math:`\{j : \sigma(z_j) > \tau\}` with :math:`\tau` tuned on validation data.
    """

    name = "sigmoid"
    Params = SigmoidHeadParams
    probabilistic = True
    default_lr_scale = 3.0  # C independent logistic losses train well with a 3x larger step (tuned on bibtex)

    def __init__(self, in_dim: int, n_labels: int, params: SigmoidHeadParams | dict | None = None) -> None:
        super().__init__(in_dim, n_labels, params)
        self.output = OutputLayer(in_dim, n_labels)
        self.threshold_: float = self.params.threshold if self.params.threshold is not None else 0.5

    def loss(self, hidden: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        logits = self.output(hidden)
        # softplus(z) - y z summed over labels: only the positives need a gather, no dense B x C target
        positive = logits[labels.row_ids(), labels.indices].sum()
        return (F.softplus(logits).sum() - positive) / logits.shape[0]

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.output(hidden))

    def predict_sets(self, hidden: torch.Tensor) -> LabelBatch:
        return LabelBatch.from_mask(self.scores(hidden) > self.threshold_)

    def tune(self, hidden: torch.Tensor, labels: LabelBatch, metric: str = "micro-F1") -> dict[str, Any]:
        if self.params.threshold is None:
            self.threshold_, value = tune_threshold(self.scores(hidden), labels, THRESHOLD_GRID, metric)
            return {"threshold": self.threshold_, metric: value}
        return {"threshold": self.threshold_}

    def tuned_state(self) -> dict[str, Any]:
        return {"threshold": self.threshold_}

    def load_tuned_state(self, state: dict[str, Any]) -> None:
        if "threshold" in state:
            self.threshold_ = float(state["threshold"])
