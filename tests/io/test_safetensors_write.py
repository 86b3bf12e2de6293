"""The streaming safetensors writer: the library's bytes for the same arrays, one chunk of memory at a time."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import load, save

from sparsexc import _safetensors_write
from sparsexc._safetensors_write import DeferredArray, write_safetensors

DTYPES = [np.int64, np.float64, np.float32, np.int32, np.uint8, np.float16, np.int16, np.bool_]


def _written(arrays: dict[str, tuple[np.ndarray, object]]) -> bytes:
    buf = io.BytesIO()
    write_safetensors(buf, arrays)
    return buf.getvalue()


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text("abcdefgh._0123", min_size=1, max_size=6),
        st.tuples(st.sampled_from(DTYPES), st.lists(st.integers(0, 4), min_size=0, max_size=3)),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 2**31),
)
def test_bytes_equal_the_library(spec: dict[str, tuple[type, list[int]]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    arrays = {name: np.asarray(rng.integers(0, 100, size=shape) * 1.5, dtype=dt) for name, (dt, shape) in spec.items()}
    out = _written({name: (a, a.dtype) for name, a in arrays.items()})
    assert out == save(arrays)


def test_casts_to_the_file_dtype_chunk_by_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_safetensors_write, "CHUNK", 7)  # many chunks, the last one partial
    rng = np.random.default_rng(0)
    indices = rng.integers(0, 2**31 - 1, size=50).astype(np.int32)
    values = rng.standard_normal(size=(5, 9))
    out = _written({"indices": (indices, np.int64), "values": (values, np.float32)})
    assert out == save({"indices": indices.astype(np.int64), "values": values.astype(np.float32)})
    back = load(out)
    assert back["indices"].dtype == np.int64 and np.array_equal(back["indices"], indices)
    assert back["values"].dtype == np.float32 and np.array_equal(back["values"], values.astype(np.float32))


def test_refuses_a_dtype_without_a_code() -> None:
    with pytest.raises(ValueError, match="'x': dtype complex128 has no safetensors code"):
        _written({"x": (np.zeros(2), np.complex128)})


def test_deferred_arrays_are_made_in_turn_and_written_as_the_arrays() -> None:
    rng = np.random.default_rng(1)
    arrays = {"a": rng.integers(0, 9, size=7).astype(np.int32), "b": rng.standard_normal(size=(2, 3))}
    made: list[str] = []

    def maker(name: str):
        def make() -> np.ndarray:
            made.append(name)
            return arrays[name]

        return make

    deferred = {name: (DeferredArray(a.shape, maker(name)), a.dtype) for name, a in arrays.items()}
    assert _written(deferred) == save(arrays)
    assert sorted(made) == ["a", "b"]  # each made once, when written


def test_a_deferred_array_of_another_shape_than_declared_is_refused() -> None:
    bad = DeferredArray((3,), lambda: np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match=r"'x': made with shape \(4,\), declared \(3,\)"):
        _written({"x": (bad, np.float32)})


def _header(blob: bytes) -> dict[str, object]:
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + n])


def _data(blob: bytes) -> bytes:
    return blob[8 + int.from_bytes(blob[:8], "little") :]


@settings(max_examples=30, deadline=None)
@given(
    st.dictionaries(st.text("abcxyz_", min_size=1, max_size=5), st.text("0123vw", max_size=4), min_size=1, max_size=4),
    st.integers(0, 2**31),
)
def test_metadata_is_the_librarys_with_its_keys_sorted(metadata: dict[str, str], seed: int) -> None:
    """With metadata the file is the library's but for the order of the metadata's keys: the library writes them
    in a hash map's order (it changes from process to process), this writer sorted, so equal files compare equal."""
    rng = np.random.default_rng(seed)
    arrays = {"b": rng.standard_normal(5).astype(np.float32), "a": rng.integers(0, 9, size=(2, 3))}
    buf = io.BytesIO()
    write_safetensors(buf, {name: (a, a.dtype) for name, a in arrays.items()}, metadata)
    out, theirs = buf.getvalue(), save(arrays, metadata=metadata)
    ours_header, their_header = _header(out), _header(theirs)
    assert list(ours_header) == ["__metadata__", "a", "b"]
    assert list(ours_header["__metadata__"]) == sorted(metadata)  # type: ignore[call-overload]
    assert ours_header == their_header  # the same entries (dict equality ignores order)
    assert len(out) == len(theirs) and _data(out) == _data(theirs)
    if len(metadata) == 1:  # one key: one order
        assert out == theirs
