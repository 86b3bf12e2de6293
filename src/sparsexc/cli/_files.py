"""Small file helpers of the CLI: atomic JSON/text writes and the run's environment (versions, machine)."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from sparsexc._atomic import atomic_file
from sparsexc._environment import environment_info
from sparsexc.errors import ConfigurationError

__all__ = ["atomic_open", "environment_info", "read_json", "write_json", "write_text"]


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as handle:
        handle.write(text)


def write_json(path: str | Path, obj: Any) -> None:
    """``obj`` as indented JSON, written atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")


def read_json(path: str | Path) -> Any:
    """The JSON in ``path``; a parse error names the file and line."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{path}: line {exc.lineno}: not valid JSON: {exc.msg}") from None


def _jsonable(obj: Any) -> Any:
    # numpy scalars and arrays, tuples-as-lists, paths
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (Path, set, frozenset)):
        return str(obj) if isinstance(obj, Path) else sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


@contextlib.contextmanager
def atomic_open(path: str | Path) -> Iterator[TextIO]:
    """A UTF-8 text handle (``\\n`` line ends) whose content replaces ``path`` only if the block completes
    (:func:`sparsexc._atomic.atomic_file`: temp file, fsync, rename, the user's umask, cleanup on failure)."""
    with atomic_file(path) as raw:
        handle = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
        try:
            yield handle
        except BaseException:
            with contextlib.suppress(Exception):  # the temporary file is removed anyway
                handle.detach()
            raise
        handle.detach()  # flushes the text into raw, which atomic_file then fsyncs and renames
