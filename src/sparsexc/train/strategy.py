"""How a training run is spread over processes: one strategy object, chosen once per run.

* :class:`SingleProcess`: one process trains on every row and every label.
* :class:`DataParallel`: S ranks (a ``torch.distributed`` group), each with a whole model; every global batch
  is cut into S contiguous row shares, the loss runs under DistributedDataParallel and the gradients are
  averaged, so a step equals the one-process step on the whole batch.
* :class:`LabelSharded`: S ranks, each holding a slice of the output layer's labels (a head built with
  ``shard_labels=True``: :func:`sparsexc.distributed.label_sharded`); every rank takes the whole batch and
  the heads combine the shards by collectives (model parallel over the labels).

The :class:`~sparsexc.train.Trainer` (and the CLI) ask the strategy (:func:`choose_strategy`) what to do
instead of checking the mode themselves. The mechanics are in :mod:`sparsexc.train.data_parallel` and
:mod:`sparsexc.train.checkpoint`.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from sparsexc.distributed.context import all_reduce_sum, is_distributed, is_main, rank_device, world_size
from sparsexc.distributed.sharded import label_sharded
from sparsexc.models.model import XCModel
from sparsexc.train.checkpoint import has_label_shards, load_label_shards, prune_label_shards, save_label_shards
from sparsexc.train.data_parallel import (
    LossModule,
    average_sparse_gradients,
    batch_share,
    broadcast_replicated,
    gather_sets,
    gather_topk,
    seeded_stream,
    sharded_gradient_norm,
    wrap_data_parallel,
)
from sparsexc.train.optim import gradient_norm

__all__ = ["DataParallel", "LabelSharded", "SingleProcess", "Strategy", "choose_strategy"]


class Strategy:
    """The hooks the Trainer calls; each is the plain one-process computation here (:class:`SingleProcess`).

    Attributes
    ----------
    name : str
        ``"single process"``, ``"data parallel"`` or ``"label sharded"``.
    every_rank_saves : bool
        Whether every rank must take part in saving and predicting after training (label shards are
        gathered by collectives); otherwise rank 0 alone does.
    """

    name = "single process"
    every_rank_saves = False

    # -- placement and randomness ------------------------------------------------------------------------
    def device(self, device: torch.device) -> torch.device:
        """The device this rank trains on (``cuda:LOCAL_RANK`` in a group; see :func:`rank_device`)."""
        return rank_device(device)

    @property
    def is_main(self) -> bool:
        """Whether this rank talks: progress lines, the JSON log (rank 0)."""
        return is_main()

    def batch_rows(self, rows: np.ndarray) -> tuple[np.ndarray, float]:
        """The rows of the global batch ``rows`` this rank computes, and the weight of its loss."""
        return rows, 1.0

    def randomness(self, seed: int, step: int, device: torch.device) -> contextlib.AbstractContextManager:
        """The random stream of training step ``step``: torch's global generator, left alone."""
        return contextlib.nullcontext()

    # -- the step ------------------------------------------------------------------------------------------
    def wrap(self, model: XCModel, precision: str) -> nn.Module:
        """The module whose ``forward(features, labels, weight)`` is the weighted loss of a step."""
        return LossModule(model, precision)

    def reduce_gradients(self, model: XCModel) -> None:
        """Combine the ranks' gradients after backward, where the wrapped module has not (nothing here)."""

    def clip_gradients(self, model: XCModel, max_norm: float | None) -> torch.Tensor:
        """L2 norm of the whole gradient, clipped to ``max_norm`` when given (``clip_grad_norm_``'s rule)."""
        return gradient_norm(model.parameters(), max_norm)

    def batch_loss(self, loss: float, device: torch.device) -> float:
        r"""The global batch loss from this rank's weighted loss: :math:`\sum_r L_r / S`, the same on every
        rank (so a non-finite loss stops every rank at the same step)."""
        return all_reduce_sum(loss / world_size(), device)

    # -- validation -------------------------------------------------------------------------------------------
    def predict_topk(self, model: XCModel, X: sp.csr_matrix, k: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """``model.predict_topk`` of every row of ``X``, on every rank."""
        return model.predict_topk(X, k, batch_size=batch_size)

    def predict_sets(self, model: XCModel, X: sp.csr_matrix, batch_size: int) -> sp.csr_matrix:
        """``model.predict_sets`` of every row of ``X``, on every rank."""
        return model.predict_sets(X, batch_size=batch_size)

    # -- checkpoints ------------------------------------------------------------------------------------------
    @property
    def writes_checkpoints(self) -> bool:
        """Whether this rank takes part in writing a checkpoint (rank 0 writes ``checkpoint.pt``)."""
        return is_main()

    def save_shards(
        self,
        directory: str | os.PathLike[str],
        tensors: dict[str, Any],
        model: XCModel,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Move the label-sharded tensors of a checkpoint into this rank's shard file.

        Returns the tensors left for ``checkpoint.pt`` and the shard index for its state (None when the
        model holds no :class:`~sparsexc.distributed.ShardedOutputLayer`, even a one-shard one: see
        :func:`sparsexc.train.checkpoint.save_label_shards`).
        """
        if not has_label_shards(model):
            return tensors, None
        return save_label_shards(directory, tensors, model, optimizer, step)

    def prune_shards(self, directory: str | os.PathLike[str], index: dict[str, Any] | None) -> None:
        """Remove older checkpoints' shard folders once ``checkpoint.pt`` names ``index`` (rank 0)."""
        if index is not None:
            prune_label_shards(directory, index)

    def load_shards(
        self,
        directory: str | os.PathLike[str],
        tensors: dict[str, Any],
        index: dict[str, Any] | None,
        model: XCModel,
        optimizer: torch.optim.Optimizer,
    ) -> dict[str, Any]:
        """Put the rows of the sharded tensors this rank holds back into ``tensors`` (re-sharded from any
        number of ranks; see :func:`sparsexc.train.checkpoint.load_label_shards`)."""
        if index is None:
            return tensors
        return load_label_shards(directory, tensors, index, model, optimizer)


class SingleProcess(Strategy):
    """One process trains on every row and every label: the base hooks unchanged."""


class DataParallel(Strategy):
    """S ranks, a whole model each; a global batch is cut into S row shares (DDP averages the gradients)."""

    name = "data parallel"

    def batch_rows(self, rows: np.ndarray) -> tuple[np.ndarray, float]:
        """This rank's contiguous share and its loss weight :math:`S b_r / B` (:func:`batch_share`)."""
        return batch_share(rows)

    def randomness(self, seed: int, step: int, device: torch.device) -> contextlib.AbstractContextManager:
        """Each rank its own draws (negatives, dropout), a function of ``(seed, step, rank)``."""
        return seeded_stream(seed, step, device)

    def wrap(self, model: XCModel, precision: str) -> nn.Module:
        """The loss module inside DistributedDataParallel (:func:`wrap_data_parallel`)."""
        return wrap_data_parallel(LossModule(model, precision))

    def reduce_gradients(self, model: XCModel) -> None:
        """Average the sparse COO gradients, which DDP leaves out (:func:`average_sparse_gradients`)."""
        average_sparse_gradients(model)

    def predict_topk(self, model: XCModel, X: sp.csr_matrix, k: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Each rank scores its row shard; the top-k lists are gathered on every rank."""
        return gather_topk(model, X, k, batch_size)

    def predict_sets(self, model: XCModel, X: sp.csr_matrix, batch_size: int) -> sp.csr_matrix:
        """Each rank predicts its row shard; the sets are gathered on every rank."""
        return gather_sets(model, X, batch_size)


class LabelSharded(Strategy):
    """S ranks, each holding a slice of the labels; every rank takes the whole batch (model parallel).

    The ranks must draw alike (the replicated encoder's dropout), so torch's stream is not forked; the heads'
    collectives make the step and the predictions equal on every rank.
    """

    name = "label sharded"
    every_rank_saves = True

    def wrap(self, model: XCModel, precision: str) -> nn.Module:
        """The loss module, not in DDP (it would average different labels' gradients); rank 0's replicated
        weights are broadcast instead (:func:`broadcast_replicated`)."""
        if is_distributed():
            broadcast_replicated(model)
        return LossModule(model, precision)

    def clip_gradients(self, model: XCModel, max_norm: float | None) -> torch.Tensor:
        """The global norm over all shards (:func:`sharded_gradient_norm`), clipped alike on every rank."""
        return sharded_gradient_norm(model, max_norm)

    @property
    def writes_checkpoints(self) -> bool:
        """Every rank: each writes its shard file."""
        return True


def choose_strategy(model: nn.Module) -> Strategy:
    """The strategy of a run of ``model`` in the current process group (decided once, before training).

    Label sharded when ``model`` holds an output layer split over several ranks, else data parallel inside
    a process group of several ranks, else single process.
    """
    if label_sharded(model):
        return LabelSharded()
    if is_distributed():
        return DataParallel()
    return SingleProcess()
