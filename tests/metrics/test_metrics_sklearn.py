"""Cross-checks against scikit-learn on dense inputs without ties (continuous random scores)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import metrics as skm

from sparsexc import metrics


def _random_problem(seed: int, n_samples: int = 60, n_labels: int = 12):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n_samples, n_labels)) < 0.2).astype(np.int64)
    Y[:3] = 0  # rows without true labels
    Y[:, -1] = 0  # a label that is never true
    scores = rng.random((n_samples, n_labels))  # continuous: no ties
    label_sets = (rng.random((n_samples, n_labels)) < 0.25).astype(np.int64)
    label_sets[:2] = 0  # rows 0 and 1: empty truth, empty prediction
    label_sets[:, -2:] = 0  # the last label is neither true nor predicted
    return Y, scores, label_sets


@pytest.mark.parametrize("seed", range(4))
def test_lrap_and_coverage_match_sklearn(seed):
    Y, scores, _ = _random_problem(seed)
    assert metrics.label_ranking_average_precision(Y, scores) == pytest.approx(
        skm.label_ranking_average_precision_score(Y, scores), abs=1e-12
    )
    assert metrics.coverage(Y, scores) == pytest.approx(skm.coverage_error(Y, scores), abs=1e-12)
    # The same from a CSR of scores with every entry stored.
    assert metrics.coverage(sp.csr_matrix(Y), sp.csr_matrix(scores)) == pytest.approx(
        skm.coverage_error(Y, scores), abs=1e-12
    )


@pytest.mark.parametrize("seed", range(4))
def test_mean_average_precision_matches_sklearn_per_column(seed):
    Y, scores, _ = _random_problem(seed)
    per_label = [skm.average_precision_score(Y[:, c], scores[:, c]) for c in range(Y.shape[1]) if Y[:, c].any()]
    assert metrics.mean_average_precision(Y, scores) == pytest.approx(np.mean(per_label), abs=1e-12)
    assert metrics.mean_average_precision(sp.csr_matrix(Y), sp.csr_matrix(scores)) == pytest.approx(
        np.mean(per_label), abs=1e-12
    )


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 3, 5])
def test_ndcg_matches_sklearn_for_binary_relevance(seed, k):
    # With 0/1 relevance sklearn's ideal DCG@k is our sum over min(k, |y|) positions; rows without
    # true labels score 0 in both.
    Y, scores, _ = _random_problem(seed)
    assert metrics.ndcg_at_k(Y, scores, k) == pytest.approx(skm.ndcg_score(Y, scores, k=k), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_set_metrics_match_sklearn(seed):
    Y, _, P = _random_problem(seed)
    assert metrics.micro_f1(Y, P) == pytest.approx(skm.f1_score(Y, P, average="micro"), abs=1e-12)
    for zero_division in (0.0, 1.0):
        assert metrics.macro_f1(Y, P, zero_division=zero_division) == pytest.approx(
            skm.f1_score(Y, P, average="macro", zero_division=zero_division), abs=1e-12
        )
        assert metrics.example_f1(Y, P, zero_division=zero_division) == pytest.approx(
            skm.f1_score(Y, P, average="samples", zero_division=zero_division), abs=1e-12
        )
        assert metrics.jaccard(Y, P, zero_division=zero_division) == pytest.approx(
            skm.jaccard_score(Y, P, average="samples", zero_division=zero_division), abs=1e-12
        )
    assert metrics.hamming_loss(Y, P) == pytest.approx(skm.hamming_loss(Y, P), abs=1e-12)
    # "exclude": sklearn's macro F1 over only the labels that are true or predicted somewhere.
    present = np.flatnonzero(Y.any(axis=0) | P.any(axis=0))
    assert metrics.macro_f1(Y, P, zero_division="exclude") == pytest.approx(
        skm.f1_score(Y, P, average="macro", labels=present), abs=1e-12
    )
    assert metrics.micro_f1(sp.csr_matrix(Y), sp.csr_matrix(P)) == pytest.approx(
        skm.f1_score(Y, P, average="micro"), abs=1e-12
    )
