"""Crash-safe writes: atomic files, atomically swapped folders, the user's umask, cleanup of stray temporaries.

Temporaries live beside their target and carry the writing process id in their name:

* files: ``.<name>.<pid>-<8 random>.tmp`` (:func:`atomic_file`, the one atomic file writer of sparsexc, and
  :func:`atomic_write`; the text and gzip writers of the CLI and of :mod:`sparsexc.io` wrap it);
* folders: ``.<name>.tmp-<pid>-<8 random>`` (being written) and ``.<name>.old-<pid>-<8 random>`` (a replaced
  folder about to be removed; only on file systems without an atomic exchange, see :func:`replace_dir`).

A process killed mid-write leaves its temporary behind; the next write of the same target removes the ones
of processes that are no longer alive (on this machine: ``os.kill(pid, 0)``), and never anything else.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

__all__ = [
    "atomic_file",
    "atomic_write",
    "current_umask",
    "dir_mode",
    "file_mode",
    "fsync_dir",
    "make_temp_dir",
    "remove_stale_temporaries",
    "replace_dir",
    "stale_folders",
]

_UMASK_LOCK = threading.Lock()
_RANDOM = r"[a-z0-9_]{8}"  # tempfile's random part


def current_umask() -> int:
    """The process umask, read from ``/proc/self/status`` (Linux) or, elsewhere, by setting it twice under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """Permissions of a new file under the user's umask (``tempfile`` creates 0600 files)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """Permissions of a new folder under the user's umask (``tempfile.mkdtemp`` creates 0700 folders)."""
    return 0o777 & ~current_umask()


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (renames, new files) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    # True unless the process surely does not exist (POSIX only; elsewhere nothing counts as dead)
    if os.name != "posix" or pid <= 0:
        return True
    if pid == os.getpid():
        return True  # maybe another thread of ours, mid-write
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _temp_file_pattern(name: str) -> re.Pattern[str]:
    # ours: .<name>.<pid>-<random>.tmp; older versions of sparsexc wrote .<name>.<random>.tmp (no pid)
    return re.compile(rf"\.{re.escape(name)}\.(?:(\d+)-)?{_RANDOM}\.tmp\Z")


def _temp_dir_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(name)}\.(tmp|old)-(\d+)-{_RANDOM}\Z")


def remove_stale_temporaries(folder: str | os.PathLike[str], name: str) -> list[Path]:
    """Remove the temporaries of the target ``folder/name`` left by dead processes; return what was removed.

    Only entries matching the temporary-name patterns of this module (see the module docstring) are touched.
    """
    folder = Path(folder)
    files, dirs = _temp_file_pattern(name), _temp_dir_pattern(name)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        file_match, dir_match = files.match(entry.name), dirs.match(entry.name)
        try:
            if file_match and entry.is_file(follow_symlinks=False):
                pid = file_match.group(1)
                if pid is None or not _alive(int(pid)):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            elif dir_match and entry.is_dir(follow_symlinks=False) and not _alive(int(dir_match.group(2))):
                shutil.rmtree(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass  # gone meanwhile, or not ours to remove: left as it is
    return removed


def stale_folders(target: str | os.PathLike[str], kind: str) -> list[Path]:
    """The ``kind`` ("tmp" or "old") temporary folders of ``target`` that exist now (any process), sorted."""
    target = Path(target)
    pattern = _temp_dir_pattern(target.name)
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    return sorted(target.parent / n for n in names if (m := pattern.match(n)) and m.group(1) == kind)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, parents: bool = True) -> Iterator[IO[bytes]]:
    """A binary file whose content replaces ``path`` only if the ``with`` block completes.

    Readers see either the old content or the new, never a part: the data go to a temporary file beside
    ``path`` (same folder, so the final rename is atomic), which on a clean exit is flushed and fsynced, then
    ``os.replace``-d onto ``path``, and the folder is fsynced so the rename survives a crash. On any exception
    the temporary file is removed and ``path`` is left untouched.

    The file gets the permissions ``open`` would give it under the user's umask (``tempfile`` makes 0600),
    and the stale temporaries of ``path`` left by killed writers are removed first
    (see :func:`remove_stale_temporaries`).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    parents : bool
        Create the missing folders above ``path`` (True), or fail with ``FileNotFoundError`` like ``open``.
    """
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            _chmod(fh.fileno(), tmp, file_mode())
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write`` with the binary file of :func:`atomic_file` (temp file beside ``path``, fsync, rename);
    what ``write`` returns (``fh.write``'s byte count) is ignored."""
    with atomic_file(path) as fh:
        write(fh)


def _chmod(fd: int, path: str, mode: int) -> None:
    if os.chmod in os.supports_fd:
        os.chmod(fd, mode)
    else:
        os.chmod(path, mode)


def make_temp_dir(target: str | os.PathLike[str]) -> Path:
    """A new empty folder ``.<name>.tmp-<pid>-<random>`` beside ``target``, with the user's umask."""
    target = Path(target)
    path = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    os.chmod(path, dir_mode())
    return path


# renameat2(2) flag (Linux >= 3.15, glibc >= 2.28): exchange two paths atomically
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` in one atomic step; False where the system or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(b))


def replace_dir(new: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Put the complete folder ``new`` (a :func:`make_temp_dir` sibling of ``target``) at ``target``.

    * ``target`` absent: one ``rename``; a reader sees no folder, then the new one.
    * ``target`` present, Linux: ``renameat2(RENAME_EXCHANGE)`` swaps the two folders in one step (a reader
      sees the old folder, then the new one), then the old one, now at ``new``, is removed. A kill before the
      removal leaves it as a stale ``.tmp-`` folder, removed by the next save.
    * ``target`` present, no atomic exchange (other systems, some file systems): ``target`` is renamed
      aside to ``.<name>.old-<pid>-<random>``, ``new`` is renamed in, the old one removed. A kill between
      the two renames leaves no ``target`` but both complete folders beside it; loading ``target`` then
      says so (see :func:`stale_folders`) and the next save removes both.
    """
    new, target = Path(new), Path(target)
    if not os.path.lexists(target):
        os.rename(new, target)
        fsync_dir(target.parent)
        return
    if _exchange(new, target):
        try:
            fsync_dir(target.parent)
        finally:
            shutil.rmtree(new, ignore_errors=True)  # the old folder, now at `new`
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-", dir=target.parent))
    os.rmdir(old)  # only the unique name is wanted
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    try:
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(old, ignore_errors=True)
