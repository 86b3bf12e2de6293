"""Start a group of processes: in-process with ``torch.multiprocessing`` (tests, benchmarks), or by
re-running a command under ``torch.distributed.run`` (torchrun) for ``sparsexc train --nproc-per-node`` and,
over several machines, ``--nnodes / --node-rank / --rdzv-endpoint`` (:class:`Nodes`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sparsexc._process import exit_process
from sparsexc.errors import ConfigurationError

# torch is imported by the functions that start or join processes: the CLI reads the launch flags (Nodes) of
# every `sparsexc train`, and a run on one process of a label-tree model imports no torch

__all__ = ["RDZV_BACKENDS", "Nodes", "free_port", "parse_endpoint", "relaunch_with_torchrun", "spawn"]


def free_port() -> int:
    """A TCP port on localhost that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# the longest one rank may wait for the others in the rendezvous or in one collective, and the longest a whole
# spawn may run: a rank that hangs or fell out of step fails the call with a message naming it
COLLECTIVE_TIMEOUT_S = 300.0
SPAWN_DEADLINE_S = 3600.0
_GRACE_S = 3.0  # after a first failure, how long the other ranks get to report theirs before they are ended


def _worker(
    local_rank: int,
    nproc: int,
    init_file: str,
    backend: str,
    timeout_s: float,
    fn: Callable[..., Any],
    args: tuple,
    queue: Any,
) -> None:
    import torch.distributed as dist

    os.environ.update(
        RANK=str(local_rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(nproc), LOCAL_WORLD_SIZE=str(nproc)
    )
    reported = False
    try:
        # a file rendezvous: no port to pick, so none another process can take first
        dist.init_process_group(
            backend=backend,
            init_method=f"file://{init_file}",
            rank=local_rank,
            world_size=nproc,
            timeout=timedelta(seconds=timeout_s),
        )
        try:
            result = fn(*args)
            dist.barrier()  # leave together (see context.process_group)
        except Exception:
            # reported before the group goes down: the other ranks fail only after, on the closed connections
            queue.put(("error", local_rank, traceback.format_exc()))
            reported = True
            raise
        finally:
            dist.destroy_process_group()
        queue.put(("result", local_rank, result))
    except Exception:
        if not reported:
            queue.put(("error", local_rank, traceback.format_exc()))
        raise
    # a SimpleQueue's put has written the whole result to the pipe when it returns (no feeder thread), so the
    # rank can skip the interpreter's finalization, where gloo's threads can abort a finished process
    exit_process(0)


def spawn(
    fn: Callable[..., Any],
    nproc: int,
    args: Sequence[Any] = (),
    backend: str = "gloo",
    *,
    timeout: float = COLLECTIVE_TIMEOUT_S,
    deadline: float | None = SPAWN_DEADLINE_S,
) -> list[Any]:
    """Run ``fn(*args)`` in ``nproc`` fresh processes joined in one process group; return the results in
    rank order.

    Parameters
    ----------
    fn : callable
        Importable by name (a module-level function); returns something picklable.
    nproc : int
        Number of processes (ranks), at least 1.
    args : sequence
        Positional arguments of ``fn`` (picklable).
    backend : str
        The ``torch.distributed`` backend ("gloo" on CPU).
    timeout : float
        Seconds one rank may wait for the others in the rendezvous or in one collective before it fails.
    deadline : float or None
        Seconds the whole call may take; None: no limit.

    Returns
    -------
    list
        ``fn``'s result on every rank, in rank order.

    Raises
    ------
    torch.multiprocessing.ProcessRaisedException
        When ``fn`` raised in any process; the message gives every rank's outcome (its traceback, or that it
        finished or was still running), since the first rank to fail is often only waiting for another.
    torch.multiprocessing.ProcessExitedException
        When a process died without raising (a signal, ``os._exit``).
    TimeoutError
        When ``deadline`` passed first, naming the ranks still running (they are ended).

    Each process sees ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` like under torchrun; the group meets through a
    fresh temporary file (``init_method="file://..."``), so concurrent spawns never share a rendezvous.
    """
    if nproc < 1:
        raise ConfigurationError(f"spawn: nproc={nproc} must be at least 1")
    if not timeout > 0 or (deadline is not None and not deadline > 0):
        raise ConfigurationError(
            f"spawn: timeout={timeout!r} and deadline={deadline!r} must be positive (deadline may be None)"
        )
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    with tempfile.TemporaryDirectory(prefix="sparsexc-spawn-") as folder:
        context = mp.start_processes(
            _worker,
            args=(nproc, os.path.join(folder, "rendezvous"), backend, float(timeout), fn, tuple(args), queue),
            nprocs=nproc,
            join=False,
            start_method="spawn",
        )
        return _collect(context.processes, queue, deadline)


def _collect(processes: list[Any], queue: Any, deadline: float | None) -> list[Any]:
    """Wait for every process, draining ``queue`` as we go (a full pipe would block a child's put forever);
    the results in rank order, or the failure of the group naming each rank's outcome."""
    results: dict[int, Any] = {}
    errors: dict[int, str] = {}
    limit = None if deadline is None else time.monotonic() + deadline
    first_failure = None

    def drain() -> None:
        while not queue.empty():
            kind, index, value = queue.get()
            (results if kind == "result" else errors)[index] = value

    while True:
        drain()
        codes = [p.exitcode for p in processes]
        if all(code == 0 for code in codes) and queue.empty():
            break
        now = time.monotonic()
        if first_failure is None and any(code not in (None, 0) for code in codes):
            first_failure = now
        # after a failure, the others (often just waiting on the failed rank) get a moment to report theirs
        settled = all(code is not None for code in codes) and queue.empty()
        if first_failure is not None and (settled or now > first_failure + _GRACE_S):
            drain()
            raise _failure(processes, codes, errors)
        if first_failure is None and limit is not None and now > limit:
            running = [i for i, code in enumerate(codes) if code is None]
            _end(processes)
            raise TimeoutError(
                f"spawn: rank(s) {running} of {len(processes)} still running after the deadline of "
                f"{deadline:g} s; ended them"
            )
        time.sleep(0.02)
    missing = [i for i in range(len(processes)) if i not in results]
    if missing:  # a process that exited 0 without a result (fn called sys.exit(0))
        raise _failure(processes, [p.exitcode for p in processes], {i: "exited without a result" for i in missing})
    return [results[i] for i in range(len(processes))]


def _end(processes: list[Any]) -> None:
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
            p.join()


def _failure(processes: list[Any], codes: list[int | None], errors: dict[int, str]) -> Exception:
    """The exception for a failed group: every rank's outcome in the message, the first rank to report an error
    as its ``error_index``. Processes still running are ended first."""
    from torch.multiprocessing import ProcessExitedException, ProcessRaisedException

    _end(processes)
    n = len(processes)
    lines = []
    for i, code in enumerate(codes):
        if i in errors:
            lines.append(f"-- rank {i} of {n} failed:\n{errors[i].rstrip()}")
        elif code is None:
            lines.append(f"-- rank {i} of {n} was still running (ended)")
        elif code == 0:
            lines.append(f"-- rank {i} of {n} finished")
        elif code < 0:
            lines.append(f"-- rank {i} of {n} died with signal {_signal_name(-code)}")
        else:
            lines.append(f"-- rank {i} of {n} exited with code {code}")
    if errors:  # in the order they arrived: the first is the likeliest cause, the others often only waited on it
        first = next(iter(errors))
        message = f"spawn: the process group failed, rank {first} first\n" + "\n".join(lines)
        return ProcessRaisedException(message, first, processes[first].pid)
    message = "spawn: the process group failed\n" + "\n".join(lines)
    index, code = next((i, c) for i, c in enumerate(codes) if c is not None and c != 0)
    return ProcessExitedException(message, index, processes[index].pid, code, _signal_name(-code) if code < 0 else None)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# torchrun's rendezvous backends that need nothing beyond torch: "static" (torchrun's default; node r of N is
# group rank r, node 0 serves the store at the endpoint) and "c10d" (the nodes meet at the endpoint's store and
# are numbered in an order of the rendezvous' choosing)
RDZV_BACKENDS = ("static", "c10d")


def parse_endpoint(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets, ``[::1]:29500``) as ``(host, port)``; the port in 1..65535.

    Raises
    ------
    sparsexc.errors.ConfigurationError
        Naming ``rdzv_endpoint`` and the form it takes, for anything else.
    """
    host, colon, port_text = str(text).strip().rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]") and len(host) > 2
    # an unbracketed host with a colon is an IPv6 address whose port cannot be told apart
    good_host = bool(host) and not any(c.isspace() for c in host) and (bracketed or ":" not in host)
    if not (colon and good_host and port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise ConfigurationError(
            f"rdzv_endpoint={text!r} must be HOST:PORT with a port in 1..65535 (an IPv6 host in brackets: [::1]:29500)"
        )
    return host, int(port_text)


@dataclass(frozen=True)
class Nodes:
    """This machine's place in a torchrun launch over ``nnodes`` machines (torchrun's flags of the same names).

    Parameters
    ----------
    nnodes : int
        Number of machines (torchrun's ``--nnodes``), at least 1; each runs the same command with its own
        ``node_rank``.
    node_rank : int
        This machine's number in ``[0, nnodes)``. With the static rendezvous the workers of node r are the
        global ranks ``r * nproc_per_node + local_rank``, so node 0 holds global rank 0.
    rdzv_endpoint : str or None
        ``HOST:PORT`` where the machines meet: with "static" node 0's address and a free port on it (node 0
        serves the store there). Needed when ``nnodes > 1``; None on one machine (torchrun ``--standalone``
        picks a free local port).
    rdzv_backend : str
        One of :data:`RDZV_BACKENDS`; "static" (torchrun's default) numbers the nodes by ``node_rank``, "c10d"
        in an order the rendezvous chooses (``node_rank`` is then unused).
    rdzv_id : str or None
        The run's id, the same on every machine (torchrun's ``--rdzv-id``; None: torchrun's default).
    """

    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    rdzv_backend: str = "static"
    rdzv_id: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.nnodes, bool) or not isinstance(self.nnodes, int) or self.nnodes < 1:
            raise ConfigurationError(f"nnodes={self.nnodes!r} must be an integer of at least 1")
        rank = self.node_rank
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < self.nnodes:
            raise ConfigurationError(
                f"node_rank={rank!r} must be in [0, {self.nnodes}) (nnodes={self.nnodes}, the number of machines)"
            )
        if self.rdzv_backend not in RDZV_BACKENDS:
            raise ConfigurationError(f"rdzv_backend={self.rdzv_backend!r} must be one of {', '.join(RDZV_BACKENDS)}")
        if self.rdzv_endpoint is not None:
            parse_endpoint(self.rdzv_endpoint)
        elif self.nnodes > 1:
            raise ConfigurationError(
                f"nnodes={self.nnodes} needs rdzv_endpoint=HOST:PORT, where the machines meet (with the static "
                "rendezvous: the address of the machine with node_rank 0 and a free port on it)"
            )
        if self.rdzv_id is not None and (not self.rdzv_id or any(c.isspace() for c in self.rdzv_id)):
            raise ConfigurationError(f"rdzv_id={self.rdzv_id!r} must be a non-empty word (no spaces)")

    @property
    def several(self) -> bool:
        """Whether the launch spans more than one machine."""
        return self.nnodes > 1

    def torchrun_args(self) -> list[str]:
        """torchrun's flags for this place: ``--standalone`` on one machine without an endpoint, else the
        rendezvous flags."""
        if self.nnodes == 1 and self.rdzv_endpoint is None:
            return ["--standalone"]
        args = [
            f"--nnodes={self.nnodes}",
            f"--rdzv-backend={self.rdzv_backend}",
            f"--rdzv-endpoint={self.rdzv_endpoint}",
        ]
        if self.rdzv_backend == "static":  # torchrun warns that c10d ignores it
            args.append(f"--node-rank={self.node_rank}")
        return args + ([f"--rdzv-id={self.rdzv_id}"] if self.rdzv_id is not None else [])


def relaunch_with_torchrun(nproc: int, module_args: Sequence[str], nodes: Nodes | None = None) -> int:
    """Run torchrun (``torch.distributed.run <rendezvous flags> --nproc-per-node N -m <module_args...>``,
    through :mod:`sparsexc.distributed._torchrun`, which leaves out torchrun's multi-line failure report: the
    workers say their own errors); return its exit code. On one machine (``nodes`` None or one node without an
    endpoint) ``--standalone`` makes torchrun choose a free local rendezvous port itself; otherwise this
    machine joins the rendezvous ``nodes`` describes (:meth:`Nodes.torchrun_args`)."""
    if nproc < 1:
        raise ConfigurationError(f"nproc_per_node={nproc} must be at least 1")
    command = [
        sys.executable,
        "-m",
        "sparsexc.distributed._torchrun",
        *(nodes or Nodes()).torchrun_args(),
        f"--nproc-per-node={nproc}",
        "-m",
        *module_args,
    ]
    return subprocess.call(command)
