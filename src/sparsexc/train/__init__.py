"""sparsexc.train: the Trainer, optimisers and schedules, checkpoints."""

from sparsexc.train.checkpoint import atomic_write, load_checkpoint, save_checkpoint
from sparsexc.train.optim import build_optimizer, build_scheduler, lr_multiplier
from sparsexc.train.trainer import NonFiniteLossError, Trainer, epoch_order, resolve_device

__all__ = [
    "NonFiniteLossError",
    "Trainer",
    "atomic_write",
    "build_optimizer",
    "build_scheduler",
    "epoch_order",
    "load_checkpoint",
    "lr_multiplier",
    "resolve_device",
    "save_checkpoint",
]
