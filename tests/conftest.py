"""Shared test set-up: where the real data sets are, and a private cache per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(os.environ.get("SPARSEXC_TEST_DATA", REPO.parent / "shared" / "datasets"))


def pytest_configure(config: pytest.Config) -> None:
    # The tests read the real files; CI always has them beside the clone. A missing folder is a set-up
    # error to fix, not a reason to skip the tests that need it.
    if not SHARED_DATASETS.is_dir():
        raise pytest.UsageError(
            f"the real data sets are expected at {SHARED_DATASETS} (../shared/datasets beside the clone); "
            "set SPARSEXC_TEST_DATA to their folder"
        )
    os.environ["SPARSEXC_DATA"] = str(SHARED_DATASETS)


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The folder of real data sets (``../shared/datasets``)."""
    return SHARED_DATASETS


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Parsed data sets are cached; tests write theirs to a fresh folder so runs never share state.
    os.environ["SPARSEXC_CACHE"] = str(tmp_path_factory.mktemp("sparsexc-cache"))
