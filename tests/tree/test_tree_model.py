"""The label-tree model: training follows the documented rule, prediction equals brute force, files round-trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc.errors import ConfigurationError, ModelFormatError
from sparsexc.tree import LabelTree, LabelTreeModel, LabelTreeParams
from sparsexc.tree.solver import fit_linear


def _planted(n: int = 400, d: int = 80, C: int = 60, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Rows whose two positive labels are the two best of a random linear scorer (learnable, not trivial)."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.1, random_state=seed, format="csr", dtype=np.float32)
    S = X @ rng.normal(size=(d, C))
    top = np.argsort(-S, axis=1)[:, :2]
    Y = sp.csr_matrix((np.ones(2 * n, np.float32), top.ravel(), np.arange(0, 2 * n + 1, 2)), shape=(n, C))
    return X, Y


def _normalized(X: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    norms[norms == 0] = 1
    return sp.csr_matrix(sp.diags(1 / norms) @ X, dtype=np.float32)


def _brute_force_weights(model: LabelTreeModel, X: sp.csr_matrix, Y: sp.csr_matrix) -> list[np.ndarray]:
    """Each level's dense weights (nodes x (d + 1)) retrained node by node from the rule in the docstring,
    with the rows reaching a node found by Python set logic (not the model's sparse products)."""
    tree, p = model.trees_[0], model.params
    Xn = _normalized(X) if p.normalize_rows else X
    labels_of_row = [set(Y.indices[Y.indptr[i] : Y.indptr[i + 1]]) for i in range(Y.shape[0])]
    out = []
    for t in range(tree.depth):
        anc_next = tree.ancestors(t + 1)
        under_next = [set(np.flatnonzero(anc_next == v)) for v in range(tree.n_nodes(t + 1))]
        under = [set(np.flatnonzero(tree.ancestors(t) == v)) for v in range(tree.n_nodes(t))]
        W = np.zeros((tree.n_nodes(t + 1), X.shape[1] + 1), np.float32)
        for node in range(tree.n_nodes(t)):
            rows = [i for i in range(X.shape[0]) if labels_of_row[i] & under[node]]
            if not rows:
                continue
            kids = list(tree.children(t, node))
            Z = np.array([[bool(labels_of_row[i] & under_next[c]) for c in kids] for i in rows])
            w = fit_linear(
                Xn[rows],
                Z,
                loss=p.loss,
                C=p.C,
                tol=p.tol,
                max_iter=p.max_iter,
                bias=p.bias,
                solver=p.solver,
                seed=p.seed,
            )
            W[kids] = w.T
        out.append(W)
    return out


@pytest.mark.parametrize("loss", ["squared_hinge", "logistic"])
def test_unpruned_sparse_weights_equal_dense_node_by_node_training(loss):
    """Threshold 0: the model's sparse level matrices (trained on the columns a node's rows use, scattered
    back) equal dense classifiers trained on all columns of the rows the documented rule gives each node."""
    X, Y = _planted()
    model = LabelTreeModel(LabelTreeParams(branching=3, max_leaf_size=8, loss=loss, threshold=0.0, tol=1e-4)).fit(X, Y)
    assert model.trees_[0].depth == 3
    for got, want in zip(model.weights_[0], _brute_force_weights(model, X, Y), strict=True):
        np.testing.assert_allclose(got.toarray(), want, atol=2e-3, rtol=2e-3)


def _node_log_p(s: np.ndarray, loss: str, power: float) -> np.ndarray:
    """log sigma(s), or the squared hinge's -max(0, 1 - s)^power with its tail -0.01 log(1 + e^(1 - s))."""
    if loss == "logistic":
        return -np.logaddexp(0.0, -s)
    return -(np.maximum(0.0, 1.0 - s) ** power) - 0.01 * np.logaddexp(0.0, 1.0 - s)


def _brute_force_topk(model: LabelTreeModel, X: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every label's path score (product of node probabilities) from dense weights; top-k, ties to lower id."""
    tree = model.trees_[0]
    Xn = _normalized(X) if model.params.normalize_rows else sp.csr_matrix(X)
    Xb = np.hstack([Xn.toarray(), np.full((X.shape[0], 1), model.params.bias)]).astype(np.float64)
    logp = np.zeros((X.shape[0], 1))
    for t in range(tree.depth):
        s = Xb @ model.weights_[0][t].toarray().astype(np.float64).T
        lp = _node_log_p(s, model.params.loss, model.params.hinge_power)
        logp = logp[:, tree.parents(t + 1)] + lp
    by_label = np.empty_like(logp)
    by_label[:, tree.label_order] = logp
    idx = np.argsort(-by_label, axis=1, kind="stable")[:, :k]
    return idx, np.exp(np.take_along_axis(by_label, idx, axis=1))


@pytest.mark.parametrize("loss", ["squared_hinge", "logistic"])
def test_full_beam_prediction_equals_brute_force_path_products(loss):
    X, Y = _planted(seed=1)
    model = LabelTreeModel(LabelTreeParams(branching=4, max_leaf_size=6, loss=loss)).fit(X, Y)
    widest = max(model.trees_[0].n_nodes(t) for t in range(model.trees_[0].depth + 1))
    idx, scores = model.predict_topk(X[:50], k=5, beam=widest)
    want_idx, want_scores = _brute_force_topk(model, X[:50], 5)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-4, atol=1e-6)
    # indices agree wherever the scores are not (numerically) tied
    gaps = np.abs(np.diff(want_scores, axis=1)) > 1e-5
    distinct = np.concatenate([gaps[:, :1], gaps[:, 1:] & gaps[:, :-1], gaps[:, -1:]], axis=1)
    assert np.array_equal(idx[distinct], want_idx[distinct])


def test_learns_the_planted_labels_far_above_chance():
    X, Y = _planted(n=800, seed=2)
    model = LabelTreeModel(LabelTreeParams(branching=4, max_leaf_size=10)).fit(X[:600], Y[:600])
    idx, _ = model.predict_topk(X[600:], k=1)
    hits = np.mean([Y[600 + i, j] for i, j in enumerate(idx[:, 0])])
    assert hits > 0.5  # chance: 2 / 60


def test_flat_tree_is_one_vs_rest_on_every_row():
    X, Y = _planted(C=12)
    model = LabelTreeModel(LabelTreeParams(max_leaf_size=100, threshold=0.0, tol=1e-5)).fit(X, Y)
    assert model.trees_[0].depth == 1
    want = fit_linear(_normalized(X), Y[:, model.trees_[0].label_order], C=1.0, tol=1e-5, max_iter=100)
    np.testing.assert_allclose(model.weights_[0][0].toarray(), want.T, atol=2e-3)


def test_pruning_drops_small_weights_but_keeps_every_bias():
    X, Y = _planted()
    # one C for both (C=None would cross-validate each, and the threshold can change its choice)
    dense = LabelTreeModel(LabelTreeParams(branching=3, max_leaf_size=8, threshold=0.0, C=1.0)).fit(X, Y)
    pruned = LabelTreeModel(LabelTreeParams(branching=3, max_leaf_size=8, threshold=0.1, C=1.0)).fit(X, Y)
    assert pruned.n_weights < dense.n_weights
    for wd, wp in zip(dense.weights_[0], pruned.weights_[0], strict=True):
        A, B = wd.toarray(), wp.toarray()
        keep = np.abs(A) >= 0.1
        keep[:, -1] = True
        np.testing.assert_array_equal(B, np.where(keep, A, 0))


def test_same_seed_same_model_and_labels_without_rows_are_handled():
    X, Y = _planted()
    Y = sp.hstack([Y, sp.csr_matrix((Y.shape[0], 3), dtype=np.float32)]).tocsr()  # 3 labels never positive
    a = LabelTreeModel(LabelTreeParams(branching=3, max_leaf_size=8, seed=5)).fit(X, Y)
    b = LabelTreeModel(LabelTreeParams(branching=3, max_leaf_size=8, seed=5)).fit(X, Y)
    assert np.array_equal(a.trees_[0].label_order, b.trees_[0].label_order)
    for wa, wb in zip(a.weights_[0], b.weights_[0], strict=True):
        assert (wa != wb).nnz == 0
    idx, _scores = a.predict_topk(X[:20], k=Y.shape[1])
    assert np.all(np.sort(idx, axis=1) == np.arange(Y.shape[1]))  # every label reachable, none twice


def test_save_and_load_are_bit_exact(tmp_path):
    X, Y = _planted()
    model = LabelTreeModel(LabelTreeParams(branching=3, max_leaf_size=8, loss="logistic")).fit(X, Y)
    model.save(tmp_path / "m")
    loaded = LabelTreeModel.load(tmp_path / "m")
    assert loaded.params == model.params
    assert np.array_equal(loaded.trees_[0].label_order, model.trees_[0].label_order)
    for a, b in zip(model.weights_[0], loaded.weights_[0], strict=True):
        assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
        assert np.array_equal(a.data, b.data)
    for out, back in zip(model.predict_topk(X, k=3), loaded.predict_topk(X, k=3), strict=True):
        assert np.array_equal(out, back)


def test_a_file_saved_before_the_hinge_power_setting_keeps_power_2(saved):
    import json

    from sparsexc.tree.search import HINGE_POWER

    X, _ = _planted(C=30)
    model = LabelTreeModel.load(saved)
    assert model.params.hinge_power == HINGE_POWER == 3.0  # written by this version: its own setting
    config = json.loads((saved / "config.json").read_text())
    del config["params"]["hinge_power"]  # as a file of an earlier version holds it
    (saved / "config.json").write_text(json.dumps(config))
    old = LabelTreeModel.load(saved)
    assert old.params.hinge_power == 2.0
    assert LabelTreeParams().hinge_power == 3.0  # settings given by a user take the default
    as_before = model
    as_before.params = as_before.params.replace(hinge_power=2.0)
    for a, b in zip(old.predict_topk(X, k=4), as_before.predict_topk(X, k=4), strict=True):
        assert np.array_equal(a, b)


@pytest.fixture
def saved(tmp_path):
    X, Y = _planted(C=30)
    LabelTreeModel(LabelTreeParams(branching=3, max_leaf_size=8)).fit(X, Y).save(tmp_path)
    return tmp_path


def test_load_refuses_a_pickle(saved):
    (saved / "model.safetensors").write_bytes(b"\x80\x04\x95" + b"\0" * 40)
    with pytest.raises(ModelFormatError, match="pickle"):
        LabelTreeModel.load(saved)


def test_load_refuses_a_truncated_weights_file(saved):
    data = (saved / "model.safetensors").read_bytes()
    (saved / "model.safetensors").write_bytes(data[:-8])
    with pytest.raises(ModelFormatError, match=r"model\.safetensors"):
        LabelTreeModel.load(saved)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(format="other"), "format"),
        (lambda c: c.update(version=99), "version"),
        (lambda c: c.update(n_features=-1), "n_features"),
        (lambda c: c.update(n_labels=c["n_labels"] + 1), "n_labels"),
        (lambda c: c.update(depths=[]), "depths"),
        (lambda c: c.update(depths=[1, 2]), "trees"),
        (lambda c: c["params"].update(loss="hinge"), "loss"),
    ],
)
def test_load_refuses_a_config_that_does_not_match(saved, edit, message):
    config = json.loads((saved / "config.json").read_text())
    edit(config)
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises((ModelFormatError, ConfigurationError), match=message):
        LabelTreeModel.load(saved)


def test_load_refuses_weights_that_point_outside_the_matrix(saved):
    from safetensors.numpy import load_file, save_file

    arrays = load_file(str(saved / "model.safetensors"))
    arrays["weights.0.0.indices"] = arrays["weights.0.0.indices"] + 10**6
    save_file(arrays, str(saved / "model.safetensors"))
    with pytest.raises(ModelFormatError, match="tree 0, level 1"):
        LabelTreeModel.load(saved)


def test_bad_input_and_arguments_get_one_clear_error():
    X, Y = _planted(C=20)
    with pytest.raises(ConfigurationError, match="rows"):
        LabelTreeModel().fit(X, Y[:-1])
    with pytest.raises(ConfigurationError, match="not fitted"):
        LabelTreeModel().predict_topk(X)
    model = LabelTreeModel(LabelTreeParams(max_leaf_size=8, branching=2)).fit(X, Y)
    with pytest.raises(ConfigurationError, match="features"):
        model.predict_topk(X[:, :-1])
    with pytest.raises(ConfigurationError, match="k="):
        model.predict_topk(X, k=21)
    with pytest.raises(ConfigurationError, match="beam="):
        model.predict_topk(X, beam=0)
    bad = X.copy()
    bad.data[0] = np.nan
    with pytest.raises(ConfigurationError, match="NaN"):
        model.predict_topk(bad)
    with pytest.raises(ConfigurationError, match="branching"):
        LabelTreeParams(branching=1)


def test_tree_shape_is_the_documented_one():
    X, Y = _planted(C=60)
    tree = LabelTreeModel(LabelTreeParams(branching=4, max_leaf_size=5)).fit(X, Y).trees_[0]
    assert isinstance(tree, LabelTree)
    leaves = np.diff(tree.offsets[-1])
    assert leaves.max() <= 5
    for t in range(tree.depth - 1):
        assert np.diff(tree.offsets[t]).max() <= 4


def _brute_force_path_scores(model: LabelTreeModel, member: int, X: sp.csr_matrix) -> np.ndarray:
    """Every label's path score (n, C) under ensemble member ``member``, from dense weights."""
    tree, weights = model.trees_[member], model.weights_[member]
    Xn = _normalized(X) if model.params.normalize_rows else sp.csr_matrix(X)
    Xb = np.hstack([Xn.toarray(), np.full((X.shape[0], 1), model.params.bias)]).astype(np.float64)
    logp = np.zeros((X.shape[0], 1))
    for t in range(tree.depth):
        s = Xb @ weights[t].toarray().astype(np.float64).T
        logp = logp[:, tree.parents(t + 1)] + _node_log_p(s, model.params.loss, model.params.hinge_power)
    out = np.empty_like(logp)
    out[:, tree.label_order] = np.exp(logp)
    return out


def test_an_ensemble_averages_its_trees_path_scores():
    """n_trees=3: three trees (seeds 0, 1, 2); with a full beam and C <= MEMBER_TOPK the score of a label is the
    plain mean of the three trees' path products."""
    X, Y = _planted(C=50, seed=3)
    model = LabelTreeModel(LabelTreeParams(branching=3, max_leaf_size=6, n_trees=3)).fit(X, Y)
    assert len(model.trees_) == 3
    assert not np.array_equal(model.trees_[0].label_order, model.trees_[1].label_order)
    single = LabelTreeModel(LabelTreeParams(branching=3, max_leaf_size=6, seed=1)).fit(X, Y)
    assert np.array_equal(single.trees_[0].label_order, model.trees_[1].label_order)  # member i = seed + i
    mean = np.mean([_brute_force_path_scores(model, i, X[:40]) for i in range(3)], axis=0)
    idx, scores = model.predict_topk(X[:40], k=5, beam=50)
    np.testing.assert_allclose(scores, np.take_along_axis(mean, idx, axis=1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(scores, -np.sort(-mean, axis=1)[:, :5], rtol=1e-4, atol=1e-6)


def test_an_ensemble_saves_and_loads_bit_exact(tmp_path):
    X, Y = _planted(C=40)
    model = LabelTreeModel(LabelTreeParams(branching=3, max_leaf_size=8, n_trees=2)).fit(X, Y)
    model.save(tmp_path)
    loaded = LabelTreeModel.load(tmp_path)
    for out, back in zip(model.predict_topk(X, k=4), loaded.predict_topk(X, k=4), strict=True):
        assert np.array_equal(out, back)


def _topk_by_sparse_additions(found, n_labels, k):
    """The reference: each member's rows as a sparse matrix, added one after the other, divided by T; then per
    row the k largest stored entries by one lexsort (ties to the lower label), short rows filled with the lowest
    unused label ids at score 0."""
    total = sp.csr_matrix((found[0][0].shape[0], n_labels), dtype=np.float64)
    for idx, scores in found:
        n, kk = idx.shape
        total = total + sp.csr_matrix(
            (scores.ravel().astype(np.float64), idx.ravel(), np.arange(0, n * kk + 1, kk)), shape=(n, n_labels)
        )
    S = sp.csr_matrix(total / len(found))
    S.sum_duplicates()
    out_idx, out = np.zeros((n, k), dtype=np.int64), np.zeros((n, k), dtype=np.float32)
    for i in range(n):
        cols, vals = S.indices[S.indptr[i] : S.indptr[i + 1]], S.data[S.indptr[i] : S.indptr[i + 1]]
        best = np.lexsort((cols, -vals))[:k]
        m = best.shape[0]
        out_idx[i, :m], out[i, :m] = cols[best], vals[best]
        out_idx[i, m:] = [j for j in range(n_labels) if j not in set(cols[best].tolist())][: k - m]
    return out_idx, out


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("members", [1, 2, 3, 5])
def test_ensemble_topk_equals_sparse_additions_bit_for_bit(members: int, compiled: bool) -> None:
    from sparsexc.tree.model import _ensemble_topk

    rng = np.random.default_rng(members)
    n, C, kk = 40, 30, 8
    found = []
    for _ in range(members):
        idx = np.stack([rng.choice(C, size=kk, replace=False) for _ in range(n)])
        # float32 scores, a third of them coarse: ties and exact zeros (labels a member filled in at score 0)
        coarse = rng.integers(0, 4, size=(n, kk)) / 8
        scores = np.where(rng.random((n, kk)) < 0.33, coarse, rng.random((n, kk))).astype(np.float32)
        scores[:3] = 0.0  # rows no member reached: all filled
        found.append((idx.astype(np.int64), scores))
    for k in (1, 2, 5, 8):  # k = 1, 2: the kernel's scans for a few of many; 5, 8: its sort
        got, want = _ensemble_topk(found, C, k, compiled=compiled), _topk_by_sparse_additions(found, C, k)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("compiled", [False, True])
def test_ensemble_topk_keeps_rows_apart_when_one_ends_on_the_label_the_next_starts_with(compiled: bool) -> None:
    from sparsexc.tree.model import _ensemble_topk

    found = [(np.array([[5], [5]]), np.array([[0.5], [0.25]], dtype=np.float32))] * 2
    idx, scores = _ensemble_topk(found, 10, 2, compiled=compiled)
    assert idx.tolist() == [[5, 0], [5, 0]] and scores.tolist() == [[0.5, 0.0], [0.25, 0.0]]


def test_ensemble_predicts_the_same_in_row_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    from sparsexc.tree import model as tree_model

    X, Y = _planted(n=300, d=40, C=50, seed=3)
    model = LabelTreeModel(LabelTreeParams(n_trees=3, branching=4, max_leaf_size=8, C=1.0)).fit(X, Y)
    whole = model.predict_topk(X, 5, beam=3)
    monkeypatch.setattr(tree_model, "ENSEMBLE_BLOCK", 64)  # 5 blocks, the last one partial
    blocks = model.predict_topk(X, 5, beam=3)
    assert np.array_equal(whole[0], blocks[0]) and np.array_equal(whole[1], blocks[1])


@pytest.mark.parametrize("member_topk", [1, 3, 8])
def test_an_ensemble_averages_each_member_s_top_member_topk(member_topk):
    # the mean over trees of each member's best max(k, member_topk) scores, a label outside a member's list
    # counting 0; reference: every member ranked alone as a one-tree model, the means built densely
    X, Y = _planted(C=40)
    model = LabelTreeModel(LabelTreeParams(n_trees=3, branching=3, max_leaf_size=6)).fit(X, Y)
    k = 2
    total = np.zeros((X.shape[0], Y.shape[1]))
    for tree, weights in zip(model.trees_, model.weights_, strict=True):
        member = LabelTreeModel(model.params.replace(n_trees=1))
        member.trees_, member.weights_ = [tree], [weights]
        member.n_features_, member.n_labels_ = model.n_features_, model.n_labels_
        idx, scores = member.predict_topk(X, k=max(k, member_topk))
        np.add.at(total, (np.arange(X.shape[0])[:, None], idx), scores.astype(np.float64))
    mean = total * (1.0 / 3)
    order = np.lexsort((np.broadcast_to(np.arange(Y.shape[1]), mean.shape), -mean), axis=1)[:, :k]
    got_idx, got_scores = model.predict_topk(X, k=k, member_topk=member_topk)
    np.testing.assert_array_equal(got_idx, order)
    np.testing.assert_array_equal(got_scores, np.take_along_axis(mean, order, axis=1).astype(np.float32))
    if member_topk < 8:  # a short list loses shares the default list keeps
        assert not np.array_equal(got_scores, model.predict_topk(X, k=k)[1])


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_member_topk_must_be_a_positive_integer(bad):
    X, Y = _planted(C=20)
    model = LabelTreeModel(LabelTreeParams(n_trees=2, branching=3, max_leaf_size=6)).fit(X, Y)
    with pytest.raises(ConfigurationError, match=r"member_topk=.*must be an integer >= 1"):
        model.predict_topk(X, k=2, member_topk=bad)


def test_files_store_column_ids_as_int32_and_version_1_files_still_load(tmp_path):
    from safetensors.numpy import load_file, save_file

    X, Y = _planted()
    model = LabelTreeModel(LabelTreeParams(n_trees=2, branching=3, max_leaf_size=8)).fit(X, Y)
    model.save(tmp_path / "v2")
    arrays = load_file(str(tmp_path / "v2" / "model.safetensors"))
    ids = [name for name in arrays if name.endswith(".indices")]
    assert ids and all(arrays[name].dtype == np.int32 for name in ids)
    assert json.loads((tmp_path / "v2" / "config.json").read_text())["version"] == 2
    # a version-1 folder: the same arrays with int64 column ids
    (tmp_path / "v1").mkdir()
    save_file(
        {k: (v.astype(np.int64) if k in ids else v) for k, v in arrays.items()},
        str(tmp_path / "v1" / "model.safetensors"),
    )
    config = json.loads((tmp_path / "v2" / "config.json").read_text())
    (tmp_path / "v1" / "config.json").write_text(json.dumps({**config, "version": 1}))
    want = model.predict_topk(X, k=3)
    for folder in ("v1", "v2"):
        loaded = LabelTreeModel.load(tmp_path / folder)
        for a, b in zip(loaded.weights_, model.weights_, strict=True):
            for wa, wb in zip(a, b, strict=True):
                assert np.array_equal(wa.indices, wb.indices) and np.array_equal(wa.data, wb.data)
        for got, ref in zip(loaded.predict_topk(X, k=3), want, strict=True):
            np.testing.assert_array_equal(got, ref)
