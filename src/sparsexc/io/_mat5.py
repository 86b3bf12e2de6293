"""Structural check of a MATLAB v5 (v6, v7) ``.mat`` file before scipy reads it.

scipy's compiled v5 reader trusts the element tags: a corrupt data type or byte count in a sub-element (one
flipped byte) makes ``scipy.io.loadmat`` read outside its buffers and crash the process. :func:`checked_v5`
walks every element in Python first -- tags, data types, byte counts within their parent and the file,
array flags, dimensions, the sub-elements each array class has and their sizes against the dimensions --,
decompresses ``miCOMPRESSED`` variables (a corrupt or truncated stream is an error), and returns the file as
one uncompressed byte string, so that scipy parses exactly the bytes that were checked.

Layout (MathWorks, "MAT-File Format"): a 128-byte header (text, subsystem offset, version, endian
indicator ``IM``/``MI``), then top-level ``miMATRIX`` (14) or ``miCOMPRESSED`` (15) elements. An element is
an 8-byte tag (data type, byte count) and its data padded to 8 bytes, or a small data element (the byte
count, at most 4, in the upper 16 bits of the first word and the data in the second word).
"""

from __future__ import annotations

import struct
import zlib

from .errors import DataFormatError

__all__ = ["checked_v5", "is_v5"]

_MATRIX, _COMPRESSED = 14, 15
_ITEM = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8}  # numeric data types: bytes per item
_TEXT = {16: 1, 17: 2, 18: 4}  # utf8, utf16, utf32 (character arrays)
_INTEGER = {1, 2, 3, 4, 5, 6, 12, 13}
_CELL, _STRUCT, _OBJECT, _CHAR, _SPARSE = 1, 2, 3, 4, 5
_NUMERIC_CLASSES = set(range(6, 16))  # double, single, int8 ... uint64


class _Bad(Exception):
    """A structural problem; turned into a DataFormatError naming the file by :func:`checked_v5`."""


def is_v5(head: bytes) -> bool:
    """Whether scipy would read this file as a v5 file (no zero among its first 4 bytes, version 1)."""
    if len(head) < 128 or 0 in head[:4]:
        return False
    major = head[125] if head[126:128] == b"IM" else head[124]
    return major == 1


class _Reader:
    def __init__(self, data: bytes, order: str):
        self.data = data
        self.order = order

    def tag(self, pos: int, end: int) -> tuple[int, int, int, int]:
        """``(data type, byte count, data start, next element)`` of the element at ``pos`` (before ``end``)."""
        if pos + 8 > end:
            raise _Bad(f"an element tag at byte {pos}, past the end of its parent ({end})")
        word, count = struct.unpack_from(self.order + "II", self.data, pos)
        if word >> 16:  # small data element
            mdtype, count = word & 0xFFFF, word >> 16
            if count > 4:
                raise _Bad(f"a small data element of at most 4 bytes at byte {pos}, found {count}")
            return mdtype, count, pos + 4, pos + 8
        start = pos + 8
        if count > end - start:
            raise _Bad(f"an element of {count} bytes at byte {pos}, only {end - start} left in its parent")
        return word, count, start, min(end, start + count + (-count % 8))

    def numbers(self, pos: int, end: int, types: dict[int, int], what: str) -> tuple[int, int, int]:
        """``(data type, item count, next element)`` of a numeric sub-element."""
        mdtype, count, _, nxt = self.tag(pos, end)
        if mdtype not in types or count % types[mdtype]:
            raise _Bad(f"{what}: data type {mdtype} with {count} bytes")
        return mdtype, count // types[mdtype], nxt

    def ints(self, pos: int, end: int, what: str) -> tuple[list[int], int]:
        mdtype, count, start, nxt = self.tag(pos, end)
        if mdtype != 5 or count % 4:
            raise _Bad(f"{what}: int32 data, found data type {mdtype} with {count} bytes")
        return list(struct.unpack_from(self.order + f"{count // 4}i", self.data, start)), nxt

    def matrix(self, pos: int, end: int, depth: int = 0) -> int:
        """Check the miMATRIX element at ``pos``; return where the next element starts."""
        mdtype, count, start, nxt = self.tag(pos, end)
        if mdtype != _MATRIX:
            raise _Bad(f"a matrix element (type 14) at byte {pos}, found type {mdtype}")
        if count == 0:  # an empty matrix (e.g. an empty cell)
            return nxt
        if depth > 20:
            raise _Bad("cells or structs nested at most 20 deep")
        stop = start + count
        flags_type, flags_count, flags_start, p = self.tag(start, stop)
        if flags_type != 6 or flags_count != 8:
            raise _Bad(f"array flags (8 bytes of uint32) at byte {start}")
        flags = struct.unpack_from(self.order + "I", self.data, flags_start)[0]
        cls, is_complex = flags & 0xFF, bool(flags & 0x800)
        dims, p = self.ints(p, stop, "dimensions")
        if len(dims) < 2 or min(dims) < 0:
            raise _Bad(f"at least 2 non-negative dimensions, found {dims}")
        numel = 1
        for d in dims:
            numel *= d
        name_type, _, _, p = self.tag(p, stop)
        if name_type not in (1, 2):
            raise _Bad(f"an array name (int8 data), found data type {name_type}")
        if cls in _NUMERIC_CLASSES or cls == _CHAR:
            types = {**_ITEM, **_TEXT} if cls == _CHAR else _ITEM
            for part in ("real part", "imaginary part")[: 1 + is_complex]:
                t, n, p = self.numbers(p, stop, types, part)
                if n != numel and not (cls == _CHAR and t in _TEXT):
                    raise _Bad(f"{part}: {numel} values for dimensions {dims}, found {n}")
        elif cls == _SPARSE:
            if len(dims) != 2:
                raise _Bad(f"a 2-D sparse matrix, found dimensions {dims}")
            _, n_ir, p = self.numbers(p, stop, {k: _ITEM[k] for k in _INTEGER}, "sparse row indices")
            _, n_jc, p = self.numbers(p, stop, {k: _ITEM[k] for k in _INTEGER}, "sparse column pointers")
            if n_jc != dims[1] + 1:
                raise _Bad(f"{dims[1] + 1} sparse column pointers, found {n_jc}")
            for part in ("sparse values", "sparse imaginary values")[: 1 + is_complex]:
                _, n, p = self.numbers(p, stop, _ITEM, part)
                if n > n_ir:
                    raise _Bad(f"{part}: at most {n_ir} (one per row index), found {n}")
        elif cls in (_CELL, _STRUCT, _OBJECT):
            n_fields = 1
            if cls != _CELL:
                if cls == _OBJECT:
                    p = self.tag(p, stop)[3]  # class name
                (length,), p = self.ints(p, stop, "field name length")
                names_type, names_count, _, p = self.tag(p, stop)
                if names_type != 1 or length <= 0 or names_count % length:
                    raise _Bad(f"field names: int8 data in units of {length} bytes, found {names_count} bytes")
                n_fields = names_count // length
            for _ in range(numel * n_fields):
                p = self.matrix(p, stop, depth + 1)
        else:
            raise _Bad(f"a numeric, character, sparse, cell or struct array, found array class {cls}")
        return nxt


def checked_v5(path: str, data: bytes) -> bytes:
    """The v5 file ``data`` with every variable checked and decompressed, as one uncompressed file.

    Raises
    ------
    DataFormatError
        Naming ``path`` and the first structural problem (byte offsets are those of the decompressed
        variable for a compressed one).
    """
    order = "<" if data[126:128] == b"IM" else ">"
    out = [data[:128]]
    pos = 128
    try:
        while pos < len(data):
            mdtype, count, start, _ = _Reader(data, order).tag(pos, len(data))
            element, pos = data[pos : start + count], start + count
            if mdtype == _COMPRESSED:
                try:
                    element = zlib.decompress(data[start : start + count])
                except zlib.error as exc:
                    where = f"a complete zlib stream in the compressed variable at byte {start - 8}"
                    raise _Bad(f"{where}: {exc}") from None
            reader = _Reader(element, order)
            _, inner_count, inner_start, _ = reader.tag(0, len(element))
            reader.matrix(0, len(element))
            out.append(element[: inner_start + inner_count])  # scipy goes on right after the byte count
    except _Bad as exc:
        raise DataFormatError(path, "a consistent MATLAB v5 .mat file", found=str(exc)) from None
    except struct.error as exc:
        raise DataFormatError(path, "a consistent MATLAB v5 .mat file", found=f"truncated data ({exc})") from None
    return b"".join(out)
