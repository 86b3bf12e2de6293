"""The label representations a tree clusters (issue 19: PIFA, PMI label embeddings, or both concatenated):
each against an independent computation, the concatenation's cosine identity, the setting wired into
``LabelTreeModel`` (its trees are ``build_tree`` of that representation), files, seeds, bad values."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc.embeddings import pmi_embeddings
from sparsexc.errors import ConfigurationError
from sparsexc.tree import LabelTreeModel, LabelTreeParams, build_tree, pifa
from sparsexc.tree.cluster import REPRESENTATIONS, label_representation


def _data(n: int = 300, d: int = 40, C: int = 60, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Rows with two to four labels each, and features that depend on them (so PIFA and PMI carry signal)."""
    rng = np.random.default_rng(seed)
    Y = np.zeros((n, C), dtype=np.float32)
    for i in range(n):
        start = rng.integers(C)
        Y[i, (start + np.arange(rng.integers(2, 5))) % C] = 1  # neighbours co-occur
    M = rng.random((C, d)) * (rng.random((C, d)) < 0.2)
    X = Y @ M + 0.1 * rng.random((n, d)) * (rng.random((n, d)) < 0.1)
    return sp.csr_matrix(X.astype(np.float32)), sp.csr_matrix(Y)


def _dense_pifa(X: sp.csr_matrix, Y: sp.csr_matrix) -> np.ndarray:
    Xd = X.toarray().astype(np.float64)
    Xd /= np.maximum(np.linalg.norm(Xd, axis=1, keepdims=True), 1e-300)
    V = Y.toarray().T @ Xd
    norms = np.linalg.norm(V, axis=1, keepdims=True)
    return np.divide(V, norms, out=np.zeros_like(V), where=norms > 0)


def test_pifa_is_pifa_and_pmi_is_the_pmi_embedding():
    X, Y = _data()
    assert (label_representation(X, Y, "pifa") != pifa(X, Y)).nnz == 0
    E = label_representation(X, Y, "pmi", dim=8, seed=3)
    assert np.array_equal(E, pmi_embeddings(Y, 8, seed=3))
    assert E.shape == (Y.shape[1], 8)


def test_the_concatenation_is_both_unit_vectors_over_sqrt_2_and_averages_their_cosines():
    X, Y = _data(C=50)
    R = label_representation(X, Y, "pifa+pmi", dim=6, seed=1)
    V, E = _dense_pifa(X, Y), pmi_embeddings(Y, 6, seed=1).astype(np.float64)
    assert R.shape == (50, X.shape[1] + 6) and sp.issparse(R) and R.dtype == np.float32
    np.testing.assert_allclose(R.toarray(), np.hstack([V, E]) / np.sqrt(2), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(R.toarray(), axis=1), 1.0, atol=1e-6)  # every label has rows
    Rd = R.toarray().astype(np.float64)
    np.testing.assert_allclose(Rd @ Rd.T, (V @ V.T + E @ E.T) / 2, atol=1e-5)


def test_a_label_without_rows_keeps_its_pmi_fallback_in_the_concatenation():
    X, Y = _data(C=40)
    Y = Y.tolil()
    Y[:, 7] = 0
    Y = Y.tocsr()
    R = label_representation(X, Y, "pifa+pmi", dim=5).toarray()
    assert np.all(R[7, : X.shape[1]] == 0)  # no positive row: no PIFA part
    np.testing.assert_allclose(np.linalg.norm(R[7, X.shape[1] :]), 1 / np.sqrt(2), atol=1e-6)


@pytest.mark.parametrize("kind", REPRESENTATIONS)
def test_the_model_clusters_the_representation_it_is_given(kind):
    X, Y = _data(C=80)
    params = LabelTreeParams(representation=kind, pmi_dim=6, branching=3, max_leaf_size=10, n_trees=2, seed=4)
    model = LabelTreeModel(params.replace(n_jobs=1)).fit(X, Y)
    Xn = sp.csr_matrix(X.multiply(1 / np.linalg.norm(X.toarray(), axis=1, keepdims=True)), dtype=np.float32)
    R = label_representation(Xn, Y, kind, dim=6, seed=4)
    for member, tree in enumerate(model.trees_):
        expected = build_tree(R, branching=3, max_leaf_size=10, seed=4 + member)
        assert np.array_equal(tree.label_order, expected.label_order)
        for a, b in zip(tree.offsets, expected.offsets, strict=True):
            assert np.array_equal(a, b)


def test_the_representations_give_different_trees_and_each_is_seeded():
    X, Y = _data(C=80)

    def order(kind: str) -> np.ndarray:
        params = LabelTreeParams(representation=kind, pmi_dim=6, branching=3, max_leaf_size=10, n_jobs=1)
        return LabelTreeModel(params).fit(X, Y).trees_[0].label_order

    orders = {kind: order(kind) for kind in REPRESENTATIONS}
    assert not np.array_equal(orders["pifa"], orders["pmi"])
    assert not np.array_equal(orders["pifa"], orders["pifa+pmi"])
    assert np.array_equal(orders["pifa+pmi"], order("pifa+pmi"))


def test_a_flat_tree_computes_no_representation(monkeypatch):
    import sparsexc.tree.model as tree_model

    def refuse(*args, **kwargs):
        raise AssertionError("a flat tree clusters nothing")

    monkeypatch.setattr(tree_model, "label_representation", refuse)
    X, Y = _data(C=30)
    model = LabelTreeModel(LabelTreeParams(representation="pmi", n_jobs=1)).fit(X, Y)
    assert model.trees_[0].depth == 1


def test_files_keep_the_representation_and_older_files_load_as_pifa(tmp_path):
    X, Y = _data(C=40)
    params = LabelTreeParams(representation="pifa+pmi", pmi_dim=7, branching=2, max_leaf_size=10, n_jobs=1)
    model = LabelTreeModel(params).fit(X, Y)
    model.save(tmp_path)
    loaded = LabelTreeModel.load(tmp_path)
    assert loaded.params.representation == "pifa+pmi" and loaded.params.pmi_dim == 7
    for a, b in zip(model.predict_topk(X, k=3), loaded.predict_topk(X, k=3), strict=True):
        assert np.array_equal(a, b)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["params"]["representation"], config["params"]["pmi_dim"]  # as a file of an earlier version
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert LabelTreeModel.load(tmp_path).params.representation == "pifa"


def test_bad_representations_are_refused_with_the_choices():
    X, Y = _data(C=20)
    with pytest.raises(ConfigurationError, match="pifa, pmi, pifa\\+pmi"):
        label_representation(X, Y, "glove")
    with pytest.raises(ConfigurationError, match="representation"):
        LabelTreeParams(representation="glove")
    with pytest.raises(ConfigurationError, match="pmi_dim"):
        LabelTreeParams(pmi_dim=0)
