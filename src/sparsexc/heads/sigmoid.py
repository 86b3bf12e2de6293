"""One-vs-all logistic output: independent binary cross-entropy per label."""

from __future__ import annotations

import dataclasses
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

from sparsexc._params import Params
from sparsexc.heads.base import ScalarTunedHead, register_head
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
class SigmoidHead(ScalarTunedHead):
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
    tuned_key = "threshold"
    tuning_grid = THRESHOLD_GRID
    default_tuned = 0.5

    def __init__(self, in_dim: int, n_labels: int, params: SigmoidHeadParams | dict | None = None) -> None:
        super().__init__(in_dim, n_labels, params)
        self.output = OutputLayer(in_dim, n_labels)

    def loss(self, hidden: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        logits = self.output(hidden)
        # softplus(z) - y z summed over labels: only the positives need a gather, no dense B x C target
        positive = logits[labels.row_ids(), labels.indices].sum()
        return (F.softplus(logits).sum() - positive) / logits.shape[0]

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.output(hidden))

    def set_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.scores(hidden)
