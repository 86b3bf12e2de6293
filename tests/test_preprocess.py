"""sparsexc._preprocess: the "auto" rule on synthetic matrices of each kind, and the transforms against
scikit-learn (TfidfTransformer, StandardScaler, normalize) as the oracle (issue 20)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.preprocessing import StandardScaler, normalize

from sparsexc._params import PREPROCESS_CHOICES
from sparsexc._preprocess import (
    DENSE_FRACTION,
    MIN_VOCABULARY,
    TRANSFORMS,
    array_names,
    check_saved,
    choose,
    fit_preprocessor,
    from_saved,
)
from sparsexc.errors import ConfigurationError


def _counts(seed: int = 0, n: int = 60, d: int = 200, density: float = 0.05) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=rng, dtype=np.float32)
    X.data = rng.integers(1, 9, X.nnz).astype(np.float32)
    return X


def _binary(seed: int = 0) -> sp.csr_matrix:
    X = _counts(seed)
    X.data[:] = 1.0
    return X


def _weights(seed: int = 0) -> sp.csr_matrix:
    """Sparse non-negative real weights of any scale (TF-IDF-like, not normalised)."""
    X = _counts(seed)
    X.data = np.random.default_rng(seed).uniform(0.1, 5.0, X.nnz).astype(np.float32)
    return X


def _dense_real(seed: int = 0, negative: bool = True) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    A = rng.normal(3.0, 2.0, (50, 12)) * rng.uniform(0.1, 100, 12)
    return sp.csr_matrix((A if negative else np.abs(A)).astype(np.float32))


def test_the_rule_on_each_kind_of_matrix():
    assert choose(_binary()).transform == "none"
    assert "binary" in choose(_binary()).reason
    assert choose(_counts()).transform == "tfidf"  # 200 columns: word counts
    assert "counts" in choose(_counts()).reason
    narrow = _counts(d=MIN_VOCABULARY - 1, density=0.2)  # integer-coded tabular columns
    assert choose(narrow).transform == "standardize"
    assert "tabular" in choose(narrow).reason
    assert choose(_counts(d=MIN_VOCABULARY, density=0.2)).transform == "tfidf"
    unit = sp.csr_matrix(normalize(_weights()), dtype=np.float32)
    assert choose(unit).transform == "none"
    assert "unit" in choose(unit).reason
    assert choose(_weights()).transform == "l2"
    assert choose(_dense_real()).transform == "standardize"
    assert "negative" in choose(_dense_real()).reason
    assert choose(_dense_real(negative=False)).transform == "standardize"
    assert "dense" in choose(_dense_real(negative=False)).reason
    # one negative value in a sparse matrix is enough: real-valued features
    X = _weights()
    X.data[3] = -0.5
    assert choose(X).transform == "standardize"


def test_unit_rows_tolerate_float32_rounding_and_empty_rows():
    X = sp.csr_matrix(normalize(_weights(1)), dtype=np.float32)
    X = sp.vstack([X, sp.csr_matrix((1, X.shape[1]), dtype=np.float32)]).tocsr()  # an empty row
    assert choose(X).transform == "none"
    X.data *= 1.01  # 1% off: not unit rows any more
    assert choose(X).transform == "l2"


def test_density_threshold_decides_dense():
    n, d = 10, 10
    A = np.zeros((n, d), dtype=np.float32)
    A.flat[: int(DENSE_FRACTION * n * d)] = 0.5  # exactly half full, non-integer
    assert choose(sp.csr_matrix(A)).transform == "standardize"
    A.flat[0] = 0.0  # just under half: sparse weights
    assert choose(sp.csr_matrix(A)).transform == "l2"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tfidf_matches_scikit_learn(seed):
    train, test = _counts(seed), _counts(seed + 10)
    pre = fit_preprocessor("tfidf", train)
    oracle = TfidfTransformer(smooth_idf=True, norm="l2", sublinear_tf=False).fit(train)
    np.testing.assert_allclose(pre.arrays["idf"], oracle.idf_, rtol=1e-6)
    for X in (train, test):  # test rows use the training statistics, unseen features included
        got = pre(X)
        assert sp.isspmatrix_csr(got) and got.dtype == np.float32 and got.shape == X.shape
        np.testing.assert_allclose(got.toarray(), oracle.transform(X).toarray(), rtol=1e-5, atol=1e-7)


def test_l2_matches_scikit_learn_and_keeps_empty_rows():
    X = sp.vstack([_weights(3), sp.csr_matrix((2, 200), dtype=np.float32)]).tocsr()
    got = fit_preprocessor("l2", X)(X)
    np.testing.assert_allclose(got.toarray(), normalize(X).toarray(), rtol=1e-6, atol=1e-7)
    assert got[-2:].nnz == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_standardize_dense_matches_scikit_learn(seed):
    train, test = _dense_real(seed), _dense_real(seed + 5)
    train = sp.csr_matrix(np.hstack([train.toarray(), np.full((train.shape[0], 1), 7.0, np.float32)]))  # constant
    test = sp.csr_matrix(np.hstack([test.toarray(), np.full((test.shape[0], 1), 2.0, np.float32)]))
    pre = fit_preprocessor("standardize", train)
    assert pre.centred and set(pre.arrays) == {"mean", "scale"}
    oracle = StandardScaler().fit(train.toarray().astype(np.float64))
    np.testing.assert_allclose(pre.arrays["mean"], oracle.mean_, rtol=1e-6)
    np.testing.assert_allclose(pre.arrays["scale"], oracle.scale_, rtol=1e-5)
    assert pre.arrays["scale"][-1] == 1.0  # a constant feature is not divided by 0
    for X in (train, test):
        np.testing.assert_allclose(pre(X).toarray(), oracle.transform(X.toarray()), rtol=1e-4, atol=1e-5)


def test_standardize_sparse_is_scaled_only_and_stays_sparse():
    train, test = _counts(4), _counts(5)
    pre = fit_preprocessor("standardize", train)
    assert not pre.centred and set(pre.arrays) == {"scale"}
    oracle = StandardScaler(with_mean=False).fit(train)
    np.testing.assert_allclose(pre.arrays["scale"], oracle.scale_, rtol=1e-5)
    for X in (train, test):
        got = pre(X)
        assert got.nnz == X.nnz  # no entry made non-zero
        np.testing.assert_allclose(got.toarray(), oracle.transform(X).toarray(), rtol=1e-5)


def test_none_returns_the_matrix_itself():
    X = _counts()
    assert fit_preprocessor("none", X)(X) is X


def test_auto_fits_the_rule_choice_and_says_why():
    pre = fit_preprocessor("auto", _dense_real())
    assert pre.transform == "standardize" and pre.requested == "auto" and pre.centred
    assert pre.describe() == "standardize (auto: real-valued features with negative values, centred)"
    assert fit_preprocessor("tfidf", _counts()).describe() == "tfidf (given)"


def test_explicit_values_override_the_rule():
    X = _dense_real()
    assert fit_preprocessor("l2", X).transform == "l2"
    assert fit_preprocessor("none", X).transform == "none"


@pytest.mark.parametrize("bad", ["TFIDF", "scale", "", None, 3])
def test_a_bad_value_is_one_clear_error(bad):
    with pytest.raises(
        ConfigurationError,
        match=r"preprocess=.* is not allowed; choose one of 'auto', 'none', 'tfidf', 'l2', 'standardize'\Z",
    ):
        fit_preprocessor(bad, _counts())


def test_tfidf_refuses_negative_values():
    with pytest.raises(ConfigurationError, match="preprocess='tfidf' needs non-negative features"):
        fit_preprocessor("tfidf", _dense_real())
    pre = fit_preprocessor("tfidf", _counts())
    with pytest.raises(ConfigurationError, match="negative"):
        pre(sp.csr_matrix(-_counts(1)))


def test_statistics_come_from_the_given_rows_only():
    train = _counts(0)
    other = sp.vstack([train, _counts(9, density=0.5) * 50]).tocsr()
    for transform in ("tfidf", "standardize"):
        a, b = fit_preprocessor(transform, train), fit_preprocessor(transform, other)
        for name in a.arrays:
            assert not np.allclose(a.arrays[name], b.arrays[name])  # the statistics do depend on the rows


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_saved_config_round_trip(transform):
    X = _dense_real(negative=False) if transform != "tfidf" else _counts()
    pre = fit_preprocessor(transform, X)
    config = pre.config()
    assert check_saved(config) == array_names(transform, pre.centred) == tuple(pre.arrays)
    again = from_saved(config, dict(pre.arrays), X.shape[1])
    np.testing.assert_array_equal(again(X).toarray(), pre(X).toarray())


def test_no_saved_config_is_none():
    pre = from_saved(None, {}, 7)
    assert pre.transform == "none" and check_saved(None) == ()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([], "must be an object"),
        ({"transform": "l2", "requested": "auto", "reason": "x", "centred": False, "idf": 1}, "unknown key 'idf'"),
        ({"transform": "l2", "requested": "auto", "reason": "x"}, "needs 'centred'"),
        ({"transform": "auto", "requested": "auto", "reason": "x", "centred": False}, "has transform 'auto'"),
        ({"transform": "l2", "requested": "zca", "reason": "x", "centred": False}, "has requested 'zca'"),
        ({"transform": "tfidf", "requested": "auto", "reason": "x", "centred": True}, "only 'standardize'"),
    ],
)
def test_a_bad_saved_config_is_described(config, message):
    problem = check_saved(config)
    assert isinstance(problem, str) and message in problem


def test_saved_values_are_checked():
    config = fit_preprocessor("standardize", _counts()).config()
    with pytest.raises(ValueError, match="scale must be positive"):
        from_saved(config, {"scale": np.zeros(200, np.float32)}, 200)
    config = fit_preprocessor("tfidf", _counts()).config()
    with pytest.raises(ValueError, match="idf weights must be at least 1"):
        from_saved(config, {"idf": np.full(200, 0.5, np.float32)}, 200)


def test_choices_are_the_setting_choices():
    assert ("auto", *TRANSFORMS) == PREPROCESS_CHOICES
