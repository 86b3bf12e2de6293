"""``precision="bfloat16"``: forward pass and loss under torch.autocast (CPU here); training still works and
lands close to float32; bad values are refused with a ValueError naming the allowed ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsexc._params import TrainParams
from sparsexc.datasets.synthetic import synthetic
from sparsexc.estimator import XCClassifier
from sparsexc.heads import get_head
from sparsexc.heads.labels import LabelBatch
from sparsexc.train.data_parallel import autocast


@pytest.fixture(scope="module")
def data():
    return synthetic(400, 50, 10, labels_per_sample=1.5, nnz_per_sample=8, seed=2)


def _fit(data, precision, head="softmax", hidden=(32,), head_params=None):
    torch.set_num_threads(1)
    clf = XCClassifier(
        head=head,
        head_params=head_params,
        hidden_sizes=hidden,
        dropout=0.0,
        epochs=8,
        batch_size=32,
        lr=0.01,
        patience=None,
        device="cpu",
        precision=precision,
        random_state=0,
    )
    clf.fit(data.train.X, data.train.Y)
    return clf


@pytest.mark.parametrize(
    "head, hidden, head_params",
    [
        ("softmax", (32,), None),
        ("sampled-softmax", (32,), {"sampler": "frequency", "num_negatives": 5}),
        # the linear model on batches 16% dense: multiplied dense (models.encoder.dense_pays), so in bfloat16
        ("softmax", (), None),
    ],
)
def test_bfloat16_trains_close_to_float32(data, head, hidden, head_params):
    f32 = _fit(data, "float32", head, hidden, head_params)
    bf16 = _fit(data, "bfloat16", head, hidden, head_params)
    losses = [h["train_loss"] for h in bf16.history_]
    assert losses[-1] < 0.8 * losses[0]  # it learns
    assert losses != [h["train_loss"] for h in f32.history_]  # autocast really changed the arithmetic
    np.testing.assert_allclose(losses, [h["train_loss"] for h in f32.history_], rtol=0.05)
    p1 = bf16.score(data.test.X, data.test.Y), f32.score(data.test.X, data.test.Y)
    assert p1[0] > 0.3 and abs(p1[0] - p1[1]) <= 0.05
    assert bf16.model_.head.output.weight.dtype == torch.float32  # weights stay float32


def test_linear_model_keeps_its_sparse_products_in_float32():
    # sparse CSR @ dense has no bfloat16 CPU kernel: OutputLayer runs it with autocast off, so the run works
    # and is the float32 run (batches 4% dense: sparse products, models.encoder.dense_pays)
    data = synthetic(400, 200, 10, labels_per_sample=1.5, nnz_per_sample=8, seed=2)
    f32, bf16 = (_fit(data, p, "softmax", ()) for p in ("float32", "bfloat16"))
    assert [h["train_loss"] for h in bf16.history_] == [h["train_loss"] for h in f32.history_]


@pytest.mark.parametrize("name", ["softmax", "sampled-softmax", "negative-sampling", "sigmoid", "sparsemax"])
def test_losses_are_float32_under_autocast(name):
    torch.manual_seed(0)
    head = get_head(name)(16, 7, {"sampler": "uniform"} if "sampl" in name else None)
    labels = LabelBatch.from_csr(np.eye(6, 7, dtype=np.float32))
    with autocast(torch.device("cpu"), "bfloat16"):
        hidden = torch.nn.functional.linear(torch.randn(6, 16), torch.randn(16, 16))
        assert hidden.dtype == torch.bfloat16  # the encoder's matrix products run in bfloat16
        loss = head.loss(hidden, labels)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_bad_precision_is_a_clear_error(data):
    with pytest.raises(ValueError, match="precision='float16' is not allowed; choose one of 'float32', 'bfloat16'"):
        XCClassifier(precision="float16").fit(data.train.X, data.train.Y)
    with pytest.raises(ValueError, match="precision"):
        TrainParams(precision="fp8")
    with pytest.raises(ValueError, match="precision"):
        autocast(torch.device("cpu"), "half")
