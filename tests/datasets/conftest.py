"""Shared fixtures of the datasets tests: built data sets are loaded once per test session."""

from __future__ import annotations

import pytest
from _shared_data import require_dataset

from sparsexc.datasets import load


@pytest.fixture(scope="session")
def loaded():
    """``loaded(name, split=None)``: the data set from the shared folder, loaded once per session; the test skips
    when the set's files are not there (the bundled Bibtex split 1 always is)."""
    store: dict = {}

    def get(name: str, split: int | None = None):
        require_dataset(name, split)
        key = (name, split)
        if key not in store:
            store[key] = load(name, split=split)
        return store[key]

    return get
