"""Reading a label-tree model folder (``config.json`` + ``model.safetensors``) with every check before loading.

The JSON is size- and depth-bounded, the safetensors header is parsed and checked (dtypes, shapes, byte ranges
tiling the file) before any array is built, and only the expected names and dtypes are accepted, so a
malformed or hostile file is a :class:`~sparsexc.errors.ModelFormatError` naming the file, never an allocation
the file cannot back or code execution (there is no pickle).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from sparsexc._safetensors import loads_json_bounded, read_head, read_safetensors_header
from sparsexc.errors import ModelFormatError

__all__ = ["check_array_header", "read_model_files"]

MAX_CONFIG_BYTES = 2**20
# array name -> allowed safetensors dtype (torch dtype names as the header check reports them)
_NAMES = re.compile(r"tree\.\d+\.(offsets\.\d+|label_order)|weights\.\d+\.\d+\.(indptr|indices|data)")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _read_config(path: Path, kind: str, versions: tuple[int, ...]) -> dict[str, Any]:
    if not path.is_file():
        raise ModelFormatError(f"{path}: missing (a {kind} model folder holds config.json and model.safetensors)")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ModelFormatError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes; not a {kind} config")
    config = loads_json_bounded(path.read_text(encoding="utf-8", errors="replace"), path)
    if not isinstance(config, dict) or config.get("format") != kind:
        raise ModelFormatError(f"{path}: not a {kind} model (its 'format' field is not {kind!r})")
    version = config.get("version")
    if type(version) is not int or version not in versions:
        readable = ", ".join(str(v) for v in versions)
        raise ModelFormatError(f"{path}: format version {version!r}; this sparsexc reads {readable}")
    for key in ("n_features", "n_labels"):
        value = config.get(key)
        if not _positive_int(value):
            raise ModelFormatError(f"{path}: field {key!r} must be a positive integer, got {value!r}")
    depths = config.get("depths")
    if not isinstance(depths, list) or not depths or not all(_positive_int(v) for v in depths):
        raise ModelFormatError(f"{path}: field 'depths' must be a non-empty list of positive integers")
    if not isinstance(config.get("params"), dict):
        raise ModelFormatError(f"{path}: field 'params' must be an object")
    return config


def check_array_header(infos: dict[str, Any], path: Any) -> None:
    """Refuse a safetensors header (name -> info with ``dtype``, ``shape``) holding any array a label-tree model
    does not write: every name must match the model's, weight values float32, column ids int32 or int64 (format
    versions 2 and 1), every other integer array int64, all 1-D. (Compared by dtype name: the label-tree model
    loads without importing torch.)"""
    for name, info in infos.items():
        if not _NAMES.fullmatch(name):
            raise ModelFormatError(f"{path}: unexpected array {name!r}")
        wants = (
            ("float32",) if name.endswith(".data") else ("int32", "int64") if name.endswith(".indices") else ("int64",)
        )
        if info.dtype_name not in wants or len(info.shape) != 1:
            want = " or ".join(f"torch.{w}" for w in wants)
            raise ModelFormatError(
                f"{path}: array {name!r} must be 1-D {want}, found torch.{info.dtype_name} {info.shape}"
            )


def read_model_files(
    folder: Path, kind: str, versions: tuple[int, ...]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(config, arrays)`` of a model folder of one of the format ``versions``, checked as the module docstring
    says (:func:`check_array_header`: names, dtypes, shapes)."""
    config = _read_config(folder / "config.json", kind, versions)
    path = folder / "model.safetensors"
    if not path.is_file():
        raise ModelFormatError(f"{path}: missing")
    size = path.stat().st_size
    with path.open("rb") as fh:
        infos = read_safetensors_header(read_head(fh, size, path), size, path)
    check_array_header(infos, path)
    from safetensors.numpy import load_file

    arrays = load_file(str(path))
    for name, array in arrays.items():
        if array.dtype == np.float32 and not np.all(np.isfinite(array)):
            raise ModelFormatError(f"{path}: array {name!r} holds non-finite values")
    return config, arrays
