"""The feature preprocessing inside XCClassifier and the CLI (issue 20): fitted on the training rows only,
saved in the model folder, applied by every prediction path (estimator, ``sparsexc predict``, ``evaluate``)
for every model family; old folders load as "none"; bad values and bad saved files are one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc._params import PredictParams
from sparsexc._preprocess import fit_preprocessor
from sparsexc.errors import ConfigurationError, ModelFormatError
from sparsexc.estimator import XCClassifier
from sparsexc.estimator.serialization import read_model_dir, write_model_dir

FAMILIES = {"neural": {"epochs": 2, "hidden_sizes": (16,)}, "tree": {"model": "tree"}}


def _data(seed: int = 0, n: int = 120, d: int = 40, C: int = 6, negative: bool = False):
    """Counts-like features whose labels depend on them (so models differ when the features do)."""
    rng = np.random.default_rng(seed)
    A = rng.poisson(0.4, (n, d)).astype(np.float32) * rng.integers(1, 4, d)
    if negative:
        A = A - 1.5 * rng.random((n, d)).astype(np.float32)
    W = rng.normal(size=(d, C))
    S = A @ W
    Y = (np.quantile(S, 0.7, axis=0) <= S).astype(np.float32)
    Y[np.arange(n), S.argmax(1)] = 1
    return sp.csr_matrix(A), sp.csr_matrix(Y)


def _clf(family: str, **kwargs) -> XCClassifier:
    return XCClassifier(verbose=0, device="cpu", random_state=0, **FAMILIES[family], **kwargs)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("transform", ["tfidf", "standardize"])
def test_statistics_come_from_the_training_rows_only(family, transform):
    X, Y = _data(1)
    X_val, Y_val = _data(2, n=40)
    X_val = X_val * 30  # very different rows: any leak into the statistics shows
    clf = _clf(family, preprocess=transform).fit(X, Y, X_val, Y_val)
    expected = fit_preprocessor(transform, X).arrays
    leaked = fit_preprocessor(transform, sp.vstack([X, X_val]).tocsr()).arrays
    for name, values in clf.preprocess_.arrays.items():
        np.testing.assert_array_equal(values, expected[name])
        assert not np.allclose(values, leaked[name])
    # the validation hold-out (validation_fraction) is not training rows either
    held = _clf(family, preprocess=transform, validation_fraction=0.25).fit(X, Y)
    order = np.random.default_rng(0).permutation(X.shape[0])
    train_rows = np.sort(order[round(0.25 * X.shape[0]) :])
    for name, values in held.preprocess_.arrays.items():
        np.testing.assert_array_equal(values, fit_preprocessor(transform, X[train_rows]).arrays[name])
        assert not np.array_equal(values, fit_preprocessor(transform, X).arrays[name])


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("transform", ["tfidf", "l2", "standardize"])
def test_the_model_is_the_one_trained_on_transformed_features(family, transform):
    """XCClassifier(preprocess=t) on X predicts as XCClassifier(preprocess="none") trained and queried on the
    features transformed by hand with the statistics of the training rows."""
    X, Y = _data(3)
    X_test, _ = _data(4, n=30)
    pre = fit_preprocessor(transform, X)
    ours = _clf(family, preprocess=transform, validation_fraction=0.0).fit(X, Y)
    by_hand = _clf(family, preprocess="none", validation_fraction=0.0).fit(pre(X), Y)
    got, want = ours.predict_topk(X_test, 3), by_hand.predict_topk(pre(X_test), 3)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    assert (ours.predict(X_test) != by_hand.predict(pre(X_test))).nnz == 0
    np.testing.assert_allclose(ours.decision_function(X_test), by_hand.decision_function(pre(X_test)), rtol=1e-6)
    assert ours.score(X_test, Y[:30]) == by_hand.score(pre(X_test), Y[:30])


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("preprocess", ["auto", "tfidf", "l2", "standardize", "none"])
def test_save_load_round_trip_applies_the_same_transform(family, preprocess, tmp_path):
    X, Y = _data(5, negative=preprocess == "auto")
    clf = _clf(family, preprocess=preprocess).fit(X, Y)
    clf.save(tmp_path / "m")
    loaded = XCClassifier.load(tmp_path / "m")
    assert loaded.preprocess == preprocess
    assert loaded.preprocess_.config() == clf.preprocess_.config()
    for name, values in clf.preprocess_.arrays.items():
        np.testing.assert_array_equal(loaded.preprocess_.arrays[name], values)
    np.testing.assert_array_equal(loaded.predict_topk(X)[0], clf.predict_topk(X)[0])
    np.testing.assert_allclose(loaded.decision_function(X), clf.decision_function(X), rtol=1e-6)
    tensors, config = read_model_dir(tmp_path / "m")
    assert config["preprocess"]["transform"] == clf.preprocess_.transform
    assert {k for k in tensors if k.startswith("preprocess.")} == {f"preprocess.{k}" for k in clf.preprocess_.arrays}


def test_auto_chooses_from_the_data_and_explicit_values_override_it():
    X, Y = _data(6, negative=True)
    clf = _clf("tree").fit(X, Y)
    assert clf.preprocess == "auto"
    assert clf.preprocess_.transform == "standardize" and clf.preprocess_.requested == "auto"
    assert clf.resolved_preprocess() == clf.resolved_preprocess(X)
    assert clf.resolved_preprocess(X).transform == "standardize"
    assert "negative" in clf.resolved_preprocess(X).reason
    for explicit in ("none", "l2"):
        given = _clf("tree", preprocess=explicit)
        assert given.resolved_preprocess().transform == explicit
        assert given.fit(X, Y).preprocess_.transform == explicit
    with pytest.raises(ConfigurationError, match='preprocess="auto" chooses from the training features'):
        _clf("tree").resolved_preprocess()


@pytest.mark.parametrize("bad", ["zca", "TFIDF"])
def test_a_bad_value_names_the_argument_and_its_choices(bad):
    X, Y = _data(7)
    message = r"preprocess=.* is not allowed; choose one of 'auto', 'none', 'tfidf', 'l2', 'standardize'"
    with pytest.raises(ConfigurationError, match=message):
        _clf("tree", preprocess=bad).fit(X, Y)
    with pytest.raises(ConfigurationError, match=message):
        _clf("tree", preprocess=bad).resolved_params()
    with pytest.raises(ConfigurationError, match=message):
        _clf("tree", preprocess=bad).resolved_preprocess(X)
    with pytest.raises(ConfigurationError, match="preprocess must be a string; got None"):
        _clf("tree", preprocess=None).fit(X, Y)


def test_tfidf_on_negative_features_is_refused():
    X, Y = _data(8, negative=True)
    with pytest.raises(ConfigurationError, match="preprocess='tfidf' needs non-negative features"):
        _clf("tree", preprocess="tfidf").fit(X, Y)


def _rewrite(folder: Path, edit_config=None, edit_tensors=None) -> None:
    tensors, config = read_model_dir(folder)
    config = {k: v for k, v in config.items() if k not in ("format_version", "weights_sha256")}
    if edit_config:
        edit_config(config)
    if edit_tensors:
        edit_tensors(tensors)
    write_model_dir(folder, tensors, config)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_folder_saved_before_preprocessing_loads_as_none(family, tmp_path):
    X, Y = _data(9)
    clf = _clf(family, preprocess="none").fit(X, Y)
    clf.save(tmp_path / "old")

    def old(config):  # what a model folder held before issue 20
        del config["preprocess"]
        del config["params"]["preprocess"]

    _rewrite(tmp_path / "old", old)
    assert "preprocess" not in json.loads((tmp_path / "old" / "config.json").read_text())
    loaded = XCClassifier.load(tmp_path / "old")
    assert loaded.preprocess == "none" and loaded.preprocess_.transform == "none"
    np.testing.assert_array_equal(loaded.predict_topk(X)[0], clf.predict_topk(X)[0])
    np.testing.assert_allclose(loaded.decision_function(X), clf.decision_function(X), rtol=1e-6)


def _drop_tensor(tensors):
    del tensors["preprocess.idf"]


def _extra_tensor(tensors):
    tensors["preprocess.mean"] = tensors["preprocess.idf"].clone()


def _short_tensor(tensors):
    tensors["preprocess.idf"] = tensors["preprocess.idf"][:-1].clone()


def _bad_idf(tensors):
    tensors["preprocess.idf"] = tensors["preprocess.idf"] * 0


def _set(key, value):
    def edit(config):
        config["preprocess"][key] = value

    return edit


@pytest.mark.parametrize(
    ("edit_config", "edit_tensors", "message"),
    [
        (None, _drop_tensor, "tensor 'preprocess.idf' is missing"),
        (None, _extra_tensor, "unexpected tensor 'preprocess.mean'"),
        (None, _short_tensor, r"tensor 'preprocess.idf' is float32 \[39\]; the preprocessing needs float32"),
        (None, _bad_idf, "idf weights must be at least 1"),
        (_set("transform", "l2"), None, "field 'preprocess.transform' is 'l2' but params.preprocess is 'tfidf'"),
        (_set("requested", "auto"), None, "field 'preprocess.requested' is 'auto' but params.preprocess is 'tfidf'"),
        (_set("transform", "whiten"), None, "field 'preprocess' has transform 'whiten'"),
        (_set("centred", 1), None, "field 'preprocess' needs 'centred'"),
    ],
)
def test_a_damaged_preprocessing_is_one_model_format_error(edit_config, edit_tensors, message, tmp_path):
    X, Y = _data(10)
    _clf("tree", preprocess="tfidf").fit(X, Y).save(tmp_path / "m")
    _rewrite(tmp_path / "m", edit_config, edit_tensors)
    with pytest.raises(ModelFormatError, match=message):
        XCClassifier.load(tmp_path / "m")


# -- the CLI --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    from sparsexc.cli import main
    from sparsexc.io import write_xc

    folder = tmp_path_factory.mktemp("cli-preprocess")
    X, Y = _data(11, n=200)
    X_test, Y_test = _data(12, n=40)
    write_xc(folder / "train.txt", X, Y)
    write_xc(folder / "test.txt", X_test, Y_test)
    out = folder / "run"
    args = ["train", "--train", str(folder / "train.txt"), "--test", str(folder / "test.txt")]
    code = main([*args, "--model", "tree", "--preprocess", "tfidf", "--out", str(out)])
    assert code == 0
    return folder, out, X_test


def test_cli_train_records_and_prints_the_choice(cli_run, capsys):
    from sparsexc.cli import main

    folder, out, _ = cli_run
    run = json.loads((out / "run.json").read_text())
    assert run["preprocess"]["transform"] == "tfidf" and run["options"]["preprocess"] == "tfidf"
    assert json.loads((out / "model" / "config.json").read_text())["preprocess"]["transform"] == "tfidf"
    args = ["train", "--train", str(folder / "train.txt"), "--test", str(folder / "test.txt"), "--model", "tree"]
    capsys.readouterr()
    assert main([*args, "--out", str(folder / "auto")]) == 0
    err = capsys.readouterr().err
    assert "[sparsexc] features: standardize (auto: integer-coded tabular features (40 columns), scaled only)" in err
    assert main([*args, "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["preprocess"] == "auto"


def test_cli_predict_and_evaluate_apply_the_saved_transform(cli_run, tmp_path, capsys):
    from sparsexc.cli import main

    folder, out, X_test = cli_run
    loaded = XCClassifier.load(out / "model")
    path = tmp_path / "pred.jsonl"
    args = ["predict", str(out), "--input", str(folder / "test.txt"), "--top-k", "3"]
    assert main([*args, "--format", "jsonl", "--ids", "--output", str(path)]) == 0
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    idx, scores = loaded.predict_topk(X_test, 3)
    assert [r["labels"] for r in rows] == idx.tolist()
    np.testing.assert_allclose([r["scores"] for r in rows], scores, rtol=1e-5)
    # the transform matters: the model's own top-k on the raw features differs
    raw = loaded._family().topk(loaded.model_, X_test, PredictParams(k=3))
    assert not np.allclose(raw[1], scores)
    assert main(["evaluate", str(out), "--json", str(tmp_path / "eval.json")]) == 0
    assert json.loads((tmp_path / "eval.json").read_text()) == pytest.approx(
        json.loads((out / "metrics.json").read_text())
    )
