"""Row-sparse gradients (EncoderParams.sparse_gradients) against the dense path and brute-force references."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sparsexc._params import EncoderParams, TrainParams
from sparsexc.estimator import XCClassifier
from sparsexc.heads import SigmoidHead, SoftmaxHead, get_head
from sparsexc.heads.labels import LabelBatch
from sparsexc.models import FeatureBatch, SparseEncoder, XCModel
from sparsexc.models.sparse_output import SparseGradientOutputLayer, has_sparse_gradient
from sparsexc.train import Trainer
from sparsexc.train.optim import SplitOptimizer, build_optimizer, gradient_norm

N_FEATURES, N_LABELS = 30, 9


def _data(n=24, seed=0, density=0.15):
    X = sp.random(n, N_FEATURES, density=density, format="csr", dtype=np.float64, random_state=seed)
    X = sp.csr_matrix(sp.diags((np.arange(n) != 5).astype(np.float64)) @ X)  # row 5 has no feature
    X.eliminate_zeros()
    Y = sp.random(n, N_LABELS, density=0.25, format="csr", random_state=seed + 1)
    Y.data[:] = 1.0
    return X, sp.csr_matrix(Y, dtype=np.float32)


def _batch64(X):
    # FeatureBatch.from_csr casts to float32; the float64 comparisons build the batch directly
    return FeatureBatch(
        torch.from_numpy(X.indices.astype(np.int64)),
        torch.from_numpy(X.indptr.astype(np.int64)),
        torch.from_numpy(X.data.astype(np.float64)),
        X.shape[0],
        X.shape[1],
    )


def _model(head, sparse, hidden_sizes=(), seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    encoder = SparseEncoder(N_FEATURES, EncoderParams(hidden_sizes=hidden_sizes, sparse_gradients=sparse))
    model = XCModel(encoder, get_head(head)(encoder.out_dim, N_LABELS))
    return model.to(dtype)


def _dense_grads(model):
    out = {}
    for name, q in model.named_parameters():
        g = q.grad.to_dense() if q.grad.is_sparse else q.grad
        out[name.replace("weight_t", "weight")] = g.t() if name.endswith("weight_t") else g
    return out


@pytest.mark.parametrize("head", ["sigmoid", "softmax", "label-embedding"])
def test_linear_loss_and_gradient_equal_the_dense_path_in_float64(head):
    X, Y = _data()
    labels = LabelBatch.from_csr(Y)
    models = []
    for sparse in (False, True):
        model = _model(head, sparse)
        model.head.prepare(sp.csr_matrix(X, dtype=np.float32), Y)
        loss = model.head.loss(model.encoder(_batch64(X)), labels)
        loss.backward()
        models.append((model, float(loss.detach())))
    (dense, loss_d), (sparse, loss_s) = models
    assert isinstance(sparse.head.output, SparseGradientOutputLayer)
    assert sparse.head.output.weight_t.grad.is_sparse
    assert loss_s == pytest.approx(loss_d, rel=1e-13)
    gd, gs = _dense_grads(dense), _dense_grads(sparse)
    assert gd.keys() == gs.keys()
    for name in gd:
        torch.testing.assert_close(gs[name], gd[name], rtol=1e-12, atol=1e-14)


def test_sparse_gradient_is_the_brute_force_product_on_the_present_rows():
    # dL/dV = X^T dL/dZ for Z = X V + b, computed with numpy on dense X; rows of absent features are not stored
    X, _ = _data(seed=3)
    layer = SparseGradientOutputLayer(N_FEATURES, N_LABELS).double()
    hidden = _batch64(X).to_sparse_csr()
    Z = layer(hidden)
    dZ = torch.from_numpy(np.random.default_rng(0).normal(size=Z.shape))
    (Z * dZ).sum().backward()
    grad = layer.weight_t.grad.coalesce()
    expected = X.toarray().T @ dZ.numpy()
    np.testing.assert_allclose(grad.to_dense().numpy(), expected, rtol=1e-12, atol=1e-14)
    assert set(grad.indices()[0].tolist()) == set(np.unique(X.indices).tolist())
    np.testing.assert_allclose(
        Z.detach().numpy(), X.toarray() @ layer.weight_t.detach().numpy() + layer.bias.detach().numpy()
    )


def test_mlp_first_layer_sparse_gradient_equals_the_dense_path():
    X, Y = _data(seed=4)
    grads = []
    for sparse in (False, True):
        model = _model("softmax", sparse, hidden_sizes=(6,))
        model.eval()  # no dropout difference (the default dropout is 0 anyway)
        model.head.loss(model.encoder(_batch64(X)), LabelBatch.from_csr(Y)).backward()
        grads.append(_dense_grads(model))
        assert model.encoder.embedding.weight.grad.is_sparse == sparse
        assert has_sparse_gradient(model.encoder.embedding.weight) == sparse
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-12, atol=1e-14)


def test_same_seed_same_model_and_state_dict_keeps_the_dense_layout():
    a, b, dense = _model("sigmoid", True), _model("sigmoid", True), _model("sigmoid", False)
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(x, y)
    # the sparse model's state dict has the dense keys and shapes and the same initial weights
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in dense.state_dict().items()}
    for k, v in dense.state_dict().items():
        assert torch.equal(a.state_dict()[k], v)
    # both directions load
    with torch.no_grad():
        a.head.output.weight_t.add_(1.0)
    dense.load_state_dict(a.state_dict())
    torch.testing.assert_close(dense.head.output.weight, a.head.output.weight_t.t())
    c = _model("sigmoid", True, seed=5)
    c.load_state_dict(dense.state_dict())
    assert torch.equal(c.head.output.weight_t, a.head.output.weight_t)


def _train(sparse, optimizer, X, Y, batch_size=8, epochs=3, **kw):
    model = _model("sigmoid", sparse, dtype=torch.float32)
    params = TrainParams(epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=0.05, device="cpu", **kw)
    trainer = Trainer(model, params)
    trainer.fit(X, Y)
    return model, trainer


@pytest.mark.parametrize("optimizer", ["adagrad", "sgd"])
def test_adagrad_and_sgd_train_the_same_model_sparse_or_dense(optimizer):
    # a zero gradient row changes nothing in Adagrad or plain SGD: the sparse step is the dense step
    X, Y = _data(n=40, seed=6)
    X = sp.csr_matrix(X, dtype=np.float32)
    dense, td = _train(False, optimizer, X, Y, grad_clip=0.5)
    sparse, ts = _train(True, optimizer, X, Y, grad_clip=0.5)
    assert ts.last_grad_norm == pytest.approx(td.last_grad_norm, rel=1e-5)
    assert [h["train_loss"] for h in ts.history] == pytest.approx([h["train_loss"] for h in td.history], rel=1e-5)
    for k, v in dense.state_dict().items():
        torch.testing.assert_close(sparse.state_dict()[k], v, rtol=1e-5, atol=1e-6)


def test_sparse_adam_equals_adam_when_every_feature_is_in_every_batch():
    X, Y = _data(n=32, seed=7)
    X = sp.csr_matrix(X.toarray() + 0.1, dtype=np.float32)  # every feature stored in every row
    dense, _ = _train(False, "adam", X, Y)
    sparse, trainer = _train(True, "adam", X, Y)
    assert isinstance(build_optimizer(sparse.parameters(), trainer.params), SplitOptimizer)
    # float32 rounding differs (SparseAdam adds eps to sqrt(v) before the bias correction, Adam after), and
    # Adam's m / sqrt(v) amplifies it where gradients are near 0: 3e-5 here, against 0.14 in the lazy case below
    for k, v in dense.state_dict().items():
        torch.testing.assert_close(sparse.state_dict()[k], v, rtol=1e-3, atol=2e-4)


def test_sparse_adam_is_lazy_adam_when_features_are_missing():
    # Lazy Adam: the row of a feature absent from the batch is left alone; dense Adam keeps moving it with its
    # decaying first moment. After training the two differ, but only in the rows of such features.
    X, Y = _data(n=32, seed=8, density=0.1)
    X = sp.csr_matrix(X, dtype=np.float32)
    dense, _ = _train(False, "adam", X, Y, epochs=2)
    sparse, _ = _train(True, "adam", X, Y, epochs=2)
    again, _ = _train(True, "adam", X, Y, epochs=2)
    for k, v in sparse.state_dict().items():  # same seed, same model
        assert torch.equal(again.state_dict()[k], v)
    diff = (sparse.head.output.weight - dense.head.output.weight).detach().abs().max(dim=0).values  # per feature
    assert float(diff.max()) > 1e-2  # not the same optimiser (0.14 at this seed)
    never = np.setdiff1d(np.arange(N_FEATURES), X.indices)  # features in no row: zero gradient for both
    initial = _model("sigmoid", False, dtype=torch.float32).head.output.weight
    torch.testing.assert_close(sparse.head.output.weight[:, never], initial[:, never])
    torch.testing.assert_close(dense.head.output.weight[:, never], initial[:, never])


def test_split_optimizer_state_dict_round_trips_through_torch_save():
    X, Y = _data(n=40, seed=9)
    model = _model("softmax", True)
    params = TrainParams(optimizer="adam", lr=0.05)
    optimizer = build_optimizer(model.parameters(), params)
    labels = LabelBatch.from_csr(Y)

    def step(m, opt):
        opt.zero_grad()
        m.head.loss(m.encoder(_batch64(X)), labels).backward()
        opt.step()

    for _ in range(3):
        step(model, optimizer)
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    twin = copy.deepcopy(model)
    twin_optimizer = build_optimizer(twin.parameters(), params)
    twin_optimizer.load_state_dict(torch.load(buffer, weights_only=True))
    step(model, optimizer)
    step(twin, twin_optimizer)
    for k, v in model.state_dict().items():
        assert torch.equal(twin.state_dict()[k], v)
    with pytest.raises(ValueError, match="sparse_gradients"):  # a state from another split of the parameters
        SplitOptimizer(None, torch.optim.SparseAdam([twin.head.output.weight_t])).load_state_dict(
            optimizer.state_dict()
        )


def test_gradient_norm_counts_duplicate_sparse_indices_once():
    w = torch.nn.Parameter(torch.zeros(5, 2))
    w.grad = torch.sparse_coo_tensor([[1, 3, 1]], torch.tensor([[1.0, 2.0], [2.0, 0.0], [2.0, 2.0]]), (5, 2))
    dense = w.grad.to_dense()
    assert float(gradient_norm([w])) == pytest.approx(float(dense.norm()))
    norm = gradient_norm([w], max_norm=1.0)
    assert float(norm) == pytest.approx(float(dense.norm()))
    assert float(w.grad.to_dense().norm()) == pytest.approx(1.0, rel=1e-5)


def test_unsupported_optimiser_settings_name_the_argument():
    model = _model("sigmoid", True)
    with pytest.raises(ValueError, match="momentum"):
        build_optimizer(model.parameters(), TrainParams(optimizer="sgd", momentum=0.9))
    with pytest.raises(ValueError, match="weight_decay"):
        SplitOptimizer(None, torch.optim.SGD([model.head.output.weight_t], lr=0.1), weight_decay=-1.0)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "adagrad", "sgd"])
def test_lazy_weight_decay_equals_dense_weight_decay_when_every_row_is_touched(optimizer):
    # every feature in every row: every row of the feature table is touched at every step, so the lazy decay
    # must reproduce torch's own weight_decay of the dense optimiser (coupled L2; decoupled for AdamW)
    X, Y = _data(n=32, seed=11)
    X = sp.csr_matrix(X.toarray() + 0.1, dtype=np.float32)
    dense, _ = _train(False, optimizer, X, Y, weight_decay=0.3)
    sparse, trainer = _train(True, optimizer, X, Y, weight_decay=0.3)
    undecayed, _ = _train(True, optimizer, X, Y)
    assert isinstance(build_optimizer(sparse.parameters(), trainer.params), SplitOptimizer)
    for k, v in dense.state_dict().items():
        torch.testing.assert_close(sparse.state_dict()[k], v, rtol=1e-3, atol=2e-4)
    shrink = sparse.head.output.weight.detach().norm() / undecayed.head.output.weight.detach().norm()
    assert float(shrink) < 0.97  # the decay did act (guards against a no-op passing the comparison above)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_lazy_weight_decay_one_step_brute_force(optimizer):
    # one step by hand: touched rows r get w_r - lr (g_r + wd w_r) (SGD, coupled L2) or, AdamW, the shrink
    # (1 - lr wd) w_r and then SparseAdam's first step -lr c g_r / (c |g_r| + eps), c = sqrt(1 - beta2)
    # (m = (1 - beta1) g, v = (1 - beta2) g^2, bias-corrected); rows of features absent from the batch stay
    lr, wd = 0.1, 0.5
    X, Y = _data(n=6, seed=12, density=0.2)
    model = _model("sigmoid", True)
    w0 = model.head.output.weight_t.detach().clone()
    optimizer_ = build_optimizer(model.parameters(), TrainParams(optimizer=optimizer, lr=lr, weight_decay=wd))
    model.head.loss(model.encoder(_batch64(X)), LabelBatch.from_csr(Y)).backward()
    g = model.head.output.weight_t.grad.to_dense().clone()
    optimizer_.step()
    w1 = model.head.output.weight_t.detach()
    touched = np.unique(X.indices)
    untouched = np.setdiff1d(np.arange(N_FEATURES), touched)
    assert len(touched) and len(untouched)
    if optimizer == "sgd":
        expected = w0[touched] - lr * (g[touched] + wd * w0[touched])
    else:
        c = (1 - 0.999) ** 0.5
        expected = (1 - lr * wd) * w0[touched] - lr * c * g[touched] / (c * g[touched].abs() + 1e-8)
    torch.testing.assert_close(w1[touched], expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(w1[untouched], w0[untouched])


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_lazy_weight_decay_on_element_sparse_gradients(optimizer):
    # a sampled head on the linear model reads single weights (pair, feature): its gradient is element-sparse
    # (sparse_dim 2), and the decay acts on exactly those weights, once each, as in the row-sparse test above
    from sparsexc.heads import NegativeSamplingHead

    lr, wd = 0.1, 0.5
    X, Y = _data(n=6, seed=12, density=0.2)
    torch.manual_seed(0)
    head = NegativeSamplingHead(N_FEATURES, Y.shape[1], {"sampler": "uniform", "num_negatives": 3})
    head.prepare(X, Y)
    w0 = head.output.weight.detach().clone()
    optimizer_ = build_optimizer(head.parameters(), TrainParams(optimizer=optimizer, lr=lr, weight_decay=wd))
    head.loss(FeatureBatch.from_csr(X, "cpu").to_sparse_csr(), LabelBatch.from_csr(Y)).backward()
    grad = head.output.weight.grad.coalesce()
    assert grad.sparse_dim() == 2
    g = grad.to_dense()
    optimizer_.step()
    w1 = head.output.weight.detach()
    touched = torch.zeros_like(w0, dtype=torch.bool)
    touched[grad.indices()[0], grad.indices()[1]] = True
    assert touched.any() and not touched.all()
    if optimizer == "sgd":
        expected = w0 - lr * (g + wd * w0)
    else:
        c = (1 - 0.999) ** 0.5
        expected = (1 - lr * wd) * w0 - lr * c * g / (c * g.abs() + 1e-8)
    torch.testing.assert_close(w1[touched], expected[touched], rtol=1e-6, atol=1e-6)
    assert torch.equal(w1[~touched], w0[~touched])


def test_estimator_exposes_the_option_and_save_load_round_trips(tmp_path):
    X, Y = _data(n=60, seed=10)
    X = sp.csr_matrix(X, dtype=np.float32)
    # Adagrad: the sparse and dense runs are the same optimiser, so the two fitted models agree
    kw = dict(
        head="sigmoid",
        hidden_sizes=(),
        epochs=2,
        batch_size=16,
        validation_fraction=0.2,
        device="cpu",
        optimizer="adagrad",
    )
    clf = XCClassifier(sparse_gradients=True, **kw).fit(X, Y)
    assert isinstance(clf.model_.head.output, SparseGradientOutputLayer)
    dense = XCClassifier(sparse_gradients=False, **kw).fit(X, Y)
    np.testing.assert_allclose(clf.predict_proba(X), dense.predict_proba(X), rtol=1e-4, atol=1e-5)
    clf.save(tmp_path / "m")
    loaded = XCClassifier.load(tmp_path / "m")
    assert loaded.get_params()["sparse_gradients"] is True
    assert isinstance(loaded.model_.head.output, SparseGradientOutputLayer)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_heads_without_a_raw_feature_layer_are_left_alone():
    model = _model("sigmoid", True, hidden_sizes=(4,))
    assert type(model.head.output) is not SparseGradientOutputLayer
    assert isinstance(SigmoidHead(3, 2).output, torch.nn.Module) and SoftmaxHead(3, 2).output.weight.shape == (2, 3)


def test_lazy_zeros_take_memory_only_where_written():
    from sparsexc.train.optim import lazy_zeros_like

    def rss_bytes():
        return int(open("/proc/self/statm").read().split()[1]) * 4096  # Linux: resident pages

    before = rss_bytes()
    zeros = lazy_zeros_like(torch.empty(25_000, 4_000))  # 400 MB of float32
    zeros[:10].add_(1.0)
    assert rss_bytes() - before < 50e6
    assert zeros.dtype == torch.float32 and float(zeros.sum()) == 40_000.0
    assert lazy_zeros_like(torch.ones(3, 2, dtype=torch.float64)).dtype == torch.float64


def test_cli_flag_reaches_the_estimator(tmp_path):
    from click.testing import CliRunner

    from sparsexc.cli._training import estimator_kwargs
    from sparsexc.cli.train_cmd import train

    assert estimator_kwargs({"sparse_gradients": True}, tmp_path, verbose=False)["sparse_gradients"] is True
    assert "sparse_gradients" not in estimator_kwargs({"sparse_gradients": None}, tmp_path, verbose=False)
    assert "--sparse-gradients / --dense-gradients" in CliRunner().invoke(train, ["--help"]).output
