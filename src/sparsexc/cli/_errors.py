"""The CLI's failure classes and exit codes, and the one-line messages for out-of-memory and disk-full errors.

Exit codes (``sparsexc --help`` and docs/cli.md list them):

* 0: success;
* 2 (:data:`USER_ERROR`): a mistake of the user's: a flag, flag value, setting or config file; a data file that is
  missing, malformed or does not fit; an unknown data set or head; a run folder that holds a run already or is in
  use by another run; an optional package that a setting needs but that is not installed
  (:class:`sparsexc.errors.OptionalDependencyError`);
* 1 (:data:`RUN_FAILURE`): the run itself failed: out of memory, disk full, a non-finite training loss, the
  training processes of ``--nproc-per-node`` failed; or a bug in sparsexc (an exception that is no
  :class:`sparsexc.errors.SparsexcError`: its traceback is printed);
* 130 (:data:`INTERRUPTED`): interrupted (Ctrl-C).

The library's own errors carry their code (:attr:`sparsexc.errors.SparsexcError.exit_code`); the click exceptions
below are the CLI's.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

import click

__all__ = [
    "INTERRUPTED",
    "RUN_FAILURE",
    "USER_ERROR",
    "RunFailure",
    "UserError",
    "describe_failure",
    "doing",
    "resource_error",
]  # fmt: skip

USER_ERROR = 2
RUN_FAILURE = 1
INTERRUPTED = 130
# set by `train --nproc-per-node` for its workers: a file where the error lines they print are also written,
# so that the launching process adds no second line for a failure a worker has already said
REPORTED_ENV = "SPARSEXC_ERRORS_REPORTED"

# errno values of a full disk: no space left, quota exceeded
_DISK_FULL = {errno.ENOSPC: "no space left on the device (disk full)", errno.EDQUOT: "disk quota exceeded"}
# what RuntimeErrors of an allocation say: torch.OutOfMemoryError ("CUDA out of memory. Tried to allocate ..."),
# the CPU allocator ("DefaultCPUAllocator: not enough memory: you tried to allocate ...")
_OOM_MARKERS = ("out of memory", "not enough memory", "defaultcpuallocator")
_MAX_DETAIL = 200


class UserError(click.ClickException):
    """A mistake of the user's that is not a flag's (a run folder in use or already holding a run): exit code 2."""

    exit_code = USER_ERROR


class RunFailure(click.ClickException):
    """The run failed (out of memory, disk full, the worker processes): exit code 1, said by every rank."""

    exit_code = RUN_FAILURE


class AlreadySaid(Exception):
    """A failure of the run whose one error line a worker process has printed already: exit code 1, nothing more
    is printed."""

    exit_code = RUN_FAILURE


def resource_error(exc: BaseException) -> str | None:
    """A one-line description of ``exc`` when it is an out-of-memory or disk-full error, else None.

    Out of memory: ``MemoryError``, or a ``RuntimeError`` (``torch.OutOfMemoryError`` is one) whose message says
    so; the description keeps the first line of the message (the size torch tried to allocate). Disk full: an
    ``OSError`` with ``errno`` ENOSPC or EDQUOT; the description names the file when the error does.
    """
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{_DISK_FULL[exc.errno]}{where}"
    text = str(exc)
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and any(m in text.lower() for m in _OOM_MARKERS)):
        detail = text.strip().splitlines()[0].strip() if text.strip() else type(exc).__name__
        if len(detail) > _MAX_DETAIL:
            detail = detail[: _MAX_DETAIL - 3] + "..."
        return f"out of memory ({detail})"
    return None


def describe_failure(exc: BaseException, what: str) -> str | None:
    """``{resource_error(exc)} while {what}; {what to try}`` for an out-of-memory or disk-full error, else None."""
    message = resource_error(exc)
    if message is None:
        return None
    if message.startswith("out of memory"):
        hint = "try a smaller --batch-size or smaller --hidden-sizes, or a machine with more memory"
    else:
        hint = "free some space or choose another --out"
    return f"{message} while {what}; {hint}"


@contextlib.contextmanager
def doing(what: str) -> Iterator[None]:
    """Turn an out-of-memory or disk-full error raised inside the block into a :class:`RunFailure` whose one
    line says what was being done: ``out of memory (...) while {what}; try ...``. Other errors pass unchanged."""
    try:
        yield
    except RunFailure:
        raise
    except (MemoryError, RuntimeError, OSError) as exc:
        message = describe_failure(exc, what)
        if message is None:
            raise
        raise RunFailure(message) from exc
