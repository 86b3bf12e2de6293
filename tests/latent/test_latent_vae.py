"""SparseVAE / GaussianVAE: at most L0 non-zeros per code, determinism, learning on digits, save/load, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits

from sparsexc.estimator.vae import GaussianVAE, SparseVAE

TINY = {"hidden_size": 8, "epochs": 1, "batch_size": 16}


def _toy(n=40, d=6, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, d)).astype(np.float32)


@settings(max_examples=10, deadline=None)
@given(latent_dim=st.integers(1, 6), data=st.data())
def test_codes_have_at_most_max_active_non_zeros(latent_dim, data):
    max_active = data.draw(st.integers(1, latent_dim))
    seed = data.draw(st.integers(0, 5))
    vae = SparseVAE(latent_dim, max_active, random_state=seed, **TINY).fit(_toy(seed=seed))
    rows = data.draw(st.integers(0, 12))
    X = np.asarray(
        data.draw(st.lists(st.floats(0, 1, width=32), min_size=rows * 6, max_size=rows * 6)), dtype=np.float32
    ).reshape(rows, 6)
    codes = vae.transform(X)
    assert sp.isspmatrix_csr(codes) and codes.shape == (rows, latent_dim) and codes.dtype == np.float32
    assert np.all(np.diff(codes.indptr) <= max_active) and np.all(np.diff(codes.indptr) >= 1)
    assert np.allclose(vae.inverse_transform(codes), vae.reconstruct(X), atol=1e-6)


def test_fit_is_deterministic_and_dense_and_csr_inputs_agree():
    X = _toy(80, 6)
    a = SparseVAE(8, 3, random_state=4, hidden_size=16, epochs=3).fit(X)
    b = SparseVAE(8, 3, random_state=4, hidden_size=16, epochs=3).fit(sp.csr_matrix(X))
    c = SparseVAE(8, 3, random_state=5, hidden_size=16, epochs=3).fit(X)
    sa, sb, sc = (m.network_.state_dict() for m in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.history_ == b.history_
    ta, tb = a.transform(X), a.transform(sp.csr_matrix(X))
    assert (ta != tb).nnz == 0 and (ta != a.transform(X)).nnz == 0  # deterministic at eval time
    torch.manual_seed(0)
    state = torch.get_rng_state()
    SparseVAE(8, 3, random_state=4, **TINY).fit(X)
    assert torch.equal(state, torch.get_rng_state())  # the caller's global generator is left alone


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def test_sparse_vae_learns_digits_better_than_the_mean_image(digits):
    X, _ = digits
    train, test = X[:1200], X[1200:]
    vae = SparseVAE(latent_dim=24, max_active=4, hidden_size=64, epochs=20, random_state=0).fit(train)
    baseline = float(np.mean((test - train.mean(0)) ** 2))  # the trivial reconstruction: the mean image
    error = vae.reconstruction_error(test)
    assert error < 0.85 * baseline, (error, baseline)
    nnz = np.diff(vae.transform(test).indptr)
    assert nnz.max() <= 4 and vae.history_[-1]["loss"] < vae.history_[0]["loss"]
    dense = GaussianVAE(latent_dim=4, hidden_size=64, epochs=15, random_state=0).fit(train)
    assert dense.transform(test).shape == (len(test), 4) and dense.reconstruction_error(test) < baseline


def test_save_and_load_round_trip_bit_exact(tmp_path):
    X = _toy(50, 6)
    for model in (SparseVAE(5, 2, random_state=1, **TINY), GaussianVAE(3, random_state=1, **TINY)):
        model.fit(X)
        path = tmp_path / type(model).__name__
        model.save(path)
        again = type(model).load(path)
        assert again.params == model.params and again.history_ == model.history_
        a, b = model.transform(X), again.transform(X)
        if sp.issparse(a):
            assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
            assert np.array_equal(a.data, b.data)
        else:
            assert np.array_equal(a, b)
        assert np.array_equal(model.reconstruct(X), again.reconstruct(X))
    with pytest.raises(ValueError, match="GaussianVAE"):
        SparseVAE.load(tmp_path / "GaussianVAE")


def test_a_crafted_config_is_refused_before_anything_is_built(tmp_path):
    import json
    import resource

    from sparsexc.estimator import ModelFormatError

    SparseVAE(5, 2, random_state=1, **TINY).fit(_toy(50, 6)).save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    good = json.loads(config_path.read_text())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for field, value, message in (
        ("n_features", 40_000_000, r"tensors do not match config.json"),  # would be a 4e7 x hidden layer
        ("n_features", 10**12, r"n_features: expected an integer in 1..2\^31-1"),
        ("n_features", "6", r"n_features: expected an integer"),
        ("params", {"latent_dim": 10**9}, r"tensors do not match config.json"),
        ("params", {"no_such": 1}, r"params:"),
        ("history", "x", r"history: expected a list"),
    ):
        config_path.write_text(json.dumps({**good, field: value}))
        with pytest.raises(ModelFormatError, match=message):
            SparseVAE.load(tmp_path / "m")
    # ru_maxrss is in KiB on Linux: nothing near the 4e7-row layer's size was allocated
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000


def test_bad_settings_and_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"max_active=5 must lie in 1..latent_dim=3"):
        SparseVAE(3, 5)
    with pytest.raises(ValueError, match="likelihood"):
        SparseVAE(3, 2, likelihood="poisson")
    with pytest.raises(ValueError, match="unknown key 'epoch'"):
        SparseVAE(3, 2, epoch=3)
    with pytest.raises(ValueError, match="schedule"):
        SparseVAE(3, 2, schedule="step")
    with pytest.raises(ValueError, match=r"X in \[0, 1\]"):
        SparseVAE(3, 2, **TINY).fit(_toy() * 5)
    with pytest.raises(ValueError, match="max_active must be None"):
        GaussianVAE(3, max_active=2)
    with pytest.raises(ValueError, match="GaussianVAE for dense"):
        SparseVAE(3, None)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SparseVAE(3, 2).transform(_toy())
    vae = SparseVAE(3, 2, **TINY).fit(_toy())
    with pytest.raises(ValueError, match="features"):
        vae.transform(np.zeros((2, 9), np.float32))
    with pytest.raises(ValueError, match="latent_dim=3"):
        vae.inverse_transform(np.zeros((2, 4)))
    gaussian = SparseVAE(3, 2, likelihood="gaussian", **TINY).fit(_toy() * 5)  # any real values
    assert np.isfinite(gaussian.history_[-1]["loss"])
