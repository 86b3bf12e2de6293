"""Test-set metrics of a fitted ``XCClassifier``, as the CLI reports them.

Ranking metrics (P@k, nDCG@k, PSP@k for k in ``KS``) come from the top-k scores; the F1 scores come from
the predicted label sets (``predict``); PSP uses inverse propensities estimated from the TRAINING labels
(Jain et al., 2016), so that test labels never leak into the weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from sparsexc.errors import ConfigurationError

__all__ = ["KS", "align_labels", "table_keys", "test_metrics"]

KS: tuple[int, ...] = (1, 3, 5)


def table_keys(ks: tuple[int, ...] = KS) -> list[str]:
    """The metrics the CLI's table shows, in order: P@k, nDCG@k, PSP@k for every k, then the F1 scores.
    (metrics.json holds every metric :func:`sparsexc.metrics.evaluate` returns.)"""
    from sparsexc.metrics import (
        EXAMPLE_F1,
        MACRO_F1,
        MACRO_F1_PAPER,
        MICRO_F1,
        NDCG_AT,
        PRECISION_AT,
        PSP_AT,
    )  # fmt: skip

    ranking = [template.format(k=k) for template in (PRECISION_AT, NDCG_AT, PSP_AT) for k in ks]
    return ranking + [MICRO_F1, MACRO_F1, MACRO_F1_PAPER, EXAMPLE_F1]


def align_labels(Y: sp.csr_matrix, n_labels: int, name: str) -> sp.csr_matrix:
    """``Y`` widened to ``n_labels`` columns (a test file may never use the last label ids); more columns
    than the model knows is an error, since the model cannot score those labels."""
    if Y.shape[1] > n_labels:
        raise ConfigurationError(f"{name} has {Y.shape[1]} labels; the model was trained on {n_labels}")
    if Y.shape[1] < n_labels:
        Y = sp.csr_matrix((Y.data, Y.indices, Y.indptr), shape=(Y.shape[0], n_labels))
    return Y


def test_metrics(
    clf: Any,
    X_test: sp.csr_matrix,
    Y_test: sp.csr_matrix,
    Y_train: sp.csr_matrix,
    ks: tuple[int, ...] = KS,
) -> dict[str, float]:
    """Metrics of ``clf`` on ``(X_test, Y_test)``, a flat ``{name: value}`` dict.

    Parameters
    ----------
    clf : fitted XCClassifier
    X_test : csr, shape (n_test, n_features)
    Y_test : csr, shape (n_test, n_labels) (fewer label columns are widened)
    Y_train : csr, shape (n_train, n_labels) -- the labels the inverse propensities are estimated from
    """
    from sparsexc.metrics import evaluate, inverse_propensity

    n_labels = int(clf.n_labels_)
    Y_test = align_labels(Y_test, n_labels, "the test labels")
    Y_train = align_labels(Y_train, n_labels, "the training labels")
    k_max = min(max(ks), n_labels)
    topk_indices, topk_scores = clf.predict_topk(X_test, k=k_max)
    predicted_sets = clf.predict(X_test)
    metrics = evaluate(
        Y_test,
        (np.asarray(topk_indices), np.asarray(topk_scores)),
        ks=ks,
        inv_propensity=inverse_propensity(Y_train, n_labels=n_labels),
        label_sets=predicted_sets,
    )
    return {str(k): float(v) for k, v in metrics.items() if np.ndim(v) == 0}  # numbers only (all, today)
