"""benchmarks/tree_solver_speed.py: its node problems have the promised shapes, and its comparison measures
both solvers and finds their optima close to the tight reference."""

from __future__ import annotations

import numpy as np


def test_problems_have_the_shapes_of_tree_nodes(load_benchmark):
    bench = load_benchmark("tree_solver_speed")
    X, Y = bench._synthetic(600, 500, 60, 10, seed=0)
    X_root, Y_root = bench._root_problem(X, Y, 4, seed=0)
    assert X_root is X and Y_root.shape == (X.shape[0], 4) and Y_root.dtype == bool
    # child k is positive exactly for the rows with a label of group k: every labelled row has a positive child
    assert np.array_equal(Y_root.any(axis=1), np.diff(Y.indptr) > 0)
    leaves = bench._leaf_problems(X, Y, 3, 5, (20, 200), seed=0)
    assert len(leaves) == 3
    for X_leaf, Y_leaf in leaves:
        assert 20 <= X_leaf.shape[0] <= 200 and Y_leaf.shape == (X_leaf.shape[0], 5)
        assert Y_leaf.any(axis=1).all()  # only the rows that reach the leaf
        assert (np.diff(X_leaf.tocsc().indptr) > 0).all()  # only the features they use


def test_comparison_reports_every_solver(load_benchmark):
    bench = load_benchmark("tree_solver_speed")
    X, Y = bench._synthetic(600, 500, 60, 10, seed=1)
    row = bench._compare([bench._root_problem(X, Y, 3, seed=0)], "logistic", 1.0, 0.1, 1.0, [0.01])
    assert set(row["solvers"]) == {"newton tol=0.01", "liblinear tol=0.1"}
    for result in row["solvers"].values():
        assert result["cpu_s"] >= 0 and 0 <= result["excess_over_optimum"]["mean"] < 1e-2
    assert row["solvers"]["newton tol=0.01"]["worst_gradient_ratio_at_tol"] <= 0.1 + 1e-3


def test_squared_hinge_also_measures_the_trees_dual_solver(load_benchmark):
    bench = load_benchmark("tree_solver_speed")
    X, Y = bench._synthetic(600, 500, 60, 10, seed=2)
    row = bench._compare([bench._root_problem(X, Y, 3, seed=0)], "squared_hinge", 1.0, 0.1, 1.0, [])
    assert set(row["solvers"]) == {"dcd tol=0.1", "liblinear tol=0.1"}  # liblinear last: the reference
    dcd = row["solvers"]["dcd tol=0.1"]
    # the same method and rule as liblinear: about as close to the optimum, and to liblinear's objective
    assert 0 <= dcd["excess_over_optimum"]["mean"] < 1e-2
    assert abs(dcd["gap_to_liblinear"]["mean"]) < 1e-2
