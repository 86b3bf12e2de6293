"""The one-pass set tuning (``tune_threshold``, ``tune_masks``, ``ScalarTunedHead.tune``) against the brute-force
search it replaced: one set matrix per grid value, scored by ``sparsexc.metrics``. Same value, same metric
value (bit for bit), same tie-breaking (the first grid value), on random problems with ties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsexc import metrics
from sparsexc.core.labels import LabelBatch
from sparsexc.heads import tuning
from sparsexc.heads.sigmoid import SigmoidHead
from sparsexc.heads.sparsemax import SparsemaxHead
from sparsexc.heads.tuning import tune_masks, tune_threshold

METRICS = {"micro-F1": metrics.micro_f1, "example-F1": metrics.example_f1}


def brute_force(mask_of, Y: sp.csr_matrix, grid, metric: str) -> tuple[float, float]:
    """The search as it was: a CSR set matrix per grid value, the metric from sparsexc.metrics, first best."""
    best_v, best_value = float(grid[0]), -np.inf
    for v in grid:
        value = float(METRICS[metric](Y, sp.csr_matrix(np.asarray(mask_of(float(v))), dtype=np.float32)))
        if value > best_value:
            best_v, best_value = float(v), value
    return best_v, best_value


@st.composite
def problems(draw):
    n, C = draw(st.integers(0, 7)), draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    grid = [
        float(v)
        for v in draw(
            st.lists(st.sampled_from([0.1, 0.2, 0.25, 0.3, 0.5, 0.7, 0.9, -1.0, 2.0]), min_size=1, max_size=8)
        )
    ]  # unsorted, repeated values
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    # scores drawn from the grid values themselves (ties with the thresholds, in the scores' dtype) and a few others
    pool = np.array(grid + [0.0, 0.1, 0.5, 1.0, 0.2000001, np.inf, -np.inf], dtype=dtype)
    S = rng.choice(pool, size=(n, C)).astype(dtype)
    Y = sp.csr_matrix((rng.random((n, C)) < draw(st.sampled_from([0.0, 0.2, 0.5, 1.0]))).astype(np.float32))
    return S, Y, grid


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.sampled_from(sorted(METRICS)), st.booleans())
def test_tune_threshold_matches_the_brute_force_search(problem, metric, as_tensor):
    S, Y, grid = problem
    expected = brute_force(lambda t: t < S, Y, grid, metric)
    scores = torch.from_numpy(S) if as_tensor else S
    labels = LabelBatch.from_csr(Y) if as_tensor else Y
    got = tune_threshold(scores, labels, grid, metric)
    assert got == expected  # exact: same value, same float


@settings(max_examples=100, deadline=None)
@given(problems(), st.sampled_from(sorted(METRICS)))
def test_tune_masks_matches_the_brute_force_search(problem, metric):
    S, Y, grid = problem
    rule = lambda v: torch.from_numpy(S * v >= 0.2)  # noqa: E731 - any rule that is not a threshold
    assert tune_masks(rule, Y, grid, metric) == brute_force(rule, Y, grid, metric)


def test_non_finite_scores_and_other_dtypes_fall_back_to_one_comparison_per_value():
    rng = np.random.default_rng(0)
    S = rng.random((20, 6)).astype(np.float32)
    S[3, 2] = np.nan
    Y = sp.csr_matrix((rng.random((20, 6)) < 0.3).astype(np.float32))
    grid = [0.1, 0.3, 0.5, 0.7]
    assert tune_threshold(S, Y, grid) == brute_force(lambda t: t < S, Y, grid, "micro-F1")
    S16 = torch.from_numpy(rng.random((20, 6)).astype(np.float32)).to(torch.bfloat16)
    assert tune_threshold(S16, Y, grid) == brute_force(lambda t: (t < S16).numpy(), Y, grid, "micro-F1")


def test_a_metric_without_row_counts_is_computed_from_the_sets(monkeypatch):
    rng = np.random.default_rng(1)
    S = rng.random((30, 8))
    Y = sp.csr_matrix((rng.random((30, 8)) < 0.3).astype(np.float32))
    grid = [0.2, 0.4, 0.6, 0.8]
    monkeypatch.setattr(tuning, "set_metric_from_row_counts", lambda name: None)
    assert tune_threshold(S, Y, grid, "example-F1") == brute_force(lambda t: t < S, Y, grid, "example-F1")


class _FixedScores:
    """Mixin: the head's set scores are a given matrix (the hidden input is ignored)."""

    fixed: torch.Tensor

    def set_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.fixed


class _Sigmoid(_FixedScores, SigmoidHead):
    pass


class _Sparsemax(_FixedScores, SparsemaxHead):
    pass


@pytest.mark.parametrize("seed", range(4))
def test_heads_tune_to_the_brute_force_choice(seed):
    rng = np.random.default_rng(seed)
    Y = sp.csr_matrix((rng.random((40, 12)) < 0.2).astype(np.float32))
    labels = LabelBatch.from_csr(Y)
    head = _Sigmoid(4, 12)
    # probabilities rounded to the grid's step: many scores equal a threshold
    head.fixed = torch.from_numpy(np.round(rng.random((40, 12)), 2).astype(np.float32))
    grid = head.tuning_candidates()
    expected = brute_force(lambda t: (head.fixed > t).numpy(), Y, grid, "micro-F1")
    assert head.tune(torch.zeros(40, 4), labels) == {"threshold": expected[0], "micro-F1": expected[1]}
    sm = _Sparsemax(4, 12)
    sm.fixed = torch.from_numpy(rng.normal(size=(40, 12)).astype(np.float32))
    expected = brute_force(lambda v: sm.sets_from(sm.fixed, v).numpy(), Y, sm.tuning_candidates(), "example-F1")
    assert sm.tune(torch.zeros(40, 4), labels, "example-F1") == {"scale": expected[0], "example-F1": expected[1]}


def test_bad_arguments_are_named():
    S, Y = np.zeros((3, 4)), sp.csr_matrix((3, 5), dtype=np.float32)
    with pytest.raises(ValueError, match="columns"):
        tune_threshold(S, Y, [0.5])
    with pytest.raises(ValueError, match="non-empty grid"):
        tune_threshold(S, sp.csr_matrix((3, 4)), [])
    with pytest.raises(ValueError, match="unknown set metric"):
        tune_masks(lambda v: torch.zeros(3, 4, dtype=torch.bool), sp.csr_matrix((3, 4)), [0.5], "accuracy")


def candidate_brute_force(idx, S, Y: sp.csr_matrix, grid, metric: str) -> tuple[float, float]:
    """The tree's set rule {idx[i, r] : S[i, r] >= t} as a dense mask per grid value, scored by brute force."""

    def mask_of(t: float) -> np.ndarray:
        mask = np.zeros(Y.shape, dtype=bool)
        rows = np.repeat(np.arange(S.shape[0]), S.shape[1]).reshape(S.shape)
        keep = t <= S
        mask[rows[keep], idx[keep]] = True
        return mask

    return brute_force(mask_of, Y, grid, metric)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.sampled_from(sorted(METRICS)), st.integers(0, 2**32 - 1), st.booleans())
def test_tune_candidates_matches_the_brute_force_search(problem, metric, seed, nan):
    S_full, Y, grid = problem
    rng = np.random.default_rng(seed)
    n, C = S_full.shape
    m = int(rng.integers(0, C + 1))  # each row's candidates: m distinct labels in a random order
    idx = np.array([rng.permutation(C)[:m] for _ in range(n)], dtype=np.int64).reshape(n, m)
    S = np.take_along_axis(S_full, idx, axis=1)
    if nan and S.size:
        S[rng.random(S.shape) < 0.2] = np.nan  # a NaN score is in no set, as S >= t says
    as_batch = bool(rng.integers(2))
    labels = LabelBatch.from_csr(Y) if as_batch else Y
    got = tuning.tune_candidates(idx, S, labels, grid, metric)
    assert got == candidate_brute_force(idx, S, Y, grid, metric)  # exact: same value, same float


def test_candidate_sets_are_the_rule_and_tune_candidates_checks_its_input():
    idx = np.array([[2, 0, 1], [1, 2, 0]])
    S = np.array([[0.9, 0.5, 0.1], [0.5, 0.4999, 0.7]], dtype=np.float32)
    sets = tuning.candidate_sets(idx, S, 0.5, 4)
    assert sets.shape == (2, 4) and sets.dtype == np.float32 and sets.has_sorted_indices
    assert sets.toarray().tolist() == [[1, 0, 1, 0], [1, 1, 0, 0]]
    Y = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 1, 0]], dtype=np.float32))
    with pytest.raises(ValueError, match="same shape"):
        tuning.tune_candidates(idx, S[:, :2], Y, [0.5])
    with pytest.raises(ValueError, match="non-empty grid"):
        tuning.tune_candidates(idx, S, Y, [])
