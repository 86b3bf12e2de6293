"""sparsexc.train: the Trainer, its state and strategy, optimisers and schedules, checkpoints."""

from sparsexc.train.checkpoint import atomic_write, load_checkpoint, save_checkpoint
from sparsexc.train.optim import build_optimizer, build_scheduler, lr_multiplier
from sparsexc.train.state import TrainState
from sparsexc.train.strategy import Strategy, choose_strategy
from sparsexc.train.trainer import NonFiniteLossError, Trainer, epoch_order, resolve_device

__all__ = [
    "NonFiniteLossError",
    "Strategy",
    "TrainState",
    "Trainer",
    "atomic_write",
    "build_optimizer",
    "build_scheduler",
    "choose_strategy",
    "epoch_order",
    "load_checkpoint",
    "lr_multiplier",
    "resolve_device",
    "save_checkpoint",
]
