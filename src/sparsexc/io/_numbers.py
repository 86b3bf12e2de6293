"""Vectorised parsing of decimal number tokens held in a byte array.

Used by the text readers' fast paths: a token ``[digits][.digits]`` (at most 15 digits) is converted with
exact integer arithmetic and one correctly rounded division (Clinger's fast path), which gives the same
float64 as ``float(token)``; other forms (exponents, ``+``, long mantissas) go through ``np.fromstring``
(C ``strtod``). Callers fall back to a line-by-line parser whenever these functions say "not simple".
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["parse_plain_decimals", "parse_float_tokens"]

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
            values = np.fromstring(joined.tobytes(), dtype=np.float64, sep=" ")  # noqa: NPY201
        except (ValueError, DeprecationWarning):
            return None
    if values.size != n:
        return None
    return values
