"""Metrics of predicted label sets: micro/macro F1 (and the sparsemax paper's macro-F1), example-based F1,
Jaccard and Hamming loss.

``Y_true`` and ``Y_pred`` are label indicators of shape (n_samples, n_labels): CSR or dense 0/1 matrices, or
lists of label-id lists. Notation: per row ``i``, true set ``y_i`` and predicted set ``ŷ_i``; per label ``l``,
``tp_l``, ``n_true_l`` (rows that have ``l``) and ``n_pred_l`` (rows predicted to have ``l``).

Where a ratio is 0/0 the value is ``zero_division``; every function documents its default and which cases
it covers. The defaults follow scikit-learn's ``zero_division=0`` except for the example-based scores, where
an empty prediction for a row with no true labels is exactly right and scores 1 (the usual convention of the
multi-label literature, e.g. MEKA; scikit-learn's ``zero_division=1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import scipy.sparse as sp

from sparsexc._sparse import as_label_matrix
from sparsexc.errors import ConfigurationError
from sparsexc.metrics._inputs import label_width

ZeroDivision: TypeAlias = float | Literal["exclude"]

__all__ = ["example_f1", "hamming_loss", "jaccard", "macro_f1", "macro_f1_paper", "micro_f1"]


@dataclass(frozen=True)
class SetCounts:
    """Counts every set metric is computed from."""

    n_samples: int
    n_labels: int
    tp_rows: np.ndarray  # |y_i ∩ ŷ_i|
    true_rows: np.ndarray  # |y_i|
    pred_rows: np.ndarray  # |ŷ_i|
    tp_labels: np.ndarray  # tp_l
    true_labels: np.ndarray  # n_true_l
    pred_labels: np.ndarray  # n_pred_l


def count_sets(Y_true: Any, Y_pred: Any, *, pred_name: str = "Y_pred", n_labels: int | None = None) -> SetCounts:
    """Validate two label indicators against each other and count their agreements.

    The label-space width comes from whichever argument is a matrix (they must agree), else from
    ``n_labels``, else from the largest label id in either list.
    """
    width_true, width_pred = label_width(Y_true), label_width(Y_pred)
    if width_true is not None and width_pred is not None and width_true != width_pred:
        raise ConfigurationError(f"{pred_name} has {width_pred} columns but Y_true has {width_true} labels")
    width = width_true if width_true is not None else width_pred
    if width is None:
        width = (
            n_labels
            if n_labels is not None
            else max(as_label_matrix(Y_true, name="Y_true").shape[1], as_label_matrix(Y_pred, name=pred_name).shape[1])
        )
    Y = as_label_matrix(Y_true, n_labels=width, name="Y_true")
    P = as_label_matrix(Y_pred, n_labels=width, name=pred_name)
    if Y.shape[0] != P.shape[0]:
        raise ConfigurationError(f"{pred_name} has {P.shape[0]} rows but Y_true has {Y.shape[0]} rows")
    both = sp.csr_matrix(Y.multiply(P))
    both.eliminate_zeros()
    return SetCounts(
        n_samples=Y.shape[0],
        n_labels=width,
        tp_rows=np.diff(both.indptr),
        true_rows=np.diff(Y.indptr),
        pred_rows=np.diff(P.indptr),
        tp_labels=np.bincount(both.indices, minlength=width),
        true_labels=np.bincount(Y.indices, minlength=width),
        pred_labels=np.bincount(P.indices, minlength=width),
    )


def _check_zero_division(zero_division: Any, allow_exclude: bool) -> None:
    allowed = (0.0, 1.0)
    if isinstance(zero_division, str):
        if zero_division == "exclude" and allow_exclude:
            return
    elif isinstance(zero_division, (int, float)) and not isinstance(zero_division, bool) and zero_division in allowed:
        return
    choices = "0.0, 1.0 or 'exclude'" if allow_exclude else "0.0 or 1.0"
    raise ConfigurationError(f"zero_division must be {choices}; got {zero_division!r}")


def _mean_ratio(num: np.ndarray, den: np.ndarray, zero_division: ZeroDivision) -> float:
    """Mean of num/den, where 0/0 is ``zero_division`` or, for "exclude", left out of the mean."""
    defined = den > 0
    if zero_division == "exclude":
        return float(np.mean(num[defined] / den[defined])) if defined.any() else 0.0
    ratios = np.full(num.shape, float(zero_division))
    np.divide(num, den, out=ratios, where=defined)
    return float(ratios.mean()) if ratios.size else 0.0


def f1_from_counts(c: SetCounts, kind: str, zero_division: ZeroDivision) -> float:
    if kind == "micro":
        den = int(c.true_rows.sum() + c.pred_rows.sum())
        return 2.0 * int(c.tp_rows.sum()) / den if den else float(zero_division)
    if kind == "macro":
        return _mean_ratio(2.0 * c.tp_labels, (c.true_labels + c.pred_labels).astype(np.float64), zero_division)
    if kind == "example":
        return _mean_ratio(2.0 * c.tp_rows, (c.true_rows + c.pred_rows).astype(np.float64), zero_division)
    raise AssertionError(kind)


def macro_f1_paper_from_counts(c: SetCounts) -> float:
    tp = c.tp_labels.astype(np.float64)
    precision = _mean_ratio(tp, c.pred_labels.astype(np.float64), 0.0)
    recall = _mean_ratio(tp, c.true_labels.astype(np.float64), 0.0)
    return 2.0 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def jaccard_from_counts(c: SetCounts, zero_division: ZeroDivision) -> float:
    union = (c.true_rows + c.pred_rows - c.tp_rows).astype(np.float64)
    return _mean_ratio(c.tp_rows.astype(np.float64), union, zero_division)


def hamming_from_counts(c: SetCounts) -> float:
    cells = c.n_samples * c.n_labels
    wrong = int(c.true_rows.sum() + c.pred_rows.sum() - 2 * c.tp_rows.sum())
    return wrong / cells if cells else 0.0


def micro_f1(Y_true: Any, Y_pred: Any, *, zero_division: float = 0.0) -> float:
    r"""Micro-averaged F1: :math:`\frac{2 \sum_i |y_i \cap ŷ_i|}{\sum_i |y_i| + \sum_i |ŷ_i|}`
    (= 2PR/(P+R) with pooled precision P and recall R). ``zero_division`` (0.0 or 1.0) is returned when
    there are no true and no predicted labels at all.

    Parameters
    ----------
    Y_true, Y_pred : CSR 0/1 indicator, dense 0/1 array or list of label-id lists, shape (n_samples, n_labels)
    """
    _check_zero_division(zero_division, allow_exclude=False)
    return f1_from_counts(count_sets(Y_true, Y_pred), "micro", zero_division)


def macro_f1(Y_true: Any, Y_pred: Any, *, zero_division: ZeroDivision = 0.0) -> float:
    r"""Macro-averaged F1: the mean over all ``n_labels`` labels of
    :math:`F1_l = \frac{2\, tp_l}{n\_true_l + n\_pred_l}` (scikit-learn's ``f1_score(average="macro")``).

    A label that is neither true nor predicted anywhere has F1 = ``zero_division``: 0.0 (default, as
    scikit-learn's ``zero_division=0``), 1.0, or ``"exclude"`` to average over the other labels only.
    With millions of labels most are absent from a test set, so the choice matters.
    """
    _check_zero_division(zero_division, allow_exclude=True)
    return f1_from_counts(count_sets(Y_true, Y_pred), "macro", zero_division)


def macro_f1_paper(Y_true: Any, Y_pred: Any) -> float:
    r"""Macro-F1 as defined in the sparsemax paper's code (Martins & Astudillo 2016): the harmonic mean of
    label-averaged precision and label-averaged recall, *not* the mean of per-label F1.

    :math:`P = \frac{1}{L} \sum_l \frac{tp_l}{n\_pred_l}`, :math:`R = \frac{1}{L} \sum_l \frac{tp_l}{n\_true_l}`
    over all ``L = n_labels`` labels, a 0/0 term counting 0; :math:`F = 2PR/(P+R)` (0 when P + R = 0).
    """
    return macro_f1_paper_from_counts(count_sets(Y_true, Y_pred))


def example_f1(Y_true: Any, Y_pred: Any, *, zero_division: ZeroDivision = 1.0) -> float:
    r"""Example-based F1: :math:`\frac{1}{n} \sum_i \frac{2 |y_i \cap ŷ_i|}{|y_i| + |ŷ_i|}`
    (scikit-learn's ``f1_score(average="samples")``). A row with no true and no predicted labels scores
    ``zero_division``: 1.0 by default (an empty prediction for an empty truth is exactly right), 0.0, or
    ``"exclude"`` to leave such rows out of the mean.
    """
    _check_zero_division(zero_division, allow_exclude=True)
    return f1_from_counts(count_sets(Y_true, Y_pred), "example", zero_division)


def jaccard(Y_true: Any, Y_pred: Any, *, zero_division: ZeroDivision = 1.0) -> float:
    r"""Example-based Jaccard index: :math:`\frac{1}{n} \sum_i \frac{|y_i \cap ŷ_i|}{|y_i \cup ŷ_i|}`
    (scikit-learn's ``jaccard_score(average="samples")``); empty/empty rows as in :func:`example_f1`.
    """
    _check_zero_division(zero_division, allow_exclude=True)
    return jaccard_from_counts(count_sets(Y_true, Y_pred), zero_division)


def hamming_loss(Y_true: Any, Y_pred: Any) -> float:
    r"""Hamming loss, the fraction of wrong (row, label) cells:
    :math:`\frac{1}{n L} \sum_i |y_i \,\triangle\, ŷ_i|`. Lower is better.
    """
    return hamming_from_counts(count_sets(Y_true, Y_pred))
