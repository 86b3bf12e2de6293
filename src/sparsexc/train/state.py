"""The state of a training run, which is also its checkpoint (``checkpoint.json`` and the JSON inside
``checkpoint.pt``, next to the tensors: weights, optimiser, scheduler, random generators, best weights)."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from sparsexc.errors import ConfigurationError

__all__ = ["TrainState", "restore_rng", "rng_tensors"]

# the settings a checkpoint must share with the run that resumes it: they fix the row order of every epoch
RUN_IDENTITY = ("n_rows", "batch_size", "seed")


@dataclass
class TrainState:
    """Where a run stands: its position, the loss so far, the history and early stopping's bookkeeping.

    :meth:`to_dict` is the checkpoint's JSON state, with the same keys the old dict state had (so
    checkpoints written before this class resume, and tools reading ``checkpoint.json`` keep working).

    Attributes
    ----------
    n_rows, batch_size, seed : int
        The run's identity (:data:`RUN_IDENTITY`): a checkpoint resumes only a run that has the same.
    epoch : int
        Epochs completed.
    step_in_epoch : int
        Steps completed in the current epoch (0 at an epoch boundary).
    global_step : int
        Optimiser steps since the start of the run.
    loss_sum : float
        Sum of the batch losses of the current epoch so far.
    history : list of dict
        One record per completed epoch (see :class:`sparsexc.train.Trainer`).
    best_metric : float or None
        The best validation value so far, and ``best_epoch`` (1-based) the epoch that reached it.
    best_epoch : int or None
    bad_epochs : int
        Epochs since ``best_epoch`` without an improvement (early stopping's patience counter).
    finished, stopped_early : bool
        Training is over (epochs reached, or patience ran out: then ``stopped_early`` too).
    label_shards : dict or None
        Index of the per-rank shard files of a label-sharded model's checkpoint
        (:func:`sparsexc.train.checkpoint.save_label_shards`); None when there are none.
    best_weights : dict of str to Tensor, or None
        The best epoch's weights (CPU copies); stored as the tensor ``best_model``, not in the JSON.
    """

    n_rows: int
    batch_size: int
    seed: int
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    loss_sum: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_metric: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    finished: bool = False
    stopped_early: bool = False
    label_shards: dict[str, Any] | None = None
    best_weights: dict[str, torch.Tensor] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON state (a deep copy): every field but ``best_weights``; ``label_shards`` only when set."""
        out = {
            f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "best_weights"
        }
        if out["label_shards"] is None:
            del out["label_shards"]
        return out

    @classmethod
    def from_dict(cls, state: dict[str, Any], best_weights: dict[str, torch.Tensor] | None = None) -> TrainState:
        """Read a JSON state (:meth:`to_dict`, or the dict of older versions); keys it does not know
        (``format``, added by :func:`~sparsexc.train.checkpoint.save_checkpoint`) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)} - {"best_weights"}
        return cls(**{k: v for k, v in state.items() if k in names}, best_weights=best_weights)

    def check_resumes(self, saved: TrainState, where: str) -> None:
        """Raise ConfigurationError unless ``saved`` (a checkpoint) belongs to a run with this run's identity."""
        for key in RUN_IDENTITY:
            if getattr(saved, key) != getattr(self, key):
                raise ConfigurationError(
                    f"cannot resume from {where}: the checkpoint has {key}={getattr(saved, key)}, "
                    f"this run {getattr(self, key)}"
                )

    def improves(self, value: float, higher_is_better: bool) -> bool:
        """Whether the validation value ``value`` beats :attr:`best_metric` (any value beats none)."""
        if self.best_metric is None:
            return True
        return value > self.best_metric if higher_is_better else value < self.best_metric

    def observe(self, value: float, higher_is_better: bool, patience: int | None) -> bool:
        """Early stopping's bookkeeping for the validation value ``value`` of the epoch now ending
        (``epoch + 1``): an improvement makes it the best epoch and resets :attr:`bad_epochs`; otherwise one
        more bad epoch, and ``patience`` of them in a row finish the run (``stopped_early``).

        Returns
        -------
        bool
            Whether ``value`` improved on the best so far (then the caller keeps this epoch's weights).
        """
        if self.improves(value, higher_is_better):
            self.best_metric, self.best_epoch, self.bad_epochs = value, self.epoch + 1, 0
            return True
        self.bad_epochs += 1
        if patience is not None and self.bad_epochs >= patience:
            self.finished = self.stopped_early = True
        return False

    def end_epoch(self, record: dict[str, Any], epochs: int) -> None:
        """Append the epoch's ``record``, move to the next epoch's start, and finish at ``epochs``."""
        self.history.append(record)
        self.epoch, self.step_in_epoch, self.loss_sum = self.epoch + 1, 0, 0.0
        if self.epoch >= epochs:
            self.finished = True


def rng_tensors(device: torch.device) -> dict[str, torch.Tensor]:
    """Torch's generator states for a checkpoint: ``torch_rng``, and ``cuda_rng`` on a CUDA device."""
    tensors = {"torch_rng": torch.get_rng_state()}
    if device.type == "cuda":
        tensors["cuda_rng"] = torch.cuda.get_rng_state(device)
    return tensors


def restore_rng(tensors: dict[str, Any], device: torch.device) -> None:
    """Set torch's generators back to a checkpoint's states (:func:`rng_tensors`)."""
    torch.set_rng_state(tensors["torch_rng"])
    if device.type == "cuda" and "cuda_rng" in tensors:
        torch.cuda.set_rng_state(tensors["cuda_rng"], device)
