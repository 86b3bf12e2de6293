"""benchmarks/small_holdout.py's feature maps, checked against scikit-learn computed independently."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp


@pytest.fixture(scope="module")
def holdout(load_benchmark):
    return load_benchmark("small_holdout")


def _toy(rows: int = 40, d: int = 6, labels: int = 3):
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(rows, d)).astype(np.float32)
    Y = np.zeros((rows, labels), dtype=np.float32)
    Y[np.arange(rows), (X[:, 0] > 3.0).astype(int)] = 1.0
    return X, sp.csr_matrix(Y)


@pytest.mark.parametrize("concat", [True, False])
def test_kernel_features_are_the_rbf_map_of_the_standardised_rows(holdout, concat):
    from sklearn.kernel_approximation import Nystroem
    from sklearn.preprocessing import StandardScaler

    X, Y = _toy()
    model = holdout._KernelFeatures(g=0.5, concat=concat).fit(X, Y)
    new = np.random.default_rng(1).normal(3.0, 2.0, size=(7, X.shape[1])).astype(np.float32)
    Z = StandardScaler().fit(X).transform(new)
    kernel = Nystroem(gamma=0.5 / X.shape[1], n_components=X.shape[0], random_state=0)
    expected = kernel.fit(StandardScaler().fit_transform(X)).transform(Z)
    if concat:
        expected = np.hstack([Z / np.sqrt(X.shape[1]), expected])
    got = model._map(new)
    assert sp.issparse(got) and got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got.toarray(), expected, rtol=1e-5, atol=1e-5)
    assert model.predict_topk(new, k=1)[0].shape == (7, 1)


def test_keep_norms_scales_the_standardised_rows_by_one_factor(holdout):
    X, Y = _toy()
    model = holdout._KeepNorms().fit(X, Y)
    mean, std = X.mean(axis=0), X.std(axis=0)
    np.testing.assert_allclose(model._map(X).toarray(), (X - mean) / std / np.sqrt(X.shape[1]), rtol=1e-4, atol=1e-5)
