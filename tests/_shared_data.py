"""Where the tests find the real data sets (``../shared/datasets`` beside the clone, or ``$SPARSEXC_TEST_DATA``),
and skips for the tests that need one that is not there (importable from any test: pytest puts the folder of
the root conftest.py on sys.path). A clone without the folder runs every other test. CI has it: there nothing
skips for missing data (tests/conftest.py refuses to start without the folder, and a test whose set is missing
runs and fails on the missing file)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sparsexc.datasets import get_spec, locate

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(os.environ.get("SPARSEXC_TEST_DATA", REPO.parent / "shared" / "datasets"))


def in_ci() -> bool:
    """Whether the environment variable ``CI`` is set (to anything but "", "0", "false" or "no")."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_reason(what: str = "") -> str:
    """The skip reason of a test that needs ``what`` (a folder under the shared data sets; "": the whole folder)."""
    if not what:
        return f"needs ../shared/datasets (the real data sets): not at {SHARED_DATASETS}; set SPARSEXC_TEST_DATA"
    return f"needs ../shared/datasets/{what}: not in {SHARED_DATASETS}; set SPARSEXC_TEST_DATA"


def dataset_available(name: str, split: int | None = None) -> bool:
    """Whether ``sparsexc.datasets.load(name, split=split)`` finds its files in the shared folder (the bundled
    Bibtex split 1 is always there); always True in CI, so that a missing set fails there instead."""
    spec = get_spec(name)
    if in_ci() or (spec.name == "bibtex" and spec.resolve_split(split) == 1):
        return True
    try:
        locate(spec, SHARED_DATASETS)
    except FileNotFoundError:
        return False
    return True


def require_dataset(name: str, split: int | None = None) -> None:
    """Skip the calling test unless the registered data set ``name`` is in the shared folder."""
    if not dataset_available(name, split):
        pytest.skip(missing_reason(f"{get_spec(name).folder} (data set {name!r})"))


def requires_dataset(*names: str) -> pytest.MarkDecorator:
    """A ``skipif`` marker for a test that loads the registered data sets ``names`` by name."""
    missing = [name for name in names if not dataset_available(name)]
    folders = ", ".join(f"{get_spec(name).folder} (data set {name!r})" for name in missing)
    return pytest.mark.skipif(bool(missing), reason=missing_reason(folders))
