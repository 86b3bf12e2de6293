"""Shared set-up of the benchmark tests: the benchmark scripts are files, not a package, so they are loaded
by path."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
# the scripts import their shared module as `_harness`, as `python benchmarks/<name>.py` would find it
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))


def _load(name: str) -> ModuleType:
    """The module ``benchmarks/<name>.py``, imported under the name ``<name>_bench``."""
    spec = importlib.util.spec_from_file_location(f"{name}_bench", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str], ModuleType]:
    """A loader: ``load_benchmark("peers")`` is the module ``benchmarks/peers.py``."""
    return _load
