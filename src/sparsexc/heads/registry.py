"""The registry of heads: looked up by name (``XCClassifier(head=...)``, ``--head``, model files)."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from sparsexc.core.registry import Registry
from sparsexc.heads.protocol import Head

__all__ = ["HEADS", "build_head", "describe_scores", "document_scores", "get_head", "list_heads", "register_head"]

F = TypeVar("F", bound=Callable[..., Any])

HEADS: Registry[type[Head]] = Registry("head", Head)

# the modules of the library's heads, each registering its head when imported: the package imports its modules
# lazily (sparsexc._lazy), so a lookup by name imports these first (adding a head: one module, listed here)
BUILTIN_HEAD_MODULES = (
    "sparsexc.heads.label_embedding",
    "sparsexc.heads.nce",
    "sparsexc.heads.negative_sampling",
    "sparsexc.heads.sampled_softmax",
    "sparsexc.heads.sdlgm",
    "sparsexc.heads.sigmoid",
    "sparsexc.heads.softmax",
    "sparsexc.heads.sparsemax",
)


@functools.cache  # once per process: every lookup after the first is a registry read
def _import_builtin_heads() -> None:
    for module in BUILTIN_HEAD_MODULES:
        importlib.import_module(module)


def register_head(cls: type[Head]) -> type[Head]:
    """Class decorator: make ``cls`` available under ``cls.name`` (``ValueError`` if another head has it)."""
    return HEADS.register(cls)


def list_heads() -> list[str]:
    """Names of the registered heads (the library's and any registered since), sorted."""
    _import_builtin_heads()
    return HEADS.names()


def get_head(name: str) -> type[Head]:
    """The head class registered as ``name``; a ``KeyError`` (:class:`~sparsexc.core.registry.UnknownNameError`)
    listing the registered names otherwise."""
    _import_builtin_heads()
    return HEADS.get(name)


def build_head(config: dict[str, Any]) -> Head:
    """Rebuild a head from :meth:`Head.config` (before ``load_state_dict``)."""
    head = get_head(config["name"])(int(config["in_dim"]), int(config["n_labels"]), config.get("params"))
    head.load_tuned_state(config.get("tuned") or {})
    return head


def describe_scores() -> str:
    """One reST bullet per registered head: what its ``scores`` mean (``Head.score_meaning``) and whether they
    are probabilities (then ``predict_proba`` returns the same array)."""
    lines = []
    for name in list_heads():
        head = get_head(name)
        proba = "probabilities, as :meth:`predict_proba`" if head.probabilistic else "no :meth:`predict_proba`"
        lines.append(f"* ``{name}``: {head.score_meaning or '(not described)'} ({proba});")
    return "\n".join(lines)


def document_scores(func: F) -> F:
    """Decorator: replace ``{score_meanings}`` in ``func``'s docstring by :func:`describe_scores`, indented like
    the placeholder, so the docstring lists every head registered when the decorator runs (no list by hand)."""
    doc = func.__doc__
    if doc and "{score_meanings}" in doc:  # no docstring under python -OO
        line = next(line for line in doc.splitlines() if "{score_meanings}" in line)
        indent = line[: len(line) - len(line.lstrip())]
        func.__doc__ = doc.replace("{score_meanings}", describe_scores().replace("\n", "\n" + indent))
    return func
