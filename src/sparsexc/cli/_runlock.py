"""Claiming a run folder for ``sparsexc train`` / ``quickstart``: one run at a time, and no silent overwrite.

While a run trains, its folder is locked: ``fcntl.flock`` on ``OUT/.sparsexc.lock`` (which holds the pid),
released by the operating system when the process ends, however it ends; a run that ends normally (or with an
error) deletes the file, while still holding the lock. A second run into the folder stops at once with one line
naming the folder and the pid that holds it. A folder that holds a finished run (``run.json``
or ``model/``) or a started one (``checkpoints/``) is only written into with ``--resume`` (continue it) or
``--overwrite`` (its run files are deleted first, so nothing of the old run is mixed into the new one).

With ``--nproc-per-node`` the launching process claims the folder and holds it while torchrun runs; the
workers it starts find ``SPARSEXC_RUN_LOCK_HELD`` set to the folder and claim nothing. In a process group
started otherwise (torchrun by hand, or ``--nnodes`` over several machines, whose launching processes claim
nothing) rank 0 claims the folder and every rank learns the outcome, so all stop together on a refusal; the
other ranks never touch the folder here, so other machines need not see it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from sparsexc.cli._errors import UserError
from sparsexc.cli._training import CHECKPOINT_DIR, CURVES_FILE, METRICS_FILE, MODEL_DIR, RUN_FILE, TRAIN_LOG

__all__ = ["HELD_ENV", "LOCK_FILE", "claim_run_dir"]

LOCK_FILE = ".sparsexc.lock"
HELD_ENV = "SPARSEXC_RUN_LOCK_HELD"  # set for the workers of a launch whose parent holds the lock
LAUNCH_CONFIG = "launch_config.json"
# what marks a folder as holding a run, and what --overwrite deletes (the evaluate command's default output too)
_RUN_MARKERS = (RUN_FILE, MODEL_DIR, CHECKPOINT_DIR)
_RUN_FILES = (*_RUN_MARKERS, METRICS_FILE, TRAIN_LOG, CURVES_FILE, "evaluation.json", LAUNCH_CONFIG)


@contextlib.contextmanager
def claim_run_dir(out: Path, *, overwrite: bool = False, resume: bool = False) -> Iterator[None]:
    """Hold the lock of run folder ``out`` for the duration of the block (created when missing).

    Raises :class:`~sparsexc.cli._errors.UserError` (exit code 2, one line) when another process holds the
    lock, or when ``out`` holds a run and neither ``overwrite`` (delete its run files first) nor ``resume``
    is given. A folder this call created is removed again when the block fails while the folder is empty
    (a setting or data error writes nothing).
    """
    if overwrite and resume:
        raise UserError(
            "--overwrite and --resume exclude each other: --resume continues the run in the folder, "
            "--overwrite replaces it"
        )
    if os.environ.get(HELD_ENV) == str(out):  # a worker of a launch: the launching process holds the lock
        yield
        return
    from sparsexc.distributed.context import all_gather_objects, is_distributed, is_main

    created = not out.exists()
    handle, refusal = None, None
    if is_main():
        try:
            handle = _lock(out)
            _check_existing(out, overwrite, resume)
        except UserError as exc:
            refusal = exc.format_message()
        except OSError as exc:  # a folder that cannot be made or written: said here, so no rank waits alone
            refusal = f"--out {out}: {exc.strerror or exc}"
    if is_distributed():  # every rank learns rank 0's outcome, so none trains on alone
        refusal = all_gather_objects(refusal)[0]
    failed = True
    try:
        if refusal is not None:
            raise UserError(refusal)
        yield
        failed = False
    finally:
        if handle is not None:
            _release(out, handle, remove_folder=created and failed)


def _release(out: Path, handle: TextIO, remove_folder: bool) -> None:
    # delete the lock file while holding the lock (see _lock), then release it by closing the file; a folder this
    # run created and left empty (it failed before writing anything) goes too
    with contextlib.suppress(OSError):
        (out / LOCK_FILE).unlink()
    handle.close()
    if remove_folder:
        with contextlib.suppress(OSError):
            out.rmdir()  # only when empty


def _lock(out: Path) -> TextIO:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"--out {out}: exists and is not a folder") from None
    path = out / LOCK_FILE
    while True:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open while the run lasts
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise UserError(
                f"run folder {out} is in use by another sparsexc run (pid {holder}); wait until it "
                "ends or choose another --out"
            ) from None
        # the holder before us deletes the file before it lets go: a lock on a file no longer at ``path`` is
        # worth nothing, so open the path again
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _check_existing(out: Path, overwrite: bool, resume: bool) -> None:
    found = [name for name in _RUN_MARKERS if (out / name).exists()]
    if not found or resume:
        return
    if not overwrite:
        raise UserError(
            f"run folder {out} already holds a run ({', '.join(found)}); pass --overwrite to replace "
            "it, --resume to continue it, or choose another --out"
        )
    for name in _RUN_FILES:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
