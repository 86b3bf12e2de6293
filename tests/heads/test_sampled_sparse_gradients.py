"""Sampled heads' sparse-gradient path (``sparse_gradients``): same loss and gradient as the dense path in
float64, identical Adagrad training, the documented lazy-Adam difference, a step touches only the sampled
rows, the same saved layout, and the defaults with and without ``shard_labels``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sparsexc._params import TrainParams
from sparsexc.estimator import XCClassifier
from sparsexc.heads import LabelBatch, NegativeSamplingHead, SampledSoftmaxHead
from sparsexc.models.sparse_output import gather_sparse_grad, has_sparse_gradient
from sparsexc.train import build_optimizer

HEADS = [NegativeSamplingHead, SampledSoftmaxHead]
B, D, C = 12, 6, 40


def _data(seed=0, rows=B):
    rng = np.random.default_rng(seed)
    Y = sp.csr_matrix((rng.random((rows, C)) < 0.06).astype(np.float32))
    Y[0, 3] = 1.0  # at least one positive pair
    X = sp.csr_matrix(rng.normal(size=(rows, D)).astype(np.float32) * (rng.random((rows, D)) < 0.6))
    return X, sp.csr_matrix(Y)


def _pair(cls, params=None):
    """(sparse head, dense head) with the same weights (non-zero bias) and the same fitted sampler, float64."""
    X, Y = _data()
    heads = []
    for sparse in (True, False):
        torch.manual_seed(0)
        head = cls(D, C, {"sampler": "frequency", "num_negatives": 4, **(params or {}), "sparse_gradients": sparse})
        head.prepare(X, Y)
        heads.append(head.double())
    with torch.no_grad():
        heads[0].output.bias.uniform_(-1, 1)
        heads[1].output.bias.copy_(heads[0].output.bias)
    return heads[0], heads[1], X, Y


def _hidden(X, sparse_hidden):
    h = torch.from_numpy(X.toarray()).double()
    if not sparse_hidden:
        return h
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return h.to_sparse_csr()


def _dense_grad(q):
    return q.grad.to_dense() if q.grad.is_sparse else q.grad


def test_gather_sparse_grad_equals_indexing_and_its_gradient():
    torch.manual_seed(0)
    w = torch.randn(7, 3, dtype=torch.float64)
    rows, cols = torch.tensor([[0, 6, 6], [2, 0, 6]]), torch.tensor([[1], [2]])
    for index in ((rows,), (rows, cols)):
        a, b = w.clone().requires_grad_(True), w.clone().requires_grad_(True)
        weights = torch.randn(a[index].shape, dtype=torch.float64)
        torch.testing.assert_close(gather_sparse_grad(a, *index), b[index], rtol=0, atol=0)
        (gather_sparse_grad(a, *index) * weights).sum().backward()
        (b[index] * weights).sum().backward()
        assert a.grad.is_sparse and a.grad.sparse_dim() == len(index)
        torch.testing.assert_close(a.grad.to_dense(), b.grad, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("cls", HEADS)
@pytest.mark.parametrize("sparse_hidden", [False, True])
def test_sparse_and_dense_paths_give_the_same_loss_and_gradient(cls, sparse_hidden):
    sparse, dense, X, Y = _pair(cls)
    assert has_sparse_gradient(sparse.output.weight) and has_sparse_gradient(sparse.output.bias)
    assert not has_sparse_gradient(dense.output.weight)
    hidden, labels = _hidden(X, sparse_hidden), LabelBatch.from_csr(Y)
    losses = []
    for head in (sparse, dense):
        torch.manual_seed(7)  # the same draws
        loss = head.loss(hidden, labels)
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-14)
    assert sparse.output.weight.grad.is_sparse and sparse.output.bias.grad.is_sparse
    for a, b in ((sparse.output.weight, dense.output.weight), (sparse.output.bias, dense.output.bias)):
        torch.testing.assert_close(_dense_grad(a), b.grad, rtol=1e-12, atol=1e-14)


def _train(head, X, Y, optimizer, steps, lr, sparse_hidden=False, seed=3):
    opt = build_optimizer(head.parameters(), TrainParams(optimizer=optimizer, lr=lr))
    torch.manual_seed(seed)
    for step in range(steps):
        rows = np.arange(step % 3, X.shape[0], 3)  # a third of the rows per step: some labels unsampled
        opt.zero_grad(set_to_none=True)
        head.loss(_hidden(X[rows], sparse_hidden), LabelBatch.from_csr(Y[rows])).backward()
        opt.step()


@pytest.mark.parametrize("cls", HEADS)
@pytest.mark.parametrize("sparse_hidden", [False, True])
def test_adagrad_training_is_the_same_sparse_and_dense(cls, sparse_hidden):
    # sparse hidden (the linear model's raw features): gradients over (label, feature) entries, 2 sparse dims
    sparse, dense, X, Y = _pair(cls)
    for head in (sparse, dense):
        _train(head, X, Y, "adagrad", steps=6, lr=0.1, sparse_hidden=sparse_hidden)
    for a, b in zip(sparse.state_dict().values(), dense.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert not torch.equal(sparse.output.weight, _pair(cls)[0].output.weight)  # it did train


def test_adam_becomes_lazy_adam():
    """Documented difference: SparseAdam updates a row only at steps that sample it; dense Adam keeps moving a
    row on its momentum after it was last sampled. The first step agrees (all moments start at zero) up to
    where eps enters: SparseAdam adds it before the bias correction, Adam after (a 1e-4 relative difference)."""
    sparse, dense, X, Y = _pair(SampledSoftmaxHead)
    hidden = _hidden(X, False)
    after_first, moved = {}, {}
    for name, head in (("sparse", sparse), ("dense", dense)):
        opt = build_optimizer(head.parameters(), TrainParams(optimizer="adam", lr=0.01))
        torch.manual_seed(11)
        for step, rows in enumerate((slice(0, B), slice(0, 1))):  # all rows, then row 0 alone (few labels)
            opt.zero_grad(set_to_none=True)
            head.loss(hidden[rows], LabelBatch.from_csr(Y[rows])).backward()
            before = head.output.weight.detach().clone()
            opt.step()
            if step == 0:
                after_first[name] = head.output.weight.detach().clone()
        moved[name] = (head.output.weight != before).any(dim=1)
    torch.testing.assert_close(after_first["sparse"], after_first["dense"], rtol=1e-3, atol=1e-6)
    sampled = torch.zeros(C, dtype=torch.bool)
    sampled[sparse.output.weight.grad._indices()[0]] = True  # the second step's labels
    assert torch.equal(
        torch.nonzero(dense.output.weight.grad.abs().sum(1)).squeeze(1), torch.nonzero(sampled).squeeze(1)
    )
    assert not moved["sparse"][~sampled].any()  # lazy: the unsampled rows stay put
    assert moved["dense"][~sampled].any()  # dense Adam: their momentum moves them
    assert torch.equal(moved["sparse"][sampled], moved["dense"][sampled])


@pytest.mark.parametrize("cls", HEADS)
def test_a_step_touches_only_the_sampled_rows(cls):
    n_labels = 5000
    X, Y = _data(rows=B)
    Y = sp.csr_matrix((Y.data, Y.indices, Y.indptr), shape=(B, n_labels))
    torch.manual_seed(0)
    head = cls(D, n_labels, {"sampler": "uniform", "num_negatives": 4}).double()
    head.prepare(X, Y)
    drawn = []
    sample = head.sampler.sample

    def recording_sample(*args, **kwargs):
        negatives, log_q = sample(*args, **kwargs)
        drawn.append(negatives)
        return negatives, log_q

    head.sampler.sample = recording_sample
    before = [q.detach().clone() for q in (head.output.weight, head.output.bias)]
    opt = build_optimizer(head.parameters(), TrainParams(optimizer="adagrad", lr=0.1))
    opt.zero_grad(set_to_none=True)
    head.loss(_hidden(X, False), LabelBatch.from_csr(Y)).backward()
    n_pairs = Y.nnz * (1 + 4)
    assert head.output.weight.grad._nnz() == n_pairs  # one gradient row per (pair, label), not n_labels
    opt.step()
    touched = torch.zeros(n_labels, dtype=torch.bool)
    touched[torch.from_numpy(Y.indices.astype(np.int64))] = True
    touched[drawn[0].flatten()] = True
    for q, old in zip((head.output.weight, head.output.bias), before):
        assert torch.equal(q[~touched], old[~touched])  # bit-identical
        assert (q[touched] != old[touched]).reshape(int(touched.sum()), -1).any(dim=1).all()


@pytest.mark.parametrize("cls", HEADS)
def test_saved_layout_is_unchanged_and_loads_across_paths(cls):
    sparse, dense, _, _ = _pair(cls)
    state = sparse.state_dict()
    assert list(state) == list(dense.state_dict())
    assert all(type(v) is torch.Tensor for v in state.values())  # plain tensors, no parameter subclass
    fresh = cls(D, C, {"sampler": "frequency", "num_negatives": 4, "sparse_gradients": False}).double()
    fresh.load_state_dict(state)
    for a, b in zip(fresh.state_dict().values(), state.values()):
        assert torch.equal(a, b)


def test_defaults_with_and_without_label_shards():
    assert NegativeSamplingHead(D, C, {"sampler": "uniform"}).sparse_gradients
    assert SampledSoftmaxHead(D, C, {"sampler": "uniform"}).sparse_gradients
    assert not NegativeSamplingHead(D, C, {"sampler": "uniform", "sparse_gradients": False}).sparse_gradients
    sharded = SampledSoftmaxHead(D, C, {"sampler": "uniform", "shard_labels": True})
    assert has_sparse_gradient(sharded.output.weight) and has_sparse_gradient(sharded.output.bias)
    off = NegativeSamplingHead(D, C, {"sampler": "uniform", "sparse_gradients": False, "shard_labels": True})
    assert not has_sparse_gradient(off.output.weight)


@pytest.mark.parametrize("head,sparse_features", [("sampled-softmax", False), ("negative-sampling", True)])
def test_estimator_trains_with_sparse_gradients(head, sparse_features):
    """End to end: Adam -> SparseAdam (MLP), Adagrad on the linear model (with the encoder's sparse layout too)."""
    rng = np.random.default_rng(0)
    X = sp.random(60, 20, density=0.2, format="csr", dtype=np.float32, random_state=1)
    Y = sp.csr_matrix((rng.random((60, C)) < 0.08).astype(np.float32))
    clf = XCClassifier(
        head=head,
        head_params={"sampler": "frequency"},
        hidden_sizes=() if sparse_features else (8,),
        sparse_gradients=sparse_features,
        epochs=2,
        batch_size=20,
        random_state=0,
    )
    clf.fit(X, Y)
    assert np.isfinite(clf.predict_topk(X[:5], 3)[1]).all()
