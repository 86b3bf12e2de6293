"""UniformSampler and FrequencySampler: formulas, normalisation, chi-square on draws, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy import stats

from sparsexc.samplers import FrequencySampler, UniformSampler, build_sampler, list_samplers

Y = sp.csr_matrix(np.array([[1, 0, 0, 1], [1, 0, 0, 0], [1, 1, 0, 0]], dtype=np.float32))
X = sp.csr_matrix(np.ones((3, 2), dtype=np.float32))


def test_registry_lists_the_three_samplers():
    assert list_samplers() == ["frequency", "tree", "uniform"]


@pytest.mark.parametrize("power", [0.0, 0.75, 1.0, 2.0])
def test_frequency_log_probs_follow_the_formula_and_sum_to_one(power):
    s = FrequencySampler(2, 4, {"power": power}).fit(X, Y)
    w = (np.array([3, 1, 0, 1]) + 1.0) ** power
    expected = np.log(w / w.sum())
    lp = s.log_prob_all(torch.zeros(2, 2))
    np.testing.assert_allclose(lp.numpy(), np.tile(expected, (2, 1)), rtol=1e-6)
    np.testing.assert_allclose(
        s.log_prob(torch.zeros(1, 2), torch.tensor([[2, 0]])).numpy(), [expected[[2, 0]]], rtol=1e-6
    )


def test_frequency_draws_match_probabilities_chi_square():
    s = FrequencySampler(2, 4).fit(X, Y)
    labels, log_prob = s.sample(torch.zeros(1, 2), 100_000, generator=torch.Generator().manual_seed(0))
    counts = np.bincount(labels.numpy().ravel(), minlength=4)
    expected = np.exp(s.log_prob_all(torch.zeros(1, 2))[0].double().numpy()) * 100_000
    assert stats.chisquare(counts, expected / expected.sum() * counts.sum()).pvalue > 1e-3
    np.testing.assert_allclose(log_prob.numpy(), s.log_prob(torch.zeros(1, 2), labels).numpy())


def test_uniform_sampler_is_uniform_and_needs_no_fit():
    s = UniformSampler(2, 5)
    lp = s.log_prob_all(torch.zeros(3, 2))
    np.testing.assert_allclose(lp.numpy(), -np.log(5), rtol=1e-6)
    labels, _ = s.sample(torch.zeros(2, 2), 50_000, generator=torch.Generator().manual_seed(1))
    counts = np.bincount(labels.numpy().ravel(), minlength=5)
    assert stats.chisquare(counts).pvalue > 1e-3 and labels.max() < 5


def test_state_round_trips_through_config_and_state_dict():
    s = FrequencySampler(2, 4, {"power": 0.5}).fit(X, Y)
    clone = build_sampler(s.config())
    clone.load_state_dict(s.state_dict())
    assert torch.equal(clone.log_prob_all(torch.zeros(1, 2)), s.log_prob_all(torch.zeros(1, 2)))
    assert bool(clone.fitted)


@pytest.mark.parametrize("params, word", [({"power": -1}, "power"), ({"smoothing": 0}, "smoothing")])
def test_bad_frequency_params(params, word):
    with pytest.raises(ValueError, match=word):
        FrequencySampler(2, 4, params)


def test_bad_constructor_and_fit_arguments():
    with pytest.raises(ValueError, match="n_labels"):
        UniformSampler(2, 0)
    with pytest.raises(ValueError, match="rows"):
        FrequencySampler(2, 4).fit(X[:2], Y)
    with pytest.raises(ValueError, match="not fitted"):
        FrequencySampler(2, 4).log_prob_all(torch.zeros(1, 2))
