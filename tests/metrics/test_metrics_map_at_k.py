"""map_at_k: the mean over rows of the top-k average precision, against a loop written from the definition."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc.metrics import map_at_k


def _loop(Y: np.ndarray, S: np.ndarray, k: int) -> float:
    total = 0.0
    for y, s in zip(Y, S):
        order = sorted(range(len(s)), key=lambda j: (-s[j], j))[:k]  # ties to the lower label id
        hits, ap = 0, 0.0
        for rank, label in enumerate(order, start=1):
            if y[label]:
                hits += 1
                ap += hits / rank
        total += ap / min(k, y.sum()) if y.sum() else 0.0
    return total / len(Y)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_map_at_k_matches_the_definition(k):
    rng = np.random.default_rng(1)
    Y = (rng.random((40, 8)) < 0.3).astype(np.float32)
    Y[0] = 0  # a row without labels scores 0
    S = rng.integers(0, 4, (40, 8)).astype(np.float32)  # many ties
    assert map_at_k(sp.csr_matrix(Y), S, k) == pytest.approx(_loop(Y, S, k))


def test_map_at_k_hand_worked():
    # true {0, 2}; ranking 2, 1, 0: AP@3 = (1/1 + 2/3) / 2; AP@1 = 1 / min(1, 2) = 1
    Y = sp.csr_matrix(np.array([[1, 0, 1]], dtype=np.float32))
    S = np.array([[0.1, 0.5, 0.9]], dtype=np.float32)
    assert map_at_k(Y, S, 3) == pytest.approx((1 + 2 / 3) / 2)
    assert map_at_k(Y, S, 1) == pytest.approx(1.0)
    assert map_at_k(Y, S, 2) == pytest.approx(0.5)
