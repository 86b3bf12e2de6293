"""Opening data files for reading (gzip detected by content) and writing them atomically.

Every low-level failure (missing file, truncated or corrupt gzip stream, permission) is turned into a
:class:`DataFormatError` naming the file, so readers never leak ``OSError``/``EOFError``/``zlib.error``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import zlib
from collections.abc import Iterator
from typing import IO

from sparsexc._atomic import atomic_file

from .errors import DataFormatError

__all__ = ["GZIP_MAGIC", "atomic_writer", "is_gzip", "read_blocks", "read_bytes"]

GZIP_MAGIC = b"\x1f\x8b"

# Errors a read of a (possibly gzip) file can raise that mean "this file is bad", not "a bug".
_READ_ERRORS = (OSError, EOFError, zlib.error)


def _open_error(path: str | os.PathLike[str], exc: BaseException) -> DataFormatError:
    if isinstance(exc, FileNotFoundError):
        return DataFormatError(path, "an existing file", found="no such file")
    if isinstance(exc, IsADirectoryError):
        return DataFormatError(path, "a file", found="a directory")
    if isinstance(exc, (EOFError, gzip.BadGzipFile, zlib.error)):
        return DataFormatError(path, "a complete, valid gzip stream", found=f"{type(exc).__name__}: {exc}")
    return DataFormatError(path, "a readable file", found=f"{type(exc).__name__}: {exc}")


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the gzip magic bytes (whatever its name)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == GZIP_MAGIC
    except OSError as exc:
        raise _open_error(path, exc) from None


@contextlib.contextmanager
def _open_binary(path: str | os.PathLike[str]) -> Iterator[gzip.GzipFile | io.BufferedReader]:
    gz = is_gzip(path)
    try:
        # opened apart from the `with` below so that only open's OSError is translated: the with closes it
        fh: gzip.GzipFile | io.BufferedReader = gzip.open(path, "rb") if gz else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise _open_error(path, exc) from None
    with fh:
        yield fh


def read_blocks(path: str | os.PathLike[str], block_size: int = 1 << 22) -> Iterator[bytes]:
    """Yield the (decompressed) content of ``path`` in blocks of about ``block_size`` bytes."""
    with _open_binary(path) as fh:
        while True:
            try:
                block = fh.read(block_size)
            except _READ_ERRORS as exc:
                raise _open_error(path, exc) from None
            if not block:
                return
            yield block


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The whole (decompressed) content of ``path``."""
    return b"".join(read_blocks(path, 1 << 24))


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], *, compress: bool | None = None) -> Iterator[IO[bytes]]:
    """A binary file object whose content replaces ``path`` only if the block completes.

    :func:`sparsexc._atomic.atomic_file` (temp file beside ``path``, fsync, ``os.replace``; on any exception
    the temporary file is removed and ``path`` is left untouched), gzipped when ``compress`` is True;
    ``compress=None`` gzips when the name ends with ``.gz``. The folder of ``path`` must exist.
    """
    path = os.fspath(path)
    if compress is None:
        compress = path.endswith(".gz")
    with atomic_file(path, parents=False) as raw:
        if compress:
            # mtime=0: the same data give byte-identical files.
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
                yield gz  # type: ignore[misc]
        else:
            yield raw
