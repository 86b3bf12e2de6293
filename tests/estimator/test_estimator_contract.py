"""XCClassifier: the scikit-learn contract, save/load, and argument errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline

import sparsexc
from sparsexc import XCClassifier
from sparsexc._sparse import labels_to_lists
from sparsexc.estimator import classifier as classifier_module
from sparsexc.metrics import precision_at_k

FAST = {"epochs": 3, "hidden_sizes": (16,), "batch_size": 32}


@pytest.fixture(scope="module")
def fitted(data):
    X, Y = data
    return XCClassifier(**FAST, device="cpu").fit(X[:250], Y[:250])


def _weights(clf):
    return {k: v.clone() for k, v in clf.model_.state_dict().items()}


def test_params_are_stored_untouched_and_clone_works():
    clf = XCClassifier(head="sigmoid", head_params={"threshold": 0.3}, hidden_sizes=(8, 4), lr=0.01)
    params = clf.get_params()
    assert params["head_params"] == {"threshold": 0.3} and params["hidden_sizes"] == (8, 4) and params["lr"] == 0.01
    twin = clone(clf)
    assert twin.get_params() == params and twin is not clf
    twin.set_params(epochs=7, head="softmax")
    assert twin.epochs == 7 and twin.head == "softmax" and clf.head == "sigmoid"
    assert XCClassifier(head="nope").head == "nope"  # nothing is validated before fit


def test_lazy_top_level_export():
    assert sparsexc.XCClassifier is XCClassifier
    with pytest.raises(AttributeError):
        sparsexc.NoSuchThing  # noqa: B018


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"head": "nope"}, r"head='nope'.*'sigmoid'.*'softmax'"),
        ({"optimizer": "rmsprop"}, r"optimizer='rmsprop'.*'adam', 'adamw', 'adagrad', 'sgd'"),
        ({"lr_schedule": "exp"}, r"lr_schedule='exp'.*'cosine'"),
        ({"activation": "swish"}, r"activation='swish'.*'relu'"),
        ({"head_params": {"thresh": 0.5}}, r"unknown key 'thresh'.*allowed keys are: threshold"),
        ({"head_params": [1]}, r"head_params must be a dict"),
        ({"hidden_sizes": (0,)}, r"hidden_sizes\[0\]"),
        ({"dropout": 1.5}, r"dropout"),
        ({"epochs": 0}, r"epochs"),
        ({"validation_fraction": 1.0}, r"validation_fraction"),
        ({"random_state": None}, r"random_state"),
        ({"val_metric": "accuracy"}, r"val_metric.*P@k"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(data, kwargs, pattern):
    X, Y = data
    with pytest.raises(ValueError, match=pattern):
        XCClassifier(**{**FAST, **kwargs}).fit(X, Y)


def test_fit_predict_shapes_and_score_is_p_at_1(fitted, data):
    X, Y = data
    X_test, Y_test = X[250:], Y[250:]
    pred = fitted.predict(X_test)
    assert sp.isspmatrix_csr(pred) and pred.shape == (50, 8) and set(np.unique(pred.data)) <= {1.0}
    idx, val = fitted.predict_topk(X_test, k=3)
    assert idx.shape == val.shape == (50, 3) and np.all(np.diff(val, axis=1) <= 0)
    proba = fitted.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)  # softmax head
    np.testing.assert_array_equal(idx, np.argsort(-proba, axis=1, kind="stable")[:, :3])
    assert fitted.score(X_test, Y_test) == pytest.approx(precision_at_k(Y_test, proba, 1))
    assert fitted.n_features_in_ == 40 and fitted.n_labels_ == 8 and list(fitted.classes_) == list(range(8))
    assert len(fitted.history_) == 3 and "val_P@1" in fitted.history_[0]  # 10% validation split by default
    assert "threshold" in fitted.tuned_
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X_test[:, :30].toarray() @ np.ones((30, 50)))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        fitted.predict_topk(X_test, k=0)
    with pytest.raises(NotFittedError):
        XCClassifier().predict(X_test)


def test_predict_proba_refuses_huge_outputs(fitted, data, monkeypatch):
    monkeypatch.setattr(classifier_module, "MAX_DENSE_ENTRIES", 100)
    with pytest.raises(ValueError, match="predict_topk"):
        fitted.predict_proba(data[0][:20])
    with pytest.raises(ValueError, match="predict_topk"):
        fitted.decision_function(data[0][:20])


def test_label_lists_and_csr_give_the_same_model(data):
    X, Y = data
    a = XCClassifier(**FAST, device="cpu").fit(X, Y)
    b = XCClassifier(**FAST, device="cpu").fit(X, labels_to_lists(Y))
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # also: same seed -> same model on CPU


def test_random_state_changes_the_model_and_the_callers_rng_is_untouched(data):
    X, Y = data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    XCClassifier(**FAST).fit(X, Y)
    assert torch.equal(torch.rand(3), expected)
    a = _weights(XCClassifier(**FAST, random_state=1).fit(X, Y))
    b = _weights(XCClassifier(**FAST, random_state=2).fit(X, Y))
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_explicit_validation_data_and_linear_model(data):
    X, Y = data
    clf = XCClassifier(head="sigmoid", hidden_sizes=(), epochs=2, patience=None, device="cpu")
    clf.fit(X[:250], Y[:250], X_val=X[250:], Y_val=Y[250:])
    weight = clf.model_.head.output.weight
    assert weight.shape == (8, 40)  # full-rank linear model: n_labels x n_features
    assert sum(p.numel() for p in clf.model_.parameters()) == 8 * 40 + 8
    assert 0.02 <= clf.tuned_["threshold"] <= 0.98
    none = XCClassifier(**FAST, validation_fraction=0.0).fit(X, Y)
    assert "val_P@1" not in none.history_[0] and none.tuned_ == {}


def test_pipeline_on_raw_text_with_label_lists():
    rng = np.random.default_rng(0)
    topics = {0: ["goal", "match", "team"], 1: ["vote", "party", "election"], 2: ["cpu", "code", "python"]}
    texts, labels = [], []
    for _ in range(120):
        chosen = sorted(rng.choice(3, size=rng.integers(1, 3), replace=False).tolist())
        words = [w for t in chosen for w in rng.choice(topics[t], size=3).tolist()] + ["the", "a"]
        texts.append(" ".join(rng.permutation(words)))
        labels.append(chosen)
    pipe = Pipeline(
        [("tfidf", TfidfVectorizer()), ("clf", XCClassifier(hidden_sizes=(), epochs=30, lr=0.05, batch_size=16))]
    )
    pipe.fit(texts, labels)
    top = pipe.named_steps["clf"].predict_topk(pipe.named_steps["tfidf"].transform(["python code cpu"]), 1)[0]
    assert top[0, 0] == 2
    assert pipe.score(texts, labels) > 0.95
    assert pipe.predict(["vote for the party"]).shape == (1, 3)


def test_save_load_predicts_bit_exactly(fitted, data, tmp_path):
    X = data[0][250:]
    fitted.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "model.safetensors"]
    loaded = XCClassifier.load(tmp_path / "model")
    assert loaded.get_params() == fitted.get_params()
    assert (loaded.predict(X) != fitted.predict(X)).nnz == 0
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    for a, b in zip(loaded.predict_topk(X, 4), fitted.predict_topk(X, 4)):
        np.testing.assert_array_equal(a, b)
    assert loaded.tuned_ == fitted.tuned_ and loaded.model_.head.threshold_ == fitted.model_.head.threshold_


class _Boom:
    def __reduce__(self):
        return (print, ("unpickled!",))


@pytest.mark.parametrize("payload", ["pickle", "torch"])
def test_load_refuses_pickle_payloads(fitted, tmp_path, payload, capsys):
    fitted.save(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    if payload == "pickle":
        weights.write_bytes(pickle.dumps({"w": _Boom()}))
    else:
        torch.save(fitted.model_.state_dict(), weights)
    with pytest.raises(ValueError, match=r"pickle.*never unpickles"):
        XCClassifier.load(tmp_path / "m")
    assert "unpickled!" not in capsys.readouterr().out


def test_safetensors_whose_first_byte_is_the_pickle_marker_load(tmp_path):
    """The first byte of a safetensors file is the low byte of its header length: 0x80 (pickle's protocol
    marker) for header lengths 384 + 256 n, which many small models have; such files are safetensors."""
    from sparsexc.estimator.serialization import read_model_dir, write_model_dir

    hits = 0
    for n in range(1, 300):
        state = {"w" * n: torch.arange(6, dtype=torch.float32).reshape(2, 3)}
        write_model_dir(tmp_path / "m", state, {"n": n})
        if (tmp_path / "m" / "model.safetensors").read_bytes()[:1] != b"\x80":
            continue
        hits += 1
        loaded, config = read_model_dir(tmp_path / "m")
        assert config["n"] == n and torch.equal(loaded["w" * n], state["w" * n])
    assert hits > 0  # the case was produced


def test_load_errors_name_the_file(fitted, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        XCClassifier.load(tmp_path / "missing")
    fitted.save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage!garbage")
    with pytest.raises(ValueError, match=r"model\.safetensors.*not a safetensors"):
        XCClassifier.load(tmp_path / "m")
    fitted.save(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text('{"format_version": 99}')
    with pytest.raises(ValueError, match=r"config\.json.*format_version"):
        XCClassifier.load(tmp_path / "m")


def test_checkpoints_and_resume_through_the_estimator(data, tmp_path):
    X, Y = data
    run = {"checkpoint_dir": str(tmp_path / "ck"), "checkpoint_every": 3, "log_path": str(tmp_path / "log.jsonl")}
    first = XCClassifier(**FAST).fit(X, Y, **run)
    assert (tmp_path / "ck" / "checkpoint.pt").exists() and len((tmp_path / "log.jsonl").read_text().splitlines()) == 3
    resumed = XCClassifier(**FAST).fit(X, Y, **run, resume=True)  # a finished run resumes to the same model
    wa, wb = _weights(first), _weights(resumed)
    assert all(torch.equal(wa[k], wb[k]) for k in wa) and resumed.history_ == first.history_
