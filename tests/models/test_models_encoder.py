"""Encoders and XCModel against dense references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _topk import assert_same_topk

from sparsexc._params import EncoderParams
from sparsexc.heads import SigmoidHead, SoftmaxHead
from sparsexc.heads.protocol import _cat_hidden
from sparsexc.models import FeatureBatch, SparseEncoder, XCModel
from sparsexc.models import encoder as encoder_module
from sparsexc.models.encoder import DENSE_BATCH_DENSITY, dense_pays


def _X(n=7, d=15, seed=0, density=0.3):
    X = sp.random(n, d, density=density, format="csr", dtype=np.float32, random_state=seed)
    keep = np.ones(n, np.float32)
    keep[3] = 0  # an all-zero row
    X = sp.csr_matrix(sp.diags(keep) @ X)
    X.eliminate_zeros()
    return X


def test_feature_batch_keeps_the_csr_pieces():
    X = _X()
    batch = FeatureBatch.from_csr(X)
    assert batch.n_rows == 7 and batch.n_features == 15
    np.testing.assert_array_equal(batch.offsets.numpy(), X.indptr)
    np.testing.assert_array_equal(batch.to_sparse_csr().to_dense().numpy(), X.toarray())


def test_linear_encoder_is_the_identity_on_sparse_features():
    X = _X(n=20, d=60, density=0.05)
    batch = FeatureBatch.from_csr(X)
    assert batch.density == X.nnz / (20 * 60) < DENSE_BATCH_DENSITY
    encoder = SparseEncoder(60, EncoderParams())
    hidden = encoder(batch)
    assert encoder.is_identity and encoder.out_dim == 60 and hidden.layout == torch.sparse_csr
    np.testing.assert_array_equal(hidden.to_dense().numpy(), X.toarray())
    assert list(encoder.parameters()) == []  # the head's n_labels x n_features matrix is the whole model


def test_linear_encoder_gives_dense_batches_dense(monkeypatch):
    X = _X()  # 30% of the cells stored, less the all-zero row
    batch = FeatureBatch.from_csr(X)
    assert batch.density >= DENSE_BATCH_DENSITY and dense_pays(batch)
    hidden = SparseEncoder(15, EncoderParams())(batch)
    assert hidden.layout == torch.strided
    np.testing.assert_array_equal(hidden.numpy(), X.toarray())
    # not with sparse gradients (their output layer reads the feature ids), nor above the cap on the cells
    assert SparseEncoder(15, EncoderParams(sparse_gradients=True))(batch).layout == torch.sparse_csr
    monkeypatch.setattr(encoder_module, "DENSE_BATCH_MAX_CELLS", 7 * 15 - 1)
    assert not dense_pays(batch)
    assert SparseEncoder(15, EncoderParams())(batch).layout == torch.sparse_csr


def test_feature_batch_to_dense_sums_duplicates_as_csr_does():
    X = sp.csr_matrix((np.array([1.0, 2.0, 4.0], np.float32), np.array([1, 1, 0]), np.array([0, 2, 3])), shape=(2, 3))
    assert not X.has_canonical_format  # a duplicated entry in row 0
    batch = FeatureBatch.from_csr(X)
    np.testing.assert_array_equal(batch.to_dense().numpy(), [[0, 3, 0], [4, 0, 0]])
    np.testing.assert_array_equal(batch.to_dense().numpy(), batch.to_sparse_csr().to_dense().numpy())


@pytest.mark.parametrize("density", [0.05, 0.3])
def test_dense_and_sparse_products_of_the_linear_model_agree(monkeypatch, density):
    """The same logits and gradients in float64 whichever product the batch takes."""
    X = _X(n=30, d=40, density=density)
    torch.manual_seed(0)
    model = XCModel(SparseEncoder(40, {}), SigmoidHead(40, 6)).double()
    batch = FeatureBatch.from_csr(X)
    batch = FeatureBatch(batch.indices, batch.offsets, batch.values.double(), batch.n_rows, batch.n_features)
    out = {}
    for rule in (0.0, 2.0):  # every batch dense, no batch dense
        monkeypatch.setattr(encoder_module, "DENSE_BATCH_DENSITY", rule)
        hidden = model.hidden(batch)
        assert hidden.layout == (torch.strided if rule == 0.0 else torch.sparse_csr)
        logits = model.head.output(hidden)
        (gW,) = torch.autograd.grad(
            (logits * torch.linspace(-1, 1, 6, dtype=torch.float64)).sum(), model.head.output.weight
        )
        out[rule] = (logits.detach(), gW)
    torch.testing.assert_close(out[0.0][0], out[2.0][0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out[0.0][1], out[2.0][1], rtol=1e-12, atol=1e-12)


def test_mixed_hidden_batches_join_as_csr():
    dense = torch.tensor([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0]])
    sparse = torch.tensor([[0.0, 0.0, 3.0]]).to_sparse_csr()
    joined = _cat_hidden([dense, sparse])
    assert joined.layout == torch.sparse_csr
    torch.testing.assert_close(joined.to_dense(), torch.cat([dense, sparse.to_dense()]))
    torch.testing.assert_close(_cat_hidden([dense, dense]), torch.cat([dense, dense]))


def test_linear_model_equals_dense_x_at_w_including_gradients():
    X = _X()
    torch.manual_seed(0)
    encoder = SparseEncoder(15, {})
    head = SigmoidHead(15, 4)
    model = XCModel(encoder, head)
    logits = head.output(model.hidden(FeatureBatch.from_csr(X)))
    W, b = head.output.weight, head.output.bias
    reference = torch.from_numpy(X.toarray()) @ W.T + b
    torch.testing.assert_close(logits, reference)
    g = torch.randn_like(logits)
    (gW,) = torch.autograd.grad((logits * g).sum(), W)
    torch.testing.assert_close(gW, g.T @ torch.from_numpy(X.toarray()))
    assert sum(p.numel() for p in model.parameters()) == 4 * 15 + 4  # full rank: n_labels x n_features + bias


def test_mlp_first_layer_matches_dense_reference_in_float64_with_gradients():
    X = _X()
    torch.manual_seed(0)
    encoder = SparseEncoder(15, {"hidden_sizes": [6, 3], "activation": "tanh"}).double()
    batch = FeatureBatch.from_csr(X)
    batch.values = batch.values.double()
    hidden = encoder(batch)
    W1 = encoder.embedding.weight  # (n_features, h1)
    lin2 = encoder.mlp[1]
    Xd = torch.from_numpy(X.toarray()).double()
    reference = torch.tanh(lin2(torch.tanh(Xd @ W1 + encoder.first_bias)))
    torch.testing.assert_close(hidden, reference, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(hidden)
    grads = torch.autograd.grad((hidden * g).sum(), [W1, encoder.first_bias])
    ref_grads = torch.autograd.grad((reference * g).sum(), [W1, encoder.first_bias])
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert encoder.out_dim == 3


def test_dropout_acts_only_in_training_mode():
    X = _X()
    encoder = SparseEncoder(15, {"hidden_sizes": [50], "dropout": 0.5})
    batch = FeatureBatch.from_csr(X)
    encoder.eval()
    assert torch.equal(encoder(batch), encoder(batch))
    encoder.train()
    torch.manual_seed(0)
    a = encoder(batch)
    b = encoder(batch)
    assert not torch.equal(a, b)


def test_encoder_errors_name_the_setting():
    with pytest.raises(ValueError, match=r"activation='swish'.*relu"):
        SparseEncoder(5, {"activation": "swish"})
    with pytest.raises(ValueError, match="hidden_sizes"):
        SparseEncoder(5, {"hidden_sizes": [0]})
    with pytest.raises(ValueError, match="dropout"):
        SparseEncoder(5, {"dropout": 1.0})
    with pytest.raises(ValueError, match=r"head\.in_dim"):
        XCModel(SparseEncoder(5, {"hidden_sizes": [3]}), SoftmaxHead(4, 2))


@pytest.mark.parametrize("hidden_sizes", [(), (8,)])
def test_model_helpers_agree_with_each_other_across_batch_sizes(hidden_sizes):
    X = _X(n=23, seed=1)
    torch.manual_seed(0)
    encoder = SparseEncoder(15, {"hidden_sizes": hidden_sizes})
    model = XCModel(encoder, SigmoidHead(encoder.out_dim, 6, {"threshold": 0.5}))
    scores = model.predict_scores(X, batch_size=5)
    np.testing.assert_allclose(model.predict_scores(X, batch_size=100), scores, rtol=1e-6, atol=1e-7)
    idx, val = model.predict_topk(X, 3, batch_size=4)
    assert idx.dtype == np.int64 and val.dtype == np.float32 and idx.shape == (23, 3)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :3]
    # other batch sizes, other matrix products: near-tied labels may swap
    assert_same_topk((idx, val), (order, np.take_along_axis(scores, order, 1)), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(model.predict_sets(X, batch_size=7).toarray(), (scores > 0.5).astype(np.float32))
    assert model.training  # helpers restore the training flag
    with pytest.raises(ValueError, match="features"):
        model.predict_scores(_X(d=16))
    rebuilt = XCModel.from_config(model.config())
    rebuilt.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(rebuilt.predict_scores(X), model.predict_scores(X))
