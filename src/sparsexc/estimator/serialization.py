"""Model files: safetensors weights + a JSON config; nothing is ever unpickled.

A model folder holds ``model.safetensors`` and ``config.json``; the config records the weights' SHA-256
(``weights_sha256``). :func:`write_model_dir` writes a new folder beside the target and swaps it in
(:func:`sparsexc._atomic.replace_dir`), so a reader sees the old model or the new one, never a mix.
:func:`open_model_dir` reads the config and the safetensors header and checks them (nesting depth, sizes,
offsets, checksum) before any tensor is built; :meth:`ModelFiles.tensors` then loads the tensors and refuses
non-finite values. Every problem is one :class:`ModelFormatError` naming the file and the field or tensor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from safetensors import SafetensorError

from sparsexc._atomic import fsync_dir, make_temp_dir, remove_stale_temporaries, replace_dir, stale_folders
from sparsexc._safetensors import (
    ModelFormatError,
    TensorInfo,
    check_finite,
    loads_json_bounded,
    read_head,
    read_safetensors_header,
)
from sparsexc._safetensors_write import write_safetensors
from sparsexc.errors import ConfigurationError

if TYPE_CHECKING:
    import torch

# torch is imported to write or read tensors only: a label-tree model's arrays are numpy's, and its folder is
# written and read without torch

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "WEIGHTS_FILE",
    "ModelFiles",
    "ModelFormatError",
    "TensorInfo",
    "loads_json_bounded",
    "open_model_dir",
    "read_model_dir",
    "write_model_dir",
]

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT_VERSION = 1
SHA_FIELD = "weights_sha256"
MAX_CONFIG_BYTES = 64 * 2**20  # a config holds settings and a per-epoch history: far less than this


# -- writing ------------------------------------------------------------------------------------------------
class _Hashed:
    """A binary file that also feeds every byte written to it into ``digest``."""

    def __init__(self, fh: IO[bytes], digest: Any) -> None:
        self.fh, self.digest = fh, digest

    def write(self, data: Any) -> int:
        self.digest.update(data)
        return self.fh.write(data)


def _write_weights(path: Path, state: Mapping[str, torch.Tensor | tuple[Any, Any]]) -> str:
    """Write ``state`` to the new file ``path`` in the safetensors format, array by array (no copy of the whole
    file in memory: :func:`sparsexc._safetensors_write.write_safetensors`), fsynced; return its SHA-256 (hex).

    A value is a tensor (stored with its own dtype) or ``(array or DeferredArray, file dtype)``, as a family's
    ``state`` gives them (the label tree's weights, made level by level from their search layout)."""
    arrays = {name: _file_entry(name, value) for name, value in state.items()}
    digest = hashlib.sha256()
    with _synced_file(path) as fh:
        write_safetensors(_Hashed(fh, digest), arrays, {"format": "sparsexc", "format_version": str(FORMAT_VERSION)})
    return digest.hexdigest()


def _file_entry(name: str, value: torch.Tensor | tuple[Any, Any]) -> tuple[Any, Any]:
    """``(array, file dtype)`` of a state entry: a tensor as its numpy view in its own dtype, a pair as given.

    Raises ValueError for a tensor dtype numpy has no type for (bfloat16: weights are kept in float32)."""
    if not isinstance(value, tuple):  # a tensor (torch is imported where one exists)
        if str(value.dtype) == "torch.bfloat16":
            raise ValueError(f"tensor {name!r}: dtype torch.bfloat16 cannot be saved; cast the weights to float32")
        array = value.detach().cpu().contiguous().numpy()
        return array, array.dtype
    return value


@contextlib.contextmanager
def _synced_file(path: Path) -> Iterator[IO[bytes]]:
    """A new binary file at ``path``, flushed and fsynced when the block ends without an error."""
    with open(path, "xb") as fh:  # a fresh file in our own new folder: created with the user's umask
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def _check_replaceable(path: Path) -> None:
    """Refuse to replace a folder that holds anything but a saved model (its files would be deleted)."""
    if not path.is_dir():
        raise ConfigurationError(f"{path}: a model is saved as a folder, and a file of that name exists")
    ours = {CONFIG_FILE, WEIGHTS_FILE}
    legacy_tmp = re.compile(rf"\.({re.escape(CONFIG_FILE)}|{re.escape(WEIGHTS_FILE)})\.[a-z0-9_]{{8}}\.tmp\Z")
    foreign = sorted(n for n in os.listdir(path) if n not in ours and not legacy_tmp.match(n))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ConfigurationError(
            f"{path}: the folder holds other files than a saved model ({shown}); saving replaces "
            "the whole folder, so give a new or a model folder"
        )


def write_model_dir(
    path: str | os.PathLike[str], state_dict: Mapping[str, torch.Tensor | tuple[Any, Any]], config: dict[str, Any]
) -> None:
    """Save ``state_dict`` and ``config`` as the model folder ``path``, replacing it as a whole.

    Both files are written (and fsynced) into a new sibling folder ``.<name>.tmp-<pid>-<random>``, the
    config last with the weights' SHA-256; that folder is then swapped in by
    :func:`sparsexc._atomic.replace_dir` (its docstring lists the crash windows). A folder that holds other
    files than a saved model is refused, not replaced. Temporaries of earlier saves killed midway are removed.
    """
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()  # replace the folder the link points to; the link stays
    if os.path.lexists(path):
        _check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.name)
    new = make_temp_dir(path)
    try:
        digest = _write_weights(new / WEIGHTS_FILE, state_dict)
        text = json.dumps({"format_version": FORMAT_VERSION, **config, SHA_FIELD: digest}, indent=2, sort_keys=True)
        with _synced_file(new / CONFIG_FILE) as fh:
            fh.write(text.encode("utf-8"))
        fsync_dir(new)
        replace_dir(new, path)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise


# -- reading ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ModelFiles:
    """A model folder whose config and weights header passed :func:`open_model_dir`'s checks.

    The weights file stays open (so it is the one read with the config, whatever saves happen meanwhile)
    until :meth:`tensors` reads it or :meth:`close`; use it as a context manager.
    """

    folder: Path
    config: dict[str, Any]
    header: dict[str, TensorInfo]
    size: int
    handle: IO[bytes] | None = dataclasses.field(default=None, repr=False)

    @property
    def config_path(self) -> Path:
        return self.folder / CONFIG_FILE

    @property
    def weights_path(self) -> Path:
        return self.folder / WEIGHTS_FILE

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def __enter__(self) -> ModelFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tensors(self) -> dict[str, torch.Tensor]:
        """Read the weights (their size was checked against the header), verify their SHA-256, build the
        tensors and refuse non-finite ones; closes the file."""
        from safetensors.torch import load

        return self._read(load)

    def arrays(self) -> dict[str, np.ndarray]:
        """:meth:`tensors` as numpy arrays (without torch; every dtype sparsexc writes has a numpy type)."""
        from safetensors.numpy import load

        return self._read(load)

    def _read(self, load: Any) -> Any:
        """``load(bytes)`` of the weights file, its size and SHA-256 verified and non-finite values refused."""
        if self.handle is None:
            raise ValueError(f"{self.weights_path}: already read or closed")
        try:
            self.handle.seek(0)
            blob = self.handle.read()
        finally:
            self.close()
        where = self.weights_path
        if len(blob) != self.size:
            raise ModelFormatError(f"{where}: its size changed while it was read ({self.size} -> {len(blob)} bytes)")
        sha = self.config.get(SHA_FIELD)
        if sha is not None and hashlib.sha256(blob).hexdigest() != sha:
            raise ModelFormatError(
                f"{where}: SHA-256 {hashlib.sha256(blob).hexdigest()} differs from the "
                f"{SHA_FIELD} recorded in {CONFIG_FILE} ({sha}): the file was changed or damaged"
            )
        try:
            tensors = load(blob)
        except (SafetensorError, ValueError, RuntimeError, TypeError, KeyError) as exc:  # after the header checks
            raise ModelFormatError(f"{where}: not a readable safetensors file ({exc})") from None
        del blob
        check_finite(tensors, where)
        return tensors


def _missing_folder(path: Path) -> FileNotFoundError:
    aside, new = stale_folders(path, "old"), stale_folders(path, "tmp")
    if aside:
        return FileNotFoundError(
            f"{path}: no such model folder: a save into it was interrupted between its two renames; the previous "
            f"model is in {aside[-1]}"
            + (f" and the new one in {new[-1]}" if new else "")
            + f" (rename one of them to {path.name}; the next save removes them)"
        )
    return FileNotFoundError(f"{path}: no such model folder")


def _open_regular(folder: Path, name: str, folder_fd: int | None) -> tuple[IO[bytes], int]:
    # non-blocking open, so a FIFO of that name cannot hang us; then only a regular file is accepted
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(name, flags, dir_fd=folder_fd) if folder_fd is not None else os.open(folder / name, flags)
    fh = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        fh.close()
        raise ModelFormatError(f"{folder / name}: not a regular file")
    return fh, info.st_size


def _open_files(path: Path) -> tuple[bytes, IO[bytes], int]:
    """The bytes of config.json, and model.safetensors opened (with its size), both through one handle on the
    folder, so a concurrent save (which swaps in a whole new folder) cannot mix an old file with a new one."""
    use_fd = os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY")
    for attempt in range(3):
        if not path.is_dir():
            raise _missing_folder(path)
        folder_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY) if use_fd else None
        name = CONFIG_FILE
        try:
            fh, size = _open_regular(path, name, folder_fd)
            with fh:
                if size > MAX_CONFIG_BYTES:
                    raise ModelFormatError(f"{path / name}: {size} bytes; a model config is at most {MAX_CONFIG_BYTES}")
                config = fh.read()
            name = WEIGHTS_FILE
            return (config, *_open_regular(path, name, folder_fd))
        except FileNotFoundError:
            if attempt < 2 and _swapped(path, folder_fd):
                continue  # a save replaced the folder (and removed the old one) while we read: read the new one
            if not path.is_dir():
                raise _missing_folder(path) from None
            raise ModelFormatError(
                f"{path / name}: missing (a saved model folder holds {CONFIG_FILE} and {WEIGHTS_FILE})"
            ) from None
        except OSError as exc:  # no permission...
            raise ModelFormatError(f"{path / name}: cannot be read ({exc.strerror or exc})") from None
        finally:
            if folder_fd is not None:
                os.close(folder_fd)
    raise AssertionError("unreachable")


def _swapped(path: Path, folder_fd: int | None) -> bool:
    # whether the folder at `path` is no longer the one opened as folder_fd (a save swapped a new one in)
    if folder_fd is None:
        return True
    try:
        return os.stat(path).st_ino != os.fstat(folder_fd).st_ino
    except OSError:
        return True


def _parse_config(raw: bytes, where: Path) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFormatError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    config = loads_json_bounded(text, where)
    if not isinstance(config, dict) or "format_version" not in config:
        raise ModelFormatError(f"{where}: field 'format_version' is missing; not a sparsexc model config")
    version = config["format_version"]
    if type(version) is not int or version != FORMAT_VERSION:
        raise ModelFormatError(
            f"{where}: field 'format_version' is {version!r}; this version of sparsexc reads {FORMAT_VERSION}"
        )
    sha = config.get(SHA_FIELD)
    if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
        raise ModelFormatError(f"{where}: field {SHA_FIELD!r} must be 64 lower-case hex digits; got {sha!r}")
    return config


def open_model_dir(path: str | os.PathLike[str]) -> ModelFiles:
    """Open and check a folder written by :func:`write_model_dir`, reading only the config and the weights'
    header (the weights themselves are read by :meth:`ModelFiles.tensors`, after the caller's checks).

    Checks: both files present and regular; the config is UTF-8 JSON of bounded size and depth with the
    right ``format_version`` and a well-formed ``weights_sha256`` (configs written before it was recorded
    have none); the weights are safetensors (never a pickle) whose header is consistent with the file's
    length.

    Raises
    ------
    FileNotFoundError
        No such folder (the message tells when an interrupted save left the model beside it).
    ModelFormatError
        Anything else, naming the file and the field or tensor.
    """
    path = Path(path)
    raw_config, handle, size = _open_files(path)
    try:
        config = _parse_config(raw_config, path / CONFIG_FILE)
        header = read_safetensors_header(read_head(handle, size, path / WEIGHTS_FILE), size, path / WEIGHTS_FILE)
    except BaseException:
        handle.close()
        raise
    return ModelFiles(path, config, header, size, handle)


def read_model_dir(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return ``(state_dict, config)`` from a folder written by :func:`write_model_dir` (see
    :func:`open_model_dir` and :meth:`ModelFiles.tensors` for the checks)."""
    with open_model_dir(path) as files:
        return files.tensors(), files.config
