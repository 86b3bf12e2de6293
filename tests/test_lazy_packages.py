"""The packages that export names lazily (``sparsexc._lazy``): the names type checkers read are the names the
package gives, each is the defining module's object, and importing the packages imports no torch."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sparsexc"
LAZY = ("sparsexc.core", "sparsexc.heads", "sparsexc.train", "sparsexc.distributed", "sparsexc.estimator")


def _type_checking_imports(package: str) -> dict[str, str]:
    """name -> module of the ``if TYPE_CHECKING:`` block of the package's ``__init__.py``."""
    path = SRC.joinpath(*package.split(".")[1:], "__init__.py")
    found: dict[str, str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module, f"{path}: only from-imports in the block"
                found.update({alias.asname or alias.name: stmt.module for alias in stmt.names})
    return found


@pytest.mark.parametrize("package", LAZY)
def test_the_lazy_names_are_those_type_checkers_read_and_resolve_to_their_modules(package):
    module = importlib.import_module(package)
    assert _type_checking_imports(package) == module._EXPORTS
    assert sorted(module.__all__) == sorted(module._EXPORTS)
    for name, where in module._EXPORTS.items():
        assert getattr(module, name) is getattr(importlib.import_module(where), name)
        assert name in dir(module)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018


def test_importing_the_packages_imports_no_torch():
    code = f"import sys\nfor m in {LAZY!r}: __import__(m)\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
