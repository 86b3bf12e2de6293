"""Device placement without a GPU (issue 9): no runtime tensor of sparsexc is created without a device.

A tensor factory called without ``device=`` (``torch.zeros``, ``arange``, ``tensor``, ``randperm``, ...)
lands on the CPU; on a CUDA model it then meets CUDA tensors and fails, or silently moves work to the CPU.
On a CPU-only machine such a call is invisible, so the runtime paths here run under
:class:`DevicelessFactories`, a ``TorchFunctionMode`` like the one behind ``with torch.device("meta"):``
(``torch.utils._device.DeviceContext``, which fills the ``device`` of every factory in
``torch.utils._device._device_constructors()``) with two differences:

* it fills ``device="meta"`` only for calls made directly from sparsexc's own source files, not for
  torch's (``torch.optim.Adam`` keeps its step counter on the CPU on purpose), not for the factories that
  take their device from a tensor argument (``as_tensor(tensor)``, ``sparse_csr_tensor(crow, col, values)``),
  not inside an explicit ``with torch.device(...)`` block (the tree sampler's CPU-only fit), and not while
  a module is constructed (an ``nn.Module.__init__`` on the stack: its tensors follow ``.to(device)``);
* it records where each such call was made, so a failure names the file and line.

A meta tensor meeting the real CPU tensors raises, or turns the result into a meta tensor; the test then
fails naming the head / sampler / path (the parametrisation) and the call site.

Not caught here (reviewed by reading instead): ``torch.from_numpy`` (always CPU, so it must be followed by
``.to(device)`` where it meets model tensors), tensors deliberately made with ``device="cpu"``, indexing a
device tensor with a CPU index (allowed on CUDA too), and CUDA-only kernels or dtypes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.utils._device as torch_device
from torch.autograd.function import BackwardCFunction
from torch.overrides import TorchFunctionMode

import sparsexc
from sparsexc._params import EncoderParams
from sparsexc.datasets.synthetic import synthetic
from sparsexc.heads import get_head, list_heads
from sparsexc.heads.labels import LabelBatch
from sparsexc.models import FeatureBatch, SparseEncoder, XCModel
from sparsexc.samplers import get_sampler, list_samplers

SRC = Path(sparsexc.__file__).resolve().parent
FACTORIES = torch_device._device_constructors()
# these take the device of a tensor argument when one is given (the data, or a sparse tensor's index tensors)
FROM_DATA = {
    torch.as_tensor,
    torch.asarray,
    torch.tensor,
    torch.sparse_coo_tensor,
    torch.sparse_csr_tensor,
    torch.sparse_csc_tensor,
    torch.sparse_bsr_tensor,
    torch.sparse_bsc_tensor,
    torch.sparse_compressed_tensor,
}
N_LABELS, N_FEATURES, ROWS = 40, 60, 48
SAMPLED = ("negative-sampling", "sampled-softmax")


class DevicelessFactories(TorchFunctionMode):
    """Give sparsexc's device-less tensor factories ``device="meta"`` and record where they were called."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in FACTORIES and kwargs.get("device") is None and torch_device.CURRENT_DEVICE is None:
            from_data = func in FROM_DATA and args and isinstance(args[0], torch.Tensor)
            caller = sys._getframe(1)  # the Python frame that called the factory
            path = Path(caller.f_code.co_filename).resolve()
            if not from_data and SRC in path.parents and not _constructing(caller):
                self.calls.append(f"torch.{func.__name__} at {path.relative_to(SRC.parent)}:{caller.f_lineno}")
                kwargs["device"] = "meta"
        return func(*args, **kwargs)


def _constructing(frame) -> bool:
    """Whether ``frame`` runs inside a module's ``__init__`` (construction, before ``.to(device)``)."""
    while frame is not None:
        if frame.f_code.co_name == "__init__" and isinstance(frame.f_locals.get("self"), torch.nn.Module):
            return True
        frame = frame.f_back
    return False


@pytest.fixture
def on_cpu(monkeypatch) -> Callable[[Callable[[], Any]], Any]:
    """``run(fn)``: call ``fn`` under :class:`DevicelessFactories`; fail naming every device-less call."""
    mode = DevicelessFactories()
    backward = BackwardCFunction.apply

    def backward_in_mode(self, *args):  # autograd runs custom backward()s without the forward's modes
        with mode:
            return backward(self, *args)

    monkeypatch.setattr(BackwardCFunction, "apply", backward_in_mode)

    def run(fn: Callable[[], Any]) -> Any:
        try:
            with mode:
                out = fn()
        except Exception as exc:
            pytest.fail(f"{type(exc).__name__}: {exc}\ndevice-less factory calls: {mode.calls or 'none'}")
        assert not mode.calls, f"device-less tensor factory calls in sparsexc: {sorted(set(mode.calls))}"
        return out

    return run


def _check(name: str, value: Any) -> None:
    """Every tensor in ``value`` (nested in tuples, lists, dicts, LabelBatch) is on the CPU and finite."""
    if isinstance(value, LabelBatch):
        value = {"indices": value.indices, "offsets": value.offsets}
    if isinstance(value, dict):
        for key, item in value.items():
            _check(f"{name}[{key!r}]", item)
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            _check(f"{name}[{i}]", item)
    elif isinstance(value, torch.Tensor):
        assert value.device.type == "cpu", f"{name} is on {value.device}, not on the model's device (cpu)"
        dense = value.to_dense() if value.layout != torch.strided else value
        if dense.is_floating_point():
            assert bool(torch.isfinite(dense).all()), f"{name} has non-finite entries"


@pytest.fixture(scope="module")
def data():
    return synthetic(ROWS, N_FEATURES, N_LABELS, labels_per_sample=2.0, nnz_per_sample=8, seed=0).train


def _head_params(name: str, variant: str | None) -> dict:
    if name in SAMPLED:  # the uniform sampler also takes the "one positive per row" path
        return {
            "sampler": variant,
            "num_negatives": 4,
            "tree_dim": 4,
            "positives": "one" if variant == "uniform" else "all",
        }
    if name == "label-embedding":
        return {"embedding_dim": 8, "ann": variant}
    return {}


def _variants(name: str) -> list[str | None]:
    """The samplers of the sampled heads, the top-k retrievals of the label-embedding head."""
    if name in SAMPLED:
        return list_samplers()
    return ["exact", "hnsw"] if name == "label-embedding" else [None]


# "mlp": dense hidden vectors; "linear": the sparse CSR features, with dense or row-sparse output gradients
ENCODERS = {
    "mlp": EncoderParams(hidden_sizes=(16,)),
    "linear": EncoderParams(hidden_sizes=()),
    "linear-sparse_gradients": EncoderParams(hidden_sizes=(), sparse_gradients=True),
}
HEAD_CASES = [
    pytest.param(name, variant, encoder, id="-".join([name, *([variant] if variant else []), encoder]))
    for name in list_heads()
    for variant in _variants(name)
    for encoder in ENCODERS
    if encoder != "mlp" or variant != "tree"
]  # the tree sampler reads raw features


@pytest.mark.parametrize("name, variant, encoder", HEAD_CASES)
def test_head_runtime_paths_create_no_deviceless_tensors(name, variant, encoder, data, on_cpu):
    if variant == "hnsw":
        pytest.importorskip("hnswlib")
    torch.manual_seed(0)
    encoder = SparseEncoder(N_FEATURES, ENCODERS[encoder])
    model = XCModel(encoder, get_head(name)(encoder.out_dim, N_LABELS, _head_params(name, variant))).to("cpu")
    head = model.head
    on_cpu(lambda: head.prepare(data.X, data.Y))  # the Trainer prepares the head after model.to(device)
    features, labels = FeatureBatch.from_csr(data.X, "cpu"), LabelBatch.from_csr(data.Y, "cpu")

    def train_step():
        model.train()
        model.zero_grad(set_to_none=True)
        loss = head.loss(model.hidden(features), labels)
        loss.backward()
        return loss

    _check("loss", on_cpu(train_step))
    for pname, q in model.named_parameters():
        if q.grad is not None:
            _check(f"grad of {pname}", q.grad)
    model.eval()
    with torch.no_grad():
        hidden = model.hidden(features)
        _check("scores", on_cpu(lambda: head.scores(hidden)))
        _check("topk", on_cpu(lambda: head.topk(hidden, 5)))
        _check("predict_sets", on_cpu(lambda: head.predict_sets(hidden)))
        _check("tune", on_cpu(lambda: head.tune(hidden, labels)))
        _check("predict_sets after tune", on_cpu(lambda: head.predict_sets(hidden)))
    # the numpy-facing model helpers batch the rows and move the results back
    on_cpu(lambda: (model.predict_topk(data.X, 3), model.predict_sets(data.X), model.tune(data.X, data.Y)))


@pytest.mark.parametrize("sampler", list_samplers())
@pytest.mark.parametrize("dense", [True, False], ids=["dense", "sparse-csr"])
def test_sampler_runtime_paths_create_no_deviceless_tensors(sampler, dense, data, on_cpu):
    s = get_sampler(sampler)(N_FEATURES, N_LABELS, {"dim": 4} if sampler == "tree" else None)
    on_cpu(lambda: s.fit(data.X, data.Y))  # fit runs after model.to(device) in the Trainer
    x = FeatureBatch.from_csr(data.X[:8], "cpu").to_sparse_csr()
    x = x.to_dense() if dense else x
    rows = torch.tensor([0, 3, 3, 7])
    generator = torch.Generator().manual_seed(0)
    labels, log_prob = on_cpu(lambda: s.sample(x, 5, rows=rows, generator=generator))
    _check("sample", (labels, log_prob))
    _check("log_prob", on_cpu(lambda: s.log_prob(x, labels, rows=rows)))
    _check("log_prob of numpy labels", on_cpu(lambda: s.log_prob(x, labels.numpy(), rows=rows.tolist())))
    _check("log_prob_all", on_cpu(lambda: s.log_prob_all(x)))


def test_ops_create_no_deviceless_tensors(on_cpu):
    from sparsexc.ops import SparsemaxAttention, sparsemax, sparsemax_loss
    from sparsexc.ops.affine import affine, pair_logits_of

    g = torch.Generator().manual_seed(0)
    z = torch.randn(6, 300, generator=g, requires_grad=True)  # 300 > the sort/bisect limits of "auto"
    two_labels = np.eye(6, 300, dtype=np.float32) + np.eye(6, 300, k=3, dtype=np.float32)
    target = LabelBatch.from_csr(sp.csr_matrix(two_labels))

    def run():
        outs = {
            f"sparsemax[{alg}]": sparsemax(z, algorithm=alg, k=4 if alg == "topk" else None)
            for alg in ("auto", "sort", "topk", "bisect")
        }
        outs["loss"] = sparsemax_loss(z, target)
        q = torch.randn(2, 5, 8, generator=g)
        outs["attention"] = SparsemaxAttention(causal=True)(q, q, q, key_mask=torch.rand(2, 5, generator=g) > 0.2)
        weight, bias = torch.randn(7, 300, generator=g, requires_grad=True), torch.zeros(7, requires_grad=True)
        outs["affine"] = affine(z, weight, bias)
        rows, ids = torch.tensor([0, 1, 5]), torch.tensor([[1, 2], [0, 6], [3, 3]])
        outs["pair_logits"] = pair_logits_of(weight, bias, z, rows, ids)
        sparse_z = (z.detach() * (z.detach() > 1)).to_sparse_csr()
        outs["pair_logits[csr]"] = pair_logits_of(weight, bias, sparse_z, rows, ids)
        sum(v.float().sum() for v in outs.values()).backward()
        return outs, z.grad, weight.grad

    _check("ops", on_cpu(run))


def test_latent_pieces_create_no_deviceless_tensors(on_cpu):
    from sparsexc import latent

    g = torch.Generator().manual_seed(0)
    length_logits = torch.randn(5, 3, generator=g, requires_grad=True)
    selection_logits = torch.randn(5, 12, generator=g, requires_grad=True)

    def run():
        out = latent.two_step_sample(length_logits, selection_logits, 0.5, 0.5, hard=True, generator=g)
        picks, order = latent.successive_softmax(selection_logits, 3, 0.5, generator=g)
        terms = {
            "mask": out.mask,
            "length": out.length,
            "picks": picks,
            "length_kl": latent.length_kl(length_logits),
            "selection_kl": latent.selection_kl(selection_logits, torch.zeros(12), order, length_logits),
            "mode_mask": latent.mode_mask(length_logits, selection_logits),
            "gumbel_softmax": latent.gumbel_softmax(selection_logits, 0.5, hard=True, generator=g),
            "gumbel_argmax": latent.gumbel_argmax(selection_logits, generator=g),
            "gumbel_topk": latent.gumbel_topk(selection_logits, 3, generator=g),
            "relaxed_topk": latent.relaxed_topk(selection_logits, 3, 0.5, generator=g),
            "topk_mask": latent.topk_mask(selection_logits, torch.tensor([1, 2, 3, 1, 2])),
            "pl_log_prob": latent.plackett_luce_log_prob(selection_logits, order),
            "subset_log_prob": latent.subset_log_prob(selection_logits, order),
        }
        sum(v.float().sum() for v in terms.values() if v.is_floating_point()).backward()
        return terms, length_logits.grad, selection_logits.grad

    _check("latent", on_cpu(run))


TRAIN_CASES = [
    pytest.param("softmax", False, False, "float32", id="softmax-mlp"),
    pytest.param("sigmoid", True, True, "float32", id="sigmoid-linear-sparse_gradients"),
    pytest.param("negative-sampling", True, True, "float32", id="negative-sampling-linear-sparse_gradients"),
    pytest.param("sampled-softmax", False, False, "bfloat16", id="sampled-softmax-mlp-bfloat16"),
    pytest.param("sdlgm", False, False, "bfloat16", id="sdlgm-mlp-bfloat16"),
    pytest.param("sparsemax", True, False, "bfloat16", id="sparsemax-linear-bfloat16"),
]


@pytest.mark.parametrize("name, linear, sparse_gradients, precision", TRAIN_CASES)
def test_trainer_epoch_creates_no_deviceless_tensors(
    name, linear, sparse_gradients, precision, data, on_cpu, monkeypatch
):
    from sparsexc.ops.sparse_grad import has_sparse_gradient
    from sparsexc.train import Trainer
    from sparsexc.train import trainer as trainer_module
    from sparsexc.train.optim import SplitOptimizer

    torch.manual_seed(0)
    encoder = SparseEncoder(
        N_FEATURES, EncoderParams(hidden_sizes=() if linear else (16,), sparse_gradients=sparse_gradients)
    )
    model = XCModel(encoder, get_head(name)(encoder.out_dim, N_LABELS, _head_params(name, "frequency")))
    trainer = Trainer(
        model,
        {
            "epochs": 1,
            "batch_size": 16,
            "device": "cpu",
            "precision": precision,
            "grad_clip": 1.0,
            "lr_schedule": "linear",
            "warmup_steps": 1,
        },
    )
    built, build = [], trainer_module.build_optimizer
    monkeypatch.setattr(trainer_module, "build_optimizer", lambda *a: built.append(build(*a)) or built[-1])
    history = on_cpu(lambda: trainer.fit(data.X, data.Y, data.X[:16], data.Y[:16]))
    assert np.isfinite(history[-1]["train_loss"])
    # sparse gradients (asked for, or the sampled heads' default): SparseAdam + Adam in a SplitOptimizer
    assert isinstance(built[0], SplitOptimizer) == any(has_sparse_gradient(q) for q in model.parameters())
    for pname, q in model.named_parameters():
        _check(pname, q.data)


def test_estimator_fit_and_predict_create_no_deviceless_tensors(data, on_cpu, tmp_path):
    from sparsexc.estimator import XCClassifier

    clf = XCClassifier(
        head="sampled-softmax",
        head_params={"sampler": "tree", "tree_dim": 4, "num_negatives": 4},
        hidden_sizes=(),
        epochs=1,
        batch_size=16,
        device="cpu",
        random_state=0,
    )
    on_cpu(lambda: clf.fit(data.X, data.Y, data.X[:16], data.Y[:16]))
    clf.save(tmp_path / "model")
    again = XCClassifier.load(tmp_path / "model", device="cpu")
    for est in (clf, again):
        predict = est.predict_topk, est.predict, est.decision_function
        topk, sets, scores = on_cpu(lambda predict=predict: [f(data.X) for f in predict])
        assert np.isfinite(topk[1]).all() and np.isfinite(scores).all() and sets.shape == data.Y.shape
