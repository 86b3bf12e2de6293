"""The head protocol, the registry of heads, and threshold tuning shared by heads.

A head owns the output parameters of a model and everything that depends on the output layer's form:
the training loss, label scores, top-k retrieval, variable-size set prediction and the tuning of its
set-prediction parameter. See ``docs/heads/writing-a-head.md`` for how to add one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from sparsexc._params import Params
from sparsexc._sparse import as_label_matrix
from sparsexc.core.labels import LabelBatch
from sparsexc.core.topk import topk_lower_id_ties
from sparsexc.heads._metric_bridge import set_metric, set_metric_from_row_counts

__all__ = [
    "Head",
    "ScalarTunedHead",
    "build_head",
    "get_head",
    "list_heads",
    "register_head",
    "topk_lower_id_ties",
    "tune_grid",
    "tune_masks",
    "tune_threshold",
]

_REGISTRY: dict[str, type[Head]] = {}


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
    probabilistic : bool
        Whether :meth:`scores` are probabilities (then the estimator's ``predict_proba`` returns them).
    default_lr_scale : float
        Factor on the optimiser's default learning rate when the user gives none (``XCClassifier(lr=None)``).
    default_optimizer : str
        Optimiser used when the user names none (``XCClassifier(optimizer=None)``, the CLI without ``--optimizer``).
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    probabilistic: ClassVar[bool] = True
    default_lr_scale: ClassVar[float] = 1.0
    default_optimizer: ClassVar[str] = "adam"

    def __init__(self, in_dim: int, n_labels: int, params: Params | dict | None = None) -> None:
        super().__init__()
        if in_dim < 1 or n_labels < 1:
            raise ValueError(f"{type(self).__name__}: in_dim and n_labels must be positive; got {in_dim}, {n_labels}")
        self.in_dim, self.n_labels = int(in_dim), int(n_labels)
        self.params = params if isinstance(params, self.Params) else self.Params.from_dict(params)

    # -- training ---------------------------------------------------------------------------------------
    @classmethod
    def check_encoder(cls, params: Params, hidden_sizes: tuple[int, ...]) -> None:
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
    lives in ``self.<tuned_key>_``; ``params.<tuned_key> = None`` means "tune it".
    """

    tuned_key: ClassVar[str] = "threshold"
    tuning_grid: ClassVar[tuple[float, ...]] = ()
    default_tuned: ClassVar[float] = 0.5

    def __init__(self, in_dim: int, n_labels: int, params: Params | dict | None = None) -> None:
        super().__init__(in_dim, n_labels, params)
        fixed = getattr(self.params, self.tuned_key)
        setattr(self, self.tuned_key + "_", float(fixed) if fixed is not None else float(self.default_tuned))

    @property
    def tuned_value(self) -> float:
        return float(getattr(self, self.tuned_key + "_"))

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
        if getattr(self.params, self.tuned_key) is not None:
            return {self.tuned_key: self.tuned_value}  # a user-fixed value is kept
        S = self.set_scores(hidden).detach()
        if type(self).sets_from is ScalarTunedHead.sets_from:  # the rule is {j : S_j > v}: all values at once
            best, value = tune_threshold(S, labels, self.tuning_candidates(), metric)
        else:
            best, value = tune_masks(lambda v: self.sets_from(S, v), labels, self.tuning_candidates(), metric)
        setattr(self, self.tuned_key + "_", best)
        return {self.tuned_key: best, metric: value}

    def tuned_state(self) -> dict[str, Any]:
        return {self.tuned_key: self.tuned_value}

    def load_tuned_state(self, state: dict[str, Any]) -> None:
        unknown = set(state) - {self.tuned_key}
        if unknown:
            raise ValueError(f"head {self.name!r} has tuned value {self.tuned_key!r} only; got {sorted(state)}")
        if self.tuned_key in state:
            setattr(self, self.tuned_key + "_", float(state[self.tuned_key]))


def register_head(cls: type[Head]) -> type[Head]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, Head)):
        raise TypeError("register_head expects a subclass of sparsexc.heads.Head")
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty class attribute 'name'")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"a head named {cls.name!r} is already registered ({_REGISTRY[cls.name].__name__})")
    _REGISTRY[cls.name] = cls
    return cls


def list_heads() -> list[str]:
    """Names of the registered heads, sorted."""
    return sorted(_REGISTRY)


def get_head(name: str) -> type[Head]:
    """The head class registered as ``name``; ``KeyError`` listing the registered names otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown head {name!r}; registered heads are: {', '.join(list_heads())}") from None


def build_head(config: dict[str, Any]) -> Head:
    """Rebuild a head from :meth:`Head.config` (before ``load_state_dict``)."""
    head = get_head(config["name"])(int(config["in_dim"]), int(config["n_labels"]), config.get("params"))
    head.load_tuned_state(config.get("tuned") or {})
    return head


def tune_grid(
    predict: Callable[[float], sp.csr_matrix],
    labels: LabelBatch | sp.csr_matrix,
    grid: Sequence[float],
    metric: str = "micro-F1",
) -> tuple[float, float]:
    """Grid search of a one-parameter set rule: ``predict(v)`` gives the predicted sets for the value ``v``.

    Parameters
    ----------
    predict : callable mapping a grid value to the predicted label sets (a CSR indicator, n x C)
    labels : the validation rows' true labels
    grid : candidate values
    metric : a set metric name of :data:`sparsexc.heads._metric_bridge.SET_METRICS`

    Returns
    -------
    (best value, its metric value); ties go to the first grid value.
    """
    metric_fn: Callable[[sp.csr_matrix, sp.csr_matrix], float] = set_metric(metric)
    Y = labels.to_csr() if isinstance(labels, LabelBatch) else sp.csr_matrix(labels)
    return _first_best(grid, lambda v: float(metric_fn(Y, predict(v))))


def tune_masks(
    mask_of: Callable[[float], torch.Tensor],
    labels: LabelBatch | sp.csr_matrix,
    grid: Sequence[float],
    metric: str = "micro-F1",
) -> tuple[float, float]:
    r""":func:`tune_grid` for a rule given as a boolean (n, C) membership mask ``mask_of(v)`` (torch).

    The metric comes from the per-row counts :math:`|ŷ_i|` (a row sum of the mask) and
    :math:`|y_i \cap ŷ_i|` (the mask read at the true labels), without building a sparse matrix per value;
    the result is that of :func:`tune_grid` on the same sets, bit for bit.
    """
    from_counts = set_metric_from_row_counts(metric)
    if len(grid) == 0:
        raise ValueError("tune_masks needs a non-empty grid")
    if from_counts is None:  # a metric that needs more than per-row counts: from the sets themselves
        return tune_grid(lambda v: sp.csr_matrix(mask_of(v).cpu().numpy(), dtype=np.float32), labels, grid, metric)
    truth: dict[str, Any] = {}  # the labels, checked against the first mask's shape

    def value_at(v: float) -> float:
        mask = mask_of(v)
        if not truth:
            Y = _validation_labels(labels, tuple(mask.shape))
            truth["rows"], truth["cols"] = (torch.from_numpy(a).to(mask.device) for a in _true_entries(Y))
            truth["sizes"] = np.diff(Y.indptr)
        hits = truth["rows"][mask[truth["rows"], truth["cols"]]]
        tp = torch.bincount(hits, minlength=mask.shape[0]).cpu().numpy()
        return from_counts(tp, truth["sizes"], mask.sum(dim=1).cpu().numpy())

    return _first_best(grid, value_at)


def tune_threshold(
    scores: torch.Tensor | np.ndarray,
    labels: LabelBatch | sp.csr_matrix,
    grid: Sequence[float],
    metric: str = "micro-F1",
) -> tuple[float, float]:
    r"""Grid search of the set rule ``{j : scores_j > t}`` over the thresholds ``grid`` (see :func:`tune_grid`).

    All thresholds are scored in one pass: every score is placed among the sorted thresholds
    (``torch.bucketize``, comparing in the scores' dtype as ``scores > t`` does), so a per-row histogram of
    those places gives :math:`|ŷ_i(t)| = \#\{j : s_{ij} > t\}` for every t, and the same on the true
    labels' scores gives :math:`|y_i \cap ŷ_i(t)|`. Same result as comparing at each threshold, bit for bit.
    Scores other than float32/float64 and non-finite values fall back to one comparison per threshold.
    """
    S = torch.from_numpy(np.asarray(scores)) if not isinstance(scores, torch.Tensor) else scores.detach()
    if len(grid) == 0:
        raise ValueError("tune_threshold needs a non-empty grid")
    from_counts = set_metric_from_row_counts(metric)
    grid64 = np.asarray(grid, dtype=np.float64)
    one_pass = (
        from_counts is not None
        and S.ndim == 2
        and S.dtype in (torch.float32, torch.float64)
        and bool(np.isfinite(grid64).all())
        and not bool(torch.isnan(S).any())
    )
    if not one_pass:
        if isinstance(scores, np.ndarray) or not isinstance(scores, torch.Tensor):
            S_np = np.asarray(scores)  # numpy's comparison rules for numpy input, as before
            return tune_masks(lambda t: torch.from_numpy(np.asarray(S_np > t)), labels, grid, metric)
        return tune_masks(lambda t: t < S, labels, grid, metric)
    Y = _validation_labels(labels, tuple(S.shape))
    bounds, position = np.unique(grid64, return_inverse=True)
    # thresholds in the scores' dtype: ``S > t`` rounds a Python float t to it too
    bounds_t = torch.tensor(bounds, dtype=S.dtype, device=S.device)
    n = S.shape[0]
    pred = torch.zeros(n, len(bounds), dtype=torch.long, device=S.device)
    chunk = max(1, (1 << 22) // max(1, S.shape[1]))  # rows per pass: bounded memory for the bucket ids
    for start in range(0, n, chunk):
        block = S[start : start + chunk]
        row_ids = torch.arange(block.shape[0], device=S.device).unsqueeze(1).expand_as(block)
        pred[start : start + chunk] = _counts_above(block.reshape(-1), row_ids.reshape(-1), block.shape[0], bounds_t)
    rows, cols = (torch.from_numpy(a).to(S.device) for a in _true_entries(Y))
    tp = _counts_above(S[rows, cols], rows, n, bounds_t).cpu().numpy()
    pred_np, true_rows = pred.cpu().numpy(), np.diff(Y.indptr)
    # grid values in the caller's order (ties to the first); float(v) as the per-value search reports it
    by_value = {float(v): int(p) for v, p in zip(grid, position.reshape(-1))}
    return _first_best(grid, lambda v: from_counts(tp[:, by_value[v]], true_rows, pred_np[:, by_value[v]]))


def _first_best(grid: Sequence[float], value_at: Callable[[float], float]) -> tuple[float, float]:
    """(the grid value with the highest ``value_at``, that value); ties go to the first grid value."""
    if len(grid) == 0:
        raise ValueError("tune_grid needs a non-empty grid")
    best_v, best_value = float(grid[0]), -np.inf
    for v in grid:
        value = value_at(float(v))
        if value > best_value:
            best_v, best_value = float(v), value
    return best_v, best_value


def _validation_labels(labels: LabelBatch | sp.csr_matrix, shape: tuple[int, ...]) -> sp.csr_matrix:
    """The true labels as a 0/1 CSR indicator with sorted indices, checked against the (n, C) predictions."""
    Y = labels.to_csr() if isinstance(labels, LabelBatch) else sp.csr_matrix(labels)
    if Y.shape[1] != shape[1]:
        raise ValueError(f"the predicted sets have {shape[1]} columns but labels has {Y.shape[1]} labels")
    if Y.shape[0] != shape[0]:
        raise ValueError(f"the predicted sets have {shape[0]} rows but labels has {Y.shape[0]} rows")
    return as_label_matrix(Y, n_labels=shape[1], name="labels")


def _true_entries(Y: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) int64 arrays of the stored entries of the CSR matrix ``Y``."""
    rows = np.repeat(np.arange(Y.shape[0], dtype=np.int64), np.diff(Y.indptr))
    return rows, Y.indices.astype(np.int64)


def _counts_above(values: torch.Tensor, rows: torch.Tensor, n_rows: int, bounds: torch.Tensor) -> torch.Tensor:
    """(n_rows, G) counts, per row, of the ``values`` (row ids ``rows``) above each sorted bound:
    ``out[i, g] = #{k : rows_k = i, values_k > bounds_g}``."""
    G = bounds.numel()
    place = torch.bucketize(values, bounds)  # bounds[place-1] < x <= bounds[place]: x > bounds_g iff place > g
    hist = torch.bincount(rows * (G + 1) + place, minlength=n_rows * (G + 1)).view(n_rows, G + 1)
    return hist.flip(1).cumsum(1).flip(1)[:, 1:]
