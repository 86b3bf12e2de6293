"""benchmarks/label_embeddings.py: the written verdict rule, on small fake numbers."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("label_embeddings")


@pytest.mark.parametrize(
    ("ratios", "converged", "expected"),
    [
        ([], True, "untested"),
        ([1.20, 1.22, 1.18], True, "reproduced"),  # interval 1.16-1.24, above 1.07
        ([1.20, 1.22, 1.18], False, "undecided"),  # a run stopped at the cap: nothing is decided
        ([1.04, 1.05, 1.06], True, "partially"),  # better beyond the spread, below +7%
        ([1.02, 1.20, 1.11], True, "partially"),  # interval 1.006-1.214: above 1, not all above 1.07
        ([0.95, 1.06, 1.01], True, "not reproduced"),  # the interval holds 1
        ([0.80, 0.82, 0.78], True, "contradicted"),
        ([1.10], True, "reproduced"),  # one seed: the point itself
        ([0.99], True, "contradicted"),
    ],
)
def test_ratio_verdict_follows_the_written_rule(bench, ratios, converged, expected):
    assert bench.ratio_verdict(ratios, converged)["verdict"] == expected


def test_ratio_verdict_interval_is_two_standard_errors(bench):
    v = bench.ratio_verdict([1.0, 1.2], True)
    # mean 1.1, sd 0.1414, se 0.1: interval 0.9-1.3
    assert (v["mean"], v["low"], v["high"]) == pytest.approx((1.1, 0.9, 1.3))
    assert v["verdict"] == "not reproduced" and v["n"] == 2


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([], "untested"),
        ([(1.0, 5.0), (2.0, None)], "reproduced"),  # faster at every seed (the baseline never got there)
        ([(None, 5.0), (6.0, 5.0)], "contradicted"),  # never, or later
        ([(1.0, 5.0), (6.0, 5.0)], "not reproduced"),
    ],
)
def test_speed_verdict(bench, pairs, expected):
    assert bench.speed_verdict(pairs) == expected
