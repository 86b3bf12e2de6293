"""Writing a safetensors file array by array, without building its payload in memory.

The safetensors library's ``save`` returns the whole file as one ``bytes`` object (and ``save_file`` builds the
same buffer), after the caller has made a converted copy of every array whose dtype differs from the file's:
for a label-tree model, whose CSR column ids are int32 in memory and int64 in the file, that is about twice the
file's size alive at once, the peak of a train-predict-save run on debian-deps (docs/tree.md, "Memory").

The format (https://github.com/huggingface/safetensors, "Format"): an 8-byte little-endian length ``n``, ``n``
bytes of JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}}`` padded with spaces to a multiple of
8 bytes, then every array's little-endian bytes back to back (offsets relative to the end of the header).
:func:`write_safetensors` writes the arrays in the library's order (wider dtypes first, then by name) and casts
each one to its file dtype :data:`CHUNK` elements at a time, so the extra memory is one chunk, and the bytes
are the library's own for the same arrays (tested against ``safetensors.numpy.save``).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["CHUNK", "DeferredArray", "write_safetensors"]

CHUNK = 1 << 20  # elements cast and written at a time: bounds the temporary copy (8 MiB of int64)
# numpy dtype -> safetensors code, in the library's serialisation order (its Dtype enum, largest first)
_CODES: dict[np.dtype, str] = {
    np.dtype(t): code
    for t, code in (
        (np.uint64, "U64"),
        (np.int64, "I64"),
        (np.float64, "F64"),
        (np.float32, "F32"),
        (np.uint32, "U32"),
        (np.int32, "I32"),
        (np.float16, "F16"),
        (np.uint16, "U16"),
        (np.int16, "I16"),
        (np.int8, "I8"),
        (np.uint8, "U8"),
        (np.bool_, "BOOL"),
    )
}
_RANK = {code: i for i, code in enumerate(_CODES.values())}


class Writable(Protocol):
    """What the writer needs of a binary file: ``write`` (an open file, or a wrapper that also hashes)."""

    def write(self, data: Any, /) -> Any: ...


@dataclass(frozen=True)
class DeferredArray:
    """An array given by its shape and made only when its bytes are written: a writer then holds one such
    array at a time (a label-tree model rebuilds its CSR weights level by level from their search layout)."""

    shape: tuple[int, ...]
    make: Callable[[], np.ndarray]


def write_safetensors(
    fh: Writable,
    arrays: Mapping[str, tuple[np.ndarray | DeferredArray, DTypeLike]],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write ``{name: (array, file dtype)}`` to the binary file ``fh`` in the safetensors format.

    ``metadata`` (string to string) is the header's ``"__metadata__"`` entry, first, its keys sorted (the library
    writes them in its hash map's order, which changes from process to process).

    Each array is stored with its own shape and the given dtype (``array.astype(dtype)`` in C order, cast one
    chunk at a time); the file reads back with ``safetensors.numpy.load_file`` as those casts. A
    :class:`DeferredArray` is made when its turn to be written comes (the header needs only its shape).

    Raises
    ------
    ValueError
        For a file dtype safetensors has no code for (the message lists the allowed ones), or a deferred array
        made with another shape than it declared (the header is written by then: the file is unusable, and the
        caller's atomic write discards it).
    """
    entries: list[tuple[str, np.ndarray | DeferredArray, np.dtype]] = []
    for name, (array, dtype) in arrays.items():
        dt = np.dtype(dtype)
        if dt not in _CODES:
            allowed = ", ".join(str(d) for d in _CODES)
            raise ValueError(f"array {name!r}: dtype {dt} has no safetensors code (allowed: {allowed})")
        entries.append((name, array if isinstance(array, DeferredArray) else np.asarray(array), dt))
    entries.sort(key=lambda e: (_RANK[_CODES[e[2]]], e[0]))
    header: dict[str, dict[str, object]] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in sorted(metadata.items())}
    position = 0
    for name, array, dt in entries:
        size = int(np.prod(array.shape, dtype=np.int64)) * dt.itemsize
        header[name] = {"dtype": _CODES[dt], "shape": list(array.shape), "data_offsets": [position, position + size]}
        position += size
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the library aligns the data section to 8 bytes
    fh.write(struct.pack("<Q", len(text)))
    fh.write(text)
    little = {dt: dt.newbyteorder("<") for _, _, dt in entries}
    for name, entry, dt in entries:
        array = entry.make() if isinstance(entry, DeferredArray) else entry
        if tuple(array.shape) != tuple(entry.shape):
            raise ValueError(f"array {name!r}: made with shape {array.shape}, declared {entry.shape}")
        flat = array.reshape(-1)  # a view for C-contiguous arrays; safetensors stores C order
        for start in range(0, flat.size, CHUNK):
            fh.write(np.ascontiguousarray(flat[start : start + CHUNK], dtype=little[dt]).data)
