"""benchmarks/tree_holdout.py: the hold-out is 20% of the TRAINING rows, seeded, disjoint from the fitted 80%."""

from __future__ import annotations

import numpy as np
import tree_holdout  # benchmarks/ is on sys.path (conftest.py)

from sparsexc.datasets import load


def test_the_holdout_is_a_seeded_fifth_of_the_training_rows():
    train = load("bibtex").train
    Xf, Yf, Xh, Yh = tree_holdout.split("bibtex", 123)
    assert Xf.shape[0] + Xh.shape[0] == train.X.shape[0] and Xh.shape[0] == round(0.2 * train.X.shape[0])
    assert Yf.shape[0] == Xf.shape[0] and Yh.shape[0] == Xh.shape[0]
    # the rows are the training rows, split without overlap (every training row once, in one of the two parts)
    rows = {r.tobytes() for r in np.vstack([Xf.toarray(), Xh.toarray()])}
    assert rows == {r.tobytes() for r in train.X.toarray()}
    again = tree_holdout.split("bibtex", 123)
    assert (again[2] != Xh).nnz == 0
    assert (tree_holdout.split("bibtex", 124)[2] != Xh).nnz > 0


def test_powers_rank_the_same_fitted_model_at_each_exponent(tmp_path, capsys):
    import json

    tree_holdout.worker("bibtex", 1, 1, 123, tmp_path, False, (10,), (2.0, 3.0))
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(row["powers"]) == {"2", "3"}
    metrics = ("P@1", "P@3", "P@5", "PSP@5")
    # the default exponent (3) is what the plain ranking used; another exponent ranks differently
    assert all(row["powers"]["3"][m] == row[m] for m in metrics)
    assert any(row["powers"]["2"][m] != row[m] for m in metrics)


def test_a_variant_is_parsed_as_json_values_and_reaches_the_fitted_settings(tmp_path, capsys):
    import json

    assert tree_holdout.parse_variant("branching=32,representation=pifa+pmi,tol=0.5") == {
        "branching": 32,
        "representation": "pifa+pmi",
        "tol": 0.5,
    }
    assert tree_holdout.parse_variant("") == {}
    tree_holdout.worker("bibtex", 1, 1, 123, tmp_path, False, variant={"max_leaf_size": 40, "branching": 2})
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["params"] == {"max_leaf_size": 40, "branching": 2}
    from sparsexc.tree import LabelTreeModel

    saved = LabelTreeModel.load(tmp_path / "model")
    assert saved.params.max_leaf_size == 40 and saved.params.branching == 2 and saved.trees_[0].depth > 1
