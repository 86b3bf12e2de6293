"""XCClassifier: inputs of another width than the fitted model, k and val_metric beyond n_labels, run paths
not carried by saved models, what decision_function returns."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from sparsexc import XCClassifier
from sparsexc._params import RunParams
from sparsexc.heads import describe_scores, get_head, list_heads

FAST = {"epochs": 2, "hidden_sizes": (16,), "batch_size": 32, "device": "cpu"}
RUN_ARGUMENTS = RunParams.field_names()  # fit's run plumbing


@pytest.fixture(scope="module")
def fitted(data):
    X, Y = data
    return XCClassifier(**FAST, head="sigmoid").fit(X[:250], Y[:250])


@pytest.mark.parametrize("width", [30, 41])
@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function", "predict_topk", "score"])
def test_x_of_another_width_is_refused_naming_both_counts(fitted, data, method, width):
    X, Y = data
    X_other = sp.csr_matrix(X[250:, :30]) if width < 40 else sp.hstack([X[250:], X[250:, :1]], format="csr")
    args = (X_other, Y[250:]) if method == "score" else (X_other,)
    with pytest.raises(ValueError, match=rf"X has {width} features, but XCClassifier is expecting 40 features"):
        getattr(fitted, method)(*args)


def test_validation_data_of_another_width_is_refused(data):
    X, Y = data
    with pytest.raises(ValueError, match=r"X_val has 39 features, but XCClassifier .* is expecting 40 features"):
        XCClassifier(**FAST).fit(X[:250], Y[:250], X[250:, :39], Y[250:])


def test_score_refuses_labels_the_model_does_not_have(fitted, data):
    X, Y = data
    wide = sp.hstack([Y[250:], Y[250:, :1]], format="csr")  # 9 label columns for an 8-label model
    with pytest.raises(ValueError, match=r"9 label columns.*n_labels=8"):
        fitted.score(X[250:], wide)
    lists = [[0] for _ in range(50)]
    lists[7] = [8]
    with pytest.raises(ValueError, match=r"y\[7\] holds label id 8, outside 0..7"):
        fitted.score(X[250:], lists)
    assert fitted.score(X[250:], Y[250:, :5]) >= 0.0  # fewer columns: the last labels are never positive


def test_k_beyond_the_labels_ranks_them_all(fitted, data):
    X = data[0][250:]
    indices, scores = fitted.predict_topk(X, k=9)
    assert indices.shape == scores.shape == (50, 8)  # min(k, n_labels), as documented
    assert all(sorted(row) == list(range(8)) for row in indices.tolist())
    np.testing.assert_array_equal(indices, fitted.predict_topk(X, k=8)[0])


@pytest.mark.parametrize("metric", ["P@9", "nDCG@100"])
def test_val_metric_beyond_the_labels_is_refused_at_fit(data, metric):
    X, Y = data
    with pytest.raises(ValueError, match=rf"val_metric='{metric}'.*n_labels=8"):
        XCClassifier(**FAST, val_metric=metric).fit(X, Y)


def _snapshot(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            st = os.stat(path)
            out[path] = (Path(path).read_bytes(), st.st_ino, st.st_mtime_ns)
    return out


def test_a_loaded_model_refits_without_touching_its_training_runs_files(data, tmp_path):
    X, Y = data
    run = tmp_path / "run"
    paths = {"checkpoint_dir": str(run / "ck"), "log_path": str(run / "train_log.jsonl"), "resume": True}
    XCClassifier(**FAST).fit(X, Y, **paths).save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["training_run"] == {**RunParams().to_dict(), **paths}  # kept for the record
    assert not set(RUN_ARGUMENTS) & set(config["params"])  # the run plumbing is no model setting
    before = _snapshot(run)
    assert len(before) >= 3  # checkpoint.pt, checkpoint.json, the log

    loaded = XCClassifier.load(tmp_path / "model")
    assert not set(RUN_ARGUMENTS) & set(loaded.get_params())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refit = clone(loaded).set_params(epochs=1).fit(X, Y)
    assert len(refit.history_) == 1  # trained afresh, not resumed from the original checkpoint
    assert _snapshot(run) == before  # same bytes, same files (not even rewritten)


def test_models_saved_with_run_paths_load_without_them(data, tmp_path):
    # a config.json written before the run settings were reset (they sat in "params")
    X, Y = data
    XCClassifier(**FAST).fit(X, Y).save(tmp_path / "model")
    path = tmp_path / "model" / "config.json"
    config = json.loads(path.read_text())
    config.pop("training_run")
    config["params"].update(checkpoint_dir=str(tmp_path / "ck"), log_path=str(tmp_path / "log"), resume=True)
    path.write_text(json.dumps(config))
    loaded = XCClassifier.load(tmp_path / "model")
    assert not any(hasattr(loaded, k) for k in RUN_ARGUMENTS) and not set(RUN_ARGUMENTS) & set(loaded.get_params())
    assert loaded.get_params()["epochs"] == FAST["epochs"]  # the model's own settings round-trip


def test_a_model_saved_by_the_previous_version_loads_and_refits(data, tmp_path):
    # the previous version's config.json: the run plumbing among the "params" (reset to the defaults, or as
    # written before the reset: the run's own values, checkpoint_every too) and the "training_run" record
    X, Y = data
    fitted = XCClassifier(**FAST).fit(X, Y)
    fitted.save(tmp_path / "model")
    path = tmp_path / "model" / "config.json"
    config = json.loads(path.read_text())
    old = {"checkpoint_dir": str(tmp_path / "ck"), "resume": True, "log_path": str(tmp_path / "log.jsonl")}
    config["params"].update(old, checkpoint_every=3)
    config["training_run"] = old
    path.write_text(json.dumps(config))
    loaded = XCClassifier.load(tmp_path / "model")
    assert not set(RUN_ARGUMENTS) & set(loaded.get_params())
    np.testing.assert_array_equal(loaded.decision_function(X[:20]), fitted.decision_function(X[:20]))
    refit = clone(loaded).set_params(epochs=1).fit(X, Y)  # checkpoint_every without a folder would be refused
    assert len(refit.history_) == 1 and not (tmp_path / "ck").exists() and not (tmp_path / "log.jsonl").exists()


def test_decision_function_is_documented_for_every_head_and_equals_proba_where_said(fitted, data):
    # the docstring's list is written out (the estimator imports no head, hence no torch, until it needs one):
    # it must be the registry's, word for word (line breaks aside), every head in it
    doc = " ".join(XCClassifier.decision_function.__doc__.split())
    assert " ".join(describe_scores().split()) in doc, (
        f"decision_function's list of scores is not:\n{describe_scores()}"
    )
    for name in list_heads():
        assert f"``{name}``" in doc, f"decision_function's docstring does not say what head {name!r} returns"
        meaning = get_head(name).score_meaning  # read from the registry, not listed by hand
        assert meaning and f"``{name}``: {' '.join(meaning.split())}" in doc, f"head {name!r} declares no score_meaning"
    X = data[0][250:]
    np.testing.assert_array_equal(fitted.decision_function(X), fitted.predict_proba(X))  # sigmoid: as documented
    assert np.all((fitted.decision_function(X) > 0) & (fitted.decision_function(X) < 1))
