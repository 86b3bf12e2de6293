"""The head protocol: :class:`Head`, and :class:`ScalarTunedHead` for a set rule with one tuned setting.

A head owns the output parameters of a model and everything that depends on the output layer's form:
the training loss, label scores, top-k retrieval, variable-size set prediction and the tuning of its
set-prediction parameter. See ``docs/heads/writing-a-head.md`` for how to add one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import scipy.sparse as sp
import torch
from torch import nn

from sparsexc._params import Params
from sparsexc.core.labels import LabelBatch
from sparsexc.core.topk import topk_lower_id_ties
from sparsexc.heads.tuning import RowCounts

__all__ = ["Head", "ScalarTunedHead"]

# the settings base class under a second name: inside Head, the class attribute ``Params`` shadows it
_AnyParams = Params


class Head(nn.Module):
    """Base class of output layers.

    Parameters
    ----------
    in_dim : int
        Width of the hidden vectors the encoder produces (``encoder.out_dim``); ``hidden`` given to every
        method is a (B, in_dim) tensor, dense or ``torch.sparse_csr`` (the linear model's raw features).
    n_labels : int
        Number of labels, C.
    params : the head's ``Params`` dataclass, a dict of its fields, or None for the defaults.

    Class attributes
    ----------------
    name : str
        Registry key.
    Params : type
        The head's typed parameters (a :class:`sparsexc._params.Params` dataclass).
    score_meaning : str
        What :meth:`scores` returns, in a few words with the formula (``"sigmoid(z): the probability of each
        label"``); the estimator's ``decision_function`` docstring lists it for every registered head.
    probabilistic : bool
        Whether :meth:`scores` are probabilities (then the estimator's ``predict_proba`` returns them).
    default_lr_scale : float
        Factor on the optimiser's default learning rate when the user gives none (``XCClassifier(lr=None)``).
    default_optimizer : str
        Optimiser used when the user names none (``XCClassifier(optimizer=None)``, the CLI without ``--optimizer``).
    supports_candidates : bool
        Whether the head scores a shortlist of candidate labels per row (the optional candidate part of the
        protocol, :class:`sparsexc.heads.candidates.CandidateScoring`: ``candidate_loss``, ``candidate_topk``,
        ``candidate_predict_sets``, ``tune_candidate_batches`` and its per-batch ``add_candidate_counts``), as a
        shortlist model needs.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    score_meaning: ClassVar[str] = ""
    probabilistic: ClassVar[bool] = True
    default_lr_scale: ClassVar[float] = 1.0
    default_optimizer: ClassVar[str] = "adam"
    supports_candidates: ClassVar[bool] = False
    params: _AnyParams  # an instance of the class's Params (subclasses narrow the annotation)

    def __init__(self, in_dim: int, n_labels: int, params: _AnyParams | dict | None = None) -> None:
        super().__init__()
        if in_dim < 1 or n_labels < 1:
            raise ValueError(f"{type(self).__name__}: in_dim and n_labels must be positive; got {in_dim}, {n_labels}")
        self.in_dim, self.n_labels = int(in_dim), int(n_labels)
        self.params = params if isinstance(params, self.Params) else self.Params.from_dict(params)

    # -- training ---------------------------------------------------------------------------------------
    @classmethod
    def check_encoder(cls, params: _AnyParams, hidden_sizes: tuple[int, ...]) -> None:
        """Optional: raise ``ValueError`` for head parameters that cannot work behind an encoder with these
        ``hidden_sizes`` (``()``: the linear model). Called by the estimator and the CLI before any data are
        read, so such a mistake is reported at once; the default accepts everything."""

    def prepare(self, X: sp.csr_matrix, Y: sp.csr_matrix) -> None:
        """Optional, called once before training with the training data (fit samplers, statistics...)."""

    def loss(self, hidden: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        """Scalar training loss, a mean over the rows of the batch."""
        raise NotImplementedError

    # -- inference --------------------------------------------------------------------------------------
    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores of all C labels, dense (B, C); higher ranks first. Only for moderate C."""
        raise NotImplementedError

    def topk(self, hidden: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The k best labels per row: (indices LongTensor (B, k), scores (B, k)), best first.

        The default scores every label; heads with a cheaper retrieval override it. Ties go to the lower id.
        """
        return topk_lower_id_ties(self.scores(hidden), k)

    def predict_sets(self, hidden: torch.Tensor) -> LabelBatch:
        """Predicted label set of every row (variable size, possibly empty)."""
        raise NotImplementedError

    def tune(self, hidden: torch.Tensor, labels: LabelBatch, metric: str = "micro-F1") -> dict[str, Any]:
        """Tune the set-prediction parameter on validation data for ``metric``; return the tuned values."""
        return {}

    def tune_batches(
        self, batches: Iterable[tuple[torch.Tensor, LabelBatch]], metric: str = "micro-F1"
    ) -> dict[str, Any]:
        """:meth:`tune` on validation rows given batch by batch (``(hidden, labels)`` pairs, in row order).

        The default joins the batches and calls :meth:`tune` (memory: all rows); heads whose tuning can
        accumulate per batch override it (:class:`ScalarTunedHead`: rows x grid values)."""
        hidden, labels = zip(*batches)
        return self.tune(_cat_hidden(hidden), _cat_labels(labels), metric)

    # -- persistence ------------------------------------------------------------------------------------
    def tuned_state(self) -> dict[str, Any]:
        """JSON-able values set by :meth:`tune` (restored by :meth:`load_tuned_state`)."""
        return {}

    def load_tuned_state(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"head {self.name!r} has no tuned values; got {sorted(state)}")

    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild the head before ``load_state_dict``: name, sizes, params, tuned values."""
        return {
            "name": self.name,
            "in_dim": self.in_dim,
            "n_labels": self.n_labels,
            "params": self.params.to_dict(),
            "tuned": self.tuned_state(),
        }


class ScalarTunedHead(Head):
    """A head whose set rule has one scalar setting, fixed by the user or tuned on validation data.

    Subclasses set ``tuned_key`` (the name of the setting in their ``Params`` and in the tuned state, e.g.
    ``"threshold"``), ``tuning_grid``, ``default_tuned`` (used until tuned) and implement
    :meth:`set_scores` (computed once per call) and :meth:`sets_from` (the rule at one value). The tuned value
    lives in ``self.<tuned_key>_`` (written only by :meth:`set_tuned_value`); ``params.<tuned_key> = None``
    means "tune it". Tuning streams: :meth:`add_tuning_counts` reduces each validation batch to per-row
    counts; a head whose rule needs more than :meth:`set_scores` (a label-sharded layer) overrides it.
    """

    tuned_key: ClassVar[str] = "threshold"
    tuning_grid: ClassVar[tuple[float, ...]] = ()
    default_tuned: ClassVar[float] = 0.5

    def __init__(self, in_dim: int, n_labels: int, params: Params | dict | None = None) -> None:
        super().__init__(in_dim, n_labels, params)
        fixed = getattr(self.params, self.tuned_key)
        self.set_tuned_value(fixed if fixed is not None else self.default_tuned)

    @property
    def tuned_value(self) -> float:
        return float(getattr(self, self.tuned_key + "_"))

    def set_tuned_value(self, value: float) -> None:
        """Set the rule's value: the attribute ``<tuned_key>_`` (e.g. ``threshold_``) that users read."""
        setattr(self, self.tuned_key + "_", float(value))

    def set_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """The (B, C) quantity the set rule is applied to (computed once per prediction or tuning call)."""
        raise NotImplementedError

    def sets_from(self, set_scores: torch.Tensor, value: float) -> torch.Tensor:
        """Boolean (B, C) membership mask of the set rule at ``value``."""
        return set_scores > value

    def predict_sets(self, hidden: torch.Tensor) -> LabelBatch:
        return LabelBatch.from_mask(self.sets_from(self.set_scores(hidden), self.tuned_value))

    def tuning_candidates(self) -> Sequence[float]:
        """The grid searched by :meth:`tune` (the class grid unless the head's params give another)."""
        return self.tuning_grid

    def tune(self, hidden: torch.Tensor, labels: LabelBatch, metric: str = "micro-F1") -> dict[str, Any]:
        return self.tune_batches([(hidden, labels)], metric)

    def tune_batches(
        self, batches: Iterable[tuple[torch.Tensor, LabelBatch]], metric: str = "micro-F1"
    ) -> dict[str, Any]:
        """Streaming :meth:`tune`: each batch is reduced to per-row counts at every grid value
        (:class:`~sparsexc.heads.tuning.RowCounts`), so memory is rows x grid values; the choice is that of
        all rows at once."""
        if getattr(self.params, self.tuned_key) is not None:
            return {self.tuned_key: self.tuned_value}  # a user-fixed value is kept
        counts = RowCounts(self.tuning_candidates(), metric)
        for hidden, labels in batches:
            self.add_tuning_counts(counts, hidden, labels)
        best, value = counts.best()
        self.set_tuned_value(best)
        return {self.tuned_key: best, metric: value}

    def add_tuning_counts(self, counts: RowCounts, hidden: torch.Tensor, labels: LabelBatch) -> None:
        """Add one batch's per-row counts of the set rule at every candidate value to ``counts``."""
        S = self.set_scores(hidden).detach()
        if type(self).sets_from is ScalarTunedHead.sets_from:  # the rule is {j : S_j > v}: all values at once
            counts.add_thresholds(S, labels)
        else:
            counts.add_masks(lambda v: self.sets_from(S, v), labels, tuple(S.shape))

    def tuned_state(self) -> dict[str, Any]:
        return {self.tuned_key: self.tuned_value}

    def load_tuned_state(self, state: dict[str, Any]) -> None:
        unknown = set(state) - {self.tuned_key}
        if unknown:
            raise ValueError(f"head {self.name!r} has tuned value {self.tuned_key!r} only; got {sorted(state)}")
        if self.tuned_key in state:
            self.set_tuned_value(state[self.tuned_key])


def _cat_hidden(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """Rows of hidden batches joined: dense by ``torch.cat``, ``torch.sparse_csr`` by stacking their CSR pieces;
    a mix (the linear model's dense and sparse batches, :func:`~sparsexc.models.encoder.dense_pays`) as CSR,
    whose size follows the stored entries, not the cells."""
    if len(parts) == 1:
        return parts[0]
    if all(part.layout != torch.sparse_csr for part in parts):
        return torch.cat(list(parts))
    parts = [part if part.layout == torch.sparse_csr else part.to_sparse_csr() for part in parts]
    crow, col, val, offset = [parts[0].crow_indices()[:1]], [], [], 0
    for part in parts:
        crow.append(part.crow_indices()[1:] + offset)
        col.append(part.col_indices())
        val.append(part.values())
        offset += int(part.crow_indices()[-1])
    n_rows = sum(part.shape[0] for part in parts)
    return torch.sparse_csr_tensor(
        torch.cat(crow), torch.cat(col), torch.cat(val), (n_rows, parts[0].shape[1]), check_invariants=False
    )


def _cat_labels(parts: Sequence[LabelBatch]) -> LabelBatch:
    """Label batches joined row-wise."""
    if len(parts) == 1:
        return parts[0]
    offsets, shift = [parts[0].offsets[:1]], 0
    for part in parts:
        offsets.append(part.offsets[1:] + shift)
        shift += int(part.offsets[-1])
    return LabelBatch(torch.cat([p.indices for p in parts]), torch.cat(offsets), parts[0].n_labels)
