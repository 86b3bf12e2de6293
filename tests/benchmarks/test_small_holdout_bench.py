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


def test_loo_alpha_is_the_brute_force_leave_one_out_choice(holdout):
    # independent check of the closed form: refit without each row, sum the squared errors on it, per alpha
    from sklearn.linear_model import Ridge

    X, Y = _toy(rows=25, d=4)
    Z = holdout._ridge_features(holdout._scaler(X), X)
    dense = Y.toarray()

    def loo_error(alpha):
        rows = range(Z.shape[0])
        fits = [Ridge(alpha=alpha).fit(np.delete(Z, i, 0), np.delete(dense, i, 0)) for i in rows]
        return sum(float(((f.predict(Z[i : i + 1]) - dense[i]) ** 2).sum()) for i, f in zip(rows, fits))

    errors = [loo_error(a) for a in holdout.RIDGE_ALPHAS]
    assert holdout._loo_alpha(Z, Y) == pytest.approx(holdout.RIDGE_ALPHAS[int(np.argmin(errors))])


def test_ridge_features_standardise_dense_rows_only_and_scale_rows_to_unit_norm(holdout):
    X, _ = _toy()
    Z = holdout._ridge_features(holdout._scaler(X), X)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-6)
    binary = sp.random(30, 50, density=0.1, format="csr", random_state=0, dtype=np.float32)
    binary.data[:] = 1.0
    assert holdout._scaler(binary) is None  # sparse binary rows stay as given
    assert sp.issparse(holdout._ridge_features(None, binary))
    codes = binary.copy()
    codes.data = np.arange(1, codes.nnz + 1, dtype=np.float32) % 5 + 1  # sparse integer codes: scaled, not centred
    got = holdout._ridge_features(holdout._scaler(codes), codes)
    from sklearn.preprocessing import StandardScaler, normalize

    expected = normalize(StandardScaler(with_mean=False).fit_transform(codes))
    assert sp.issparse(got) and np.allclose(got.toarray(), expected.toarray())


def test_tree_C_from_ridge_snaps_to_the_cross_validation_grid(holdout, monkeypatch):
    from sparsexc.tree import C_FACTORS

    X, Y = _toy()
    monkeypatch.setattr(holdout, "_loo_alpha", lambda Z, Y: 0.7)  # C = 1 / 1.4 = 0.71: nearest in log is 1
    assert holdout._tree_C_from_ridge(1.0)(X, Y).model_.tree.params.C == 1.0
    monkeypatch.setattr(holdout, "_loo_alpha", lambda Z, Y: 4.0)  # C = 0.125: nearest in log of 0.1, 0.3 is 0.1
    model = holdout._tree_C_from_ridge(1.0)(X, Y)
    assert model.model_.tree.params.C == 0.1 and 0.1 in C_FACTORS
