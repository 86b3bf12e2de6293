"""No module of sparsexc imports a package that stands above its own (issue 18).

Every ``import`` / ``from ... import`` statement of every module under ``src/sparsexc`` is read with
:mod:`ast`, wherever it stands: at the top, inside a function, under ``if TYPE_CHECKING:``. A module may
import its own package and packages on a strictly lower floor of :data:`LAYERS`; two packages on the same
floor do not import each other (except the root's private helper modules on floor 0, which are leaves).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sparsexc"

# bottom to top; a package may import only its own modules and those of lower floors
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_private", "errors"),  # the root's helper modules (_params.py, _atomic.py, ...) and the error classes
    ("ops", "io", "metrics"),
    ("core", "embeddings"),
    ("samplers", "datasets", "tree"),
    ("latent", "distributed"),
    ("heads",),
    ("models",),
    ("train",),
    ("estimator",),
    ("cli",),
    ("sparsexc",),  # the package's __init__: the public facade (lazy XCClassifier)
)
FLOOR = {unit: floor for floor, units in enumerate(LAYERS) for unit in units}
# names read from the root package by lower floors without running its facade (metadata only)
ROOT_NAMES_ALLOWED = {"__version__"}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    """The layer unit of a dotted module name: its package under sparsexc, ``_private`` or the root."""
    parts = module.split(".")
    if len(parts) == 1:
        return "sparsexc"
    return "_private" if parts[1].startswith("_") else parts[1]


def _is_submodule(dotted: str, root: Path) -> bool:
    relative = Path(*dotted.split(".")[1:])
    return (root / relative).is_dir() or (root / relative).with_suffix(".py").is_file()


def _imports(path: Path, root: Path) -> list[tuple[int, str, str]]:
    """(line, imported sparsexc module, name imported from it or '') for every import in ``path``."""
    here = _module_name(path, root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                # `from sparsexc import metrics` imports the subpackage, not a name of the root
                if module == "sparsexc" and _is_submodule(f"sparsexc.{alias.name}", root):
                    found.append((node.lineno, f"sparsexc.{alias.name}", ""))
                else:
                    found.append((node.lineno, module, alias.name))
    return [(line, mod, name) for line, mod, name in found if mod == "sparsexc" or mod.startswith("sparsexc.")]


def upward_imports(root: Path = SRC) -> list[str]:
    """Every import of ``root``'s modules that runs up (or sideways) the layers, as readable lines."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        unit = _unit(_module_name(path, root))
        if unit not in FLOOR:
            problems.append(f"{path}: package {unit!r} has no floor in LAYERS (tests/test_layers.py)")
            continue
        for line, module, name in _imports(path, root):
            target = _unit(module)
            if target == unit or (target == "sparsexc" and name in ROOT_NAMES_ALLOWED):
                continue
            same_floor_leaf = FLOOR.get(target) == FLOOR[unit] == 0
            if target not in FLOOR or (FLOOR[target] >= FLOOR[unit] and not same_floor_leaf):
                problems.append(f"{path}:{line}: {unit} (floor {FLOOR[unit]}) imports {module} ({target})")
    return problems


def test_no_module_imports_a_package_above_it():
    assert upward_imports() == []


@pytest.mark.parametrize(
    ("where", "source", "bad"),
    [
        ("core/x.py", "from sparsexc.heads import Head\n", True),
        ("latent/x.py", "def f():\n    from sparsexc.train.trainer import epoch_order\n", True),
        ("distributed/x.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..heads import L\n", True),
        ("samplers/x.py", "from sparsexc import estimator\n", True),
        ("latent/x.py", "from sparsexc.distributed import rank\n", True),  # sideways: same floor
        ("newpkg/x.py", "import os\n", True),  # a package the layer order does not know
        ("heads/x.py", "from sparsexc.core import LabelBatch\nfrom .base import Head\n", False),
        ("datasets/x.py", "from sparsexc import __version__\nfrom sparsexc._sparse import as_features\n", False),
    ],
)
def test_the_check_catches_upward_imports(tmp_path, where, source, bad):
    # a fake package tree under tmp_path/sparsexc, so the check is exercised on known sources
    root = tmp_path / "sparsexc"
    for package in ("core", "heads", "latent", "distributed", "samplers", "datasets", "estimator", "train"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "__init__.py").write_text("__version__ = '0'\n")
    (root / "_sparse.py").write_text("")
    (root / where).parent.mkdir(parents=True, exist_ok=True)
    (root / where).write_text(source)
    problems = [p for p in upward_imports(root) if str(root / where) in p]
    assert bool(problems) is bad, problems
