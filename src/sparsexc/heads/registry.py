"""The registry of heads: looked up by name (``XCClassifier(head=...)``, ``--head``, model files)."""

from __future__ import annotations

from typing import Any

from sparsexc.core.registry import Registry
from sparsexc.heads.protocol import Head

__all__ = ["HEADS", "build_head", "get_head", "list_heads", "register_head"]

HEADS: Registry[type[Head]] = Registry("head", Head)


def register_head(cls: type[Head]) -> type[Head]:
    """Class decorator: make ``cls`` available under ``cls.name`` (``ValueError`` if another head has it)."""
    return HEADS.register(cls)


def list_heads() -> list[str]:
    """Names of the registered heads, sorted."""
    return HEADS.names()


def get_head(name: str) -> type[Head]:
    """The head class registered as ``name``; a ``KeyError`` (:class:`~sparsexc.core.registry.UnknownNameError`)
    listing the registered names otherwise."""
    return HEADS.get(name)


def build_head(config: dict[str, Any]) -> Head:
    """Rebuild a head from :meth:`Head.config` (before ``load_state_dict``)."""
    head = get_head(config["name"])(int(config["in_dim"]), int(config["n_labels"]), config.get("params"))
    head.load_tuned_state(config.get("tuned") or {})
    return head
