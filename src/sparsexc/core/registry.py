"""A registry of classes by name: the one lookup behind heads and samplers.

Each registry maps a class attribute ``name`` to the class. Registering a second class under a taken
name raises ``ValueError`` (re-registering the same class is a no-op, so a module may be reloaded);
looking up an unknown name raises :class:`UnknownNameError`, whose message lists the registered names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from sparsexc.errors import UnknownNameError  # re-exported: the registries raise it

__all__ = ["Registry", "UnknownNameError"]

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Classes of one kind (subclasses of ``base``), registered under their ``name`` attribute.

    Parameters
    ----------
    kind : str
        What is registered, for messages ("head", "sampler").
    base : type
        The class every registered class must subclass.
    unknown : callable, optional
        ``unknown(name, names)`` gives the message of :class:`UnknownNameError` for an unknown ``name``
        (``names``: the registered names, sorted). Default: ``"unknown <kind> 'x'; registered <kind>s are:
        a, b"``.
    """

    def __init__(self, kind: str, base: T, unknown: Callable[[object, list[str]], str] | None = None) -> None:
        self.kind, self.base = kind, base
        self._classes: dict[str, T] = {}
        self._unknown = unknown or (
            lambda name, names: f"unknown {kind} {name!r}; registered {kind}s are: {', '.join(names)}"
        )

    def register(self, cls: T) -> T:
        """Class decorator: make ``cls`` available under ``cls.name``; returns ``cls``."""
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise TypeError(f"register_{self.kind} expects a subclass of {self.base.__module__}.{self.base.__name__}")
        name = getattr(cls, "name", "")
        if not name:
            raise ValueError(f"{cls.__name__} needs a non-empty class attribute 'name'")
        existing = self._classes.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"a {self.kind} named {name!r} is already registered ({existing.__name__})")
        self._classes[name] = cls
        return cls

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._classes)

    def get(self, name: str) -> T:
        """The class registered as ``name``; :class:`UnknownNameError` listing the registered names otherwise."""
        try:
            return self._classes[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name
            raise UnknownNameError(self._unknown(name, self.names())) from None

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._classes
        except TypeError:
            return False
