"""Top-k ranking metrics: P@k, R@k, MAP@k, nDCG@k, PSP@k and PSnDCG@k (the Extreme Classification Repository's
definitions, as computed by pyxclib).

Every function takes the true labels ``Y_true`` (a CSR 0/1 indicator, a dense 0/1 array or a list of label-id
lists, shape (n_samples, n_labels)) and ``scores`` in one of three forms (see :mod:`sparsexc.metrics._inputs`):
a dense (n_samples, n_labels) array, a sparse matrix of scores (missing entries are "not predicted"), or a
tuple ``(indices, scores)`` of top-k predictions (index -1 = no prediction). Rows are ranked by decreasing
score with **ties broken by lower label id**. Positions with no prediction count as misses.

Notation, for row ``i``: ``y_i`` its true labels, ``r_i(j)`` the label at rank ``j`` (1-based),
``hit_i(j) = [r_i(j) in y_i]``, ``w`` the inverse propensities, ``m_i = min(k, |y_i|)``.
Rows without true labels score 0 on every metric and, by default, count in the average over rows (as in
pyxclib); ``empty_rows="exclude"`` averages over the rows with at least one true label instead.
A mean over no rows, and a normalised PSP whose ideal value is 0, are reported as 0.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from sparsexc.errors import ConfigurationError
from sparsexc.metrics._inputs import (
    ScoresLike,
    check_inv_propensity,
    check_k,
    label_hits,
    prepare,
    propensity_width,
    top_k_indices,
)

EmptyRows = Literal["zero", "exclude"]

__all__ = ["map_at_k", "ndcg_at_k", "precision_at_k", "psndcg_at_k", "psp_at_k", "recall_at_k"]


@dataclass(frozen=True)
class RankedPredictions:
    """The first ``depth`` ranks of every row and which of them are true labels (shared by all k <= depth)."""

    Y: sp.csr_matrix  # (n_samples, n_labels) 0/1
    top_indices: np.ndarray  # (n_samples, depth) int64, -1 = no prediction
    hits: np.ndarray  # (n_samples, depth) bool
    n_true: np.ndarray  # (n_samples,) |y_i|

    @property
    def depth(self) -> int:
        return self.top_indices.shape[1]


def rank_predictions(Y_true: Any, scores: ScoresLike, depth: int, *, n_labels: int | None = None) -> RankedPredictions:
    """Validate the inputs and rank the first ``depth`` positions of every row."""
    Y, S = prepare(Y_true, scores, n_labels=n_labels)
    top = top_k_indices(S, depth)
    return RankedPredictions(Y=Y, top_indices=top, hits=label_hits(Y, top), n_true=np.diff(Y.indptr))


def check_empty_rows(empty_rows: str) -> None:
    if empty_rows not in ("zero", "exclude"):
        raise ConfigurationError(f"empty_rows must be 'zero' or 'exclude'; got {empty_rows!r}")


def mean_over_rows(per_row: np.ndarray, n_true: np.ndarray, empty_rows: str) -> float:
    if empty_rows == "exclude":
        per_row = per_row[n_true > 0]
    return float(per_row.mean()) if per_row.size else 0.0


def _discounts(k: int) -> np.ndarray:
    """1 / log2(j + 1) for ranks j = 1..k."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _ideal_dcg(n_true: np.ndarray, k: int) -> np.ndarray:
    """sum_{j <= min(k, |y_i|)} 1/log2(j+1) per row (0 for rows without true labels)."""
    cumulative = np.concatenate(([0.0], np.cumsum(_discounts(k))))
    return cumulative[np.minimum(n_true, k)]


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def precision_rows(r: RankedPredictions, k: int) -> np.ndarray:
    return r.hits[:, :k].sum(axis=1) / k


def recall_rows(r: RankedPredictions, k: int) -> np.ndarray:
    return _safe_divide(r.hits[:, :k].sum(axis=1).astype(np.float64), r.n_true)


def average_precision_rows(r: RankedPredictions, k: int) -> np.ndarray:
    hits = r.hits[:, :k]
    # precision at each rank j times hit_i(j): the running count of hits over j
    precision_at_hits = np.cumsum(hits, axis=1) / np.arange(1, k + 1) * hits
    return _safe_divide(precision_at_hits.sum(axis=1), np.minimum(r.n_true, k))


def ndcg_rows(r: RankedPredictions, k: int) -> np.ndarray:
    dcg = r.hits[:, :k] @ _discounts(k)
    return _safe_divide(dcg, _ideal_dcg(r.n_true, k))


@dataclass(frozen=True)
class PropensityGains:
    """Per (row, rank) gains ``w_l * hit`` of the predicted ranking and of the ideal one, first ``depth`` ranks.

    The ideal ranking puts the row's true labels with the largest inverse propensity first, so its gains are
    the row's largest ``min(depth, |y_i|)`` values of ``w`` over its true labels, in decreasing order; its
    first k columns are the ideal gains at every k <= depth.
    """

    gains: np.ndarray  # (n_samples, depth)
    ideal: np.ndarray  # (n_samples, depth)


def propensity_gains(r: RankedPredictions, inv_propensity: np.ndarray) -> PropensityGains:
    gains = np.where(r.hits, inv_propensity[np.maximum(r.top_indices, 0)], 0.0)
    Y = r.Y
    weighted = sp.csr_matrix((inv_propensity[Y.indices], Y.indices, Y.indptr), shape=Y.shape)
    ideal = top_k_indices(weighted, r.depth)
    return PropensityGains(gains=gains, ideal=np.where(ideal >= 0, inv_propensity[np.maximum(ideal, 0)], 0.0))


def _normalised(value: float, best: float, normalize: bool) -> float:
    if not normalize:
        return value
    return value / best if best > 0 else 0.0


def psp_value(g: PropensityGains, k: int, normalize: bool) -> float:
    if g.gains.shape[0] == 0:
        return 0.0
    value = float(g.gains[:, :k].sum(axis=1).mean() / k)
    best = float(g.ideal[:, :k].sum(axis=1).mean() / k)
    return _normalised(value, best, normalize)


def psndcg_value(g: PropensityGains, n_true: np.ndarray, k: int, normalize: bool) -> float:
    if g.gains.shape[0] == 0:
        return 0.0
    idcg = _ideal_dcg(n_true, k)
    discounts = _discounts(k)
    value = float(_safe_divide(g.gains[:, :k] @ discounts, idcg).mean())
    best = float(_safe_divide(g.ideal[:, :k] @ discounts, idcg).mean())
    return _normalised(value, best, normalize)


def precision_at_k(Y_true: Any, scores: ScoresLike, k: int = 5, *, empty_rows: EmptyRows = "zero") -> float:
    r"""Precision at k: :math:`P@k = \frac{1}{n} \sum_i \frac{1}{k} \sum_{j=1}^{k} hit_i(j)`.

    The denominator is always ``k``, also for rows with fewer than ``k`` predictions or true labels.

    Parameters
    ----------
    Y_true : CSR 0/1 indicator, dense 0/1 array or list of label-id lists, shape (n_samples, n_labels)
    scores : dense (n_samples, n_labels) array, sparse matrix of scores, or tuple (indices, scores) of
        two (n_samples, k') arrays (top-k predictions, -1 = no prediction)
    k : int
    empty_rows : {"zero", "exclude"}
        Rows without true labels count as 0 ("zero", pyxclib) or are left out of the mean ("exclude").
    """
    k = check_k(k)
    check_empty_rows(empty_rows)
    r = rank_predictions(Y_true, scores, k)
    return mean_over_rows(precision_rows(r, k), r.n_true, empty_rows)


def recall_at_k(Y_true: Any, scores: ScoresLike, k: int = 5, *, empty_rows: EmptyRows = "zero") -> float:
    r"""Recall at k: :math:`R@k = \frac{1}{n} \sum_i \frac{1}{|y_i|} \sum_{j=1}^{k} hit_i(j)`.

    Rows without true labels have recall 0 and count in the mean (pyxclib) unless ``empty_rows="exclude"``.
    Arguments as in :func:`precision_at_k`.
    """
    k = check_k(k)
    check_empty_rows(empty_rows)
    r = rank_predictions(Y_true, scores, k)
    return mean_over_rows(recall_rows(r, k), r.n_true, empty_rows)


def map_at_k(Y_true: Any, scores: ScoresLike, k: int = 5, *, empty_rows: EmptyRows = "zero") -> float:
    r"""Mean average precision at k over rows:
    :math:`MAP@k = \frac{1}{n} \sum_i \frac{1}{m_i} \sum_{j=1}^{k} hit_i(j) \frac{1}{j} \sum_{j' \le j} hit_i(j')`.

    Each row's average precision of its top k, normalised by :math:`m_i = \min(k, |y_i|)`, so a row whose
    first :math:`m_i` ranks are all true scores 1. Unlike :func:`sparsexc.metrics.mean_average_precision`
    (a mean over labels of ranking the examples), this ranks the labels of each example. Rows without true
    labels score 0 and count in the mean unless ``empty_rows="exclude"``. Arguments as in
    :func:`precision_at_k`.
    """
    k = check_k(k)
    check_empty_rows(empty_rows)
    r = rank_predictions(Y_true, scores, k)
    return mean_over_rows(average_precision_rows(r, k), r.n_true, empty_rows)


def ndcg_at_k(Y_true: Any, scores: ScoresLike, k: int = 5, *, empty_rows: EmptyRows = "zero") -> float:
    r"""Normalised discounted cumulative gain at k.

    :math:`nDCG@k = \frac{1}{n} \sum_i \frac{\sum_{j=1}^{k} hit_i(j) / \log_2(j+1)}
    {\sum_{j=1}^{m_i} 1 / \log_2(j+1)}`, with :math:`m_i = \min(k, |y_i|)`; rows without true labels
    score 0. Arguments as in :func:`precision_at_k`.
    """
    k = check_k(k)
    check_empty_rows(empty_rows)
    r = rank_predictions(Y_true, scores, k)
    return mean_over_rows(ndcg_rows(r, k), r.n_true, empty_rows)


def psp_at_k(Y_true: Any, scores: ScoresLike, inv_propensity: Any, k: int = 5, *, normalize: bool = True) -> float:
    r"""Propensity-scored precision at k (Jain et al. 2016).

    Unnormalised: :math:`PSP@k = \frac{1}{n} \sum_i \frac{1}{k} \sum_{j=1}^{k} hit_i(j)\, w_{r_i(j)}`.
    Normalised (default, as pyxclib): divided by the same quantity for the ideal ranking, the one that puts
    each row's true labels in decreasing order of ``w`` (a ratio of means over rows, not a mean of ratios).
    A perfect ranking therefore scores 1.

    Parameters
    ----------
    inv_propensity : array, shape (n_labels,)
        Inverse propensities ``w`` (e.g. from :func:`inverse_propensity` on the training labels).
    normalize : bool
        Divide by the ideal ranking's value.
    Other arguments as in :func:`precision_at_k`.
    """
    k = check_k(k)
    r = rank_predictions(Y_true, scores, k, n_labels=propensity_width(inv_propensity))
    w = check_inv_propensity(inv_propensity, r.Y.shape[1])
    return psp_value(propensity_gains(r, w), k, normalize)


def psndcg_at_k(Y_true: Any, scores: ScoresLike, inv_propensity: Any, k: int = 5, *, normalize: bool = True) -> float:
    r"""Propensity-scored nDCG at k.

    Unnormalised (the XC repository's PSnDCG@k):
    :math:`\frac{1}{n} \sum_i \frac{\sum_{j=1}^{k} hit_i(j)\, w_{r_i(j)} / \log_2(j+1)}
    {\sum_{j=1}^{m_i} 1 / \log_2(j+1)}`.
    Normalised (default, as pyxclib): divided by the same quantity for the ideal ranking (true labels in
    decreasing order of ``w``). Arguments as in :func:`psp_at_k`.
    """
    k = check_k(k)
    r = rank_predictions(Y_true, scores, k, n_labels=propensity_width(inv_propensity))
    w = check_inv_propensity(inv_propensity, r.Y.shape[1])
    return psndcg_value(propensity_gains(r, w), r.n_true, k, normalize)
