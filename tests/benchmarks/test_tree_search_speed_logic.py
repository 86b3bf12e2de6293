"""The synthetic model of benchmarks/tree_search_speed.py has the shape it claims, and a tiny case runs."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("tree_search_speed")


@pytest.mark.parametrize("depth, widths", [(2, [1, 19, 1900]), (3, [1, 2, 19, 1900])])
def test_debian_like_tree_has_leaves_of_100_labels(bench, depth, widths):
    tree = bench.debian_like_tree(np.random.default_rng(0), depth, 1900, leaf=100)
    assert [tree.n_nodes(t) for t in range(depth + 1)] == widths
    assert np.all(np.diff(tree.offsets[-1]) == 100)


def test_synthetic_rows_and_weights(bench):
    rng = np.random.default_rng(1)
    X = bench.random_rows(rng, 50, 300, 20)
    assert X.dtype == np.float32 and X.shape == (50, 300)
    assert np.all(np.diff(X.indptr) <= 20)
    np.testing.assert_allclose(np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel()), 1.0, rtol=1e-5)
    W = bench.random_weights(rng, 400, 300, 0.1, chunk=64)
    assert W.shape == (400, 301) and W.dtype == np.float32
    assert 0.08 < W.nnz / (400 * 301) < 0.12


def test_a_tiny_case_runs_and_both_scorers_agree(bench):
    case = bench.run_case(2, 0.2, d=200, n_labels=300, n_rows=30, beam=3, k=4, seed=0)
    assert case["n_nodes"] == [1, 3, 300]
    assert case["grouped_vs_pairs_max_abs_difference"] < 1e-4
    assert case["predict_ms_per_1k_rows"] > 0
    assert "| 2 | 1 / 3 / 300 |" in bench.markdown(
        {
            "problem": {"d": 200, "nnz_per_row": 60, "n_labels": 300, "n_rows": 30, "beam": 3, "k": 4},
            "cases": [case],
            "machine": {},
            "date": "now",
            "command": "python benchmarks/tree_search_speed.py",
        }
    )
