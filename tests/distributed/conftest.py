"""Shared fixture of the label-sharding tests: one 2-process spawn for all their jobs."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def label_sharded_runs(tmp_path_factory):
    """``(tmp folder, per-rank results)`` of ``test_label_sharded_training.run_all``."""
    from test_label_sharded_training import run_all

    tmp = tmp_path_factory.mktemp("sharded")
    return tmp, run_all(tmp)
