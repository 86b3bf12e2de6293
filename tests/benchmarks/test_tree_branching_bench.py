"""benchmarks/tree_branching.py: the synthetic sets (seeded, the coherence rising with the group share), one
(set, seed) row with the rule's model and the other branching, and the page and --append."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture
def bench(load_benchmark, monkeypatch):
    module = load_benchmark("tree_branching")
    monkeypatch.setattr(module, "SYNTHETIC_SIZE", {"n": 3000, "D": 3000, "C": 1700})  # > 16 x 100 labels
    return module


def test_label_groups_is_seeded_and_its_share_sets_how_well_the_labels_cluster(bench):
    from sparsexc.tree import build_tree, pifa
    from sparsexc.tree.cluster import leaf_coherence

    X, Y = bench.label_groups(0.5, n=2000, D=3000, C=600)
    X2, Y2 = bench.label_groups(0.5, n=2000, D=3000, C=600)
    assert (X != X2).nnz == 0 and (Y != Y2).nnz == 0
    assert X.shape == (2000, 3000) and Y.shape == (2000, 600) and X.dtype == np.float32
    assert np.allclose(np.asarray(X.multiply(X).sum(axis=1)).ravel(), 1.0, atol=1e-5)
    assert np.diff(Y.indptr).min() >= 1 and set(np.unique(Y.data)) == {1.0}
    coherence = {}
    for share in (0.1, 0.9):
        X, Y = bench.label_groups(share, n=2000, D=3000, C=600)
        R = pifa(X, Y)
        coherence[share] = leaf_coherence(R, build_tree(R, branching=4, max_leaf_size=25, seed=0))
    assert coherence[0.9] > coherence[0.1] + 0.1


def test_a_row_holds_the_rules_model_and_the_other_branching_and_the_page_averages_them(bench, tmp_path):
    bench.main(["--datasets", "synthetic-groups-0.1", "--seeds", "1", "--n-trees", "1", "--out", str(tmp_path)])
    first = json.loads((tmp_path / "tree_branching.json").read_text())
    [row] = first["rows"]
    assert row["chosen"] in (16, 64) and set(row["branching"]) == {"16", "64"} and 0 < row["coherence"] < 1
    assert (row["coherence"] < 0.3) == (row["chosen"] == 64)
    assert row["branching"]["16"] != row["branching"]["64"]  # two different trees
    assert "--seeds 1" in row["command"]
    # --append keeps the rows of other (set, seed) pairs; the page has one line per set
    bench.main(
        ["--datasets", "synthetic-groups-0.1", "--seeds", "2", "--n-trees", "1", "--out", str(tmp_path), "--append"]
    )
    rows = json.loads((tmp_path / "tree_branching.json").read_text())["rows"]
    assert [r["seed"] for r in rows] == [1, 2] and rows[0] == row
    page = (tmp_path / "tree_branching.md").read_text()
    line = next(x for x in page.splitlines() if x.startswith("| synthetic-groups-0.1 |"))
    d = [r["branching"]["64"]["P@5"] - r["branching"]["16"]["P@5"] for r in rows]
    assert f"{np.mean(d):+.2f} ({min(d):+.2f}..{max(d):+.2f})" in line and "| 1, 2 |" in line
