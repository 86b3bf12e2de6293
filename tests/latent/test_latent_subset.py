"""Subsets: Gumbel-top-k against the exact Plackett-Luce distributions (brute force), the successive-softmax
relaxation (limits, gradients), top-k masks and per-pick KLs (chain rule against brute-force KLs)."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsexc.latent import (
    gumbel_topk,
    plackett_luce_log_prob,
    relaxed_topk,
    sample_gumbel,
    sequential_kl,
    subset_log_prob,
    successive_softmax,
    topk_mask,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pl_prob_numpy(w: np.ndarray, seq: tuple[int, ...]) -> float:
    """Independent reference: sequential draws without replacement with weights w = exp(logits)."""
    left = list(range(len(w)))
    prob = 1.0
    for item in seq:
        prob *= w[item] / sum(w[m] for m in left)
        left.remove(item)
    return prob


LOGITS = torch.tensor([0.8, -0.4, 0.1, 1.3], dtype=torch.float64)


def test_plackett_luce_probabilities_match_a_numpy_reference_and_sum_to_one():
    w = np.exp(LOGITS.numpy())
    for k in (1, 2, 3):
        seqs = list(itertools.permutations(range(4), k))
        probs = plackett_luce_log_prob(LOGITS.expand(len(seqs), -1), torch.tensor(seqs)).exp().numpy()
        assert np.allclose(probs, [_pl_prob_numpy(w, s) for s in seqs], rtol=1e-12)
        assert probs.sum() == pytest.approx(1.0, abs=1e-12)
        subsets = list(itertools.combinations(range(4), k))
        subset_probs = subset_log_prob(LOGITS.expand(len(subsets), -1), torch.tensor(subsets)).exp().numpy()
        assert subset_probs.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_gumbel_topk_draws_the_exact_ordered_and_unordered_distributions(k):
    n = 40_000
    draws = gumbel_topk(LOGITS.expand(n, -1), k, generator=_gen(k)).numpy()
    ordered = Counter(map(tuple, draws))
    unordered = Counter(tuple(sorted(row)) for row in draws)
    w = np.exp(LOGITS.numpy())
    for seq in itertools.permutations(range(4), k):
        p = _pl_prob_numpy(w, seq)
        assert abs(ordered[seq] - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1e-9, seq
    for subset in itertools.combinations(range(4), k):
        p = float(subset_log_prob(LOGITS, torch.tensor(subset)).exp())
        assert abs(unordered[subset] - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1e-9, subset


def test_low_temperature_relaxed_topk_rounds_to_the_exact_subset_distribution():
    # the relaxed k-hot at a small temperature, rounded, must follow the same subset probabilities
    n, k = 20_000, 2
    soft = relaxed_topk(LOGITS.expand(n, -1), k, tau=0.02, generator=_gen(21))
    chosen = torch.topk(soft, k, dim=1).indices.sort(dim=1).values.numpy()
    counts = Counter(map(tuple, chosen))
    for subset in itertools.combinations(range(4), k):
        p = float(subset_log_prob(LOGITS, torch.tensor(subset)).exp())
        assert abs(counts[subset] - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1e-9, subset


def test_relaxed_topk_sums_to_k_and_reaches_both_temperature_limits():
    logits = torch.randn(40, 7, generator=_gen(1), dtype=torch.float64)
    g = sample_gumbel(logits.shape, _gen(2), torch.float64)
    for tau in (0.05, 0.5, 5.0):
        picks, order = successive_softmax(logits, 3, tau, gumbels=g)
        assert picks.shape == (3, 40, 7) and torch.allclose(picks.sum(-1), torch.ones(3, 40, dtype=torch.float64))
        assert torch.equal(order, torch.topk(logits + g, 3, dim=1).indices)
    exact = torch.zeros_like(logits).scatter_(1, torch.topk(logits + g, 3, dim=1).indices, 1.0)
    keys = torch.sort(logits + g, dim=1, descending=True).values
    tau = float((keys[:, :-1] - keys[:, 1:]).min()) / 50  # far below every gap between keys
    assert torch.allclose(relaxed_topk(logits, 3, tau, gumbels=g), exact, atol=1e-6)
    assert torch.allclose(relaxed_topk(logits, 3, 1e6, gumbels=g), torch.full_like(logits, 3 / 7), atol=1e-4)


def test_straight_through_topk_is_exact_forward_and_relaxed_backward():
    logits = torch.randn(5, 6, generator=_gen(3), dtype=torch.float64, requires_grad=True)
    g = sample_gumbel(logits.shape, _gen(4), torch.float64)
    hard = relaxed_topk(logits, 2, 0.5, hard=True, gumbels=g)
    soft = relaxed_topk(logits, 2, 0.5, hard=False, gumbels=g)
    exact = torch.zeros(5, 6, dtype=torch.float64).scatter_(1, torch.topk(logits + g, 2, dim=1).indices, 1.0)
    assert torch.equal(hard.detach(), exact)
    w = torch.randn(5, 6, generator=_gen(5), dtype=torch.float64)
    assert torch.allclose(
        torch.autograd.grad((hard * w).sum(), logits)[0], torch.autograd.grad((soft * w).sum(), logits)[0]
    )


def test_relaxed_topk_gradcheck_and_gradients_reach_every_logit():
    logits = torch.randn(3, 5, generator=_gen(6), dtype=torch.float64, requires_grad=True)
    g = sample_gumbel(logits.shape, _gen(7), torch.float64)
    assert torch.autograd.gradcheck(lambda a: relaxed_topk(a, 3, 0.7, gumbels=g), (logits,))
    w = torch.randn(3, 5, generator=_gen(8), dtype=torch.float64)
    (grad,) = torch.autograd.grad((relaxed_topk(logits, 2, 0.7, gumbels=g) * w).sum(), logits)
    assert torch.all(grad != 0)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 9), st.data())
def test_topk_mask_matches_a_stable_argsort(n_rows, n_items, data):
    scores = np.array(
        data.draw(st.lists(st.integers(-3, 3), min_size=n_rows * n_items, max_size=n_rows * n_items)), dtype=np.float32
    ).reshape(n_rows, n_items)  # small integers: many ties
    k = np.array(data.draw(st.lists(st.integers(0, n_items), min_size=n_rows, max_size=n_rows)))
    mask = topk_mask(torch.from_numpy(scores), torch.from_numpy(k)).numpy()
    for i in range(n_rows):
        expected = np.zeros(n_items, bool)
        expected[np.argsort(-scores[i], kind="stable")[: k[i]]] = True
        assert np.array_equal(mask[i], expected)


def _ordered_kl(q: torch.Tensor, p: torch.Tensor, k: int) -> tuple[float, float, list]:
    seqs = list(itertools.permutations(range(q.numel()), k))
    order = torch.tensor(seqs)
    log_q = plackett_luce_log_prob(q.expand(len(seqs), -1), order)
    log_p = plackett_luce_log_prob(p.expand(len(seqs), -1), order)
    return float((log_q.exp() * (log_q - log_p)).sum()), log_q.exp(), seqs


@pytest.mark.parametrize("k", [1, 2, 3])
def test_sequential_kl_satisfies_the_chain_rule_and_bounds_the_subset_kl(k):
    q = torch.tensor([0.5, -1.0, 1.2, 0.0, 0.3], dtype=torch.float64)
    p = torch.tensor([0.0, 0.4, -0.2, 0.9, -0.5], dtype=torch.float64)
    exact, weights, seqs = _ordered_kl(q, p, k)
    per_pick = sequential_kl(q.expand(len(seqs), -1), p, torch.tensor(seqs))
    assert per_pick.shape == (len(seqs), k) and torch.all(per_pick >= -1e-12)
    assert float((weights * per_pick.sum(1)).sum()) == pytest.approx(exact, rel=1e-10)
    subsets = torch.tensor(list(itertools.combinations(range(5), k)))
    lq = subset_log_prob(q.expand(len(subsets), -1), subsets)
    lp = subset_log_prob(p.expand(len(subsets), -1), subsets)
    assert float((lq.exp() * (lq - lp)).sum()) <= exact + 1e-12
    # identical models: zero KL at every pick
    assert torch.allclose(
        sequential_kl(q.expand(3, -1), q, torch.tensor(seqs[:3])), torch.zeros(3, k, dtype=torch.float64)
    )


def test_sequential_kl_gradcheck():
    q = torch.randn(2, 5, generator=_gen(9), dtype=torch.float64, requires_grad=True)
    p = torch.randn(5, generator=_gen(10), dtype=torch.float64, requires_grad=True)
    order = torch.tensor([[3, 0, 1], [4, 2, 0]])
    assert torch.autograd.gradcheck(lambda a, b: sequential_kl(a, b, order), (q, p))


def test_subset_errors_name_the_argument():
    with pytest.raises(ValueError, match="k=0"):
        gumbel_topk(torch.zeros(4), 0)
    with pytest.raises(ValueError, match="k=5"):
        relaxed_topk(torch.zeros(2, 4), 5)
    with pytest.raises(ValueError, match="tau"):
        relaxed_topk(torch.zeros(2, 4), 2, tau=-1.0)
    with pytest.raises(ValueError, match="k must lie"):
        topk_mask(torch.zeros(2, 3), 4)
    with pytest.raises(ValueError, match="k=9"):
        subset_log_prob(torch.zeros(10), torch.arange(9))
