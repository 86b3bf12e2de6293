"""Optional dependencies: one check, made with the settings that need them, before any data are read.

Each optional package belongs to an extra of ``pyproject.toml`` (:data:`EXTRAS`). A setting that needs one
calls :func:`require` where the setting is validated (a head's ``Params.validate``, a command's options), so
that a missing package ends in one line naming the package and the ``pip install`` that brings it, instead
of an ``ImportError`` traceback after an epoch of training. :func:`import_optional` is the import itself,
with the same message.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from sparsexc.errors import OptionalDependencyError

__all__ = ["EXTRAS", "MissingDependencyError", "import_optional", "require"]

# importable module -> (extra of sparsexc that installs it, its name on the package index)
EXTRAS: dict[str, tuple[str, str]] = {
    "hnswlib": ("ann", "hnswlib"),
    "matplotlib": ("plots", "matplotlib"),
}


# the old name of the error, kept importable; see sparsexc.errors for the hierarchy
MissingDependencyError = OptionalDependencyError


def _message(module: str, needed_for: str) -> str:
    extra, distribution = EXTRAS[module]
    return (
        f"{needed_for} needs the package {distribution}, which is not installed; install it with "
        f'pip install "sparsexc[{extra}]" (or pip install {distribution})'
    )


def import_optional(module: str, needed_for: str) -> ModuleType:
    """``import module``, or a :class:`~sparsexc.errors.OptionalDependencyError` saying that ``needed_for`` needs it and how to
    install it.

    Parameters
    ----------
    module : str
        A key of :data:`EXTRAS`.
    needed_for : str
        The setting or feature that needs it, as the user wrote it (``"head_params ann='hnsw'"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise OptionalDependencyError(_message(module, needed_for), name=module) from exc


def require(module: str, needed_for: str) -> None:
    """Check that ``module`` can be imported (importing it, so a broken install is caught too); raise
    :class:`~sparsexc.errors.OptionalDependencyError` otherwise. See :func:`import_optional`."""
    import_optional(module, needed_for)
