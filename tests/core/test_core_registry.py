"""The one Registry behind heads and samplers: registration rules, lookup errors, the two registries' messages."""

from __future__ import annotations

import pytest

from sparsexc.core.registry import Registry, UnknownNameError
from sparsexc.heads import Head, get_head, list_heads
from sparsexc.samplers import Sampler, get_sampler, list_samplers, register_sampler


class _Base:
    name = ""


def _registry() -> Registry:
    return Registry("widget", _Base)


def test_register_get_and_names():
    registry = _registry()
    b = registry.register(type("B", (_Base,), {"name": "b"}))
    a = registry.register(type("A", (_Base,), {"name": "a"}))
    assert registry.get("a") is a and registry.get("b") is b
    assert registry.names() == ["a", "b"]
    assert "a" in registry and "c" not in registry and ["unhashable"] not in registry
    assert registry.register(a) is a  # the same class again: a no-op


def test_duplicates_wrong_types_and_empty_names_raise():
    registry = _registry()
    registry.register(type("A", (_Base,), {"name": "a"}))
    with pytest.raises(ValueError, match="a widget named 'a' is already registered \\(A\\)"):
        registry.register(type("Other", (_Base,), {"name": "a"}))
    with pytest.raises(TypeError, match="register_widget expects a subclass of"):
        registry.register(int)
    with pytest.raises(ValueError, match="needs a non-empty class attribute 'name'"):
        registry.register(type("Nameless", (_Base,), {}))


@pytest.mark.parametrize("name", ["c", ["unhashable"], None])
def test_unknown_names_raise_one_error_that_is_both_key_and_value_error(name):
    registry = _registry()
    registry.register(type("A", (_Base,), {"name": "a"}))
    with pytest.raises(UnknownNameError) as info:
        registry.get(name)
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    assert str(info.value) == f"unknown widget {name!r}; registered widgets are: a"  # not quoted as KeyError's


def test_custom_unknown_message():
    registry = Registry("widget", _Base, lambda name, names: f"{name!r} not in {names}")
    with pytest.raises(UnknownNameError, match=r"^'x' not in \[\]$"):
        registry.get("x")


def test_heads_and_samplers_use_it_with_their_messages():
    with pytest.raises(KeyError, match="^unknown head 'nope'; registered heads are: " + ", ".join(list_heads()) + "$"):
        get_head("nope")
    allowed = ", ".join(map(repr, list_samplers()))
    with pytest.raises(ValueError, match=f"^sampler='nope' is not allowed; choose one of {allowed}$"):
        get_sampler("nope")
    with pytest.raises(ValueError, match="a sampler named 'uniform' is already registered"):
        register_sampler(type("Other", (Sampler,), {"name": "uniform"}))
    with pytest.raises(TypeError):
        register_sampler(type("NotASampler", (Head,), {"name": "x"}))
