"""benchmarks/_harness.py: the papers' pages' 2-SE verdict rule and the binomial standard error."""

from __future__ import annotations

import math

import pytest


@pytest.fixture(scope="module")
def verdicts(load_benchmark):
    return load_benchmark("_harness")


def test_two_se_rule_on_each_outcome(verdicts):
    rule = verdicts.two_se_verdict
    assert rule([(0.3, 0.1), (0.5, 0.2)]) == "reproduced"  # 3 SE and 2.5 SE
    assert rule([(0.3, 0.1), (0.1, 0.1)]) == "partially"  # the second is 1 SE: neither win nor loss
    assert rule([(0.1, 0.1), (-0.1, 0.1)]) == "not reproduced (no difference beyond 2 SE)"
    assert rule([(0.9, 0.1), (-0.3, 0.1)], worse="B is better") == "contradicted (B is better)"
    assert rule([(0.2, 0.1)]) == "not reproduced (no difference beyond 2 SE)"  # exactly 2 SE is not beyond
    assert rule([]) == "untested"
    assert rule([(1.0, math.nan)], untested="one seed") == "untested (one seed)"


def test_proportion_difference_matches_the_binomial_formula(verdicts):
    d, se = verdicts.proportion_difference(0.3, 0.2, 1000, 500)
    assert d == pytest.approx(0.1)
    assert se == pytest.approx(math.sqrt(0.3 * 0.7 / 1000 + 0.2 * 0.8 / 500))
    with pytest.raises(ValueError, match="n_b=0"):
        verdicts.proportion_difference(0.3, 0.2, 10, 0)
