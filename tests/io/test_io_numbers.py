"""The vectorised decimal parsers give exactly ``float(token)``."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsexc.io._numbers import parse_float_tokens, parse_plain_decimals


def _layout(tokens: list[bytes]):
    lens = np.array([len(t) for t in tokens], dtype=np.int64)
    buf = np.frombuffer(b" " + b" ".join(tokens) + b" ", dtype=np.uint8)
    starts = 1 + np.cumsum(lens + 1) - (lens + 1)
    return buf, starts, lens


_plain = st.builds(
    lambda digits, dot: (
        digits[:dot] + "." + digits[dot:] if dot is not None and dot <= len(digits) else digits
    ).encode(),
    st.text("0123456789", min_size=1, max_size=14),
    st.one_of(st.none(), st.integers(0, 14)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_plain, min_size=1, max_size=50))
def test_plain_decimals_are_exact(tokens):
    buf, starts, lens = _layout(tokens)
    values, has_dot = parse_plain_decimals(buf, starts, lens)
    assert values.tolist() == [float(t) for t in tokens]
    assert has_dot.tolist() == [b"." in t for t in tokens]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=30))
def test_float_tokens_are_exact(values):
    tokens = [repr(v).encode() for v in values]
    buf, starts, lens = _layout(tokens)
    assert parse_float_tokens(buf, starts, lens).tolist() == values


def test_rejects_malformed_tokens():
    for bad in [b".", b"1..2", b"1.2.3", b"1a", b"-1", b"1234567890123456"]:
        buf, starts, lens = _layout([b"5.5", bad])
        assert parse_plain_decimals(buf, starts, lens) is None, bad
    for bad in [b"e5", b"1e", b"1-2", b"--1", b"1e5.5"]:
        buf, starts, lens = _layout([b"1e3", bad])
        assert parse_float_tokens(buf, starts, lens) is None, bad
