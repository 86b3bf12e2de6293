"""Who is calling the library, Python code or the ``sparsexc`` command line, for messages that say what to type.

A message that tells the user how to fix something names what they can type: ``data_dir=`` and
``sparsexc.datasets.download(...)`` for Python code, ``--data-dir`` and ``sparsexc datasets download ...`` on
the command line. The CLI runs its commands inside :func:`command_line`; everything else gets the Python words.
This module imports nothing heavy, so the CLI can enter it before any command runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["command_line", "from_command_line"]

_CLI: ContextVar[bool] = ContextVar("sparsexc_command_line", default=False)


@contextlib.contextmanager
def command_line() -> Iterator[None]:
    """Within the block, messages use the command line's words (flags, commands)."""
    token = _CLI.set(True)
    try:
        yield
    finally:
        _CLI.reset(token)


def from_command_line() -> bool:
    """True inside :func:`command_line`."""
    return _CLI.get()
