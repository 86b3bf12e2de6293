"""Label names end to end in XCClassifier: names in (label lists, an indicator with ``label_names``, a 1-D
vector of classes), names out (``classes_``, ``predict_labels``, a 1-D ``predict``), saved with the model and
checked at load, names unseen in fit at score time; label ids keep their meaning."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import MultiLabelBinarizer

from sparsexc.estimator import ModelFormatError, XCClassifier

SMALL = {"hidden_sizes": (), "epochs": 10, "batch_size": 512, "lr": 0.5, "patience": None,
         "validation_fraction": 0.0, "device": "cpu", "verbose": 0}  # fmt: skip
NAMES = [
    "rock",
    "jazz",
    "pop",
]  # not in sorted order: label_names= keeps the order given


@pytest.fixture(scope="module")
def groups() -> tuple[np.ndarray, np.ndarray]:
    """90 rows of 4 features in three well-separated groups; ``group[i]`` in 0..2."""
    rng = np.random.default_rng(7)
    group = np.arange(90) % 3
    X = rng.normal(0.0, 0.1, size=(90, 4)).astype(np.float32)
    X[np.arange(90), group] += 1.0
    return X, group


def _sets(group: np.ndarray) -> list[list[str]]:
    # group 0: {"rock"}, group 1: {"jazz", "pop"}, group 2: {"pop"}
    return [list([["rock"], ["jazz", "pop"], ["pop"]][g]) for g in group]


@pytest.fixture(scope="module")
def named(groups) -> XCClassifier:
    X, group = groups
    return XCClassifier(**{**SMALL, "head": "sigmoid"}).fit(X, _sets(group))  # sigmoid: sets of two labels


def test_label_name_lists_in_names_out(named, groups):
    X, group = groups
    assert named.classes_.tolist() == [
        "jazz",
        "pop",
        "rock",
    ]  # sorted, as MultiLabelBinarizer does
    assert named.n_labels_ == 3 and named.multilabel_
    predicted = named.predict_labels(X)
    assert predicted == [tuple(sorted(s, key=named.classes_.tolist().index)) for s in _sets(group)]
    # predict stays the indicator over classes_; predict_labels is its MultiLabelBinarizer.inverse_transform
    mlb = MultiLabelBinarizer(classes=named.classes_.tolist()).fit([])
    assert predicted == mlb.inverse_transform(named.predict(X).toarray().astype(int))
    assert named.score(X, _sets(group)) == 1.0


def test_indicator_with_label_names_keeps_their_order(groups):
    X, group = groups
    Y = sp.csr_matrix(np.eye(3, dtype=np.float32)[group])  # column j is NAMES[j]
    clf = XCClassifier(**SMALL).fit(X, Y, label_names=NAMES)
    assert clf.classes_.tolist() == NAMES
    assert clf.predict_labels(X) == [(NAMES[g],) for g in group]
    # with label_names, label lists hold names from it (in any order of the names)
    clf2 = XCClassifier(**SMALL).fit(X, [[NAMES[g]] for g in group], label_names=NAMES)
    assert clf2.classes_.tolist() == NAMES and clf2.predict_labels(X) == clf.predict_labels(X)


@pytest.mark.parametrize(("Y", "label_names", "message"), [
    ("indicator", ["a", "b"], "label_names has 2 names but Y has 3 label columns"),
    ("indicator", ["a", "b", "a"], r"label_names holds 'a' twice \(positions 0 and 2\)"),
    ("indicator", "abc", "label_names must be a list of names"),
    ("names", ["rock", "jazz"], r"Y\[2\] holds the label 'pop', which is not one of the label names"),
    ("mixed", None, "Y mixes label lists and single classes"),
    ("unordered", None, "label names of types that cannot be ordered together"),
])  # fmt: skip
def test_bad_names_are_one_clear_error(groups, Y, label_names, message):
    X, group = groups
    targets = {"indicator": np.eye(3)[group], "names": [[NAMES[g]] for g in group],
               "mixed": [["a"], "b"] * 45, "unordered": [["a"], [1]] * 45}[Y]  # fmt: skip
    with pytest.raises(ValueError, match=message):
        XCClassifier(**SMALL).fit(X, targets, label_names=label_names)


def test_label_id_lists_keep_their_meaning(groups, tmp_path):
    X, group = groups
    clf = XCClassifier(**SMALL).fit(X, [[int(g) + 2] for g in group])  # ids 2..4: columns 0 and 1 unused
    assert clf.classes_.tolist() == [0, 1, 2, 3, 4] and clf.classes_.dtype == np.int64
    assert clf.predict(X).shape == (90, 5)
    assert clf.predict_labels(X) == [(int(g) + 2,) for g in group]
    clf.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["classes"] is None and config["multilabel"] is True  # ids: no names saved
    assert XCClassifier.load(tmp_path / "m").classes_.tolist() == [0, 1, 2, 3, 4]


def test_class_vector_is_single_label(groups):
    X, group = groups
    y = np.array(NAMES)[group]
    clf = XCClassifier(**SMALL).fit(X, list(y))  # a list of strings: one class per row
    assert clf.classes_.tolist() == ["jazz", "pop", "rock"] and not clf.multilabel_
    predicted = clf.predict(X)
    assert isinstance(predicted, np.ndarray) and predicted.shape == (90,)
    assert predicted.tolist() == y.tolist()
    assert clf.predict_labels(X[:3]) == [(c,) for c in y[:3]]
    assert clf.score(X, y) == accuracy_score(y, predicted) == 1.0
    # three classes: decision_function is (n, 3) and its argmax is predict
    assert clf.classes_[clf.decision_function(X).argmax(axis=1)].tolist() == predicted.tolist()
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        XCClassifier(**SMALL).fit(X, np.linspace(0.0, 1.0, 90))


def test_binary_class_vector_decision_function_is_scikit_learns(groups):
    X, group = groups
    y = np.where(group == 0, 7, 3)  # integer classes 3 and 7
    clf = XCClassifier(**SMALL).fit(X, y)
    assert clf.classes_.tolist() == [3, 7]
    decision = clf.decision_function(X)
    assert decision.shape == (90,)
    assert np.array_equal(clf.classes_[(decision > 0).astype(int)], clf.predict(X))
    assert clf.predict(X).tolist() == y.tolist()


def test_unseen_names_at_score_time_are_misses(named, groups):
    X, group = groups
    sets = _sets(group)
    assert named.score(X, [s + ["never-seen"] for s in sets]) == named.score(X, sets) == 1.0
    assert named.score(X, [["never-seen"]] * 90) == 0.0
    assert named.score(X, ["rock"] * 90) == pytest.approx(1 / 3)  # a class vector scores a multi-label model too


def test_names_seen_only_in_validation_get_an_output(groups):
    X, group = groups
    clf = XCClassifier(**SMALL).fit(X[:60], _sets(group[:60]), X[60:], [["rock", "extra"]] * 30)
    assert clf.classes_.tolist() == ["extra", "jazz", "pop", "rock"] and clf.n_labels_ == 4


@pytest.mark.parametrize("kind", ["sets", "vector"])
def test_save_load_round_trip_with_names(groups, tmp_path, kind):
    X, group = groups
    Y = _sets(group) if kind == "sets" else np.array(NAMES)[group]
    clf = XCClassifier(**SMALL).fit(X, Y)
    clf.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["classes"] == clf.classes_.tolist() and config["multilabel"] is (kind == "sets")
    loaded = XCClassifier.load(tmp_path / "m")
    assert loaded.classes_.tolist() == clf.classes_.tolist() and loaded.classes_.dtype == clf.classes_.dtype
    assert loaded.multilabel_ == clf.multilabel_
    assert loaded.predict_labels(X) == clf.predict_labels(X)
    if kind == "vector":
        assert loaded.predict(X).tolist() == clf.predict(X).tolist()
    assert loaded.score(X, Y) == clf.score(X, Y)


def test_names_json_cannot_hold_are_refused_at_save(groups, tmp_path):
    X, group = groups
    clf = XCClassifier(**SMALL).fit(X, [[("a", int(g))] for g in group])  # tuples: hashable, not JSON
    assert clf.predict_labels(X[:1]) == [(("a", int(group[0])),)]
    with pytest.raises(ValueError, match=r"classes_\[0\] is \('a', 0\) \(tuple\)"):
        clf.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


# -- model folders: names checked at load, old folders without names --------------------------------------
@pytest.fixture(scope="module")
def named_folder(named, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("named") / "model"
    named.save(folder)
    return folder


def _crafted(folder: Path, tmp_path: Path, **changes) -> Path:
    import shutil

    out = tmp_path / "crafted"
    shutil.copytree(folder, out)
    config = json.loads((out / "config.json").read_text())
    for key, value in changes.items():
        if value is ...:
            del config[key]
        else:
            config[key] = value
    (out / "config.json").write_text(json.dumps(config))
    return out


@pytest.mark.parametrize(("changes", "message"), [
    ({"classes": ["jazz", "pop"]}, "field 'classes' holds 2 label names but n_labels is 3"),
    ({"classes": ["jazz", "pop", "rock", "x"]}, "field 'classes' holds 4 label names but n_labels is 3"),
    ({"classes": "jazz"}, "field 'classes' must be a list of label names or null"),
    ({"classes": ["jazz", {"a": 1}, "rock"]}, r"field 'classes\[1\]' must be a string, a number or a boolean"),
    ({"classes": ["jazz", None, "rock"]}, r"field 'classes\[1\]' must be a string"),
    ({"classes": ["jazz", "rock", "rock"]}, r"field 'classes\[2\]' repeats 'rock'"),
    ({"multilabel": "yes"}, "field 'multilabel' must be true or false"),
    ({"classes": None, "multilabel": False}, "field 'classes' is missing"),
])  # fmt: skip
def test_crafted_names_are_a_model_format_error(named_folder, tmp_path, changes, message):
    folder = _crafted(named_folder, tmp_path, **changes)
    with pytest.raises(ModelFormatError, match=message) as info:
        XCClassifier.load(folder)
    assert str(folder / "config.json") in str(info.value)


def test_old_folder_without_names_still_loads(named_folder, tmp_path, groups):
    X, _ = groups
    folder = _crafted(named_folder, tmp_path, classes=..., multilabel=...)  # as saved before names existed
    loaded = XCClassifier.load(folder)
    assert loaded.classes_.tolist() == [0, 1, 2] and loaded.multilabel_
    assert loaded.predict_labels(X[:2]) == [tuple(int(j) for j in row.indices) for row in loaded.predict(X[:2])]
