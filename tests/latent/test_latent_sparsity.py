"""The two-step sampler: the joint law of (L, active set) against brute force, limits, gradients, KL terms."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch

from sparsexc.latent import (
    length_kl,
    mode_lengths,
    mode_mask,
    selection_kl,
    sequential_kl,
    subset_log_prob,
    two_step_sample,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


C_LEN = torch.tensor([0.3, -0.2, 0.6], dtype=torch.float64)  # q(L) over 1..3
A_SEL = torch.tensor([0.9, -0.5, 0.2, 1.1, -1.0], dtype=torch.float64)  # D = 5


def test_hard_draws_follow_the_exact_joint_law_of_level_and_active_set():
    n = 30_000
    draw = two_step_sample(C_LEN.expand(n, -1), A_SEL.expand(n, -1), 0.5, 0.5, hard=True, generator=_gen(1))
    mask = draw.mask.detach().numpy()
    assert np.array_equal(mask.sum(1), draw.lengths.numpy())  # exactly L non-zeros, all equal to 1
    assert set(np.unique(mask)) <= {0.0, 1.0}
    counts = Counter((int(length), tuple(np.flatnonzero(row))) for length, row in zip(draw.lengths, mask))
    q_len = torch.softmax(C_LEN, 0)
    for length in (1, 2, 3):
        for subset in itertools.combinations(range(5), length):
            p = float(q_len[length - 1] * subset_log_prob(A_SEL, torch.tensor(subset)).exp())
            assert abs(counts[(length, subset)] - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1e-9, (length, subset)


def test_relaxed_mask_tends_to_the_hard_draw_at_low_temperature_and_keeps_the_level_as_its_mass():
    c = torch.randn(30, 3, generator=_gen(2), dtype=torch.float64) * 2
    a = torch.randn(30, 8, generator=_gen(3), dtype=torch.float64) * 2
    hard = two_step_sample(c, a, 1e-3, 1e-3, hard=True, generator=_gen(4))
    soft = two_step_sample(c, a, 1e-3, 1e-3, hard=False, generator=_gen(4))  # the same noise
    assert torch.equal(hard.order, soft.order) and torch.equal(hard.lengths, soft.lengths)
    close = (soft.mask - hard.mask).abs().max(1).values < 1e-3
    assert close.float().mean() > 0.9  # all but near-ties of the noisy keys
    for tau in (0.3, 1.0, 3.0):
        s = two_step_sample(c, a, tau, tau, generator=_gen(5))
        # each pick is on the simplex, so the mask's mass is the relaxed level sum_l l * ell_l
        levels = torch.arange(1, 4, dtype=torch.float64)
        assert torch.allclose(s.mask.sum(1), (s.length * levels).sum(1))


def test_two_step_sample_gradcheck_in_both_logits():
    c = torch.randn(2, 3, generator=_gen(6), dtype=torch.float64, requires_grad=True)
    a = torch.randn(2, 5, generator=_gen(7), dtype=torch.float64, requires_grad=True)
    # a fresh generator per call: the same noise at every evaluation of gradcheck
    assert torch.autograd.gradcheck(lambda c_, a_: two_step_sample(c_, a_, 0.8, 0.6, generator=_gen(8)).mask, (c, a))
    (gc, ga) = torch.autograd.grad(
        (two_step_sample(c, a, 0.8, 0.6, hard=True, generator=_gen(8)).mask * torch.arange(5.0)).sum(), (c, a)
    )
    assert torch.all(torch.isfinite(gc)) and gc.abs().sum() > 0 and ga.abs().sum() > 0  # straight-through flows


def test_length_kl_matches_the_formula_and_selection_kl_is_the_expectation_over_levels():
    c = torch.randn(4, 3, generator=_gen(9), dtype=torch.float64)
    prior = torch.tensor([0.1, 0.5, -0.3], dtype=torch.float64)
    q, p = torch.softmax(c, 1).numpy(), torch.softmax(prior, 0).numpy()
    assert np.allclose(length_kl(c, prior).numpy(), (q * np.log(q / p)).sum(1), rtol=1e-12)
    assert np.allclose(length_kl(c).numpy(), (q * np.log(q * 3)).sum(1), rtol=1e-12)
    a = torch.randn(4, 6, generator=_gen(10), dtype=torch.float64)
    label_prior = torch.randn(6, generator=_gen(11), dtype=torch.float64)
    order = torch.stack([torch.randperm(6, generator=_gen(12 + i))[:3] for i in range(4)])
    per_pick = sequential_kl(a, label_prior, order).numpy()
    expected = sum(q[:, n - 1] * per_pick[:, :n].sum(1) for n in (1, 2, 3))  # E_{q(L)} sum_{j <= L} KL_j
    assert np.allclose(selection_kl(a, label_prior, order, c).numpy(), expected, rtol=1e-12)


def test_mode_mask_takes_the_top_mode_level_entries():
    c = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0], [1.0, 1.0, 0.0]])
    a = torch.tensor([[0.1, 0.9, 0.5, 0.2], [0.0, -1.0, 2.0, 0.3], [4.0, 3.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    assert mode_lengths(c).tolist() == [2, 1, 3, 1]  # ties -> the smaller level
    expected = [
        [False, True, True, False],
        [False, False, True, False],
        [True, True, True, False],
        [False, False, True, False],
    ]
    assert mode_mask(c, a).tolist() == expected


def test_shape_errors_name_the_arguments():
    with pytest.raises(ValueError, match="max_active L0=4 exceeds"):
        two_step_sample(torch.zeros(2, 4), torch.zeros(2, 3), 1.0, 1.0)
    with pytest.raises(ValueError, match="length_logits"):
        two_step_sample(torch.zeros(2, 2), torch.zeros(3, 3), 1.0, 1.0)
    with pytest.raises(ValueError, match="tau"):
        two_step_sample(torch.zeros(2, 2), torch.zeros(2, 3), 0.0, 1.0)
