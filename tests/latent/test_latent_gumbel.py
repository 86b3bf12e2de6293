"""Gumbel noise and Gumbel-Softmax: exact categorical statistics, temperature limits, gradients, seeding."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from sparsexc.latent import TemperatureSchedule, gumbel_argmax, gumbel_softmax, sample_gumbel, straight_through


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _assert_frequencies(counts: np.ndarray, probs: np.ndarray, n: int, sigmas: float = 5.0) -> None:
    # each count is Binomial(n, p): within `sigmas` standard deviations (a fixed seed, so no flakiness)
    expected = n * probs
    sd = np.sqrt(n * probs * (1 - probs))
    assert np.all(np.abs(counts - expected) <= sigmas * sd + 1e-9), (counts, expected)


def test_gumbel_noise_has_the_standard_gumbel_moments():
    g = sample_gumbel((200_000,), _gen(1), torch.float64)
    assert g.mean().item() == pytest.approx(0.5772156649, abs=0.01)  # Euler-Mascheroni constant
    assert g.var().item() == pytest.approx(math.pi**2 / 6, rel=0.02)


def test_gumbel_max_draws_follow_the_exact_categorical():
    logits = torch.tensor([1.0, -0.5, 0.3, 2.0, -2.0])
    n = 40_000
    draws = gumbel_argmax(logits.expand(n, -1), generator=_gen(2))
    counts = np.bincount(draws.numpy(), minlength=5)
    _assert_frequencies(counts, torch.softmax(logits, 0).numpy(), n)


def test_straight_through_sample_is_the_gumbel_max_draw_and_has_the_relaxed_gradient():
    logits = torch.tensor([[0.2, 1.0, -1.0, 0.5]] * 3, dtype=torch.float64, requires_grad=True)
    g = sample_gumbel(logits.shape, _gen(3), torch.float64)
    hard = gumbel_softmax(logits, 0.7, hard=True, gumbels=g)
    soft = gumbel_softmax(logits, 0.7, hard=False, gumbels=g)
    assert torch.equal(hard.detach(), torch.nn.functional.one_hot((logits + g).argmax(1), 4).double())
    w = torch.randn(3, 4, generator=_gen(4), dtype=torch.float64)
    (grad_hard,) = torch.autograd.grad((hard * w).sum(), logits)
    (grad_soft,) = torch.autograd.grad((soft * w).sum(), logits)
    assert torch.allclose(grad_hard, grad_soft)
    # and the frequencies of the one-hot draws are the categorical's
    n = 30_000
    draws = gumbel_softmax(logits.detach()[:1].expand(n, -1), 0.5, hard=True, generator=_gen(5)).argmax(1)
    _assert_frequencies(np.bincount(draws.numpy(), minlength=4), torch.softmax(logits[0].detach(), 0).numpy(), n)


def test_relaxed_samples_lie_on_the_simplex_and_reach_both_temperature_limits():
    logits = torch.randn(50, 6, generator=_gen(6), dtype=torch.float64)
    g = sample_gumbel(logits.shape, _gen(7), torch.float64)
    for tau in (0.1, 1.0, 10.0):
        y = gumbel_softmax(logits, tau, gumbels=g)
        assert torch.all(y >= 0) and torch.allclose(y.sum(1), torch.ones(50, dtype=torch.float64))
    top2 = torch.topk(logits + g, 2, dim=1).values
    cold = gumbel_softmax(logits, float((top2[:, 0] - top2[:, 1]).min()) / 50, gumbels=g)  # tau << every gap
    one_hot = torch.nn.functional.one_hot((logits + g).argmax(1), 6).double()
    assert torch.allclose(cold, one_hot, atol=1e-6)
    hot = gumbel_softmax(logits, 1e6, gumbels=g)
    assert torch.allclose(hot, torch.full_like(hot, 1 / 6), atol=1e-4)


def test_relaxed_sample_mean_tends_to_the_categorical_at_low_temperature():
    logits = torch.tensor([0.5, -1.0, 1.5])
    n = 40_000
    y = gumbel_softmax(logits.expand(n, -1), 0.05, generator=_gen(8))
    assert np.allclose(y.mean(0).numpy(), torch.softmax(logits, 0).numpy(), atol=0.012)


def test_gumbel_softmax_gradcheck_with_fixed_noise():
    logits = torch.randn(3, 5, generator=_gen(9), dtype=torch.float64, requires_grad=True)
    g = sample_gumbel(logits.shape, _gen(10), torch.float64)
    assert torch.autograd.gradcheck(lambda a: gumbel_softmax(a, 0.6, gumbels=g), (logits,))


def test_same_generator_seed_same_sample_and_global_generator_is_used_by_default():
    logits = torch.randn(4, 7, generator=_gen(11))
    assert torch.equal(gumbel_softmax(logits, 0.5, generator=_gen(3)), gumbel_softmax(logits, 0.5, generator=_gen(3)))
    assert not torch.equal(
        gumbel_softmax(logits, 0.5, generator=_gen(3)), gumbel_softmax(logits, 0.5, generator=_gen(4))
    )
    torch.manual_seed(12)
    a = gumbel_softmax(logits, 0.5)
    torch.manual_seed(12)
    assert torch.equal(a, gumbel_softmax(logits, 0.5))


def test_straight_through_helper_and_errors():
    soft = torch.tensor([0.2, 0.8], requires_grad=True)
    out = straight_through(torch.tensor([0.0, 1.0]), soft)
    assert torch.equal(out.detach(), torch.tensor([0.0, 1.0]))
    (grad,) = torch.autograd.grad((out * torch.tensor([3.0, 5.0])).sum(), soft)
    assert torch.equal(grad, torch.tensor([3.0, 5.0]))
    with pytest.raises(ValueError, match="tau"):
        gumbel_softmax(torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="gumbels"):
        gumbel_softmax(torch.zeros(3), 1.0, gumbels=torch.zeros(4))


def test_temperature_schedules_follow_their_formulas():
    exp = TemperatureSchedule("exponential", start=2.0, end=0.5, rate=0.01)
    assert exp(0) == 2.0 and exp(100) == pytest.approx(2.0 * math.exp(-1.0)) and exp(10_000) == 0.5
    lin = TemperatureSchedule("linear", start=1.0, end=0.2, steps=100)
    assert lin(0) == 1.0 and lin(50) == pytest.approx(0.6) and lin(100) == pytest.approx(0.2) and lin(500) == 0.2
    cos = TemperatureSchedule("cosine", start=1.0, end=0.2, steps=100)
    assert cos(0) == pytest.approx(1.0) and cos(50) == pytest.approx(0.6) and cos(200) == pytest.approx(0.2)
    assert TemperatureSchedule("constant", start=0.7)(12345) == 0.7
    values = [exp(t) for t in range(0, 1000, 10)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    for bad in (
        {"kind": "step"},
        {"start": 0.0},
        {"end": -1.0},
        {"rate": -1.0},
        {"steps": 0},
        {"kind": "exponential", "start": 0.5, "end": 1.0},
    ):
        with pytest.raises(ValueError):
            TemperatureSchedule(**bad)
    with pytest.raises(ValueError, match="step"):
        exp(-1)
