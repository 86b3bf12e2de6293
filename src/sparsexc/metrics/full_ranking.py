"""Metrics of the full ranking: label ranking average precision, mean average precision over labels, coverage.

They need the rank of every true label, not only the first k positions. Dense and sparse scores give a full
ranking: decreasing score, **ties broken by lower label id** (for MAP over labels, where examples are ranked,
ties are broken by lower row index); with sparse scores the labels that are not stored follow the stored
ones, in increasing id order. Top-k predictions ``(indices, scores)`` are accepted too and are treated as
sparse scores: the result is computed on the **truncated ranking** (labels outside the top k ranked after
it, by id), so it is a pessimistic stand-in for the value on full scores.

Because ties are broken rather than shared, the values equal scikit-learn's
(``label_ranking_average_precision_score``, ``average_precision_score``, ``coverage_error``) whenever a row
(a column, for MAP) has no tied scores; with ties scikit-learn counts every tied label at the worse rank.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from sparsexc.metrics._inputs import ScoresLike, prepare, row_of_entry, transpose_scores, true_label_ranks

__all__ = ["coverage", "label_ranking_average_precision", "mean_average_precision"]


def _average_precision_rows(Y: sp.csr_matrix, ranks: np.ndarray) -> np.ndarray:
    r"""Per row: :math:`AP_i = \frac{1}{|y_i|} \sum_{l \in y_i} \frac{|\{l' \in y_i : rank(l') \le rank(l)\}|}{rank(l)}`
    (0 for rows without true labels)."""
    rows = row_of_entry(Y.indptr)
    order = np.lexsort((ranks, rows))
    # Within a row, sorted by rank, the true labels at or above a label are its 1-based position.
    at_or_above = np.arange(Y.nnz, dtype=np.int64) - Y.indptr[rows[order]] + 1
    precision = at_or_above / ranks[order]
    n_true = np.diff(Y.indptr)
    total = np.bincount(rows[order], weights=precision, minlength=Y.shape[0])
    out = np.zeros(Y.shape[0], dtype=np.float64)
    np.divide(total, n_true, out=out, where=n_true > 0)
    return out


def label_ranking_average_precision(Y_true: Any, scores: ScoresLike) -> float:
    r"""Label ranking average precision (scikit-learn's LRAP), from sparse or dense inputs.

    :math:`LRAP = \frac{1}{n} \sum_i AP_i`, with
    :math:`AP_i = \frac{1}{|y_i|} \sum_{l \in y_i} \frac{|\{l' \in y_i : rank_i(l') \le rank_i(l)\}|}{rank_i(l)}`.
    As in scikit-learn, a row with no true labels, or with every label true, scores 1.

    Parameters
    ----------
    Y_true : CSR 0/1 indicator, dense 0/1 array or list of label-id lists, shape (n_samples, n_labels)
    scores : dense (n_samples, n_labels) array or sparse matrix of scores; top-k ``(indices, scores)`` give
        the value on the truncated ranking (see the module docstring).
    """
    Y, S = prepare(Y_true, scores)
    if Y.shape[0] == 0:
        return 0.0
    per_row = _average_precision_rows(Y, true_label_ranks(Y, S))
    n_true = np.diff(Y.indptr)
    per_row[(n_true == 0) | (n_true == Y.shape[1])] = 1.0
    return float(per_row.mean())


def mean_average_precision(Y_true: Any, scores: ScoresLike) -> float:
    r"""Mean over labels of the average precision of ranking the examples by that label's score.

    For label ``l`` with positives :math:`E_l = \{i : l \in y_i\}`, examples ranked by decreasing score
    :math:`s_{il}` (ties by lower row index; with sparse scores the examples without a stored score follow):
    :math:`AP_l = \frac{1}{|E_l|} \sum_{i \in E_l} \frac{|\{i' \in E_l : rank_l(i') \le rank_l(i)\}|}{rank_l(i)}`.
    The mean is over the labels with at least one positive (0.0 if there is none). Arguments as in
    :func:`label_ranking_average_precision`.
    """
    Y, S = prepare(Y_true, scores)
    Y_by_label = sp.csr_matrix(Y.T)
    Y_by_label.sort_indices()
    per_label = _average_precision_rows(Y_by_label, true_label_ranks(Y_by_label, transpose_scores(S)))
    has_positive = np.diff(Y_by_label.indptr) > 0
    return float(per_label[has_positive].mean()) if has_positive.any() else 0.0


def coverage(Y_true: Any, scores: ScoresLike) -> float:
    r"""Coverage (scikit-learn's ``coverage_error``): how far down the ranking one must go to cover every
    true label, :math:`\frac{1}{n} \sum_i \max_{l \in y_i} rank_i(l)` (a row with no true labels counts 0).
    Lower is better; the best value is the mean number of true labels. Arguments as in
    :func:`label_ranking_average_precision`.
    """
    Y, S = prepare(Y_true, scores)
    if Y.shape[0] == 0:
        return 0.0
    deepest = np.zeros(Y.shape[0], dtype=np.int64)
    np.maximum.at(deepest, row_of_entry(Y.indptr), true_label_ranks(Y, S))
    return float(deepest.mean())
