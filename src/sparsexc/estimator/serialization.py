"""Model files: safetensors weights + a JSON config; nothing is ever unpickled."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from sparsexc.train.checkpoint import atomic_write

__all__ = ["WEIGHTS_FILE", "CONFIG_FILE", "FORMAT_VERSION", "write_model_dir", "read_model_dir"]

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT_VERSION = 1


def write_model_dir(path: str | os.PathLike[str], state_dict: dict[str, torch.Tensor], config: dict[str, Any]) -> None:
    """Write ``model.safetensors`` then ``config.json`` (each atomically) into the folder ``path``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: a model is saved as a folder, and a file of that name exists")
    tensors = {name: t.detach().cpu().contiguous() for name, t in state_dict.items()}
    blob = save_safetensors(tensors, metadata={"format": "sparsexc", "format_version": str(FORMAT_VERSION)})
    atomic_write(path / WEIGHTS_FILE, lambda fh: fh.write(blob))
    text = json.dumps({"format_version": FORMAT_VERSION, **config}, indent=2, sort_keys=True)
    atomic_write(path / CONFIG_FILE, lambda fh: fh.write(text.encode("utf-8")))


def _check_safetensors_bytes(blob: bytes, where: Path) -> None:
    """Refuse anything that is not a safetensors file, naming pickle payloads explicitly.

    A safetensors file is an 8-byte little-endian header length n, then n bytes of JSON starting with "{".
    That is checked first: its first byte is the low byte of n and may be anything (0x80 included, the
    pickle protocol marker), so the pickle / zip signatures are only looked for in a file that fails it.
    """
    if len(blob) >= 9:
        (header_len,) = struct.unpack("<Q", blob[:8])
        if header_len <= len(blob) - 8 and blob[8:9] == b"{":
            return
    if blob[:1] == b"\x80" or blob[:4] == b"PK\x03\x04":
        raise ValueError(
            f"{where}: this file is a pickle / torch.save payload, not safetensors; sparsexc never unpickles "
            "model files (unpickling can run arbitrary code). Re-save the model with XCClassifier.save."
        )
    if len(blob) < 9:
        raise ValueError(f"{where}: not a safetensors file (only {len(blob)} bytes)")
    raise ValueError(f"{where}: not a safetensors file (bad header)")


def read_model_dir(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return ``(state_dict, config)`` from a folder written by :func:`write_model_dir`."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such model folder")
    config_path, weights_path = path / CONFIG_FILE, path / WEIGHTS_FILE
    for required in (config_path, weights_path):
        if not required.is_file():
            raise FileNotFoundError(
                f"{required}: missing (a saved model folder holds {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{config_path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(config, dict) or "format_version" not in config:
        raise ValueError(f"{config_path}: field 'format_version' is missing; not a sparsexc model config")
    if config["format_version"] != FORMAT_VERSION:
        raise ValueError(f"{config_path}: field 'format_version' is {config['format_version']!r}; "
                         f"this version of sparsexc reads {FORMAT_VERSION}")
    blob = weights_path.read_bytes()
    _check_safetensors_bytes(blob, weights_path)
    try:
        state_dict = load_safetensors(blob)
    except Exception as exc:
        raise ValueError(f"{weights_path}: not a readable safetensors file ({exc})") from None
    return state_dict, config
