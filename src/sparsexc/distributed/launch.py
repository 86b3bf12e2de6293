"""Start a group of processes: in-process with ``torch.multiprocessing`` (tests, benchmarks), or by
re-running a command under ``torch.distributed.run`` (torchrun) for ``sparsexc train --nproc-per-node``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = ["free_port", "spawn", "relaunch_with_torchrun"]


def free_port() -> int:
    """A TCP port on localhost that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(local_rank: int, nproc: int, port: int, backend: str, fn: Callable[..., Any], args: tuple,
            queue: Any) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(local_rank),
                      LOCAL_RANK=str(local_rank), WORLD_SIZE=str(nproc), LOCAL_WORLD_SIZE=str(nproc))
    dist.init_process_group(backend=backend, init_method="env://", rank=local_rank, world_size=nproc)
    try:
        result = fn(*args)
        queue.put((local_rank, result))
    finally:
        dist.destroy_process_group()


def spawn(fn: Callable[..., Any], nproc: int, args: Sequence[Any] = (), backend: str = "gloo") -> list[Any]:
    """Run ``fn(*args)`` in ``nproc`` fresh processes joined in one process group; return the results in
    rank order.

    ``fn`` must be importable by name (a module-level function) and return something picklable. Each
    process sees ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` like under torchrun. An exception in any
    process is raised here (``torch.multiprocessing.ProcessRaisedException``).
    """
    if nproc < 1:
        raise ValueError(f"spawn: nproc={nproc} must be at least 1")
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    context = mp.start_processes(_worker, args=(nproc, free_port(), backend, fn, tuple(args), queue),
                                 nprocs=nproc, join=False, start_method="spawn")
    results: dict[int, Any] = {}
    done = False
    while not done:
        done = context.join(timeout=0.05)  # raises when a process failed
        while not queue.empty():  # drain as we go: a full pipe would block a child's put forever
            index, value = queue.get()
            results[index] = value
    return [results[i] for i in range(nproc)]


def relaunch_with_torchrun(nproc: int, module_args: Sequence[str]) -> int:
    """Run ``python -m torch.distributed.run --standalone --nproc-per-node N -m <module_args...>``; return
    its exit code. ``--standalone`` makes torchrun choose a free local rendezvous port itself."""
    if nproc < 1:
        raise ValueError(f"nproc_per_node={nproc} must be at least 1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", *module_args]
    return subprocess.call(command)
