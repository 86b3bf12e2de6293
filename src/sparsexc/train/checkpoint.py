"""Atomic files and training checkpoints (tensors via ``torch.save``, loaded with ``weights_only=True``)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

__all__ = ["atomic_write", "save_checkpoint", "load_checkpoint", "CHECKPOINT_FILE", "STATE_FILE"]

CHECKPOINT_FILE = "checkpoint.pt"
STATE_FILE = "checkpoint.json"  # human-readable mirror of the state stored inside checkpoint.pt
CHECKPOINT_FORMAT = 1


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> None:
    """Write a file so readers see either the old or the new content: temp file beside it, fsync, os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(directory: str | os.PathLike[str], tensors: dict[str, Any], state: dict[str, Any]) -> None:
    """Write ``checkpoint.pt`` (tensors + the JSON state as a string) atomically, then its JSON mirror.

    The state lives inside the tensor file so the two can never disagree after a kill; ``checkpoint.json``
    is only for people and tools that want to look without torch.
    """
    state = {"format": CHECKPOINT_FORMAT, **state}
    text = json.dumps(state, sort_keys=True)
    payload = {**tensors, "state_json": text}
    atomic_write(Path(directory) / CHECKPOINT_FILE, lambda fh: torch.save(payload, fh))
    atomic_write(Path(directory) / STATE_FILE, lambda fh: fh.write(text.encode("utf-8")))


def load_checkpoint(directory: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Return ``(tensors, state)`` of the checkpoint in ``directory``, or None when there is none."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        state = json.loads(payload.pop("state_json"))
    except Exception as exc:  # a truncated or foreign file: say which and why
        raise ValueError(f"{path}: not a readable sparsexc checkpoint ({exc})") from exc
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: checkpoint format {state.get('format')!r}; this version reads {CHECKPOINT_FORMAT}")
    return payload, state
