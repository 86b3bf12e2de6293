"""``XCClassifier(model="tree")``: the label-tree linear model through the estimator (issue 19).

Predictions equal :class:`sparsexc.tree.LabelTreeModel` used directly, bit for bit; the set threshold is tuned
on validation rows; save/load round-trips bit-exact; bad settings are one clear error; scikit-learn's contract.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import scipy.sparse as sp
from safetensors.numpy import load as load_safetensors
from sklearn.base import clone
from sklearn.datasets import make_multilabel_classification

from sparsexc._params import MODEL_FAMILIES
from sparsexc.errors import ConfigurationError
from sparsexc.estimator import XCClassifier
from sparsexc.estimator._families import TREE_CANDIDATES, default_tree_threshold, list_families
from sparsexc.heads._metric_bridge import set_metric
from sparsexc.tree import LabelTreeModel, LabelTreeParams

TREE = {"loss": "logistic", "max_leaf_size": 4, "branching": 4}


@pytest.fixture(scope="module")
def data():
    X, Y = make_multilabel_classification(
        400, 60, n_classes=30, n_labels=3, random_state=1, sparse=True, return_indicator="sparse"
    )
    return X.astype(np.float32).tocsr(), sp.csr_matrix(Y)


@pytest.fixture(scope="module")
def fitted(data):
    X, Y = data
    # compared with LabelTreeModel on the raw features: no preprocessing (issue 20's default would transform X)
    clf = XCClassifier(model="tree", tree_params=TREE, validation_fraction=0, random_state=3, preprocess="none")
    clf.fit(X[:300], Y[:300])
    direct = LabelTreeModel(LabelTreeParams(**TREE, seed=3)).fit(X[:300], Y[:300])
    return clf, direct


def _sets(idx, scores, threshold, n_labels):
    """Brute force: the candidates whose score is >= threshold, as a dense 0/1 matrix."""
    out = np.zeros((idx.shape[0], n_labels), dtype=np.float32)
    for i in range(idx.shape[0]):
        for j, s in zip(idx[i], scores[i]):
            if s >= threshold:
                out[i, j] = 1
    return out


def test_predictions_equal_the_label_tree_model_used_directly(fitted, data):
    clf, direct = fitted
    X, Y = data
    for k, beam in ((1, 10), (5, 10), (7, 2), (30, 25)):
        got = clf.predict_topk(X[300:], k, beam=beam)
        want = direct.predict_topk(X[300:], k, beam=beam)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    # the beam reaches the search: one node per level reaches fewer labels than 25 do
    narrow, wide = clf.predict_topk(X[300:], 30, beam=1)[1], clf.predict_topk(X[300:], 30, beam=25)[1]
    assert (narrow > 0).sum() < (wide > 0).sum()
    # no validation rows: the fixed default threshold of the logistic loss, 0.5
    assert clf.tuned_ == {"threshold": 0.5} == {"threshold": default_tree_threshold("logistic")}
    idx, scores = direct.predict_topk(X[300:], min(TREE_CANDIDATES, 30), beam=10)
    np.testing.assert_array_equal(clf.predict(X[300:]).toarray(), _sets(idx, scores, 0.5, 30))
    dense = np.zeros((100, 30), dtype=np.float32)
    np.put_along_axis(dense, idx, scores, axis=1)
    np.testing.assert_array_equal(clf.decision_function(X[300:]), dense)
    np.testing.assert_array_equal(clf.predict_proba(X[300:]), dense)  # logistic: path probabilities
    p1 = float(np.mean([Y[300 + i, j] for i, j in enumerate(idx[:, 0])]))  # precision at 1 by hand
    assert clf.score(X[300:], Y[300:]) == pytest.approx(p1, abs=1e-12)
    labels = clf.predict_labels(X[300:])
    assert labels == [tuple(np.flatnonzero(row).tolist()) for row in _sets(idx, scores, 0.5, 30)]


def test_the_squared_hinge_default_threshold_and_no_probabilities(data):
    X, Y = data
    clf = XCClassifier(model="tree", tree_params={"max_leaf_size": 8}, validation_fraction=0).fit(X[:300], Y[:300])
    # the node score at margin 0: exp(-1) x sigma(-1)^0.01 (the squared hinge's tail, sparsexc.tree.search)
    assert clf.tuned_ == {"threshold": pytest.approx(np.exp(-1.0) * (1.0 / (1.0 + np.e)) ** 0.01)}
    with pytest.raises(ConfigurationError, match=r"model 'tree' .*squared_hinge.* does not output probabilities"):
        clf.predict_proba(X[:5])
    assert clf.decision_function(X[:5]).shape == (5, 30)


def test_the_tuned_threshold_is_no_worse_than_the_default_on_validation(data):
    # a planted problem: labels are a sparse linear function of the features, so scores carry signal
    rng = np.random.default_rng(0)
    X = sp.random(600, 80, density=0.1, format="csr", dtype=np.float32, random_state=rng)
    W = rng.normal(size=(80, 20)) * (rng.random((80, 20)) < 0.2)
    Y = sp.csr_matrix((X @ W) > 0.6, dtype=np.float32)
    X_tr, Y_tr, X_val, Y_val = X[:400], Y[:400], X[400:], Y[400:]
    tuned = XCClassifier(model="tree", tree_params={"loss": "logistic", "max_leaf_size": 5}).fit(
        X_tr, Y_tr, X_val, Y_val
    )
    untuned = XCClassifier(model="tree", tree_params={"loss": "logistic", "max_leaf_size": 5}, validation_fraction=0)
    untuned.fit(X_tr, Y_tr)
    np.testing.assert_array_equal(tuned.predict_topk(X_val, 5)[0], untuned.predict_topk(X_val, 5)[0])  # same tree
    f1 = set_metric("micro-F1")
    assert tuned.tuned_["threshold"] != 0.5  # the planted problem's best threshold is not the default
    assert f1(Y_val, tuned.predict(X_val)) >= f1(Y_val, untuned.predict(X_val))
    assert f1(Y_val, tuned.predict(X_val)) == pytest.approx(tuned.tuned_["micro-F1"], abs=1e-12)
    # and it is the best of the grid: brute force over a few thresholds
    idx, scores = tuned.model_.candidates(X_val, 10)
    for t in (0.1, 0.3, 0.5, 0.7, 0.9):
        assert f1(Y_val, sp.csr_matrix(_sets(idx, scores, t, 20))) <= tuned.tuned_["micro-F1"] + 1e-12


def test_validation_fraction_holds_out_rows_for_tuning(data):
    """With C given the tree trains on the rows the hold-out leaves; with C cross-validated (small data) it is
    trained on those rows followed by the held-out ones, with the C chosen."""
    X, Y = data
    order = np.random.default_rng(0).permutation(300)
    train_rows, held_rows = np.sort(order[60:]), np.sort(order[:60])
    given = {**TREE, "C": 10.0}
    clf = XCClassifier(model="tree", tree_params=given, validation_fraction=0.2, preprocess="none").fit(
        X[:300], Y[:300]
    )
    assert {"threshold", "micro-F1"} <= set(clf.tuned_) <= {"threshold", "sparsemax_scale", "micro-F1"}
    direct = LabelTreeModel(LabelTreeParams(**given, seed=0)).fit(X[:300][train_rows], Y[:300][train_rows])
    np.testing.assert_array_equal(clf.predict_topk(X[300:], 5)[0], direct.predict_topk(X[300:], 5)[0])
    cv = XCClassifier(model="tree", tree_params=TREE, validation_fraction=0.2, preprocess="none").fit(X[:300], Y[:300])
    C = cv.model_.tree.params.C
    rows = np.concatenate([train_rows, held_rows])
    refit = LabelTreeModel(LabelTreeParams(**TREE, C=C, seed=0)).fit(X[:300][rows], Y[:300][rows])
    np.testing.assert_array_equal(cv.predict_topk(X[300:], 5)[0], refit.predict_topk(X[300:], 5)[0])
    held_out_only = LabelTreeModel(LabelTreeParams(**TREE, C=C, seed=0)).fit(X[:300][train_rows], Y[:300][train_rows])
    assert (cv.predict_topk(X[300:], 5)[0] != held_out_only.predict_topk(X[300:], 5)[0]).any()  # the rows matter


def test_save_load_round_trip_is_bit_exact(fitted, data, tmp_path):
    clf, _ = fitted
    X = data[0][300:]
    clf.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["family"] == "tree" and config["params"]["model"] == "tree"
    assert config["model"]["family"] == "tree" and config["model"]["params"]["loss"] == "logistic"
    again = XCClassifier.load(tmp_path / "m")
    assert again.get_params() == clf.get_params() and again.tuned_ == clf.tuned_
    for a, b in zip(clf.predict_topk(X, 5, beam=3), again.predict_topk(X, 5, beam=3)):
        np.testing.assert_array_equal(a, b)
    assert (clf.predict(X) != again.predict(X)).nnz == 0
    assert not hasattr(again.model_, "state_dict")  # not a torch module: the tree family's own model


def test_a_damaged_tree_folder_is_refused_before_loading(fitted, tmp_path):
    from sparsexc.estimator.serialization import ModelFormatError

    clf, _ = fitted
    clf.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    for change, field in (
        (lambda c: c["model"].update(n_labels=31), "model.n_labels"),
        (lambda c: c["model"]["params"].update(loss="hinge"), "model.params"),
        (lambda c: c.update(family="neural"), "family"),
        (lambda c: c["model"].update(depths=[]), "model.depths"),
        (lambda c: c["tuned"].pop("threshold"), "tuned.threshold"),
    ):
        bad = json.loads(json.dumps(config))
        change(bad)
        path.write_text(json.dumps(bad))
        with pytest.raises(ModelFormatError, match=field.replace(".", r"\.")):
            XCClassifier.load(tmp_path / "m")


def test_a_neural_model_saved_before_the_families_still_loads(data, tmp_path):
    X, Y = data
    clf = XCClassifier(hidden_sizes=(), epochs=1, device="cpu").fit(X[:100], Y[:100])
    clf.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    assert config["family"] == "neural"
    del config["family"], config["params"]["model"], config["params"]["tree_params"]  # the files before
    path.write_text(json.dumps(config))
    again = XCClassifier.load(tmp_path / "m")
    assert again.model == "neural"
    for a, b in zip(clf.predict_topk(X[100:150], 5), again.predict_topk(X[100:150], 5)):
        np.testing.assert_array_equal(a, b)


def test_bad_model_and_tree_params_give_one_clear_error(data):
    X, Y = data
    with pytest.raises(
        ConfigurationError, match=r"model='forest' is not allowed; choose one of 'auto', 'neural', 'ridge', 'tree'"
    ):
        XCClassifier(model="forest").fit(X, Y)
    assert (
        list_families() == ("auto", "neural", "ridge", "tree") == tuple(MODEL_FAMILIES)
    )  # the registry is the choices
    with pytest.raises(ConfigurationError, match=r"tree_params: LabelTreeParams: unknown key 'depth'; allowed keys"):
        XCClassifier(model="tree", tree_params={"depth": 3}).fit(X, Y)
    with pytest.raises(ConfigurationError, match=r"tree_params: .*loss='hinge' is not allowed; choose one of"):
        XCClassifier(model="tree", tree_params={"loss": "hinge"}).fit(X, Y)
    with pytest.raises(ConfigurationError, match="tree_params must be a dict or None"):
        XCClassifier(model="tree", tree_params=[("loss", "logistic")]).fit(X, Y)
    with pytest.raises(ConfigurationError, match=r"beam must be a positive integer; got 0"):
        XCClassifier(model="tree", tree_params=TREE).fit(X[:50], Y[:50]).predict_topk(X[:2], beam=0)


def test_get_params_set_params_and_clone(data):
    X, Y = data
    clf = XCClassifier(model="tree", tree_params=TREE, preprocess="none")  # compared with LabelTreeModel on raw X
    params = clf.get_params()
    assert params["model"] == "tree" and params["tree_params"] == TREE
    copy = clone(clf)
    assert copy.get_params() == params
    neural = XCClassifier().set_params(model="tree", tree_params={"max_leaf_size": 7})
    assert neural.get_params()["tree_params"] == {"max_leaf_size": 7}
    fitted = clone(clf).set_params(validation_fraction=0).fit(X[:200], Y[:200])
    direct = LabelTreeModel(LabelTreeParams(**TREE, seed=0)).fit(X[:200], Y[:200])
    np.testing.assert_array_equal(fitted.predict_topk(X[200:], 3)[0], direct.predict_topk(X[200:], 3)[0])


def test_the_seed_comes_from_random_state_unless_tree_params_sets_it(data):
    X, Y = data
    a = XCClassifier(
        model="tree", tree_params={**TREE, "seed": 5}, random_state=9, validation_fraction=0, preprocess="none"
    )
    direct = LabelTreeModel(LabelTreeParams(**TREE, seed=5)).fit(X[:200], Y[:200])
    np.testing.assert_array_equal(
        a.fit(X[:200], Y[:200]).predict_topk(X[200:], 5)[1], direct.predict_topk(X[200:], 5)[1]
    )


def test_label_names_and_single_label_targets(data):
    X, Y = data
    names = [f"label-{j}" for j in range(30)]
    clf = XCClassifier(model="tree", tree_params=TREE, validation_fraction=0).fit(X[:300], Y[:300], label_names=names)
    assert clf.classes_.tolist() == names
    sets = clf.predict(X[300:310]).tocsr()
    assert clf.predict_labels(X[300:310]) == [tuple(names[j] for j in sets[i].indices) for i in range(10)]
    y = np.asarray(Y[:300].argmax(axis=1)).ravel()
    single = XCClassifier(model="tree", tree_params=TREE, validation_fraction=0).fit(X[:300], y)
    pred = single.predict(X[300:])
    assert pred.shape == (100,) and set(pred.tolist()) <= set(single.classes_.tolist())


def test_save_streams_the_trees_arrays_and_writes_them_exactly(fitted, tmp_path, monkeypatch):
    """``save`` writes the tree's arrays one at a time (never the whole model at once through ``to_arrays``, which
    with the file's bytes built in memory doubled a large model's peak), the same arrays ``to_arrays`` gives, the
    config holding the file's SHA-256; two saves write the same bytes (the metadata's keys sorted)."""
    clf, _ = fitted
    want = clf.model_.tree.to_arrays()
    monkeypatch.setattr(LabelTreeModel, "to_arrays", lambda self: pytest.fail("save built every array at once"))
    clf.save(tmp_path / "a")
    clf.save(tmp_path / "b")
    blob = (tmp_path / "a" / "model.safetensors").read_bytes()
    assert blob == (tmp_path / "b" / "model.safetensors").read_bytes()
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["weights_sha256"] == hashlib.sha256(blob).hexdigest()
    header = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])
    assert header["__metadata__"] == {"format": "sparsexc", "format_version": "1"}
    got = load_safetensors(blob)
    assert all(name.startswith("preprocess.") for name in set(got) - set(want))
    for name, array in want.items():
        assert got[name].dtype == array.dtype and np.array_equal(got[name], array), name
    monkeypatch.undo()
    loaded = XCClassifier.load(tmp_path / "a")
    X = sp.random(20, clf.n_features_in_, density=0.2, format="csr", random_state=0, dtype=np.float32)
    for a, b in zip(loaded.predict_topk(X, 5), clf.predict_topk(X, 5)):
        np.testing.assert_array_equal(a, b)
