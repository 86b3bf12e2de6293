"""PMI label embeddings: the sparse PMI against a dense brute force, the SVD against numpy's, unit norms,
the documented fallback for labels without co-occurrences, closeness of co-occurring labels, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsexc.embeddings import pmi_embeddings, pmi_matrix, pmi_svd


def _random_Y(n_rows: int, n_labels: int, density: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_rows, n_labels)) < density).astype(np.float32))


def _brute_force_pmi(Y: np.ndarray, alpha=1.0, positive=False, shift=0.0, diagonal="zero") -> np.ndarray:
    """The dense formula, pair by pair: log(n_ij N / ...) where n_ij > 0, else 0."""
    Y = (np.asarray(Y) > 0).astype(float)
    N, C = Y.shape
    n = Y.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = n / N  # alpha = 1: the plain marginal; otherwise the documented smoothed one
        p_alpha = p if alpha == 1.0 else n**alpha / np.sum(n[n > 0] ** alpha) * n.sum() / N
    out = np.zeros((C, C))
    for i in range(C):
        for j in range(C):
            n_ij = float(Y[:, i] @ Y[:, j])
            if n_ij == 0 or (i == j and diagonal == "zero"):
                continue
            value = np.log(n_ij / N) - np.log(p_alpha[i]) - np.log(p_alpha[j]) - shift
            out[i, j] = max(value, 0.0) if positive else value
    return out


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 7),
    st.floats(0.05, 0.8),
    st.integers(0, 10**6),
    st.sampled_from([1.0, 0.75, 0.5]),
    st.booleans(),
    st.sampled_from([0.0, np.log(2.0), -0.3]),
    st.sampled_from(["zero", "pmi"]),
)
def test_pmi_matches_dense_brute_force(n_rows, n_labels, density, seed, alpha, positive, shift, diagonal):
    Y = _random_Y(n_rows, n_labels, density, seed)
    M = pmi_matrix(Y, alpha=alpha, positive=positive, shift=shift, diagonal=diagonal)
    assert sp.issparse(M) and M.shape == (n_labels, n_labels)
    np.testing.assert_allclose(
        M.toarray(), _brute_force_pmi(Y.toarray(), alpha, positive, shift, diagonal), rtol=1e-12, atol=1e-12
    )
    # only co-occurring pairs are ever stored
    co = (Y.T @ Y).toarray() > 0
    rows, cols = M.nonzero()
    assert co[rows, cols].all()


def test_pmi_of_a_known_case():
    # 4 rows: {0,1}, {0,1}, {0}, {2}; n = (3, 2, 1), n_01 = 2: PMI_01 = log(2/4 / (3/4 * 2/4)) = log(4/3)
    Y = [[0, 1], [0, 1], [0], [2]]
    M = pmi_matrix(Y, diagonal="zero").toarray()
    assert M[0, 1] == pytest.approx(np.log(4 / 3)) and M[1, 0] == pytest.approx(np.log(4 / 3))
    assert np.count_nonzero(M) == 2  # label 2 co-occurs with nobody; the diagonal is dropped
    diag = np.diag(pmi_matrix(Y).toarray())  # default diagonal="pmi": log(P(i) / P(i)^2) = -log P(i)
    np.testing.assert_allclose(diag, -np.log([3 / 4, 2 / 4, 1 / 4]))


def test_svd_part_matches_numpy_svd_up_to_signs():
    Y = _random_Y(300, 25, 0.2, 1)
    M = pmi_matrix(Y, diagonal="pmi")
    U, S, _ = np.linalg.svd(M.toarray())
    E = pmi_svd(M, 6, seed=0, n_iter=30)
    expected = U[:, :6] * np.sqrt(S[:6])
    signs = np.sign(np.sum(E * expected, axis=0))
    np.testing.assert_allclose(E, expected * signs, atol=1e-7)


def test_unit_rows_float32_shape_and_seeded():
    Y = _random_Y(200, 30, 0.15, 2)
    E = pmi_embeddings(Y, 8, seed=3)
    assert E.dtype == np.float32 and E.shape == (30, 8)
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(E, pmi_embeddings(Y, 8, seed=3))


def test_dim_larger_than_the_label_count_pads_with_zero_coordinates():
    Y = _random_Y(100, 5, 0.5, 4)
    E, fallback = pmi_embeddings(Y, 12, diagonal="pmi", return_fallback=True)
    assert E.shape == (5, 12) and not fallback.any()
    np.testing.assert_array_equal(E[:, 5:], 0.0)
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-6)


def test_labels_that_always_co_occur_are_close_and_unrelated_ones_are_not():
    rng = np.random.default_rng(5)
    Y = (rng.random((400, 20)) < 0.15).astype(np.float32)
    Y[:, 1] = Y[:, 0]  # label 1 occurs exactly when label 0 does
    E = pmi_embeddings(sp.csr_matrix(Y), 10, seed=0)  # default diagonal="pmi": equal PMI rows
    cos = E @ E.T
    assert cos[0, 1] == pytest.approx(1.0, abs=1e-5)
    assert np.abs(cos[0, 2:]).max() < 0.9
    # the documented weakness of dropping the diagonal: the two rows differ in their largest entries
    E_zero = pmi_embeddings(sp.csr_matrix(Y), 10, diagonal="zero")
    assert E_zero[0] @ E_zero[1] < 0.5


def test_labels_that_mostly_co_occur_are_closer_than_independent_ones():
    rng = np.random.default_rng(6)
    Y = (rng.random((600, 15)) < 0.15).astype(np.float32)
    Y[:, 1] = Y[:, 0] * (rng.random(600) < 0.9)  # label 1 occurs with label 0 (90% of the time), never without
    E = pmi_embeddings(sp.csr_matrix(Y), 8, seed=0)
    cos = E @ E.T
    assert cos[0, 1] > 0.9 and cos[0, 1] > np.abs(cos[0, 2:]).max()


def test_labels_without_co_occurrence_get_distinct_random_unit_vectors():
    # label 3 never occurs, label 2 only occurs alone; 0 and 1 co-occur
    Y = sp.csr_matrix(([1.0] * 7, [0, 1, 0, 1, 0, 2, 2], [0, 2, 4, 5, 6, 7]), shape=(5, 4))
    E, fallback = pmi_embeddings(Y, 64, seed=0, diagonal="zero", return_fallback=True)
    np.testing.assert_array_equal(fallback, [False, False, True, True])
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-6)
    rng = np.random.default_rng(0)  # documented: seeded Gaussian directions, in label order
    draws = rng.standard_normal((2, 64))
    np.testing.assert_allclose(E[2:], draws / np.linalg.norm(draws, axis=1, keepdims=True), rtol=1e-6)
    assert abs(E[2] @ E[3]) < 0.5 and max(abs(E[2] @ E[0]), abs(E[3] @ E[0])) < 0.5
    # with the self-PMI kept, a label seen only alone has a PMI row of its own: no fallback needed
    _, fallback_pmi = pmi_embeddings(Y, 3, diagonal="pmi", return_fallback=True)  # 3 components for 3 labels
    assert not fallback_pmi[2] and fallback_pmi[3]
    # no co-occurrence at all: every label falls back
    E_none, all_fallback = pmi_embeddings(sp.identity(4, format="csr"), 4, diagonal="zero", return_fallback=True)
    assert all_fallback.all() and np.isfinite(E_none).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"dim": 0}, "dim"), ({"dim": 2.5}, "dim"), ({"alpha": 0.0}, "alpha"), ({"alpha": 1.5}, "alpha"),
    ({"shift": float("nan")}, "shift"), ({"diagonal": "keep"}, "diagonal.*'pmi'.*'zero'"),
    ({"seed": -1}, "seed"), ({"n_iter": -2}, "n_iter"),
])  # fmt: skip
def test_bad_arguments_raise_clear_value_errors(kwargs, match):
    args = {"dim": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        pmi_embeddings(_random_Y(10, 5, 0.4, 0), args.pop("dim"), **args)


def test_non_binary_labels_are_refused():
    with pytest.raises(ValueError, match="0/1"):
        pmi_matrix(sp.csr_matrix(np.array([[2.0, 1.0]])))
