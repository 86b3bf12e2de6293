"""How a process of sparsexc's ends: a rank of a ``torch.distributed`` process group skips the interpreter's
finalization after flushing its output; any other process exits normally. This module imports nothing heavy,
so the command line can end through it without importing torch."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import NoReturn

__all__ = ["exit_process", "in_process_group"]


def in_process_group() -> bool:
    """True when the environment says this process is one rank of several (``WORLD_SIZE`` > 1, as torchrun and
    :func:`sparsexc.distributed.spawn` set it)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def exit_process(code: int) -> NoReturn:
    """End the process with ``code``. A rank of a process group (:func:`in_process_group`) flushes stdout,
    stderr and logging and ends with ``os._exit``, skipping the interpreter's finalization: there gloo's
    threads, torn down with the modules, ended 3 of 8 two-process ``sparsexc train --nproc-per-node 2`` runs on
    a busy 2-core machine in ``terminate called without an active exception`` (SIGABRT, so torchrun reported the
    run failed) after ``main`` had returned 0 on every rank (pytorch/pytorch#190489). The caller must have
    written and closed everything before; no ``atexit`` handler of sparsexc's is skipped (it has none)."""
    if in_process_group():
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed or broken stream: nothing more can be said there
                stream.flush()
        logging.shutdown()  # flushes the logging handlers, as finalization would
        os._exit(code)
    sys.exit(code)
