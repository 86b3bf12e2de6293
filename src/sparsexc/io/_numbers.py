"""Vectorised parsing of decimal number tokens held in a byte array.

Used by the text readers' fast paths: a token ``[digits][.digits]`` (at most 15 digits) is converted with
exact integer arithmetic and one correctly rounded division (Clinger's fast path), which gives the same
float64 as ``float(token)``; other forms (exponents, ``+``, long mantissas) go through ``np.fromstring``
(C ``strtod``). Callers fall back to a line-by-line parser whenever these functions say "not simple".

Also the limits every reader applies: values must be finite as float32 (:func:`float32_finite`; ``1e39``
overflows float32 and is rejected like ``inf``), and ids and widths must fit int32 (:data:`MAX_WIDTH`,
:func:`id_value`, which never calls ``int()`` on a token longer than it needs to).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "DECIMAL",
    "DECIMAL_BYTES",
    "FLOAT32_MAX",
    "MAX_WIDTH",
    "float32_finite",
    "id_value",
    "only_number_chars",
    "parse_float_tokens",
    "parse_plain_decimals",
]

# A decimal number as every text reader accepts it: ``1``, ``-0.5``, ``.5``, ``3.2e-05``; no ``_``, ``nan``,
# ``inf``, hexadecimal or non-ASCII digits (which Python's float() and C's strtod would take).
_DECIMAL = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z"
DECIMAL = re.compile(_DECIMAL)
DECIMAL_BYTES = re.compile(_DECIMAL.encode())
_NOT_NUMBER_CHAR = re.compile(r"[^0-9.eE+\-, ]")

FLOAT32_MAX = float(np.finfo(np.float32).max)
# The largest number of rows, features or labels a file may declare or its ids may imply (int32 indices).
MAX_WIDTH = 2**31 - 1


def float32_finite(values: npt.ArrayLike) -> np.ndarray:
    """Boolean mask: the value is finite once stored as float32 (False for nan, +-inf and +-1e39)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.isfinite(np.asarray(values).astype(np.float32))


def only_number_chars(text: str) -> bool:
    """True when ``text`` holds nothing but digits, ``.eE+-``, commas and spaces (a check before ``strtod``,
    which would also read ``nan``, ``inf`` and hexadecimal numbers)."""
    return _NOT_NUMBER_CHAR.search(text) is None


def id_value(token: bytes | str) -> int:
    """The integer of a token of decimal digits, or ``MAX_WIDTH + 1`` when it is larger than ``MAX_WIDTH``.

    Python's ``int()`` refuses strings of over 4,300 digits with a bare ``ValueError`` and accepts ``_``;
    callers check the token is ``[0-9]+`` first, and this never converts more than 11 digits.
    """
    digits = token.lstrip(b"0") if isinstance(token, bytes) else token.lstrip("0")
    if len(digits) > 10:
        return MAX_WIDTH + 1
    return min(int(digits or 0), MAX_WIDTH + 1)


_MAX_PLAIN_LEN = 15  # <= 15 digits: the mantissa stays below 2**53, so float64 arithmetic is exact
_AR = np.arange(_MAX_PLAIN_LEN + 1, dtype=np.int64)
_POW10 = 10.0 ** np.arange(23)


def _row_sum(M: np.ndarray, weighted: bool = False) -> np.ndarray:
    """Per-row count of a narrow (n, <= 15) boolean array (or sum of column index where True).

    A loop over the few columns is several times faster than numpy's axis-1 reductions on short rows.
    """
    acc = np.zeros(M.shape[0], dtype=np.int64)
    for k in range(M.shape[1]):
        col = M[:, k].view(np.uint8)
        acc += col * k if weighted else col
    return acc


def parse_plain_decimals(b: np.ndarray, starts: np.ndarray, lens: np.ndarray):
    """Parse tokens ``b[starts[i] : starts[i] + lens[i]]`` of the form ``digits[.digits]``.

    Returns ``(values float64, has_dot bool)``, or ``None`` if any token is not of that form (empty, two dots,
    a non-digit byte) or longer than 15 bytes. The value equals ``float(token)`` exactly: the mantissa
    ``m < 10**15 < 2**53`` and ``10**k`` (k <= 14) are exact doubles, and IEEE division rounds once.
    """
    n = starts.size
    values = np.empty(n, dtype=np.float64)
    has_dot = np.zeros(n, dtype=bool)
    if n == 0:
        return values, has_dot
    if int(lens.min()) < 1 or int(lens.max()) > _MAX_PLAIN_LEN:
        return None
    lens8 = lens.astype(np.uint8)
    order = np.argsort(lens8, kind="stable")  # radix sort on uint8: groups tokens of equal length
    sorted_lens = lens8[order]
    cuts = np.flatnonzero(sorted_lens[1:] != sorted_lens[:-1]) + 1
    for a, z in zip(np.r_[0, cuts], np.r_[cuts, n]):
        length = int(sorted_lens[a])
        idx = order[a:z]
        G = sliding_window_view(b, length)[starts[idx]]  # row gather: (n, length) bytes
        D = G - np.uint8(48)  # digits 0..9; '.' wraps to 254
        n_digits = _row_sum(D < 10)
        if n_digits.min() == length:  # no dot in this group (all ids, integer values)
            values[idx] = D.astype(np.float64) @ _POW10[length - 1 :: -1]
            continue
        is_dot = G == 46
        n_dots = _row_sum(is_dot)
        dotted = n_digits < length
        if length == 1 or not np.all((n_digits == length) | ((n_digits == length - 1) & (n_dots == 1))):
            return None
        # as int8 the dot reads -2: remove its contribution after the (exact, < 2**53) integer product
        p = np.where(dotted, _row_sum(is_dot, weighted=True), length)  # the dot's column (one dot per row)
        dot_weight = np.where(dotted, _POW10[np.maximum(length - 1 - p, 0)], 0.0)
        full = D.view(np.int8).astype(np.float64) @ _POW10[length - 1 :: -1] + 2.0 * dot_weight
        # left of the dot the digits carry one power of ten too many: full = A + B, A a multiple of
        # 10**(length - p) and B < 10**(length - 1 - p); mantissa = A / 10 + B, all exact
        B = np.fmod(full, 10.0 * dot_weight, where=dotted, out=np.zeros_like(full))
        mantissa = np.where(dotted, (full - B) / 10.0 + B, full)
        values[idx] = mantissa / _POW10[np.where(dotted, length - 1 - p, 0)]
        has_dot[idx] = dotted
    return values, has_dot


def parse_float_tokens(b: np.ndarray, starts: np.ndarray, lens: np.ndarray):
    """Parse arbitrary float tokens with C ``strtod`` (via ``np.fromstring``); ``None`` if any fails.

    Each token must give exactly one number: the tokens are joined with single spaces and the count and the
    absence of numpy's "could not be read to its end" condition are both checked.
    """
    n = starts.size
    if n == 0:
        return np.empty(0, dtype=np.float64)
    piece = lens + 1
    out_start = np.cumsum(piece) - piece
    total = int(piece.sum())
    src = np.repeat(starts - out_start, piece) + np.arange(total)
    joined = b[np.minimum(src, b.size - 1)]
    joined[out_start + lens] = 32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = np.fromstring(joined.tobytes(), dtype=np.float64, sep=" ")
        except (ValueError, DeprecationWarning):
            return None
    if values.size != n:
        return None
    return values
