"""The near-tie tolerant top-k comparison of tests/_topk.py accepts swaps of tied labels only."""

from __future__ import annotations

import numpy as np
import pytest
from _topk import assert_same_topk

WANT = (np.array([[4, 2, 9, 0]]), np.array([[0.9, 0.5, 0.5 - 1e-9, 0.1]]))


def test_swaps_of_labels_tied_within_the_tolerance_pass():
    assert_same_topk(WANT, WANT, rtol=0, atol=1e-6)
    assert_same_topk((np.array([[4, 9, 2, 0]]), np.array([[0.9, 0.5, 0.5, 0.1]])), WANT, rtol=0, atol=1e-6)
    # across the top-k boundary: label 7, not in the reference's top 4, ties with its 4th score
    assert_same_topk((np.array([[4, 2, 9, 7]]), np.array([[0.9, 0.5, 0.5, 0.1 + 1e-9]])), WANT, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "idx, val, match",
    [
        ([[2, 4, 9, 0]], [[0.9, 0.5, 0.5, 0.1]], "label 2 .* not a tie"),  # 2 and 4 swapped, scores 0.5 and 0.9
        ([[4, 7, 9, 0]], [[0.9, 0.5, 0.5, 0.1]], "label 7 .* below its k-th score"),  # 7: not in the reference's top 4
        ([[4, 2, 9, 0]], [[0.9, 0.5, 0.5, 0.2]], "the scores"),
        ([[4, 2, 2, 0]], [[0.9, 0.5, 0.5, 0.1]], "repeats a label"),
    ],
)
def test_other_differences_fail(idx, val, match):
    with pytest.raises(AssertionError, match=match):
        assert_same_topk((np.array(idx), np.array(val)), WANT, rtol=0, atol=1e-6)
