"""XCClassifier's parameters are the Params fields: same names, same defaults (or the declared
``estimator_default``), all documented, and every field of every Params reachable through the constructor and
``set_params``; old model folders (flat sampler keys) still load."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
from _settings import as_json, head_params_classes, other_value, plain
from sklearn.base import clone

from sparsexc._params import ESTIMATOR_SETTINGS, EncoderParams, FitParams, Params, RunParams, TrainParams
from sparsexc.estimator import XCClassifier

SIGNATURE = inspect.signature(XCClassifier).parameters
OWN = ("head", "head_params", "verbose")  # the estimator's own parameters: no Params field


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
    fit = FitParams(validation_fraction=clf.validation_fraction)
    run = RunParams(checkpoint_dir=clf.checkpoint_dir, resume=clf.resume, log_path=clf.log_path)
    return {EncoderParams: encoder, TrainParams: train, FitParams: fit, RunParams: run, head_cls.Params: head_params}


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
