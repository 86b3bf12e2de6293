"""Data parallelism for the Trainer: DistributedDataParallel around the loss, each rank's share of a
global batch, and validation scored on row shards then gathered.

With one process every helper reduces to the plain single-process computation.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sparsexc.distributed.context import all_gather_objects, is_distributed, shard_bounds, world_size
from sparsexc.heads.labels import LabelBatch
from sparsexc.models.batch import FeatureBatch
from sparsexc.models.model import XCModel

__all__ = ["LossModule", "wrap_for_training", "local_rows", "gathered_topk", "gathered_sets"]


class LossModule(nn.Module):
    """``weight * head.loss(encoder(features), labels)`` as a module, so DDP can wrap the whole step.

    The parameters are the model's own (no copy): the optimiser built on ``model.parameters()`` updates
    the weights DDP synchronises.
    """

    def __init__(self, model: XCModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: FeatureBatch, labels: LabelBatch, weight: float) -> torch.Tensor:
        return self.model.head.loss(self.model.hidden(features), labels) * weight


def wrap_for_training(model: XCModel) -> nn.Module:
    """The loss module, inside ``DistributedDataParallel`` when a process group of several ranks runs.

    DDP broadcasts rank 0's weights at construction and averages the gradients over the ranks in
    backward. Its parameters are all dense (a linear model's sparse CSR input is data, not a parameter;
    the encoder's EmbeddingBag has a dense gradient), so gloo and NCCL all-reduce them as usual.
    ``device_ids`` stays None: inputs are built on the model's device already.
    """
    module = LossModule(model)
    if not is_distributed():
        return module
    return DistributedDataParallel(module, device_ids=None)


def local_rows(rows: np.ndarray) -> tuple[np.ndarray, float]:
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


def gathered_topk(model: XCModel, X: sp.csr_matrix, k: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``model.predict_topk`` of all rows of ``X``, each rank scoring its contiguous row shard."""
    if not is_distributed():
        return model.predict_topk(X, k, batch_size=batch_size)
    parts = all_gather_objects(model.predict_topk(_shard(X), k, batch_size=batch_size))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def gathered_sets(model: XCModel, X: sp.csr_matrix, batch_size: int) -> sp.csr_matrix:
    """``model.predict_sets`` of all rows of ``X``, each rank scoring its contiguous row shard."""
    if not is_distributed():
        return model.predict_sets(X, batch_size=batch_size)
    parts = all_gather_objects(model.predict_sets(_shard(X), batch_size=batch_size))
    return sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=np.float32)
