"""Optimisers and learning-rate schedules named in :class:`sparsexc._params.TrainParams`."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from sparsexc._params import TrainParams

__all__ = ["build_optimizer", "build_scheduler", "lr_multiplier"]


def build_optimizer(parameters: Iterable[torch.nn.Parameter], params: TrainParams) -> torch.optim.Optimizer:
    """Adam / AdamW (decoupled decay) / Adagrad / SGD (with ``momentum``), all with ``weight_decay``."""
    lr, wd = params.lr, params.weight_decay
    if params.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=wd)
    if params.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=wd)
    if params.optimizer == "adagrad":
        return torch.optim.Adagrad(parameters, lr=lr, weight_decay=wd)
    if params.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=params.momentum, weight_decay=wd)
    raise ValueError(f"unknown optimizer {params.optimizer!r}")  # TrainParams.validate rules this out


def lr_multiplier(step: int, params: TrainParams, steps_per_epoch: int) -> float:
    r"""Factor applied to ``lr`` at optimiser step ``step`` (0-based).

    Linear warm-up :math:`(s+1)/w` for the first ``w = warmup_steps`` steps; afterwards, with
    :math:`\pi_s = (s - w) / (T - w)` over the ``T = epochs * steps_per_epoch`` steps:
    constant 1; linear :math:`1 - \pi_s`; cosine :math:`\frac{1}{2}(1 + \cos \pi \pi_s)`;
    step :math:`\gamma^{\lfloor e / \text{step\_size} \rfloor}` with ``e`` the epoch.
    """
    warmup = params.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    total = params.epochs * steps_per_epoch
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if params.lr_schedule == "constant":
        return 1.0
    if params.lr_schedule == "linear":
        return 1.0 - progress
    if params.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if params.lr_schedule == "step":
        return params.step_gamma ** ((step // steps_per_epoch) // params.step_size)
    raise ValueError(f"unknown lr_schedule {params.lr_schedule!r}")


def build_scheduler(optimizer: torch.optim.Optimizer, params: TrainParams,
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` applying :func:`lr_multiplier` (its state dict holds only numbers)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_multiplier(step, params, steps_per_epoch))
