"""benchmarks/sdlgm.py: the ablation's comparison (Welch standard error), its verdict rule and the verdict rows."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("sdlgm")


def test_compare_orients_the_difference_and_uses_the_welch_standard_error(bench):
    diff, se = bench._compare([0.5, 0.6, 0.7], [0.4, 0.4, 0.4], higher_better=True)
    assert diff == pytest.approx(0.2) and se == pytest.approx(np.sqrt(0.01 / 3))
    diff, _ = bench._compare([0.5, 0.6, 0.7], [0.4, 0.4, 0.4], higher_better=False)  # e.g. an MSE
    assert diff == pytest.approx(-0.2)


def test_verdict_rule(bench):
    assert bench._verdict([(0.3, 0.1), (0.5, 0.2)]) == "reproduced"
    assert bench._verdict([(0.3, 0.1), (0.1, 0.2)]) == "partially"
    assert bench._verdict([(0.3, 0.1), (-0.5, 0.2)]).startswith("contradicted (a fixed L")
    assert bench._verdict([(0.1, 0.1), (-0.1, 0.2)]).startswith("not reproduced (no difference")
    assert bench._verdict([(0.1, float("nan"))]).startswith("untested")


def _row(level, L, seed, f1, hist):
    sizes = {"mean": 2.0, "exact_size_rate": 0.5, "histogram": hist}
    return {
        "phase": "test",
        "dataset": "toy",
        "level": level,
        "L0": 3,
        "L": L,
        "seed": seed,
        "metrics": {"example-F1": f1, "P@1": 0.5},
        "pred_sizes": sizes,
        "true_sizes": sizes,
    }


def test_verdict_rows_compare_each_fixed_level_and_check_that_sizes_vary(bench):
    varied = {"0": 0, "1": 50, "2": 30, "3": 20, "4": 0, "5": 0, "6-10": 0, ">10": 0}
    rows = [_row("learned", None, s, 0.6 + 0.01 * s, varied) for s in range(3)]
    rows += [_row("fixed", 3, s, 0.4 + 0.01 * s, {**varied, "1": 0, "2": 0, "3": 100}) for s in range(3)]
    rows += [_row("fixed", 2, s, 0.7 + 0.01 * s, {**varied, "1": 0, "2": 100, "3": 0}) for s in range(3)]
    lines = bench.verdict_rows({"supervised": rows})
    assert "reproduced (in our reconstruction: the size varies per row" in lines[0]
    f1 = next(line for line in lines if "example-F1" in line)
    assert "vs fixed L = 3: +0.2000" in f1 and "vs fixed L = 2: -0.1000" in f1 and "contradicted (a fixed L" in f1
    assert bench.verdict_rows({"supervised": rows[:6]})[1].endswith("| reproduced |")  # vs fixed L = 3 only
    one_size = [_row("learned", None, s, 0.6, {**varied, "1": 100, "2": 0, "3": 0}) for s in range(3)]
    assert "contradicted (one size" in bench.verdict_rows({"supervised": one_size + rows[3:]})[0]


def test_plain_answer_counts_the_verdicts_and_places_the_level_against_its_bound(bench):
    varied = {"0": 0, "1": 50, "2": 30, "3": 20, "4": 0, "5": 0, "6-10": 0, ">10": 0}
    learned = [_row("learned", None, s, 0.6 + 0.01 * s, varied) for s in range(3)]
    worse = [_row("fixed", 3, s, 0.4 + 0.01 * s, {**varied, "3": 100}) for s in range(3)]
    answer = bench.plain_answer({"supervised": learned + worse})
    # example-F1 beats L = 3 by 0.2 (reproduced); P@1 is equal (0.5 everywhere): not reproduced
    assert "In 1 of 2 comparisons the learned level beats every fixed L tried" in answer
    assert "toy example-F1: by +0.2000 or more" in answer and "in 0 it beats some" in answer
    assert "the other 1 it does not" in answer
    assert "well below it (toy: mean 2.00 at L0 = 3)" in answer and "near its bound" not in answer  # 2 < 0.8 x 3
    same = [_row("fixed", 3, s, 0.6 + 0.01 * s, {**varied, "3": 100}) for s in range(3)]
    assert bench.plain_answer({"supervised": learned + same}).startswith(
        "**Does the learned sparsity help?** No: in none of the comparisons"
    )
