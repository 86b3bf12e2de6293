"""The current process group: rank, world size, the rank's device, row shards and small collectives.

Every helper also works without a process group (one process: rank 0 of a world of 1), so the training
code has a single path. Asking about the group imports no torch: a group exists only once ``torch.distributed``
was imported (by whoever made it), so a process that never imported it is rank 0 of 1 (the label tree trains,
and the CLI runs it, without torch).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sparsexc.errors import ConfigurationError

if TYPE_CHECKING:
    import torch

__all__ = [
    "all_gather_objects",
    "all_reduce_sum",
    "backend_for",
    "is_distributed",
    "is_main",
    "process_group",
    "rank",
    "rank_device",
    "shard_bounds",
    "world_size",
]  # fmt: skip


def _group() -> ModuleType | None:
    """``torch.distributed`` when a process group is initialised, else None (without importing torch)."""
    dist = sys.modules.get("torch.distributed")
    return dist if dist is not None and dist.is_available() and dist.is_initialized() else None


def is_distributed() -> bool:
    """True inside an initialised ``torch.distributed`` process group of more than one process."""
    dist = _group()
    return dist is not None and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    dist = _group()
    return 0 if dist is None else int(dist.get_rank())


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    dist = _group()
    return 1 if dist is None else int(dist.get_world_size())


def is_main() -> bool:
    """Whether this process writes files and prints (rank 0)."""
    return rank() == 0


def backend_for(device: str | torch.device) -> str:
    """``"nccl"`` for CUDA devices, ``"gloo"`` otherwise (CPU)."""
    import torch

    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def rank_device(device: torch.device) -> torch.device:
    """The device this rank trains on: ``cuda:LOCAL_RANK`` when ``device`` is CUDA and a group is running.

    One GPU per process is what NCCL and DDP expect; on CPU every rank uses the CPU.
    """
    if device.type != "cuda" or not is_distributed():
        return device
    import torch

    local = int(os.environ.get("LOCAL_RANK", rank() % max(1, torch.cuda.device_count())))
    torch.cuda.set_device(local)
    return torch.device("cuda", local)


def shard_bounds(n: int, n_shards: int | None = None, index: int | None = None) -> tuple[int, int]:
    r"""``[start, stop)`` of shard ``index`` when ``n`` items are cut into ``n_shards`` contiguous pieces.

    Shard :math:`i` is :math:`[\lfloor i n / S \rfloor, \lfloor (i + 1) n / S \rfloor)`: sizes differ by at
    most one, and the shards in rank order are the items in their original order. Defaults: this rank
    of the current world.
    """
    n_shards = world_size() if n_shards is None else int(n_shards)
    index = rank() if index is None else int(index)
    if n_shards < 1 or not 0 <= index < n_shards:
        raise ValueError(f"shard_bounds: index={index} must be in [0, n_shards={n_shards})")
    return index * n // n_shards, (index + 1) * n // n_shards


def all_reduce_sum(value: float, device: torch.device | None = None) -> float:
    """Sum of ``value`` over all ranks (the value itself without a process group), in float64."""
    if not is_distributed():
        return float(value)
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item())


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` without a process group."""
    if not is_distributed():
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


@contextlib.contextmanager
def process_group(device: str = "auto") -> Iterator[bool]:
    """Join the process group that ``torchrun`` (or :func:`sparsexc.distributed.spawn`) describes in the
    environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), and leave it on exit.

    Yields True when a group of more than one process is running. Does nothing (yields False) when
    ``WORLD_SIZE`` is unset or 1, or when the caller already initialised a group (which it then owns).
    The backend is NCCL when ``device`` resolves to CUDA, gloo otherwise.
    """
    wanted = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if not wanted or _group() is not None:
        yield is_distributed()
        return
    import torch
    import torch.distributed as dist

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dist.init_process_group(backend=backend_for(device), init_method="env://")
    except ValueError as exc:  # torch: a variable of the environment (MASTER_ADDR, ...) is missing or wrong
        raise ConfigurationError(str(exc)) from exc
    try:
        yield True
        # Leave together, so that no rank tears down its gloo pairs and exits while another is still in its last
        # collective (a worker ended in std::terminate at the end of 1 of 10 stress runs of the 2-process CLI
        # test). Not after an error: the other ranks may never arrive; they fail on the closed connections.
        dist.barrier()
    finally:
        dist.destroy_process_group()
