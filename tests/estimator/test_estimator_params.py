"""XCClassifier's parameters are the Params fields: same names, same defaults (or the declared
``estimator_default``), all documented, and every field of every Params reachable through the constructor and
``set_params``, the run plumbing (RunParams) through ``fit`` and the prediction settings (PredictParams) through
the prediction methods; old model folders (flat sampler keys) still load."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
from _settings import as_json, head_params_classes, other_value, plain
from sklearn.base import clone

import sparsexc.train as train_module  # the neural model family reads Trainer from it at fit time
from sparsexc._params import (
    ESTIMATOR_SETTINGS,
    EncoderParams,
    FitParams,
    Params,
    PredictParams,
    RunParams,
    TrainParams,
)
from sparsexc.errors import ConfigurationError
from sparsexc.estimator import XCClassifier
from sparsexc.train import Trainer

SIGNATURE = inspect.signature(XCClassifier).parameters
OWN = (
    "head",
    "head_params",
    "tree_params",
    "ridge_params",
    "verbose",
)  # the estimator's own parameters: no Params field


def _estimator_fields():
    for cls in ESTIMATOR_SETTINGS:
        for field, hint in cls.settings():
            if "from_estimator" not in field.metadata:
                yield cls, field, hint


def test_the_parameters_are_the_fields_with_their_defaults():
    expected = {}
    for _, field, _ in _estimator_fields():
        name = field.metadata.get("estimator_name", field.name)
        expected[name] = field.metadata.get("estimator_default", field.default)
    actual = {name: p.default for name, p in SIGNATURE.items() if name not in OWN}
    assert actual == expected
    # the derived fields come from parameters that exist
    for cls in ESTIMATOR_SETTINGS:
        for field, _ in cls.settings():
            if "from_estimator" in field.metadata:
                assert field.metadata["from_estimator"] in SIGNATURE, field.name


def test_the_docstring_documents_every_parameter():
    doc = XCClassifier.__doc__
    table = doc.split("Parameters\n    ----------", 1)[1].split("Attributes\n    ----------", 1)[0]
    listed = set()
    for line in table.splitlines():
        if line.startswith("    ") and not line.startswith("     ") and line.strip():
            names = line.strip().split(" : ", 1)[0]
            listed.update(n.strip() for n in names.split(","))
    assert set(SIGNATURE) <= listed, sorted(set(SIGNATURE) - listed)


def _settings_of(clf: XCClassifier) -> dict[type, Params]:
    head_cls, head_params, encoder, train = clf._settings()
    fit = FitParams.from_dict(clf._fields(FitParams))  # every FitParams field the estimator holds
    return {EncoderParams: encoder, TrainParams: train, FitParams: fit, head_cls.Params: head_params}


@pytest.mark.parametrize("cls", ESTIMATOR_SETTINGS, ids=lambda c: c.__name__)
def test_every_estimator_setting_is_reachable(cls):
    for field, hint in cls.settings():
        if "from_estimator" in field.metadata:
            continue
        name = field.metadata.get("estimator_name", field.name)
        value = other_value(cls, field, hint)
        kwargs = {name: value}
        if name == "hidden_sizes":
            kwargs["head"] = "sigmoid"
        for clf in (XCClassifier(**kwargs), XCClassifier().set_params(**kwargs)):
            assert getattr(_settings_of(clf)[cls], field.name) == value, f"{cls.__name__}.{field.name}"
            assert clone(clf).get_params()[name] == value


def _head_values(params_cls: type[Params]) -> list[tuple[str, dict, object]]:
    """(field, head_params, expected value) per field; one case per nested field of nested Params."""
    cases = []
    for field, hint in params_cls.settings():
        base = plain(hint)
        if isinstance(base, type) and issubclass(base, Params):
            for inner, inner_hint in base.settings():
                value = other_value(base, inner, inner_hint)
                cases.append((f"{field.name}.{inner.name}", {field.name: {inner.name: as_json(value)}}, value))
        else:
            value = other_value(params_cls, field, hint)
            cases.append((field.name, {field.name: as_json(value)}, value))
    return cases


def _reached(clf: XCClassifier, key: str):
    try:
        params = clf._settings()[1]
    except ImportError as exc:  # an optional package the value needs (label-embedding ann="hnsw")
        assert key.split(".")[-1] in str(exc) or "hnsw" in str(exc)
        return None
    for part in key.split("."):
        params = getattr(params, part)
    return params


@pytest.mark.parametrize("head", sorted(head_params_classes()))
def test_every_head_and_sampler_setting_is_reachable_through_head_params(head):
    params_cls = head_params_classes()[head]
    for key, head_params, value in _head_values(params_cls):
        hidden = () if key.startswith("tree") or key == "sampler" else (16,)
        for clf in (
            XCClassifier(head=head, head_params=head_params, hidden_sizes=hidden),
            XCClassifier(head=head, hidden_sizes=hidden).set_params(head_params=head_params),
        ):
            reached = _reached(clf, key)
            assert reached is None or reached == value, f"{head}: {key}"


def test_a_model_saved_with_flat_sampler_keys_loads(tmp_path, data):
    X, Y = data
    clf = XCClassifier(
        head="negative-sampling",
        head_params={"tree": {"dim": 4}, "frequency": {"power": 0.5}},
        hidden_sizes=(),
        epochs=1,
        patience=None,
        device="cpu",
    ).fit(X, Y)
    clf.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    head = config["model"]["head"]["params"]
    assert head["tree"]["dim"] == 4 and head["sampler"] == "tree"  # written nested
    # the form written before the sampler settings were nested
    tree, frequency = head.pop("tree"), head.pop("frequency")
    head.update(
        tree_dim=tree["dim"],
        tree_reg=tree["reg"],
        tree_split=tree["split"],
        tree_standardize=tree["standardize"],
        sampler_seed=tree["seed"],
        frequency_power=frequency["power"],
    )
    config["params"]["head_params"] = {"tree_dim": 4, "frequency_power": 0.5}
    path.write_text(json.dumps(config))
    again = XCClassifier.load(tmp_path / "m")
    assert again.model_.head.params.tree.dim == 4 and again.model_.head.params.frequency.power == 0.5
    np.testing.assert_array_equal(again.decision_function(X), clf.decision_function(X))
    assert again.get_params()["head_params"] == {"tree_dim": 4, "frequency_power": 0.5}  # as the user gave them


# -- run plumbing: arguments of fit -----------------------------------------------------------------------------
def _keyword_only(function, after: str) -> dict[str, object]:
    """Name -> default of ``function``'s keyword-only parameters that follow ``after``."""
    names = list(inspect.signature(function).parameters.values())
    start = [p.name for p in names].index(after) + 1
    return {p.name: p.default for p in names[start:]}


def test_fit_takes_the_run_plumbing_declared_in_run_params():
    expected = {field.name: field.default for field, _ in RunParams.settings()}
    assert _keyword_only(XCClassifier.fit, "label_names") == expected
    params = inspect.signature(XCClassifier.fit).parameters
    assert all(params[name].kind is inspect.Parameter.KEYWORD_ONLY for name in expected)
    doc = XCClassifier.fit.__doc__
    for name in expected:
        assert f"        {name} : " in doc, f"fit's docstring does not document {name}"
    # the Trainer takes the same (resume as an argument of its fit), among its other arguments
    trainer = inspect.signature(Trainer.__init__).parameters
    assert {name: trainer[name].default for name in expected if name != "resume"} == {
        k: v for k, v in expected.items() if k != "resume"
    }
    assert inspect.signature(Trainer.fit).parameters["resume"].default is False
    assert not set(RunParams.field_names()) & set(SIGNATURE)  # no estimator parameter
    for cls in ESTIMATOR_SETTINGS:
        assert not set(RunParams.field_names()) & set(cls.field_names()), cls.__name__  # declared once


class _Reached(Exception):
    pass


def test_every_run_setting_is_reachable_through_fit(data, monkeypatch):
    X, Y = data
    seen = {}

    class Spy(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.update(checkpoint_dir=self.checkpoint_dir, checkpoint_every=self.checkpoint_every)
            seen.update(log_path=self.log_path)

        def fit(self, X, Y, X_val=None, Y_val=None, resume=False):
            seen["resume"] = resume
            raise _Reached

    monkeypatch.setattr(train_module, "Trainer", Spy)
    for field, hint in RunParams.settings():
        value = other_value(RunParams, field, hint)
        seen.clear()
        with pytest.raises(_Reached):
            XCClassifier(hidden_sizes=(), epochs=1).fit(X[:40], Y[:40], **{field.name: value})
        assert seen == {**RunParams().to_dict(), field.name: value}, field.name


def test_a_path_may_be_a_path_object(data, tmp_path):
    X, Y = data
    clf = XCClassifier(hidden_sizes=(), epochs=1, device="cpu").fit(X[:60], Y[:60], log_path=tmp_path / "log.jsonl")
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == len(clf.history_) == 1


@pytest.mark.parametrize("name", RunParams.field_names())
def test_the_old_constructor_keyword_says_to_pass_it_to_fit(name):
    value = other_value(RunParams, *next((f, h) for f, h in RunParams.settings() if f.name == name))
    for make in (lambda: XCClassifier(**{name: value}), lambda: XCClassifier().set_params(**{name: value})):
        with pytest.raises(TypeError, match=rf"{name} is no longer a parameter of XCClassifier.*fit\(X, Y, {name}="):
            make()
        with pytest.raises(ConfigurationError):  # one error class of sparsexc too
            make()
    assert XCClassifier(epochs=3).set_params(epochs=4).get_params()["epochs"] == 4  # the others pass through


def test_a_bad_run_argument_is_named_as_fit_calls_it(data):
    X, Y = data
    with pytest.raises(ConfigurationError, match=r"^checkpoint_every must be a positive integer; got 0$"):
        XCClassifier().fit(X, Y, checkpoint_every=0)
    with pytest.raises(ConfigurationError, match="resume must be true or false; got 'yes'"):
        XCClassifier().fit(X, Y, resume="yes")


# -- prediction settings: arguments of the prediction methods ---------------------------------------------------
def test_predict_topk_takes_the_prediction_settings_with_none_for_their_defaults():
    params = inspect.signature(XCClassifier.predict_topk).parameters
    assert [n for n in params if n not in ("self", "X")] == PredictParams.field_names()
    assert all(params[n].default is None for n in PredictParams.field_names())
    for method in (XCClassifier.predict, XCClassifier.predict_labels):
        assert inspect.signature(method).parameters["batch_size"].default is None


@pytest.fixture(scope="module")
def small_model(data):
    X, Y = data
    return XCClassifier(hidden_sizes=(8,), epochs=1, device="cpu", head="sigmoid").fit(X[:200], Y[:200])


def test_every_prediction_setting_is_reachable_through_predict_topk(small_model, data, monkeypatch):
    X = data[0][200:230]
    seen = {}
    family = small_model._family()  # the model family receives the prediction settings (PredictParams)
    real = family.topk

    def spy(model, X, settings):
        seen.update(settings.to_dict())
        return real(model, X, settings)

    monkeypatch.setattr(family, "topk", spy)
    small_model.predict_topk(X)
    assert seen == PredictParams().to_dict()  # None: the declared defaults
    for field, hint in PredictParams.settings():
        value = other_value(PredictParams, field, hint)
        small_model.predict_topk(X, **{field.name: value})
        assert seen == {**PredictParams().to_dict(), field.name: value}, field.name


def test_the_batch_size_does_not_change_predictions(small_model, data):
    X = data[0][200:260]
    ia, sa = small_model.predict_topk(X, 4)
    ib, sb = small_model.predict_topk(X, 4, batch_size=7)  # 60 rows: 9 batches, the last of 4 rows
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_allclose(sa, sb, rtol=1e-6, atol=1e-6)
    assert (small_model.predict(X) != small_model.predict(X, batch_size=1)).nnz == 0
    assert small_model.predict_labels(X) == small_model.predict_labels(X, batch_size=13)
    with pytest.raises(ConfigurationError, match="batch_size must be a positive integer; got 0"):
        small_model.predict(X, batch_size=0)
