"""One call for the table the CLI, the trainer and the benchmarks print: :func:`evaluate`.

The result's keys are defined here once. Ranking keys are templates over k (``PRECISION_AT.format(k=5)`` is
``"P@5"``); set keys are plain names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from sparsexc.errors import ConfigurationError
from sparsexc.metrics._inputs import ScoresLike, check_inv_propensity, check_k, propensity_width
from sparsexc.metrics.ranking import (
    EmptyRows,
    check_empty_rows,
    mean_over_rows,
    ndcg_rows,
    precision_rows,
    propensity_gains,
    psndcg_value,
    psp_value,
    rank_predictions,
    recall_rows,
)
from sparsexc.metrics.sets import (
    count_sets,
    f1_from_counts,
    hamming_from_counts,
    jaccard_from_counts,
    macro_f1_paper_from_counts,
)

PRECISION_AT = "P@{k}"
RECALL_AT = "R@{k}"
NDCG_AT = "nDCG@{k}"
PSP_AT = "PSP@{k}"
PSNDCG_AT = "PSnDCG@{k}"
MICRO_F1 = "micro-F1"
MACRO_F1 = "macro-F1"
MACRO_F1_PAPER = "macro-F1 (paper)"
EXAMPLE_F1 = "example-F1"
JACCARD = "Jaccard"
HAMMING = "Hamming"

RANKING_KEYS = (PRECISION_AT, NDCG_AT, RECALL_AT)
PROPENSITY_KEYS = (PSP_AT, PSNDCG_AT)
SET_KEYS = (MICRO_F1, MACRO_F1, MACRO_F1_PAPER, EXAMPLE_F1, JACCARD, HAMMING)
#: Metrics where smaller is better (the trainer's early stopping needs to know).
LOWER_IS_BETTER = frozenset({HAMMING})

__all__ = [
    "EXAMPLE_F1",
    "HAMMING",
    "JACCARD",
    "LOWER_IS_BETTER",
    "MACRO_F1",
    "MACRO_F1_PAPER",
    "MICRO_F1",
    "NDCG_AT",
    "PRECISION_AT",
    "PROPENSITY_KEYS",
    "PSNDCG_AT",
    "PSP_AT",
    "RANKING_KEYS",
    "RECALL_AT",
    "SET_KEYS",
    "evaluate",
]


def _check_ks(ks: Any) -> tuple[int, ...]:
    if isinstance(ks, (int, np.integer)) and not isinstance(ks, bool):
        ks = (ks,)
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Iterable):
        raise ConfigurationError(f"ks must be a positive integer or a sequence of them; got {ks!r}")
    out = tuple(dict.fromkeys(check_k(k, name="ks") for k in ks))
    if not out:
        raise ConfigurationError("ks must name at least one k")
    return out


def evaluate(
    Y_true: Any,
    scores: ScoresLike | None,
    ks: Iterable[int] | int = (1, 3, 5),
    inv_propensity: Any = None,
    label_sets: Any = None,
    *,
    empty_rows: EmptyRows = "zero",
) -> dict[str, float]:
    """Ranking metrics at every k in ``ks`` and, given predicted label sets, the set metrics.

    Parameters
    ----------
    Y_true : CSR 0/1 indicator, dense 0/1 array or list of label-id lists, shape (n_samples, n_labels)
    scores : dense (n_samples, n_labels) array, sparse matrix of scores, tuple ``(indices, scores)`` of
        top-k predictions (-1 = no prediction), or None to compute only the set metrics.
        Ties are broken by lower label id.
    ks : int or sequence of int
    inv_propensity : array (n_labels,), optional
        Adds the normalised ``PSP@k`` and ``PSnDCG@k`` (see :func:`~sparsexc.metrics.psp_at_k`).
    label_sets : CSR 0/1 indicator, dense 0/1 array or list of label-id lists, optional
        Predicted label sets; adds micro-F1, macro-F1 (labels neither true nor predicted count 0),
        macro-F1 (paper), example-F1 and Jaccard (empty/empty rows count 1) and Hamming (a loss).
    empty_rows : {"zero", "exclude"}
        How P@k, R@k and nDCG@k treat rows without true labels (see :mod:`sparsexc.metrics.ranking`).

    Returns
    -------
    dict
        In order: ``P@k``, ``nDCG@k``, ``R@k`` for each k, then ``PSP@k``, ``PSnDCG@k``, then the set metrics;
        the keys are this module's constants.
    """
    if scores is None and label_sets is None:
        raise ConfigurationError("evaluate needs scores, label_sets, or both; got neither")
    check_empty_rows(empty_rows)
    results: dict[str, float] = {}
    Y_for_sets = Y_true
    if scores is not None:
        ks = _check_ks(ks)
        ranked = rank_predictions(Y_true, scores, max(ks), n_labels=propensity_width(inv_propensity))
        Y_for_sets = ranked.Y  # validated once; its width is the label space
        w = None if inv_propensity is None else check_inv_propensity(inv_propensity, ranked.Y.shape[1])
        for template, rows in zip(RANKING_KEYS, (precision_rows, ndcg_rows, recall_rows)):
            for k in ks:
                results[template.format(k=k)] = mean_over_rows(rows(ranked, k), ranked.n_true, empty_rows)
        if w is not None:
            gains = propensity_gains(ranked, w)
            for k in ks:
                results[PSP_AT.format(k=k)] = psp_value(gains, k, True)
            for k in ks:
                results[PSNDCG_AT.format(k=k)] = psndcg_value(gains, ranked.n_true, k, True)
    if label_sets is not None:
        counts = count_sets(Y_for_sets, label_sets, pred_name="label_sets", n_labels=propensity_width(inv_propensity))
        if scores is None and inv_propensity is not None:
            check_inv_propensity(inv_propensity, counts.n_labels)
        results[MICRO_F1] = f1_from_counts(counts, "micro", 0.0)
        results[MACRO_F1] = f1_from_counts(counts, "macro", 0.0)
        results[MACRO_F1_PAPER] = macro_f1_paper_from_counts(counts)
        results[EXAMPLE_F1] = f1_from_counts(counts, "example", 1.0)
        results[JACCARD] = jaccard_from_counts(counts, 1.0)
        results[HAMMING] = hamming_from_counts(counts)
    return results
