"""Sparsemax output trained with the multi-label sparsemax loss (Martins & Astudillo, 2016)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from sparsexc._params import POSITIVE, Params, setting
from sparsexc.core.labels import LabelBatch
from sparsexc.core.layers import OutputLayer
from sparsexc.core.topk import topk_lower_id_ties
from sparsexc.errors import ConfigurationError
from sparsexc.heads.candidates import Candidates, CandidateScoring
from sparsexc.heads.registry import register_head
from sparsexc.ops import sparsemax, sparsemax_loss

__all__ = ["PAPER_SCALE_GRID", "SCALE_GRID", "SparsemaxHead", "SparsemaxHeadParams"]

# the paper code's grid of scales t (Unbabel/sparsemax: numpy.arange(1, 5.5, 0.5)); larger t = smaller sets
PAPER_SCALE_GRID: tuple[float, ...] = tuple(np.arange(1.0, 5.5, 0.5).tolist())
# the grid tuned by default: the paper's, then larger scales. On delicious (983 labels, 19 per row) the paper's top
# 5.0 was the choice of the estimator's 10% validation rows for the head over all labels and over a tree shortlist
# (example-F1; stop 34); given scales up to 60, the validation rows chose 6 for both (stop 36). Each value costs one
# sparsemax of the validation rows' scores.
SCALE_GRID: tuple[float, ...] = PAPER_SCALE_GRID + (6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 20.0)


@dataclasses.dataclass
class SparsemaxHeadParams(Params):
    """Parameters of :class:`SparsemaxHead`.

    scale : float or None
        The ``t`` of the set rule ``S(t z) = {j : sparsemax(t z)_j > 0}``. None (default): tuned on validation
        data over ``scale_grid`` (1.0 until tuned); a positive number fixes it.
    scale_grid : list of float or None
        Candidate scales for the tuning; None = :data:`SCALE_GRID`: the paper's grid 1.0, 1.5, ..., 5.0, then 6, 7,
        8, 10, 12, 15, 20 (the paper's top was binding on delicious).
    """

    scale: float | None = setting(
        None, "Scale t of the set rule: the support of sparsemax(t z); None: tuned.", range=POSITIVE
    )
    scale_grid: tuple[float, ...] | None = setting(
        None,
        "Candidate scales for the tuning; None: the paper's 1.0, 1.5, ..., 5.0, then 6, 7, 8, 10, 12, 15, 20.",
        range=POSITIVE,
    )

    def validate(self) -> None:
        # the range checks each scale; that there is at least one is no constraint of an item
        if self.scale_grid is not None and len(self.scale_grid) == 0:
            raise ConfigurationError(
                f"SparsemaxHeadParams: scale_grid={list(self.scale_grid)} must be a non-empty list of positive numbers"
            )


@register_head
class SparsemaxHead(CandidateScoring):
    r"""Sparsemax over the labels, trained against the label proportions :math:`q = y / |y|`.

    Logits :math:`z = W h + b`; loss per row (the paper's multi-label sparsemax loss)

    .. math::
        L(z; q) = -q^\top z + \tfrac12 \sum_{j \in S(z)} (z_j^2 - \tau(z)^2) + \tfrac12 \|q\|^2 ,

    whose gradient is :math:`\mathrm{sparsemax}(z) - q`; averaged over the rows that have at least one label
    (rows with no label have no target distribution and are skipped; a batch of only such rows has loss 0).

    Scores are the probabilities :math:`p = \mathrm{sparsemax}(z)`, exactly zero outside the support. The
    predicted set is the support of :math:`\mathrm{sparsemax}(t z)`, with the scale :math:`t` tuned on
    validation data (the paper's rule; larger :math:`t` gives smaller sets, and every set has at least one
    label). ``topk`` ranks by :math:`z`, so it orders labels outside the support too; the scores it returns
    are :math:`p` (non-increasing along each row, zero beyond the support).

    Over a shortlist (:class:`~sparsexc.heads.candidates.CandidateScoring`) the same loss, scores and set rule
    act on each row's candidates :math:`K_i` instead of all labels: :math:`L(z_{K_i}; q_{K_i})` with
    :math:`q = y / |y|` (the candidates hold the positives at training), :math:`p = \mathrm{sparsemax}(z_{K_i})`
    and the set :math:`\{j \in K_i : \mathrm{sparsemax}(t z_{K_i})_j > 0\}`.
    """

    name = "sparsemax"
    score_meaning = "sparsemax(z): a distribution over the labels with exact zeros"
    Params = SparsemaxHeadParams
    params: SparsemaxHeadParams
    probabilistic = True
    tuned_key = "scale"
    tuning_grid = SCALE_GRID
    default_tuned = 1.0

    def __init__(self, in_dim: int, n_labels: int, params: SparsemaxHeadParams | dict | None = None) -> None:
        super().__init__(in_dim, n_labels, params)
        self.output = OutputLayer(in_dim, n_labels)

    def loss(self, hidden: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        return sparsemax_loss(self.output(hidden), labels, reduction="mean", ignore_empty=True)

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        return sparsemax(self.output(hidden), dim=1)

    def topk(self, hidden: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.output(hidden)
        indices, _ = topk_lower_id_ties(z, k)
        return indices, torch.gather(sparsemax(z, dim=1), 1, indices)

    def set_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output(hidden)

    def sets_from(self, set_scores: torch.Tensor, value: float) -> torch.Tensor:
        return sparsemax(set_scores * value, dim=1) > 0

    def candidate_loss_from(self, logits: torch.Tensor, target: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        return sparsemax_loss(logits, target, reduction="mean", ignore_empty=True)

    def candidate_probabilities(self, logits: torch.Tensor, candidates: Candidates) -> torch.Tensor:
        return sparsemax(logits, dim=1)

    def candidate_sets(self, logits: torch.Tensor, candidates: Candidates, value: float) -> torch.Tensor:
        return sparsemax(logits * value, dim=1) > 0

    def tuning_candidates(self) -> Sequence[float]:
        return self.params.scale_grid if self.params.scale_grid is not None else self.tuning_grid
