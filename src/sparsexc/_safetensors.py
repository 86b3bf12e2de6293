"""The safetensors header and bounded JSON, read and checked without building any tensor.

:func:`read_safetensors_header` parses the 8-byte length and the JSON header of a safetensors file and checks
every entry (dtype, shape, byte range) and that the byte ranges tile the file exactly; :func:`loads_json_bounded`
refuses deep nesting before parsing. Problems are :class:`ModelFormatError` s naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from sparsexc.errors import ModelFormatError

if TYPE_CHECKING:
    import torch

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
    "ModelFormatError",
    "TensorInfo",
    "check_finite",
    "loads_json_bounded",
    "read_head",
    "read_safetensors_header",
]

MAX_HEADER_BYTES = 100 * 2**20  # the safetensors library's own limit
MAX_JSON_DEPTH = 64  # nested objects / arrays; a saved config nests 4 deep
MAX_DIMS = 8  # tensor rank
# safetensors dtype name -> (torch dtype name, bytes per element); sparsexc writes no other dtypes. Names, not
# torch dtypes, so that reading a header imports no torch (the label-tree model, numpy only, loads without it)
_CODES: dict[str, tuple[str, int]] = {
    "F64": ("float64", 8),
    "F32": ("float32", 4),
    "F16": ("float16", 2),
    "BF16": ("bfloat16", 2),
    "I64": ("int64", 8),
    "I32": ("int32", 4),
    "I16": ("int16", 2),
    "I8": ("int8", 1),
    "U8": ("uint8", 1),
    "BOOL": ("bool", 1),
}


def __getattr__(name: str) -> Any:
    """``DTYPES``: safetensors dtype name -> (torch dtype, bytes per element), built (importing torch) on first use."""
    if name == "DTYPES":
        import torch

        return {code: (getattr(torch, dtype), size) for code, (dtype, size) in _CODES.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_FINITE_CHUNK = 2**24  # elements per isfinite() pass (bounds the temporary mask)


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One tensor of a safetensors header: dtype (its safetensors name, e.g. ``"F32"``), shape, and its byte range
    in the data section."""

    code: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def dtype(self) -> torch.dtype:
        """The torch dtype (imports torch)."""
        import torch

        return getattr(torch, _CODES[self.code][0])

    @property
    def dtype_name(self) -> str:
        """The dtype's name as numpy and torch spell it (``"float32"``, ``"int64"``, ...), without torch."""
        return _CODES[self.code][0]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def loads_json_bounded(text: str, where: Path | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` before parsing (no RecursionError).

    Raises
    ------
    ModelFormatError
        Naming ``where`` and the line, for too deep nesting and for invalid JSON.
    """
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > max_depth:
                line = text.count("\n", 0, token.start()) + 1
                raise ModelFormatError(f"{where}: line {line}: JSON nested more than {max_depth} levels deep")
        elif bracket in "]}":
            depth -= 1
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{where}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4300 digits
        raise ModelFormatError(f"{where}: not valid JSON ({exc})") from None


# -- safetensors header -------------------------------------------------------------------------------------
def _check_safetensors_bytes(start: bytes, size: int, where: Path) -> None:
    """Refuse anything that is not a safetensors file, naming pickle payloads explicitly.

    ``start`` holds the file's first bytes (at least 9 when it has them), ``size`` its length. A safetensors
    file is an 8-byte little-endian header length n, then n bytes of JSON starting with "{". That is checked
    first: its first byte is the low byte of n and may be anything (0x80 included, the pickle protocol
    marker), so the pickle / zip signatures are only looked for in a file that fails it.
    """
    if len(start) >= 9:
        (header_len,) = struct.unpack("<Q", start[:8])
        if header_len <= size - 8 and start[8:9] == b"{":
            return
    if start[:1] == b"\x80" or start[:4] == b"PK\x03\x04":
        raise ModelFormatError(
            f"{where}: this file is a pickle / torch.save payload, not safetensors; sparsexc never unpickles "
            "model files (unpickling can run arbitrary code). Re-save the model with XCClassifier.save."
        )
    if size < 9:
        raise ModelFormatError(f"{where}: not a safetensors file (only {size} bytes)")
    raise ModelFormatError(f"{where}: not a safetensors file (bad header)")


def _tensor_info(name: str, entry: Any, where: Path) -> TensorInfo:
    what = f"{where}: header entry {name!r}"
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ModelFormatError(f"{what} must be an object with the fields dtype, shape, data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _CODES:
        raise ModelFormatError(f"{what}: dtype {dtype!r} is not one of {', '.join(_CODES)}")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise ModelFormatError(f"{what}: shape {shape!r} must be a list of at most {MAX_DIMS} sizes >= 0")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise ModelFormatError(f"{what}: data_offsets {offsets!r} must be [begin, end] with 0 <= begin <= end")
    info = TensorInfo(dtype, tuple(shape), offsets[0], offsets[1])
    if info.end - info.begin != info.numel * _CODES[dtype][1]:
        raise ModelFormatError(
            f"{what}: shape {shape} of {dtype} needs {info.numel * _CODES[dtype][1]} bytes, "
            f"but data_offsets span {info.end - info.begin}"
        )
    return info


def read_head(fh: IO[bytes], size: int, where: Path) -> bytes:
    """The first 8 + n bytes of a safetensors file (length field and header), checked before n is trusted."""
    start = fh.read(9)
    _check_safetensors_bytes(start, size, where)
    (n,) = struct.unpack("<Q", start[:8])
    if n > MAX_HEADER_BYTES:
        raise ModelFormatError(f"{where}: safetensors header of {n} bytes (limit {MAX_HEADER_BYTES})")
    return start + fh.read(max(n - 1, 0))


def read_safetensors_header(head: bytes, size: int, where: Path) -> dict[str, TensorInfo]:
    """Parse and check a safetensors header without building any tensor.

    ``head`` holds the file's first bytes (its length field and header, more is ignored), ``size`` the
    file's length. Checked: the header length, its JSON (bounded depth), every entry's dtype, shape and byte
    range, and that the byte ranges tile the data section exactly (so no tensor is larger than the file).
    """
    _check_safetensors_bytes(head, size, where)
    (n,) = struct.unpack("<Q", head[:8])
    if n > MAX_HEADER_BYTES:
        raise ModelFormatError(f"{where}: safetensors header of {n} bytes (limit {MAX_HEADER_BYTES})")
    if len(head) < 8 + n:
        raise ModelFormatError(f"{where}: the file ends inside its safetensors header")
    try:
        text = head[8 : 8 + n].decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFormatError(f"{where}: the safetensors header is not UTF-8 text") from None
    header = loads_json_bounded(text, f"{where} (safetensors header)")
    if not isinstance(header, dict):
        raise ModelFormatError(f"{where}: the safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelFormatError(f"{where}: the safetensors __metadata__ must map names to strings")
    infos = {name: _tensor_info(name, entry, where) for name, entry in header.items()}
    position = 0
    for name, info in sorted(infos.items(), key=lambda item: (item[1].begin, item[1].end)):
        if info.begin != position:
            raise ModelFormatError(
                f"{where}: tensor {name!r} starts at byte {info.begin} of the data, expected "
                f"{position} (tensors must tile the data without gaps or overlaps)"
            )
        position = info.end
    if position != size - 8 - n:
        raise ModelFormatError(
            f"{where}: the header describes {position} bytes of tensor data, the file holds "
            f"{size - 8 - n} (truncated or padded file)"
        )
    return infos


def check_finite(tensors: Mapping[str, Any], where: Path) -> None:
    """Refuse NaN / infinite entries in floating-point tensors (torch) or arrays (numpy), naming the first such
    one; torch is imported only for tensors."""
    for name, tensor in tensors.items():
        isfinite: Any
        if isinstance(tensor, np.ndarray):
            if tensor.dtype.kind != "f":
                continue
            flat, isfinite = tensor.reshape(-1), np.isfinite
        else:
            import torch

            if not tensor.is_floating_point():
                continue
            flat, isfinite = tensor.reshape(-1), torch.isfinite
        for start in range(0, flat.shape[0], _FINITE_CHUNK):
            if not bool(isfinite(flat[start : start + _FINITE_CHUNK]).all()):
                raise ModelFormatError(f"{where}: tensor {name!r} holds non-finite values (NaN or infinity)")
