"""Shared fixtures of the datasets tests: built data sets are loaded once per test session."""

from __future__ import annotations

import pytest

from sparsexc.datasets import load


@pytest.fixture(scope="session")
def loaded():
    """``loaded(name, split=None)``: the data set from the shared folder, loaded once per session."""
    store: dict = {}

    def get(name: str, split: int | None = None):
        key = (name, split)
        if key not in store:
            store[key] = load(name, split=split)
        return store[key]

    return get
