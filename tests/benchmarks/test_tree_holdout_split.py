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


def _small_deep_model():
    import scipy.sparse as sp

    from sparsexc.tree import LabelTreeModel, LabelTreeParams

    rng = np.random.default_rng(5)
    X = sp.random(240, 30, density=0.3, format="csr", random_state=5, dtype=np.float32)
    Y = sp.csr_matrix((rng.random((240, 48)) < 0.06).astype(np.float32))
    params = LabelTreeParams(C=1.0, branching=2, max_leaf_size=4, n_jobs=1)
    return LabelTreeModel(params).fit(X, Y), X, Y


def test_matcher_clusters_are_each_rows_best_leaf_clusters_by_brute_force():
    model, X, _ = _small_deep_model()
    tree, weights = model.trees_[0], model.weights_[0]
    last = tree.depth - 1
    assert last >= 2  # a path of several levels above the leaf clusters
    Xp = tree_holdout.prepared_rows(model, X)
    Xa = np.hstack([Xp.toarray(), np.ones((X.shape[0], 1))])
    q = model.params.hinge_power
    clusters = tree.n_nodes(last)
    # a beam as wide as the clusters is exhaustive: the B best by path score
    got = tree_holdout.matcher_clusters(model, 0, Xp, 3, beam=clusters)
    assert got.shape == (X.shape[0], clusters) and np.all(np.diff(got.indptr) == 3)
    for row in range(X.shape[0]):
        path = np.zeros(clusters)
        for v in range(clusters):  # walk each cluster's ancestors up to level 1, the documented node score
            node = v
            for t in range(last, 0, -1):
                s = float(Xa[row] @ weights[t - 1][node].toarray().ravel())
                path[v] += -(max(0.0, 1.0 - s) ** q) - 0.01 * np.log1p(np.exp(1.0 - s))
                node = tree.parents(t)[node]
        assert set(got[row].indices) == set(np.argsort(-path, kind="stable")[:3])


def test_matcher_negatives_retrain_only_the_last_level_on_more_rows():
    model, X, Y = _small_deep_model()
    before = model.weights_[0]
    clusters = model.trees_[0].n_nodes(model.trees_[0].depth - 1)
    pairs = tree_holdout.with_matcher_negatives(model, X, Y, clusters)
    # every row reaches every cluster; teacher forcing, the clusters each row has a label in
    last = model.trees_[0].depth - 1
    assert pairs == {
        "teacher_forcing": int(((Y @ model.trees_[0].membership(last)) > 0).nnz),
        "with_matcher": 240 * clusters,
    }
    after = model.weights_[0]
    for t in range(len(before) - 1):  # the matcher's levels are kept bit for bit
        assert (before[t] != after[t]).nnz == 0
    # with B = every cluster, each cluster's rankers train on every row: other weights than teacher forcing's
    assert (before[-1] != after[-1]).nnz > 0


def test_the_worker_reports_each_number_of_matcher_clusters(tmp_path, capsys):
    import json

    tree_holdout.worker(
        "bibtex", 1, 1, 123, tmp_path, False, variant={"max_leaf_size": 40, "branching": 2}, matcher_negatives=(2,)
    )
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(row["matcher_negatives"]) == {"2"}
    assert {"P@1", "P@5", "PSP@5", "retrain_cpu_s", "ranker_rows"} <= set(row["matcher_negatives"]["2"])
    pairs = row["matcher_negatives"]["2"]["ranker_rows"]
    assert 0 < pairs["teacher_forcing"] < pairs["with_matcher"]
