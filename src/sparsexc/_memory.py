"""Giving freed memory back to the operating system after a phase that ran on worker threads.

glibc's allocator gives every thread that allocates its own arena and keeps what the thread frees there for
its next allocation; memory freed by worker threads that are done (a label tree's node training on
``n_jobs`` threads) then stays resident, and the main thread's later allocations (laying out the model for
search, predicting) cannot use it and take new pages on top of it. ``malloc_trim(0)`` returns the free pages of
every arena to the system (measured on debian-deps, three trees after training on two threads: 80 MiB of
resident memory, docs/tree.md "Memory"). Elsewhere (another C library, another system) this does nothing.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["release_free_memory"]


def release_free_memory() -> bool:
    """Return the allocator's free pages to the system (glibc ``malloc_trim(0)``); True if it released any.

    Cheap (milliseconds): it walks the arenas' free lists, it does not move live data."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))
