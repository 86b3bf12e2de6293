"""Tuning of a one-parameter set rule on validation data: grid search, by masks or by thresholds in one pass."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from sparsexc._sparse import as_label_matrix
from sparsexc.heads._metric_bridge import set_metric, set_metric_from_row_counts

if TYPE_CHECKING:
    import torch

    from sparsexc.core.labels import LabelBatch

# torch is imported by the functions that take tensors, not here: the label tree's set rule (tune_candidates,
# candidate_sets) is tuned and applied in numpy, and a tree model fits, predicts and saves without torch

__all__ = ["RowCounts", "candidate_sets", "tune_candidates", "tune_grid", "tune_masks", "tune_threshold"]


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
    Y = labels.to_csr() if _is_label_batch(labels) else sp.csr_matrix(labels)
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
            truth["Y"] = _validation_labels(labels, tuple(mask.shape))
            truth["entries"] = _true_entries_on(truth["Y"], mask.device)
        tp, pred = _mask_counts(mask, *truth["entries"])
        return from_counts(tp, np.diff(truth["Y"].indptr), pred)

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
    import torch

    S = torch.from_numpy(np.asarray(scores)) if not isinstance(scores, torch.Tensor) else scores.detach()
    if len(grid) == 0:
        raise ValueError("tune_threshold needs a non-empty grid")
    from_counts = set_metric_from_row_counts(metric)
    grid64 = np.asarray(grid, dtype=np.float64)
    if from_counts is None or not _one_pass(S, grid64):
        if isinstance(scores, np.ndarray) or not isinstance(scores, torch.Tensor):
            S_np = np.asarray(scores)  # numpy's comparison rules for numpy input, as before
            return tune_masks(lambda t: torch.from_numpy(np.asarray(S_np > t)), labels, grid, metric)
        return tune_masks(lambda t: t < S, labels, grid, metric)
    Y = _validation_labels(labels, tuple(S.shape))
    tp, pred, position = _threshold_counts(S, Y, grid64)
    return _best_of_counts(grid, position, tp, pred, np.diff(Y.indptr), from_counts)


def tune_candidates(
    idx: np.ndarray,
    scores: np.ndarray,
    labels: LabelBatch | sp.csr_matrix,
    grid: Sequence[float],
    metric: str = "micro-F1",
) -> tuple[float, float]:
    r""":func:`tune_grid` for the rule :math:`ŷ_i(t) = \{\mathrm{idx}_{ir} : s_{ir} \ge t\}` over each row's
    candidates (the label tree's set rule: a row's best labels ``idx`` (n, m) with their scores ``s``).

    All thresholds are scored in one pass, as :func:`tune_threshold` does: each candidate's score is placed
    among the sorted thresholds (``np.searchsorted``, the thresholds rounded to the scores' dtype as
    ``s >= t`` rounds a Python float), so a per-row histogram of the places gives :math:`|ŷ_i(t)|` for every
    t, and the same over the candidates that are true labels gives :math:`|y_i \cap ŷ_i(t)|`. A NaN score is
    in no set. Same result as building the sets at each value and scoring them (:func:`tune_grid`), bit for
    bit; a metric without a per-row-count form is scored that way.
    """
    idx, S = np.asarray(idx), np.asarray(scores)
    if len(grid) == 0:
        raise ValueError("tune_candidates needs a non-empty grid")
    if idx.shape != S.shape or idx.ndim != 2:
        raise ValueError(f"idx {idx.shape} and scores {S.shape} must be (n, m) arrays of the same shape")
    n_labels = labels.n_labels if _is_label_batch(labels) else sp.csr_matrix(labels).shape[1]
    Y = _validation_labels(labels, (S.shape[0], n_labels))
    from_counts = set_metric_from_row_counts(metric)
    if from_counts is None:
        return tune_grid(lambda t: candidate_sets(idx, S, t, n_labels), Y, grid, metric)
    bounds, position = np.unique(np.asarray(grid, dtype=np.float64), return_inverse=True)
    n = S.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), S.shape[1])
    truth = np.isin(rows * n_labels + idx.ravel().astype(np.int64), _true_keys(Y, n_labels))
    values = np.ascontiguousarray(S).reshape(-1)
    kept = ~np.isnan(values)  # a NaN score reaches no threshold
    # numpy, not torch: single-threaded, as the tree's fit around it (torch's intra-op threads spin on arrays this
    # small and cost several times the work in CPU seconds); thresholds in the scores' dtype, as ``s >= t`` rounds
    # a Python float t to it too
    bounds_s = bounds.astype(values.dtype)
    hit = kept & truth
    pred = _counts_at_least(values[kept], rows[kept], n, bounds_s)
    tp = _counts_at_least(values[hit], rows[hit], n, bounds_s)
    return _best_of_counts(grid, position.reshape(-1), tp, pred, np.diff(Y.indptr), from_counts)


def candidate_sets(idx: np.ndarray, scores: np.ndarray, threshold: float, n_labels: int) -> sp.csr_matrix:
    """The CSR 0/1 float32 indicator (n, ``n_labels``) of ``{idx[i, r] : scores[i, r] >= threshold}`` per row,
    indices sorted."""
    keep = scores >= threshold
    indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int64)
    values = np.ones(int(indptr[-1]), dtype=np.float32)
    out = sp.csr_matrix((values, idx[keep].astype(np.int64), indptr), shape=(idx.shape[0], n_labels))
    out.sort_indices()
    return out


def _true_keys(Y: sp.csr_matrix, n_labels: int) -> np.ndarray:
    """``row * n_labels + column`` of every stored entry of ``Y`` (int64)."""
    rows, cols = _true_entries(Y)
    return rows * n_labels + cols


def _best_of_counts(
    grid: Sequence[float],
    position: np.ndarray,
    tp: np.ndarray,
    pred: np.ndarray,
    true_rows: np.ndarray,
    from_counts: Callable[[np.ndarray, np.ndarray, np.ndarray], float],
) -> tuple[float, float]:
    """The first best grid value from per-row counts: column ``position[g]`` of ``tp`` and ``pred`` holds the
    counts of grid value g."""
    # grid values in the caller's order (ties to the first); float(v) as the per-value search reports it
    by_value = {float(v): int(p) for v, p in zip(grid, position)}
    return _first_best(grid, lambda v: from_counts(tp[:, by_value[v]], true_rows, pred[:, by_value[v]]))


def _one_pass(S: torch.Tensor, grid64: np.ndarray) -> bool:
    """Whether ``S > t`` can be counted for all thresholds at once (float32/64 scores, no NaN, finite grid)."""
    import torch

    return (
        S.ndim == 2
        and S.dtype in (torch.float32, torch.float64)
        and bool(np.isfinite(grid64).all())
        and not bool(torch.isnan(S).any())
    )


def _threshold_counts(
    S: torch.Tensor, Y: sp.csr_matrix, grid64: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Per-row counts of the rule :math:`\{j : s_{ij} > t\}` at every distinct grid value, in one pass.

    Returns ``(tp, pred, position)``: ``tp[i, u]`` :math:`= |y_i \cap ŷ_i(t_u)|` and ``pred[i, u]``
    :math:`= |ŷ_i(t_u)|` (int64 (n, U)) for the U sorted distinct values :math:`t_u`, and the column
    ``position[g]`` of each grid value.
    """
    import torch

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
    rows, cols = _true_entries_on(Y, S.device)
    tp = _counts_above(S[rows, cols], rows, n, bounds_t).cpu().numpy()
    return tp, pred.cpu().numpy(), position.reshape(-1)


def _mask_counts(mask: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-row ``(|y_i ∩ ŷ_i|, |ŷ_i|)`` of a boolean (n, C) mask, the true labels at ``(rows, cols)``."""
    import torch

    hits = rows[mask[rows, cols]]
    return torch.bincount(hits, minlength=mask.shape[0]).cpu().numpy(), mask.sum(dim=1).cpu().numpy()


def _true_entries_on(Y: sp.csr_matrix, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    rows, cols = _true_entries(Y)
    return torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)


class RowCounts:
    r"""Streaming tuning of a one-parameter set rule: per-row counts gathered batch by batch, then one choice.

    For each grid value :math:`v` the metric needs only :math:`|y_i \cap ŷ_i(v)|`, :math:`|ŷ_i(v)|` and
    :math:`|y_i|` per row (micro-F1 sums them, example-F1 averages a per-row ratio), so a batch's rows can be
    reduced to (B, G) integers and dropped: memory is rows x grid values, not rows x labels. The counts of
    all batches, concatenated in order, are those of all rows at once, so the choice is the same, bit for bit.

    Parameters
    ----------
    grid : candidate values (ties go to the first)
    metric : a set metric with a per-row-count form (``"micro-F1"``, ``"example-F1"``)
    """

    def __init__(self, grid: Sequence[float], metric: str = "micro-F1") -> None:
        if len(grid) == 0:
            raise ValueError("tuning needs a non-empty grid")
        from_counts = set_metric_from_row_counts(metric)
        if from_counts is None:
            raise ValueError(f"the set metric {metric!r} cannot be computed from per-row counts")
        self.grid, self.metric, self._from_counts = [float(v) for v in grid], metric, from_counts
        self._tp: list[np.ndarray] = []
        self._pred: list[np.ndarray] = []
        self._true: list[np.ndarray] = []

    def add(self, tp: np.ndarray, pred: np.ndarray, true: np.ndarray) -> None:
        """Add a batch: ``tp``, ``pred`` int (B, G) (column g: grid value g), ``true`` int (B,)."""
        self._tp.append(np.asarray(tp))
        self._pred.append(np.asarray(pred))
        self._true.append(np.asarray(true))

    def add_thresholds(self, scores: torch.Tensor, labels: LabelBatch | sp.csr_matrix) -> None:
        r"""Add a batch for the rule :math:`\{j : s_j > v\}` (as :func:`tune_threshold`, all values at once)."""
        S = scores.detach()
        grid64 = np.asarray(self.grid, dtype=np.float64)
        if not _one_pass(S, grid64):
            self.add_masks(lambda t: t < S, labels, tuple(S.shape))
            return
        Y = _validation_labels(labels, tuple(S.shape))
        tp, pred, position = _threshold_counts(S, Y, grid64)
        self.add(tp[:, position], pred[:, position], np.diff(Y.indptr))

    def add_masks(
        self, mask_of: Callable[[float], torch.Tensor], labels: LabelBatch | sp.csr_matrix, shape: tuple[int, ...]
    ) -> None:
        """Add a batch for a rule given as a boolean (B, C) mask ``mask_of(v)`` of shape ``shape``."""
        Y = _validation_labels(labels, shape)
        entries: tuple[torch.Tensor, torch.Tensor] | None = None
        tp, pred = [], []
        for v in self.grid:
            mask = mask_of(v)
            entries = entries or _true_entries_on(Y, mask.device)
            t, p = _mask_counts(mask, *entries)
            tp.append(t)
            pred.append(p)
        self.add(np.stack(tp, axis=1), np.stack(pred, axis=1), np.diff(Y.indptr))

    def add_sets(self, sets_of: Callable[[float], sp.csr_matrix], labels: LabelBatch | sp.csr_matrix) -> None:
        """Add a batch for a rule given as CSR 0/1 label sets ``sets_of(v)`` (e.g. gathered from label shards)."""
        Y: sp.csr_matrix | None = None
        tp, pred = [], []
        for v in self.grid:
            sets = sp.csr_matrix(sets_of(v))
            Y = Y if Y is not None else _validation_labels(labels, sets.shape)
            tp.append(np.asarray((sets != 0).multiply(Y).sum(axis=1), dtype=np.int64).ravel())
            pred.append(np.asarray((sets != 0).sum(axis=1), dtype=np.int64).ravel())
        assert Y is not None
        self.add(np.stack(tp, axis=1), np.stack(pred, axis=1), np.diff(Y.indptr))

    def best(self) -> tuple[float, float]:
        """(the grid value with the highest metric over all rows added, that value); ties to the first."""
        if not self._true:
            raise ValueError("no validation rows to tune on")
        tp, pred, true = np.concatenate(self._tp), np.concatenate(self._pred), np.concatenate(self._true)
        best_v, best_value = self.grid[0], -np.inf
        for g, v in enumerate(self.grid):
            value = self._from_counts(tp[:, g], true, pred[:, g])
            if value > best_value:
                best_v, best_value = v, value
        return best_v, best_value


def _is_label_batch(labels: Any) -> bool:
    """Whether ``labels`` is a :class:`~sparsexc.core.labels.LabelBatch` (one exists only once its module, which
    imports torch, was imported: no import to say no)."""
    module = sys.modules.get("sparsexc.core.labels")
    return module is not None and isinstance(labels, module.LabelBatch)


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
    Y = labels.to_csr() if _is_label_batch(labels) else sp.csr_matrix(labels)
    if Y.shape[1] != shape[1]:
        raise ValueError(f"the predicted sets have {shape[1]} columns but labels has {Y.shape[1]} labels")
    if Y.shape[0] != shape[0]:
        raise ValueError(f"the predicted sets have {shape[0]} rows but labels has {Y.shape[0]} rows")
    return as_label_matrix(Y, n_labels=shape[1], name="labels")


def _true_entries(Y: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) int64 arrays of the stored entries of the CSR matrix ``Y``."""
    rows = np.repeat(np.arange(Y.shape[0], dtype=np.int64), np.diff(Y.indptr))
    return rows, Y.indices.astype(np.int64)


def _counts_at_least(values: np.ndarray, rows: np.ndarray, n_rows: int, bounds: np.ndarray) -> np.ndarray:
    """(n_rows, G) int64 counts, per row, of the ``values`` (row ids ``rows``) at or above each sorted bound:
    ``out[i, g] = #{k : rows_k = i, values_k >= bounds_g}`` (the candidates' rule ``s >= t``, in numpy;
    :func:`_counts_above` counts ``s > t`` on a tensor's device)."""
    G = bounds.size
    # side="right": bounds[place-1] <= x < bounds[place], so x >= bounds_g iff place > g
    place = np.searchsorted(bounds, values, side="right")
    hist = np.bincount(rows * (G + 1) + place, minlength=n_rows * (G + 1)).reshape(n_rows, G + 1)
    return np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]


def _counts_above(values: torch.Tensor, rows: torch.Tensor, n_rows: int, bounds: torch.Tensor) -> torch.Tensor:
    """(n_rows, G) counts, per row, of the ``values`` (row ids ``rows``) above each sorted bound:
    ``out[i, g] = #{k : rows_k = i, values_k > bounds_g}`` (on the scores' device)."""
    import torch

    G = bounds.numel()
    # right=False: bounds[place-1] < x <= bounds[place], so x > bounds_g iff place > g
    place = torch.bucketize(values, bounds, right=False)
    hist = torch.bincount(rows * (G + 1) + place, minlength=n_rows * (G + 1)).view(n_rows, G + 1)
    return hist.flip(1).cumsum(1).flip(1)[:, 1:]
