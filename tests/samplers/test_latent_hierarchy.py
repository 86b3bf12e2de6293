"""latent_hierarchy (the synthetic set of the adversarial-sampling benchmark): its Bayes posterior against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sparsexc.datasets.synthetic import _latent_label_model, latent_hierarchy, latent_hierarchy_log_posterior


def test_log_posterior_matches_bayes_rule_with_gaussian_densities():
    splits = latent_hierarchy(400, 20, 3, branching=3, noise=0.8, power=1.0, seed=5)
    p = splits.info["params"]
    U, log_prior = _latent_label_model(20, 3, 3, tuple(p["scales"]), 1.0, 5)
    c = np.sqrt(sum(s * s for s in p["scales"]) + p["noise"] ** 2)
    X = splits.test.X.toarray().astype(np.float64)
    # x = (u_y + sigma eps) / c  =>  x | y ~ N(u_y / c, (sigma / c)^2 I)
    log_joint = np.stack(
        [
            stats.multivariate_normal(U[y] / c, (p["noise"] / c) ** 2 * np.eye(3)).logpdf(X) + log_prior[y]
            for y in range(20)
        ],
        axis=1,
    )
    brute = log_joint - np.logaddexp.reduce(log_joint, axis=1, keepdims=True)
    np.testing.assert_allclose(latent_hierarchy_log_posterior(X, p), brute, atol=1e-8)
    picked = latent_hierarchy_log_posterior(X[:5], p, labels=np.array([[0, 3]] * 5))
    np.testing.assert_allclose(picked, brute[:5][:, [0, 3]], atol=1e-8)


def test_rows_follow_the_prior_and_the_seed():
    a = latent_hierarchy(5000, 50, 4, seed=1)
    b = latent_hierarchy(5000, 50, 4, seed=1)
    assert (a.train.X != b.train.X).nnz == 0 and (a.train.Y != b.train.Y).nnz == 0
    Y = a.train.Y
    assert Y.shape == (4000, 50) and np.all(np.diff(Y.indptr) == 1)
    _, log_prior = _latent_label_model(50, 4, 16, tuple(a.info["params"]["scales"]), 1.0, 1)
    counts = np.bincount(Y.indices, minlength=50)
    assert stats.chisquare(counts, np.exp(log_prior) * counts.sum()).pvalue > 1e-3


@pytest.mark.parametrize(
    "kwargs", [{"dim": 0}, {"branching": 1}, {"noise": 0.0}, {"power": -1.0}, {"test_size": 1.0}, {"scales": ()}]
)
def test_bad_arguments_raise_value_error(kwargs):
    args = {"n_samples": 10, "n_labels": 5, "dim": 2, **kwargs}
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        latent_hierarchy(**args)
