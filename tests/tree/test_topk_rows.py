"""The numpy top-k used by the label-tree model equals the torch one the heads use (same tie rule)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsexc._topk import topk_rows
from sparsexc.core import topk_lower_id_ties


@settings(max_examples=200, deadline=None)
@given(
    B=st.integers(0, 6),
    C=st.integers(1, 12),
    k=st.integers(1, 14),
    levels=st.integers(1, 4),  # few distinct values: many ties
    seed=st.integers(0, 2**16),
    with_inf=st.booleans(),
)
def test_numpy_topk_equals_the_torch_tie_rule(B, C, k, levels, seed, with_inf):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, size=(B, C)).astype(np.float64)
    if with_inf:
        scores[rng.random((B, C)) < 0.3] = -np.inf
    idx, val = topk_rows(scores, k)
    want_idx, want_val = topk_lower_id_ties(torch.from_numpy(scores), k)
    assert idx.dtype == np.int64 and idx.shape == (B, min(k, C))
    np.testing.assert_array_equal(idx, want_idx.numpy())
    np.testing.assert_array_equal(val, want_val.numpy())


def test_brute_force_on_distinct_values():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 30)).astype(np.float32)
    idx, val = topk_rows(scores, 7)
    want = np.argsort(-scores, axis=1)[:, :7]
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(val, np.take_along_axis(scores, want, axis=1))
