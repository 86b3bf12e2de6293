"""Lazy package attributes (PEP 562): a package's public names imported from their modules on first use.

A package whose ``__init__`` imported every module at once made ``import sparsexc.heads.tuning`` (or any module
of it) import torch, even for code that needs none: the label-tree model's fit, prediction and saving through
``XCClassifier`` use numpy, scipy and numba only, and torch's import is about 175 MiB of resident memory and a
second or two (issue 19's memory target; ``docs/tree.md``, "Memory"). With :func:`lazy_exports` a package
lists its public names and the module of each; ``from sparsexc.heads import SoftmaxHead`` imports
``sparsexc.heads.softmax`` then, and only then. Type checkers read the same names from an
``if TYPE_CHECKING:`` block of imports, which ``tests/test_lazy_packages.py`` checks against the mapping.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package`` for the names of ``exports``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : mapping of str to str
        Public name -> the module (dotted, absolute) that defines it.

    Returns
    -------
    (__getattr__, __dir__)
        ``__getattr__(name)`` imports ``exports[name]``, stores the name on the package (the next access is a
        plain attribute) and returns it; any other name raises :class:`AttributeError` as a module does.
        ``__dir__()`` lists the package's attributes and the names not yet imported.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
