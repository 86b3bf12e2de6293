"""Data parallelism for the Trainer: DistributedDataParallel around the loss, each rank's share of a
global batch, and validation scored on row shards then gathered.

A model with a label-sharded output layer split over the ranks (:func:`sparsexc.distributed.label_sharded`:
a head built with ``shard_labels=True``) is trained model-parallel instead: every rank takes the whole
global batch, the replicated parameters (the encoder) are broadcast from rank 0 once and then stay equal
(their gradients come from the all-reduced hidden gradient, the same on every rank), no DDP, and the
gradient norm is the global one over all shards. Mixed precision: :func:`autocast`.

With one process every helper reduces to the plain single-process computation.
"""

from __future__ import annotations

import contextlib

import numpy as np
import scipy.sparse as sp
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sparsexc._params import PRECISIONS, _check_choice
from sparsexc.distributed.context import (
    all_gather_objects,
    all_reduce_sum,
    is_distributed,
    rank,
    shard_bounds,
    world_size,
)
from sparsexc.distributed.sharded import label_sharded, sharded_layers
from sparsexc.distributed.sparse_gradients import all_reduce_sparse_mean
from sparsexc.heads.labels import LabelBatch
from sparsexc.models.batch import FeatureBatch
from sparsexc.models.model import XCModel
from sparsexc.ops.sparse_grad import has_sparse_gradient
from sparsexc.train.optim import gradient_norm, scale_gradients

__all__ = [
    "AUTOCAST_DTYPES",
    "LossModule",
    "autocast",
    "average_sparse_gradients",
    "clip_gradients",
    "gathered_sets",
    "gathered_topk",
    "local_rows",
    "rank_randomness",
    "wrap_for_training",
]

# TrainParams.precision (sparsexc._params.PRECISIONS) -> the autocast dtype; float32 runs without autocast
AUTOCAST_DTYPES: dict[str, torch.dtype] = {"bfloat16": torch.bfloat16}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast(device.type, dtype)`` for ``precision`` "bfloat16"; nothing for "float32".

    Matrix products (the encoder, the output layer) then run in bfloat16; the heads compute their losses
    from float32 logits (``sparsexc.heads._label_sharded.full_precision``), and the weights, gradients and
    optimiser state stay float32.
    """
    _check_choice("autocast", "precision", precision, PRECISIONS)
    if precision not in AUTOCAST_DTYPES:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision])


class LossModule(nn.Module):
    """``weight * head.loss(encoder(features), labels)`` as a module, so DDP can wrap the whole step.

    The parameters are the model's own (no copy): the optimiser built on ``model.parameters()`` updates
    the weights DDP synchronises.
    """

    def __init__(self, model: XCModel, precision: str = "float32") -> None:
        super().__init__()
        self.model = model
        self.precision = precision

    def forward(self, features: FeatureBatch, labels: LabelBatch, weight: float) -> torch.Tensor:
        with autocast(features.indices.device, self.precision):
            loss = self.model.head.loss(self.model.hidden(features), labels)
        return loss.float() * weight


def wrap_for_training(model: XCModel, precision: str = "float32") -> nn.Module:
    """The loss module, inside ``DistributedDataParallel`` when a process group of several ranks runs.

    A label-sharded model is not wrapped (DDP would average different labels' gradients): its replicated
    parameters and buffers are broadcast from rank 0 instead, as DDP would do at construction.

    DDP broadcasts rank 0's weights at construction and averages the dense gradients over the ranks in
    backward (a linear model's sparse CSR input is data, not a parameter). Parameters with sparse COO
    gradients (:func:`sparsexc.ops.sparse_grad.has_sparse_gradient`: the sampled heads' output layer,
    ``sparse_gradients=True`` weights) are left out of DDP, whose buckets are dense: they are broadcast
    here, and :func:`average_sparse_gradients` averages their gradients after backward. A model with no
    dense trainable parameter left is not wrapped at all. ``device_ids`` stays None: inputs are built on
    the model's device already.
    """
    module = LossModule(model, precision)
    if not is_distributed():
        return module
    if label_sharded(model):
        sharded = {id(t) for layer in sharded_layers(model).values() for t in layer.parameters()}
        _broadcast([t for t in [*model.parameters(), *model.buffers()] if id(t) not in sharded])
        return module
    sparse = [name for name, t in module.named_parameters() if has_sparse_gradient(t)]
    if not sparse:
        return DistributedDataParallel(module, device_ids=None)
    if all(has_sparse_gradient(t) for t in module.parameters() if t.requires_grad):
        _broadcast([*module.parameters(), *module.buffers()])  # what DDP would have done at construction
        return module
    _broadcast([t for t in module.parameters() if has_sparse_gradient(t)])
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, sparse)
    return DistributedDataParallel(module, device_ids=None)


def _broadcast(tensors: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src=0)


def average_sparse_gradients(model: XCModel) -> None:
    r"""Replace every sparse COO gradient by its mean over the ranks (after backward, before the step).

    The parameters :func:`wrap_for_training` left out of DDP get here what DDP does for the others:
    :math:`\frac1S \sum_r g_r` (:func:`sparsexc.distributed.sparse_gradients.all_reduce_sparse_mean`), so
    with the loss weights of :func:`local_rows` the step is the one-process step on the global batch. A
    no-op in one process and for label-sharded models (whose shards hold different labels).
    """
    if not is_distributed() or label_sharded(model):
        return
    for t in model.parameters():
        if has_sparse_gradient(t):
            t.grad = all_reduce_sparse_mean(t.grad, t)


def clip_gradients(model: XCModel, max_norm: float | None) -> torch.Tensor:
    r"""L2 norm of the whole gradient (clipped to ``max_norm`` as ``clip_grad_norm_`` does, when given).

    For a label-sharded model the norm is the global one, :math:`\sqrt{\lVert g_{rep}\rVert^2 +
    \sum_r \lVert g_r \rVert^2}` (replicated gradients counted once, the shards' squares all-reduced), so
    every rank clips by the same factor as one process would.
    """
    if not label_sharded(model):
        return gradient_norm(model.parameters(), max_norm)
    sharded = {id(t) for layer in sharded_layers(model).values() for t in layer.parameters()}
    params = [q for q in model.parameters() if q.grad is not None]
    # gradient_norm coalesces sparse gradients (a sparse first layer of the replicated encoder) on the way
    norm = lambda qs: float(gradient_norm(qs)) if qs else 0.0  # noqa: E731
    local = norm([q for q in params if id(q) in sharded])
    replicated = norm([q for q in params if id(q) not in sharded])
    device = next(model.parameters()).device  # NCCL reduces CUDA tensors only
    total = torch.tensor((replicated**2 + all_reduce_sum(local**2, device)) ** 0.5, device=device)
    if max_norm is not None:
        scale_gradients(params, min(1.0, max_norm / (float(total) + 1e-6)))
    return total


def rank_randomness(
    seed: int, step: int, device: torch.device, replicated: bool = False
) -> contextlib.AbstractContextManager:
    """The random stream of one data-parallel training step: torch's generator seeded from
    ``(seed, step, rank)`` inside ``torch.random.fork_rng`` (the global stream is left as it was).

    Every rank starts from the same seed, so without this the ranks would draw the same numbers: rank r's
    i-th row would get the same sampled negatives and dropout mask as rank 0's i-th row, and a global batch
    would hold S copies of one draw. Seeding from the step also makes a resumed data-parallel run draw what an
    uninterrupted one would. Nothing changes in one process, or with ``replicated=True`` (label-sharded
    training, whose ranks must draw alike).
    """
    if replicated or not is_distributed() or world_size() == 1:
        return contextlib.nullcontext()
    return _seeded_stream(seed, step, device)


@contextlib.contextmanager
def _seeded_stream(seed: int, step: int, device: torch.device):  # type: ignore[no-untyped-def]
    derived = int(np.random.SeedSequence([seed, step, rank()]).generate_state(1, dtype=np.uint64)[0] >> 1)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(derived)
        yield


def local_rows(rows: np.ndarray, replicated: bool = False) -> tuple[np.ndarray, float]:
    r"""This rank's contiguous share of a global batch ``rows`` and the weight of its loss.

    With the per-row mean loss :math:`L_r` over the :math:`b_r` local rows and DDP averaging gradients
    over :math:`S` ranks, weighting rank r's loss by :math:`S b_r / B` makes the averaged gradient
    :math:`\sum_r (b_r / B) \nabla L_r`, the gradient of the mean over all B rows: the same step as one
    process with the whole batch (exactly so for heads whose loss is a mean over all rows of the batch).
    A rank left without rows (a last batch smaller than S) recomputes the first row with weight 0, so it
    still joins the gradient all-reduce. ``replicated=True`` (label-sharded training): every rank takes all
    of ``rows``, weight 1.
    """
    if replicated:
        return rows, 1.0
    start, stop = shard_bounds(len(rows))
    mine = rows[start:stop]
    if len(mine) == 0:
        return rows[:1], 0.0
    return mine, world_size() * len(mine) / len(rows)


def _shard(X: sp.csr_matrix) -> sp.csr_matrix:
    start, stop = shard_bounds(X.shape[0])
    return X[start:stop]


def gathered_topk(model: XCModel, X: sp.csr_matrix, k: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``model.predict_topk`` of all rows of ``X``, each rank scoring its contiguous row shard (a label-sharded
    model: every rank scores all rows, the shards' top-k merged by all-gather)."""
    if not is_distributed() or label_sharded(model):
        return model.predict_topk(X, k, batch_size=batch_size)
    parts = all_gather_objects(model.predict_topk(_shard(X), k, batch_size=batch_size))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def gathered_sets(model: XCModel, X: sp.csr_matrix, batch_size: int) -> sp.csr_matrix:
    """``model.predict_sets`` of all rows of ``X``, each rank scoring its contiguous row shard (a label-sharded
    model: every rank predicts all rows, the shards' sets gathered)."""
    if not is_distributed() or label_sharded(model):
        return model.predict_sets(X, batch_size=batch_size)
    parts = all_gather_objects(model.predict_sets(_shard(X), batch_size=batch_size))
    return sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=np.float32)
