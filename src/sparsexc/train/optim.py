"""Optimisers and learning-rate schedules named in :class:`sparsexc._params.TrainParams`."""

from __future__ import annotations

import math
import mmap
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from sparsexc._params import TrainParams
from sparsexc.errors import ConfigurationError
from sparsexc.ops.sparse_grad import entry_views, has_sparse_gradient
from sparsexc.train.row_sparse_adam import RowSparseAdam

__all__ = ["SplitOptimizer", "build_optimizer", "build_scheduler", "gradient_norm", "lr_multiplier", "scale_gradients"]


def build_optimizer(parameters: Iterable[torch.nn.Parameter], params: TrainParams) -> torch.optim.Optimizer:
    """Adam / AdamW (decoupled decay) / Adagrad / SGD (with ``momentum``), all with ``weight_decay``.

    Parameters flagged as receiving sparse gradients (``EncoderParams.sparse_gradients``; see
    :func:`sparsexc.models.sparse_output.mark_sparse_gradient`) get an optimiser that accepts them, in a
    :class:`SplitOptimizer` with the dense optimiser of the others:

    * "adam" / "adamw": ``torch.optim.SparseAdam`` (as :class:`sparsexc.train.row_sparse_adam.RowSparseAdam`,
      the same update computed faster), i.e. *lazy* Adam: the moments and the weights of a row
      change only at steps whose batch contains the row's feature (dense Adam decays the moments of every row
      at every step and keeps moving rows whose gradient is 0). The two agree exactly when every feature is
      in every batch; otherwise they differ (usually little: see ``tests/train/test_sparse_gradients.py``).
    * "adagrad", "sgd" (without momentum): the same optimiser, which handles sparse gradients exactly as dense
      ones (a zero gradient row changes nothing in either).

    ``weight_decay`` on sparse-gradient parameters is *lazy*: at a step it acts only on the rows the step's
    gradient touches (decaying every row at every step would make the step O(rows x width) again). For
    "adam", "adagrad" and "sgd" it is the L2 term ``g_r <- g_r + weight_decay * w_r`` on each touched row r
    (what the dense optimisers add to every row); for "adamw" the decoupled shrink
    ``w_r <- (1 - lr * weight_decay) * w_r`` before the update. A row is therefore decayed in proportion to
    how often its feature occurs, the frequency-weighted L2 of sparse linear models. When every row is
    touched at every step it equals the dense optimiser's ``weight_decay`` (tested). SGD ``momentum > 0`` is
    refused (its buffer would fill up densely): a ``ValueError`` says so.
    """
    parameters = list(parameters)
    sparse = [q for q in parameters if has_sparse_gradient(q)]
    if not sparse:
        return _dense_optimizer(parameters, params)
    if params.optimizer == "sgd" and params.momentum > 0:
        raise ConfigurationError(
            f"optimizer='sgd' with momentum={params.momentum} is not supported with "
            "sparse_gradients=True; use momentum=0, another optimizer, or sparse_gradients=False"
        )
    dense = [q for q in parameters if not has_sparse_gradient(q)]
    weight_decay, decoupled = params.weight_decay, params.optimizer == "adamw"
    if params.optimizer in ("adam", "adamw"):
        sparse_adam = RowSparseAdam(sparse, lr=params.lr)  # SparseAdam's update, by index gather / scatter
        for q in sparse:
            # SparseAdam's own initial state, but with zeros the OS backs only where written: the moments of rows
            # whose feature never occurs in a batch take no memory (2 x 3.2 GB for wordnet's linear model)
            sparse_adam.state[q] = {"step": 0, "exp_avg": lazy_zeros_like(q), "exp_avg_sq": lazy_zeros_like(q)}
        return SplitOptimizer(_dense_optimizer(dense, params) if dense else None, sparse_adam, weight_decay, decoupled)
    if params.weight_decay == 0:
        return _dense_optimizer(parameters, params)  # Adagrad and SGD take sparse and dense gradients alike
    # torch's Adagrad / SGD refuse weight_decay with sparse gradients: the sparse rows get the lazy L2 instead
    no_decay = params.replace(weight_decay=0.0)
    return SplitOptimizer(
        _dense_optimizer(dense, params) if dense else None, _dense_optimizer(sparse, no_decay), weight_decay, decoupled
    )


def lazy_zeros_like(tensor: torch.Tensor) -> torch.Tensor:
    """Zeros shaped like ``tensor`` whose memory pages become resident only when written.

    On the CPU the buffer is a fresh anonymous ``mmap`` (zero pages the OS maps on first write, in 4 KiB pages:
    transparent huge pages are declined, since one 2 MiB page would make untouched neighbouring rows resident;
    ``numpy.zeros`` asks for huge pages, ``torch.zeros`` writes every page). Elsewhere, and for dtypes other than
    float32/float64, ``torch.zeros_like``.
    """
    if tensor.device.type != "cpu" or tensor.dtype not in (torch.float32, torch.float64) or tensor.numel() == 0:
        return torch.zeros_like(tensor)
    dtype = np.float32 if tensor.dtype == torch.float32 else np.float64
    buffer = mmap.mmap(-1, tensor.numel() * np.dtype(dtype).itemsize)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        buffer.madvise(mmap.MADV_NOHUGEPAGE)
    return torch.from_numpy(np.frombuffer(buffer, dtype=dtype).reshape(tuple(tensor.shape)))


def _dense_optimizer(parameters: list[torch.nn.Parameter], params: TrainParams) -> torch.optim.Optimizer:
    lr, wd = params.lr, params.weight_decay
    if params.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=wd)
    if params.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=wd)
    if params.optimizer == "adagrad":
        adagrad = torch.optim.Adagrad(parameters, lr=lr, weight_decay=wd)
        adagrad.register_step_pre_hook(_state_sparse_checks)
        return adagrad
    if params.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=params.momentum, weight_decay=wd)
    raise ValueError(f"unknown optimizer {params.optimizer!r}")  # TrainParams.validate rules this out


def _state_sparse_checks(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    """Step pre-hook of torch's Adagrad: state the sparse-invariant-check choice explicitly, as it is.

    For a sparse gradient, Adagrad rebuilds COO tensors from the gradient's own coalesced indices
    (``torch.sparse_coo_tensor(grad_indices, ...)``) without saying whether to check their invariants, and
    torch then warns, once per process, "Sparse invariant checks are implicitly disabled ... SEGFAULT" -- on
    every negative-sampling run, whose default optimiser this is. The indices are valid by construction, so the
    choice already in force is set again, explicitly, as torch asks: checks stay on if the caller turned them
    on, off otherwise.
    """
    if any(q.grad is not None and q.grad.is_sparse for group in optimizer.param_groups for q in group["params"]):
        checks = torch.sparse.check_sparse_tensor_invariants
        (checks.enable if checks.is_enabled() else checks.disable)()


class SplitOptimizer(torch.optim.Optimizer):
    """A dense optimiser and a sparse-gradient one stepping together, seen as one optimiser.

    ``param_groups`` lists the two optimisers' own group dicts (dense first), so a learning-rate scheduler
    sets both; ``state_dict`` holds both states. Before stepping, a sparse-gradient parameter that got a
    dense gradient (a head that reads the weight as a whole) has it converted to a row-sparse COO tensor, and
    gets the lazy ``weight_decay`` on the rows (element-sparse: the weights) its gradient touches: added to
    the gradient (``g_r + weight_decay * w_r``), or, ``decoupled``, as AdamW's shrink ``w_r * (1 - lr * weight_decay)``.
    """

    def __init__(
        self,
        dense: torch.optim.Optimizer | None,
        sparse: torch.optim.Optimizer,
        weight_decay: float = 0.0,
        decoupled: bool = False,
    ) -> None:
        if weight_decay < 0:
            raise ValueError(f"weight_decay={weight_decay} must be >= 0")
        self.optimizers = [o for o in (dense, sparse) if o is not None]
        self.weight_decay, self.decoupled = float(weight_decay), bool(decoupled)
        groups = [g for o in self.optimizers for g in o.param_groups]
        super().__init__([q for g in groups for q in g["params"]], {})
        self.param_groups = groups  # the children's dicts: a scheduler's lr changes reach them

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        if closure is not None:
            raise ValueError("SplitOptimizer.step does not take a closure")
        for group in self.optimizers[-1].param_groups:
            for q in group["params"]:
                if q.grad is None:
                    continue
                if not q.grad.is_sparse:
                    q.grad = q.grad.to_sparse(sparse_dim=1)
                if self.weight_decay > 0:
                    self._decay_touched_rows(q, group["lr"])
        for optimizer in self.optimizers:
            optimizer.step()
        return None

    def _decay_touched_rows(self, q: torch.Tensor, lr: float) -> None:
        # one entry per touched row (row-sparse gradient) or weight (element-sparse: the sampled heads' pairs on
        # the linear model), so each is decayed once per step
        assert q.grad is not None  # step calls this only for parameters with a gradient
        grad = q.grad.coalesce()
        index, (flat,) = entry_views(grad, q.data)
        if self.decoupled:
            flat.index_copy_(0, index, flat.index_select(0, index) * (1.0 - lr * self.weight_decay))
            q.grad = grad
        else:
            values = grad.values() + self.weight_decay * flat.index_select(0, index)
            q.grad = torch.sparse_coo_tensor(
                grad.indices(), values, grad.shape, is_coalesced=True, check_invariants=False
            )  # indices of a coalesced grad

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("optimizers")
        if not isinstance(saved, list) or len(saved) != len(self.optimizers):
            raise ValueError(
                "the optimiser state does not come from the same split of dense and sparse-gradient "
                "parameters (was sparse_gradients changed?)"
            )
        for optimizer, state in zip(self.optimizers, saved):
            optimizer.load_state_dict(state)
        self.param_groups = [g for o in self.optimizers for g in o.param_groups]


def gradient_norm(parameters: Iterable[torch.nn.Parameter], max_norm: float | None = None) -> torch.Tensor:
    r"""L2 norm of all gradients, dense or sparse COO; with ``max_norm``, scale them by
    :math:`\min(1, \text{max\_norm} / (\lVert g \rVert + 10^{-6}))` (``torch.nn.utils.clip_grad_norm_``'s rule).

    Sparse gradients are coalesced first (duplicate indices summed), so the norm is that of the dense gradient.
    Without sparse gradients this is ``clip_grad_norm_`` (or the plain norm) itself.
    """
    present = [(q, q.grad) for q in parameters if q.grad is not None]
    parameters = [q for q, _ in present]
    if not any(grad.is_sparse for _, grad in present):
        if max_norm is not None:
            return torch.nn.utils.clip_grad_norm_(parameters, max_norm)
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(grad) for _, grad in present]))
    norms = []
    for q, grad in present:
        if grad.is_sparse:
            q.grad = grad.coalesce()
            norms.append(torch.linalg.vector_norm(q.grad.values()))
        else:
            norms.append(torch.linalg.vector_norm(grad))
    total = torch.linalg.vector_norm(torch.stack(norms))
    if max_norm is not None:
        scale_gradients(parameters, torch.clamp(max_norm / (total + 1e-6), max=1.0))
    return total


def scale_gradients(parameters: Iterable[torch.nn.Parameter], coef: float | torch.Tensor) -> None:
    """Multiply every gradient by ``coef`` in place; sparse COO ones must be coalesced (:func:`gradient_norm` does)."""
    for q in parameters:
        if q.grad is not None:
            # scale a coalesced sparse gradient through its values: ``mul_`` on the tensor would clear its
            # coalesced flag, and SparseAdam would then sort its indices a second time
            (q.grad._values() if q.grad.is_sparse else q.grad).mul_(coef)


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


def build_scheduler(
    optimizer: torch.optim.Optimizer, params: TrainParams, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` applying :func:`lr_multiplier` (its state dict holds only numbers)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_multiplier(step, params, steps_per_epoch))
