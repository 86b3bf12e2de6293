"""The negative-sampling head's ``bias_init="inverse_aux"`` (the authors' --initialize_to_inverse_aux): each label's
output bias starts at minus its mean log p_n(y|x) over its training rows, checked against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sparsexc.heads import NegativeSamplingHead


def _data(n_rows=300, n_features=30, n_labels=9):
    rng = np.random.default_rng(0)
    X = sp.random(n_rows, n_features, density=0.2, random_state=0, format="csr", dtype=np.float32)
    Y = (rng.random((n_rows, n_labels)) < 0.25).astype(np.float32)
    Y[:, 4] = 0  # a label without a training row keeps bias 0
    return X, sp.csr_matrix(Y)


@pytest.mark.parametrize("sampler", ["tree", "frequency", "uniform"])
def test_inverse_aux_biases_are_minus_the_mean_log_pn_of_each_labels_rows(sampler, monkeypatch):
    X, Y = _data()
    # a small chunk, so that the chunked evaluation is exercised across several chunks
    monkeypatch.setattr("sparsexc.heads.negative_sampling._BIAS_INIT_ROWS", 64)
    params = {"sampler": sampler, "bias_init": "inverse_aux", "tree": {"dim": 4}}
    head = NegativeSamplingHead(X.shape[1], Y.shape[1], params)
    head.prepare(X, Y)
    x = X if head.ready_sampler.uses_features else np.zeros((X.shape[0], X.shape[1]))
    log_pn = head.ready_sampler.log_prob_all(x).double().numpy()  # (N, C), brute force over every pair
    dense = Y.toarray().astype(bool)
    want = np.array([-log_pn[dense[:, j], j].mean() if dense[:, j].any() else 0.0 for j in range(Y.shape[1])])
    got = head.output.bias.detach().double().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert got[4] == 0.0 and np.all(got[dense.any(axis=0)] > 0)  # -log p > 0 for every label with rows


def test_zero_bias_init_leaves_the_layer_as_built():
    X, Y = _data()
    torch.manual_seed(0)
    head = NegativeSamplingHead(X.shape[1], Y.shape[1], {"sampler": "frequency"})
    before = head.output.bias.detach().clone()
    head.prepare(X, Y)
    assert torch.equal(head.output.bias.detach(), before)


def test_bad_bias_init_names_the_allowed_values():
    with pytest.raises(ValueError, match=r"bias_init.*inverse_aux"):
        NegativeSamplingHead(5, 3, {"bias_init": "ones"})
