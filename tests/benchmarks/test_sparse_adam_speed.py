"""benchmarks/sparse_adam_speed.py compares the two optimisers on the same gradients: they end bit-identical,
and each step of each is timed."""

from __future__ import annotations


def test_side_by_side_runs_are_identical_and_timed(load_benchmark):
    bench = load_benchmark("sparse_adam_speed")
    identical, torch_times, ours_times = bench._side_by_side(3_000, 4)
    assert identical
    assert len(torch_times) == len(ours_times) == 4 and min(torch_times + ours_times) >= 0.0
