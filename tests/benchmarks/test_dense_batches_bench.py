"""benchmarks/dense_batches.py times the same product both ways: the two agree, the batch has the density asked
for, and the rule column is the library's rule."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("density, picks", [(0.02, "csr"), (0.5, "dense")])
def test_side_by_side_products_agree_and_name_the_rule(load_benchmark, density, picks):
    bench = load_benchmark("dense_batches")
    row = bench._side_by_side(64, 30, density, 3)
    assert row["agree"] and row["rule_picks"] == picks
    assert abs(row["density"] - density) < 0.05
    assert row["csr_ms"] >= 0.0 and row["dense_ms"] >= 0.0
