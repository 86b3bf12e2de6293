"""benchmarks/ns_snr_toy.py: Theorem 2 of Bamler & Mandt on exact toy distributions (no sampling, no training)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def toy(load_benchmark):
    return load_benchmark("ns_snr_toy")


def test_enumeration_matches_eq15_and_the_optimum_is_stationary(toy):
    for seed in range(3):
        p_data = toy.toy_distribution(4, 7, seed)
        for name, p_noise in toy.noise_distributions(p_data).items():
            assert np.allclose(p_noise.sum(axis=1), 1.0), name
            for x in range(4):
                t = toy.context_terms(p_data[x], p_noise[x])
                assert t["max_abs_mean_gradient"] < 1e-12 and t["max_abs_hessian_minus_alpha"] < 1e-12
                assert t["inverse_snr_enumerated"] == pytest.approx(t["inverse_snr_closed_form"], rel=1e-9)
                assert 0.0 < t["sum_alpha"] <= 0.5 + 1e-12


def test_monte_carlo_covariance_agrees_with_the_enumeration(toy):
    # an independent check of the enumerated covariance: sampled (y, y') pairs, their one-sample gradients
    rng = np.random.default_rng(0)
    p_data, p_noise = toy.toy_distribution(1, 4, 1)[0], np.full(4, 0.25)
    s = 1.0 / (1.0 + p_noise / p_data)  # sigma(log p_D - log p_n)
    y, y2 = rng.choice(4, 200_000, p=p_data), rng.choice(4, 200_000, p=p_noise)
    g = np.zeros((y.size, 4))
    np.add.at(g, (np.arange(y.size), y), -(1.0 - s[y]))
    np.add.at(g, (np.arange(y.size), y2), s[y2])
    hess = (p_data + p_noise) * s * (1.0 - s)
    sampled = np.trace(np.cov(g.T) / hess[None, :])
    assert sampled == pytest.approx(toy.context_terms(p_data, p_noise)["inverse_snr_enumerated"], rel=0.02)


def test_the_data_distribution_has_the_largest_snr(toy):
    rng = np.random.default_rng(1)
    p_data = toy.toy_distribution(3, 6, 2)
    best = toy.evaluate(p_data, {"ideal": p_data})[0]["inverse_snr_enumerated"]
    others = {f"random {i}": rng.dirichlet(np.ones(6), size=3) for i in range(20)}
    for row in toy.evaluate(p_data, others):
        assert row["inverse_snr_enumerated"] > best
    result = toy.run(5, 10, 0)
    assert result["checks"]["best_noise"].startswith("adversarial ideal")
    assert result["checks"]["ideal_mean_sum_alpha"] == pytest.approx(0.5)
