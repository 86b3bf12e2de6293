"""Where data sets are read from and where parsed copies are cached.

The data directory is, in order: the ``data_dir`` argument, the environment variable ``SPARSEXC_DATA``, or
``~/sparsexc_data``. The cache directory is ``SPARSEXC_CACHE`` or ``~/.cache/sparsexc``.

Messages name the data directory's origin in the caller's words (:mod:`sparsexc._caller`): ``data_dir=`` for
Python code, ``--data-dir`` on the command line.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from sparsexc._caller import from_command_line

__all__ = [
    "DEFAULT_CACHE_HOME",
    "DEFAULT_DATA_HOME",
    "data_dir_from",
    "how_to_get",
    "resolve_cache_dir",
    "resolve_data_dir",
]  # fmt: skip

DEFAULT_DATA_HOME = Path("~/sparsexc_data")
DEFAULT_CACHE_HOME = Path("~/.cache/sparsexc")
# resolve_data_dir's words for the two origins that need no argument
ENV_ORIGIN = "the SPARSEXC_DATA environment variable"
DEFAULT_ORIGIN = f"the default {DEFAULT_DATA_HOME}, as SPARSEXC_DATA is not set"
# where an explicitly given data_dir came from, when the caller knows better than "the argument" (the CLI
# resolves --data-dir / SPARSEXC_DATA / the default once and passes the folder on)
_GIVEN_FROM: ContextVar[str | None] = ContextVar("sparsexc_data_dir_from", default=None)


@contextlib.contextmanager
def data_dir_from(origin: str | None) -> Iterator[None]:
    """Within the block, an explicit ``data_dir`` is said to come from ``origin`` (None: the argument)."""
    token = _GIVEN_FROM.set(origin)
    try:
        yield
    finally:
        _GIVEN_FROM.reset(token)


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """Return the data directory and a few words saying where that choice came from.

    The words are the caller's: ``"the data_dir= argument"`` for Python code, ``"--data-dir"`` on the
    command line (see :mod:`sparsexc._caller`). The folder is not required to exist here; callers that need
    a file say which one is missing.
    """
    if data_dir is not None:
        given = _GIVEN_FROM.get()
        if given is None:
            given = "--data-dir" if from_command_line() else "the data_dir= argument"
        return Path(data_dir).expanduser(), given
    env = os.environ.get("SPARSEXC_DATA")
    if env:
        return Path(env).expanduser(), ENV_ORIGIN
    return DEFAULT_DATA_HOME.expanduser(), DEFAULT_ORIGIN


def how_to_get(name: str, downloadable: bool, data_dir: str | os.PathLike[str] | None = None) -> str:
    """What the user can do when the files of the data set ``name`` are not found, in the caller's words.

    ``downloadable``: whether ``sparsexc.datasets.download`` knows a source for it; ``data_dir``: the folder
    searched when it was given explicitly (the download then goes there too).
    """
    cli = from_command_line()
    folder = ("give --data-dir" if cli else "pass data_dir=") + (
        " (or set SPARSEXC_DATA) naming the folder that holds the data set folders"
    )
    if not downloadable:
        return f"put its files there (see docs/data.md), or {folder}"
    if cli:
        where = "" if data_dir is None else f" --data-dir {os.fspath(data_dir)}"
        get = f"'sparsexc datasets download {name}{where}'"
    else:
        where = "" if data_dir is None else f", data_dir={os.fspath(data_dir)!r}"
        get = f"sparsexc.datasets.download({name!r}{where}) (or load(..., download=True))"
    return f"download it with {get}, or {folder}"


def resolve_cache_dir() -> Path:
    """Return the cache directory (``SPARSEXC_CACHE`` or ``~/.cache/sparsexc``); it is created on first write."""
    env = os.environ.get("SPARSEXC_CACHE")
    return Path(env).expanduser() if env else DEFAULT_CACHE_HOME.expanduser()
