"""Shared test set-up: where the real data sets are (tests that need one that is missing skip, naming it; CI must
have them), and a private cache per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _shared_data import SHARED_DATASETS, in_ci, missing_reason


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slow",
        action="store_true",
        default=False,
        help="larger local runs of the fuzz tests (tests/io/test_fuzz_readers.py: 2,000 files per format)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # A clone without ../shared/datasets runs every test that does not need it (the others skip, naming what
    # they need). CI always has the folder beside the clone: there a missing one is a set-up error to fix, not
    # a reason to skip a third of the data tests quietly.
    if not SHARED_DATASETS.is_dir() and in_ci():
        raise pytest.UsageError(
            f"CI is set but the real data sets are not at {SHARED_DATASETS} (../shared/datasets beside the clone); "
            "set SPARSEXC_TEST_DATA to their folder (or unset CI to run without them, skipping the tests that "
            "need them)"
        )
    # even when missing: sparsexc.datasets.load then finds only the bundled Bibtex, never a user's own folder
    os.environ["SPARSEXC_DATA"] = str(SHARED_DATASETS)


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The folder of real data sets (``../shared/datasets``); the test skips when it is missing."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(missing_reason())
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def shared_datasets_if_present() -> Path | None:
    """The folder of real data sets, or None when it is missing (for tests that use it when they can)."""
    return SHARED_DATASETS if SHARED_DATASETS.is_dir() else None


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Parsed data sets are cached; tests write theirs to a fresh folder so runs never share state.
    os.environ["SPARSEXC_CACHE"] = str(tmp_path_factory.mktemp("sparsexc-cache"))
