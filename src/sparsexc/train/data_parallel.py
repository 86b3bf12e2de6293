"""The mechanics of multi-process training: the loss as a module, DistributedDataParallel around it,
broadcasts, each rank's share of a global batch, per-rank random streams, sparse-gradient averaging, the
global gradient norm of label shards, and validation scored on row shards then gathered.

Which of these a run uses is decided once, by the training strategy
(:func:`sparsexc.train.strategy.choose_strategy`); the helpers here do not check the mode themselves.
Mixed precision: :func:`autocast`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sparsexc._params import PRECISIONS, _check_choice
from sparsexc.core.labels import LabelBatch
from sparsexc.distributed.context import all_gather_objects, all_reduce_sum, rank, shard_bounds, world_size
from sparsexc.distributed.sharded import sharded_layers
from sparsexc.distributed.sparse_gradients import all_reduce_sparse_mean
from sparsexc.models.batch import FeatureBatch
from sparsexc.models.model import XCModel
from sparsexc.ops.sparse_grad import has_sparse_gradient
from sparsexc.train.optim import gradient_norm, scale_gradients

__all__ = [
    "AUTOCAST_DTYPES",
    "LossModule",
    "autocast",
    "average_sparse_gradients",
    "batch_share",
    "broadcast_replicated",
    "gather_sets",
    "gather_topk",
    "seeded_stream",
    "sharded_gradient_norm",
    "wrap_data_parallel",
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
    """``weight * model.loss(features, labels)`` as a module, so DDP can wrap the whole step.

    The parameters are the model's own (no copy): the optimiser built on ``model.parameters()`` updates
    the weights DDP synchronises.
    """

    def __init__(self, model: XCModel, precision: str = "float32") -> None:
        super().__init__()
        self.model = model
        self.precision = precision

    def forward(self, features: FeatureBatch, labels: LabelBatch, weight: float) -> torch.Tensor:
        with autocast(features.indices.device, self.precision):
            loss = self.model.loss(features, labels)
        return loss.float() * weight


def wrap_data_parallel(module: LossModule) -> nn.Module:
    """``module`` inside ``DistributedDataParallel`` (a process group of several ranks is running).

    DDP broadcasts rank 0's weights at construction and averages the dense gradients over the ranks in
    backward (a linear model's sparse CSR input is data, not a parameter). Parameters with sparse COO
    gradients (:func:`sparsexc.ops.sparse_grad.has_sparse_gradient`: the sampled heads' output layer,
    ``sparse_gradients=True`` weights) are left out of DDP, whose buckets are dense: they are broadcast
    here, and :func:`average_sparse_gradients` averages their gradients after backward. A model with no
    dense trainable parameter left is not wrapped at all. ``device_ids`` stays None: inputs are built on
    the model's device already.
    """
    sparse = [name for name, t in module.named_parameters() if has_sparse_gradient(t)]
    if not sparse:
        return DistributedDataParallel(module, device_ids=None)
    if all(has_sparse_gradient(t) for t in module.parameters() if t.requires_grad):
        _broadcast([*module.parameters(), *module.buffers()])  # what DDP would have done at construction
        return module
    _broadcast([t for t in module.parameters() if has_sparse_gradient(t)])
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, sparse)
    return DistributedDataParallel(module, device_ids=None)


def broadcast_replicated(model: XCModel) -> None:
    """Broadcast rank 0's replicated parameters and buffers (all but the label shards) to every rank.

    What DDP would do at construction, for a label-sharded model, which is not wrapped in DDP (DDP would
    average different labels' gradients). The replicated parameters then stay equal: their gradients come
    from the all-reduced hidden gradient, the same on every rank.
    """
    _broadcast([t for t in [*model.parameters(), *model.buffers()] if id(t) not in _sharded_ids(model)])


def _sharded_ids(model: XCModel) -> set[int]:
    return {id(t) for layer in sharded_layers(model).values() for t in layer.parameters()}


def _broadcast(tensors: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src=0)


def average_sparse_gradients(model: XCModel) -> None:
    r"""Replace every sparse COO gradient by its mean over the ranks (after backward, before the step).

    The parameters :func:`wrap_data_parallel` left out of DDP get here what DDP does for the others:
    :math:`\frac1S \sum_r g_r` (:func:`sparsexc.distributed.sparse_gradients.all_reduce_sparse_mean`), so
    with the loss weights of :func:`batch_share` the step is the one-process step on the global batch.
    """
    for t in model.parameters():
        if has_sparse_gradient(t):
            t.grad = all_reduce_sparse_mean(t.grad, t)


def sharded_gradient_norm(model: XCModel, max_norm: float | None) -> torch.Tensor:
    r"""Global L2 norm of a label-sharded model's gradient (clipped to ``max_norm`` when given).

    :math:`\sqrt{\lVert g_{rep}\rVert^2 + \sum_r \lVert g_r \rVert^2}`: replicated gradients counted once,
    the shards' squares all-reduced, so every rank clips by the same factor as one process would
    (``clip_grad_norm_``'s rule :math:`\min(1, \text{max\_norm} / (\lVert g \rVert + 10^{-6}))`).
    """
    sharded = _sharded_ids(model)
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


@contextlib.contextmanager
def seeded_stream(seed: int, step: int, device: torch.device) -> Iterator[None]:
    """Torch's generator seeded from ``(seed, step, rank)`` inside ``torch.random.fork_rng`` (the global
    stream is left as it was): the random stream of one data-parallel training step.

    Every rank starts from the same seed, so without this the ranks would draw the same numbers: rank r's
    i-th row would get the same sampled negatives and dropout mask as rank 0's i-th row, and a global batch
    would hold S copies of one draw. Seeding from the step also makes a resumed data-parallel run draw what an
    uninterrupted one would.
    """
    derived = int(np.random.SeedSequence([seed, step, rank()]).generate_state(1, dtype=np.uint64)[0] >> 1)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(derived)
        yield


def batch_share(rows: np.ndarray) -> tuple[np.ndarray, float]:
    r"""This rank's contiguous share of a global batch ``rows`` and the weight of its loss.

    With the per-row mean loss :math:`L_r` over the :math:`b_r` local rows and DDP averaging gradients
    over :math:`S` ranks, weighting rank r's loss by :math:`S b_r / B` makes the averaged gradient
    :math:`\sum_r (b_r / B) \nabla L_r`, the gradient of the mean over all B rows: the same step as one
    process with the whole batch (exactly so for heads whose loss is a mean over all rows of the batch).
    A rank left without rows (a last batch smaller than S) recomputes the first row with weight 0, so it
    still joins the gradient all-reduce.
    """
    start, stop = shard_bounds(len(rows))
    mine = rows[start:stop]
    if len(mine) == 0:
        return rows[:1], 0.0
    return mine, world_size() * len(mine) / len(rows)


def _shard(X: sp.csr_matrix) -> sp.csr_matrix:
    start, stop = shard_bounds(X.shape[0])
    return X[start:stop]


def gather_topk(model: XCModel, X: sp.csr_matrix, k: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``model.predict_topk`` of all rows of ``X``, each rank scoring its contiguous row shard, gathered on
    every rank in row order."""
    parts = all_gather_objects(model.predict_topk(_shard(X), k, batch_size=batch_size))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def gather_sets(model: XCModel, X: sp.csr_matrix, batch_size: int) -> sp.csr_matrix:
    """``model.predict_sets`` of all rows of ``X``, each rank scoring its contiguous row shard, gathered on
    every rank in row order."""
    parts = all_gather_objects(model.predict_sets(_shard(X), batch_size=batch_size))
    return sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=np.float32)
