"""Where data sets are read from and where parsed copies are cached.

The data directory is, in order: the ``data_dir`` argument, the environment variable ``SPARSEXC_DATA``, or
``~/sparsexc_data``. The cache directory is ``SPARSEXC_CACHE`` or ``~/.cache/sparsexc``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_DATA_HOME", "DEFAULT_CACHE_HOME", "resolve_data_dir", "resolve_cache_dir"]

DEFAULT_DATA_HOME = Path("~/sparsexc_data")
DEFAULT_CACHE_HOME = Path("~/.cache/sparsexc")


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """Return the data directory and a few words saying where that choice came from.

    The folder is not required to exist here; callers that need a file say which one is missing.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser(), "the data_dir argument"
    env = os.environ.get("SPARSEXC_DATA")
    if env:
        return Path(env).expanduser(), "the SPARSEXC_DATA environment variable"
    return DEFAULT_DATA_HOME.expanduser(), f"the default {DEFAULT_DATA_HOME}, as SPARSEXC_DATA is not set"


def resolve_cache_dir() -> Path:
    """Return the cache directory (``SPARSEXC_CACHE`` or ``~/.cache/sparsexc``); it is created on first write."""
    env = os.environ.get("SPARSEXC_CACHE")
    return Path(env).expanduser() if env else DEFAULT_CACHE_HOME.expanduser()
