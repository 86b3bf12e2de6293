"""benchmarks/tree_memory.py: a case runs in its own process and records every step; the page shows each case."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("tree_memory")


def test_quick_run_records_every_step_in_a_fresh_process(bench, capsys):
    bench.main(["--quick", "--trees", "1"])
    out = capsys.readouterr().out
    assert "## synthetic-quick" in out
    rows = [line for line in out.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 2 and "MALLOC_MMAP_THRESHOLD_=131072" in rows[1]


def test_page_lists_the_peak_of_each_case(bench):
    steps = {s: {"rss_mib": 100.0, "hwm_mib": 100.0 + i, "cpu_s": 0.5} for i, s in enumerate(bench.STEPS)}
    case = {"n_trees": 3, "malloc_mmap_threshold": False, "steps": steps, "n_test": 10, "peak_rss_mib": 103.0}
    machine = {"processor": "x", "cpu_count": 2}
    text = bench.markdown({"machine": machine, "date": "d", "command": "c", "commit": "abc", "datasets": {"s": [case]}})
    assert "| 3 | as started | 100 (0.5 s) | 101 (0.5 s) | 102 (0.5 s) | 103 (0.5 s) | 103 |" in text
