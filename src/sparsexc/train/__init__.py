"""sparsexc.train: the Trainer, its state and strategy, optimisers and schedules, checkpoints.

* :class:`Trainer` - mini-batch training of an ``XCModel`` (validation, early stopping, resumable
  checkpoints, an ``on_epoch_end`` callback), on the settings of :class:`TrainParams`;
* :func:`build_optimizer` / :func:`build_scheduler` - the optimiser and schedule ``TrainParams`` names;
  :class:`RowSparseAdam` - lazy Adam (``torch.optim.SparseAdam``'s update) for row-sparse gradients, and
  :func:`lazy_zeros_like` - zeros whose memory becomes resident only where written (its moments);
* :func:`autocast` - the mixed-precision context of the training step (``TrainParams.precision``);
* :func:`fit_summary` - how a run ended (best epoch, epochs run, stopped early or at the cap), as a dict.
"""

from typing import TYPE_CHECKING

from sparsexc._lazy import lazy_exports

if TYPE_CHECKING:
    from sparsexc._params import TrainParams
    from sparsexc.train.checkpoint import atomic_write, load_checkpoint, save_checkpoint
    from sparsexc.train.data_parallel import autocast
    from sparsexc.train.optim import build_optimizer, build_scheduler, lazy_zeros_like, lr_multiplier
    from sparsexc.train.progress import fit_summary
    from sparsexc.train.row_sparse_adam import RowSparseAdam
    from sparsexc.train.state import TrainState
    from sparsexc.train.strategy import Strategy, choose_strategy
    from sparsexc.train.trainer import NonFiniteLossError, Trainer, epoch_order, resolve_device

# imported on first use (sparsexc._lazy): importing one module of this package imports no other
_EXPORTS = {
    "TrainParams": "sparsexc._params",
    "atomic_write": "sparsexc.train.checkpoint",
    "load_checkpoint": "sparsexc.train.checkpoint",
    "save_checkpoint": "sparsexc.train.checkpoint",
    "autocast": "sparsexc.train.data_parallel",
    "build_optimizer": "sparsexc.train.optim",
    "build_scheduler": "sparsexc.train.optim",
    "lazy_zeros_like": "sparsexc.train.optim",
    "lr_multiplier": "sparsexc.train.optim",
    "fit_summary": "sparsexc.train.progress",
    "RowSparseAdam": "sparsexc.train.row_sparse_adam",
    "TrainState": "sparsexc.train.state",
    "Strategy": "sparsexc.train.strategy",
    "choose_strategy": "sparsexc.train.strategy",
    "NonFiniteLossError": "sparsexc.train.trainer",
    "Trainer": "sparsexc.train.trainer",
    "epoch_order": "sparsexc.train.trainer",
    "resolve_device": "sparsexc.train.trainer",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "NonFiniteLossError",
    "RowSparseAdam",
    "Strategy",
    "TrainParams",
    "TrainState",
    "Trainer",
    "atomic_write",
    "autocast",
    "build_optimizer",
    "build_scheduler",
    "choose_strategy",
    "epoch_order",
    "fit_summary",
    "lazy_zeros_like",
    "load_checkpoint",
    "lr_multiplier",
    "resolve_device",
    "save_checkpoint",
]
