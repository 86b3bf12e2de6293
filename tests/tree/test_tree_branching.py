"""The branching chosen from the labels' coherence (``LabelTreeParams.branching=None``, ``leaf_coherence``): the
coherence against a brute-force mean of cosines, its bounds, bad arguments, and the model's choice on labels that
cluster well and on labels that do not (the same trees and weights as the explicit branching it chose)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsexc.errors import ConfigurationError
from sparsexc.tree import (
    COHERENCE_WIDE,
    DEFAULT_BRANCHING,
    WIDE_BRANCHING,
    LabelTreeModel,
    LabelTreeParams,
    build_tree,
    leaf_coherence,
)


def _brute_coherence(R: np.ndarray, tree, exclude=()) -> float:
    norms = np.linalg.norm(R, axis=1)
    keep = norms > 0
    keep[list(exclude)] = False
    U = np.zeros_like(R, dtype=np.float64)
    U[norms > 0] = R[norms > 0] / norms[norms > 0, None]
    leaf = tree.ancestors(tree.depth - 1)
    cosines = []
    for label in np.flatnonzero(keep):
        total = U[(leaf == leaf[label]) & keep].sum(axis=0)
        cosines.append(U[label] @ total / np.linalg.norm(total))
    return float(np.mean(cosines))


@settings(max_examples=40, deadline=None)
@given(
    n_labels=st.integers(2, 120),
    branching=st.integers(2, 5),
    max_leaf_size=st.integers(1, 20),
    n_zero=st.integers(0, 3),
    n_exclude=st.integers(0, 3),
    seed=st.integers(0, 2**31),
)
def test_leaf_coherence_is_the_mean_cosine_to_the_leaf_centroid(
    n_labels, branching, max_leaf_size, n_zero, n_exclude, seed
):
    rng = np.random.default_rng(seed)
    R = rng.random((n_labels, 9)) * (rng.random((n_labels, 9)) < 0.5)
    R[rng.choice(n_labels, min(n_zero, n_labels - 1), replace=False)] = 0  # labels without a positive row
    exclude = rng.choice(n_labels, min(n_exclude, n_labels - 1), replace=False)
    if not (np.linalg.norm(R, axis=1) > 0)[np.setdiff1d(np.arange(n_labels), exclude)].any():
        R[np.setdiff1d(np.arange(n_labels), exclude)[0], 0] = 1.0  # at least one label counted
    tree = build_tree(sp.csr_matrix(R), branching=branching, max_leaf_size=max_leaf_size, seed=seed % 1000)
    got = leaf_coherence(sp.csr_matrix(R), tree, exclude=exclude)
    assert got == pytest.approx(_brute_coherence(R, tree, exclude), abs=1e-12)
    assert leaf_coherence(R, tree, exclude=exclude) == pytest.approx(got, abs=1e-12)  # a dense array alike


def test_leaf_coherence_bounds():
    # 40 labels in 4 leaves of 10: a vector per leaf shared by its labels gives 1, one-hot vectors 1 / sqrt(10)
    tree = build_tree(np.random.default_rng(0).random((40, 5)), branching=4, max_leaf_size=10, seed=0)
    assert np.bincount(tree.ancestors(tree.depth - 1)).tolist() == [10] * 4
    same = np.eye(4)[tree.ancestors(tree.depth - 1)]
    assert leaf_coherence(same, tree) == pytest.approx(1.0)
    assert leaf_coherence(np.eye(40), tree) == pytest.approx(1 / np.sqrt(10))
    assert leaf_coherence(np.zeros((40, 3)), tree) == 0.0  # no label with a vector


def test_leaf_coherence_bad_arguments():
    R = np.eye(12)
    tree = build_tree(R, branching=2, max_leaf_size=3, seed=0)
    with pytest.raises(ConfigurationError, match="12 labels but label_repr has 11 rows"):
        leaf_coherence(R[:11], tree)
    with pytest.raises(ConfigurationError, match=r"exclude holds a label id outside 0\.\.11"):
        leaf_coherence(R, tree, exclude=[12])


def _data(coherent: bool, seed: int = 0, n: int = 1500, C: int = 450, group: int = 25):
    """C labels in groups of ``group``; each row has one label (one in ten two) and the features of their prototypes.
    Coherent: a label's prototype is its group's 6 features (its leaf-mates look alike); else 3 features of its own
    among 6,000 (labels near orthogonal)."""
    rng = np.random.default_rng(seed)
    if coherent:
        groups = rng.integers(0, 6000, size=(C // group, 6))
        proto = groups[np.arange(C) // group]
    else:
        proto = rng.integers(0, 6000, size=(C, 3))
    labels = [rng.choice(C, 1 + (rng.random() < 0.1), replace=False) for _ in range(n)]
    X = sp.lil_matrix((n, 6000), dtype=np.float32)
    Y = sp.lil_matrix((n, C), dtype=np.float32)
    for i, ls in enumerate(labels):
        for label in ls:
            Y[i, label] = 1
            X[i, proto[label]] = 1
        X[i, rng.integers(0, 6000, 2)] = 1  # noise
    return X.tocsr(), Y.tocsr()


@pytest.mark.parametrize(("coherent", "chosen"), [(True, DEFAULT_BRANCHING), (False, WIDE_BRANCHING)])
def test_the_model_chooses_the_branching_from_the_coherence_and_fits_as_with_it_given(coherent, chosen, tmp_path):
    X, Y = _data(coherent)
    base = {"max_leaf_size": 25, "C": 1.0, "n_trees": 2, "n_jobs": 1}  # 450 > 16 x 25 labels: the choice matters
    auto = LabelTreeModel(LabelTreeParams(**base)).fit(X, Y)
    assert (auto.coherence_ >= COHERENCE_WIDE) == coherent
    assert auto.params.branching == chosen
    given_ = LabelTreeModel(LabelTreeParams(**base, branching=chosen)).fit(X, Y)
    assert not hasattr(given_, "coherence_")
    for a, b in zip(auto.trees_, given_.trees_, strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(a.offsets, b.offsets, strict=True))
        assert np.array_equal(a.label_order, b.label_order)
    for wa, wb in zip(auto.weights_, given_.weights_, strict=True):
        assert all((x != y).nnz == 0 for x, y in zip(wa, wb, strict=True))
    auto.save(tmp_path / "m")
    assert LabelTreeModel.load(tmp_path / "m").params.branching == chosen  # the file states the branching used


def test_few_labels_take_the_default_branching_without_measuring():
    # at most 16 x max_leaf_size labels: 16 and 64 shape the same tree, so nothing is measured
    X, Y = _data(False, C=300, group=25)
    model = LabelTreeModel(LabelTreeParams(max_leaf_size=25, C=1.0, n_jobs=1)).fit(X, Y)
    assert model.params.branching == DEFAULT_BRANCHING and not hasattr(model, "coherence_")
    with pytest.raises(ConfigurationError, match="branching"):
        LabelTreeParams(branching=1)


def test_the_estimator_reports_the_branching_it_chose():
    from sparsexc import XCClassifier

    X, Y = _data(False)
    clf = XCClassifier(model="tree", tree_params={"max_leaf_size": 25, "C": 1.0, "n_jobs": 1}, verbose=0).fit(X, Y)
    message = clf.fit_summary_["message"]
    assert "64 children per node, chosen from the labels' leaf coherence 0.2" in message and "(64 below 0.3)" in message
    few = XCClassifier(model="tree", tree_params={"max_leaf_size": 25, "C": 1.0, "n_jobs": 1}, verbose=0)
    X, Y = _data(False, C=300)
    assert "children per node" not in few.fit(X, Y).fit_summary_["message"]  # nothing measured, nothing said
