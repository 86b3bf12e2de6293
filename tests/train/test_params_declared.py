"""Every setting is declared once, with ``setting()``: the constraints and help in the field metadata drive
validation; nested Params (a sampled head's sampler settings) round-trip and read their old flat keys."""

from __future__ import annotations

import json
import re
from typing import get_origin

import pytest
from _settings import all_params_classes, other_value, plain

from sparsexc._params import (
    ESTIMATOR_SETTINGS,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    UNIT_INTERVAL,
    EncoderParams,
    FitParams,
    PredictParams,
    Range,
    RunParams,
    TrainParams,
    choices_of,
)
from sparsexc.estimator.vae import VAEParams
from sparsexc.heads import get_head
from sparsexc.heads._sampled import SampledHeadParams
from sparsexc.heads.sdlgm import SparseLatentHeadParams
from sparsexc.latent.schedules import RelaxationParams
from sparsexc.samplers import FrequencySamplerParams, TreeSamplerParams

# every Params class is declared with setting(): each field has a one-line help (every registered head's and
# sampler's class is enumerated, so a new head or a new field without help fails here)
DECLARED = tuple(
    dict.fromkeys((*all_params_classes(), SampledHeadParams, TreeSamplerParams, FrequencySamplerParams, VAEParams))
)


@pytest.mark.parametrize("cls", DECLARED, ids=lambda c: c.__name__)
def test_every_field_has_a_one_line_help(cls):
    for field, _ in cls.settings():
        text = field.metadata.get("help", "")
        assert text and "\n" not in text, f"{cls.__name__}.{field.name} has no one-line help"


def _outside(bounds: Range, integer: bool):
    if bounds.low is not None:
        return bounds.low if bounds.low_open else bounds.low - 1
    return bounds.high if bounds.high_open else bounds.high + 1


@pytest.mark.parametrize("cls", DECLARED, ids=lambda c: c.__name__)
def test_the_declared_constraints_are_what_validation_checks(cls):
    for field, hint in cls.settings():
        bounds, choices = field.metadata.get("range"), choices_of(field)
        if bounds is not None:
            base = plain(hint)
            integer = base is int or base == tuple[int, ...]
            bad = _outside(bounds, integer)
            bad = int(bad) if integer else float(bad)
            value = (bad,) if get_origin(base) is tuple else bad
            shown = f"{field.name}[0]" if isinstance(value, tuple) else field.name
            said = re.escape(f"{cls.__name__}: {shown}={bad} must {bounds.requirement(integer)}")
            with pytest.raises(ValueError, match=said):
                cls(**{field.name: value})
        if choices is not None:
            with pytest.raises(ValueError, match=rf"{cls.__name__}: {field.name}='nonsense' is not allowed; choose"):
                cls(**{field.name: "nonsense"})
        try:
            cls(**{field.name: other_value(cls, field, hint)})  # a value inside passes
        except ImportError:  # past the constraint, ann="hnsw" needs hnswlib
            assert (cls.__name__, field.name) == ("LabelEmbeddingHeadParams", "ann")


def test_range_requirements_read_as_before():
    assert POSITIVE_INT.requirement(True) == "be a positive integer"
    assert NON_NEGATIVE.requirement(False) == "be >= 0"
    assert POSITIVE.requirement(False) == "be positive"
    assert UNIT_INTERVAL.requirement(False) == "lie in [0, 1)"
    assert Range(2, 5, low_open=True).requirement(True) == "lie in (2, 5]"
    assert float("nan") not in NON_NEGATIVE and 0.0 in NON_NEGATIVE and 0.0 not in POSITIVE


def test_component_defaults_are_unchanged():
    # the Trainer and SparseEncoder used alone keep their defaults; the estimator's differ where declared
    assert TrainParams().epochs == 30 and TrainParams().patience is None
    assert EncoderParams().hidden_sizes == () and EncoderParams().dropout == 0.0
    assert RunParams().to_dict() == {
        "checkpoint_dir": None,
        "checkpoint_every": None,
        "resume": False,
        "log_path": None,
    }
    # predict_topk's k=5, the models' batches and the label tree's beam (issue 19)
    assert PredictParams().to_dict() == {"k": 5, "batch_size": 1024, "beam": 10}
    assert FitParams().validation_fraction == 0.1
    marked = {f.name: f.metadata["estimator_default"] for c in ESTIMATOR_SETTINGS for f, _ in c.settings()
              if "estimator_default" in f.metadata}  # fmt: skip
    # epochs and patience None: chosen from the data (sparsexc.train.budget)
    assert marked == {"hidden_sizes": (1024,), "dropout": 0.6, "epochs": None, "optimizer": None, "lr": None,
                      "patience": None}  # fmt: skip


@pytest.mark.parametrize("head", ["negative-sampling", "sampled-softmax"])
def test_sampler_settings_nest_in_the_sampled_heads(head):
    cls = get_head(head).Params
    params = cls.from_dict(
        {"tree": {"dim": 4, "reg_scaling": "node_size", "max_rounds": 3}, "frequency": {"smoothing": 2.0}}
    )
    assert params.tree == TreeSamplerParams(dim=4, reg_scaling="node_size", max_rounds=3)
    assert params.frequency == FrequencySamplerParams(smoothing=2.0)
    assert cls.from_json(json.dumps(params.to_dict())) == params
    assert params.to_dict()["tree"]["dim"] == 4  # nested in JSON too
    assert cls().tree == TreeSamplerParams() and cls().frequency == FrequencySamplerParams()


@pytest.mark.parametrize(
    "old, path, value",
    [
        ("tree_dim", ("tree", "dim"), 4),
        ("tree_reg", ("tree", "reg"), 0.5),
        ("tree_split", ("tree", "split"), "median"),
        ("tree_standardize", ("tree", "standardize"), True),
        ("sampler_seed", ("tree", "seed"), 3),
        ("frequency_power", ("frequency", "power"), 0.75),
    ],
)
def test_old_flat_sampler_keys_are_read_as_the_nested_ones(old, path, value):
    cls = get_head("negative-sampling").Params
    params = cls.from_dict({old: value, "num_negatives": 3})
    assert getattr(getattr(params, path[0]), path[1]) == value and params.num_negatives == 3
    assert old not in params.to_dict()  # written in the new form
    # merged with the new spelling given alongside
    both = cls.from_dict({old: value, path[0]: {"max_rounds" if path[0] == "tree" else "smoothing": 2}})
    assert getattr(getattr(both, path[0]), path[1]) == value


def test_a_bad_value_under_an_old_key_names_both_spellings():
    cls = get_head("sampled-softmax").Params
    with pytest.raises(ValueError, match=r"split='x' is not allowed.*given as 'tree_split' \(now 'tree.split'\)"):
        cls.from_dict({"tree_split": "x"})
    with pytest.raises(ValueError, match=r"SampledSoftmaxHeadParams: tree: TreeSamplerParams: unknown key 'dims'"):
        cls.from_dict({"tree": {"dims": 4}})
    with pytest.raises(ValueError, match="tree must be a mapping of TreeSamplerParams settings"):
        cls.from_dict({"tree": 4})


@pytest.mark.parametrize("cls", all_params_classes(), ids=lambda c: c.__name__)
def test_every_params_class_round_trips_with_every_field_changed(cls):
    # every field but label-embedding's ann (whose other value needs hnswlib)
    values = {f.name: other_value(cls, f, h) for f, h in cls.settings() if f.name != "ann"}
    changed = cls(**values)
    assert changed != cls() or not values
    assert cls.from_json(changed.to_json()) == changed


def test_a_redeclared_setting_keeps_the_base_help_and_constraint_with_its_own_default():
    base = {f.name: f for f, _ in RelaxationParams.settings()}
    for cls, defaults in ((SparseLatentHeadParams, {"schedule": "constant", "temperature": 2.0}),
                          (VAEParams, {"temperature": 0.5, "min_temperature": 0.2})):  # fmt: skip
        fields = {f.name: f for f, _ in cls.settings()}
        for name, default in defaults.items():
            assert fields[name].default == default != base[name].default
            assert fields[name].metadata == base[name].metadata
    with pytest.raises(ValueError, match=r"SparseLatentHeadParams: temperature=0.0 must be positive"):
        SparseLatentHeadParams(temperature=0.0)


def test_from_arguments_takes_none_for_the_default_and_names_the_argument():
    assert PredictParams.from_arguments(k=None, batch_size=None) == PredictParams()
    assert PredictParams.from_arguments(k=3) == PredictParams(k=3)
    assert RunParams.from_arguments(checkpoint_dir=None, resume=True) == RunParams(resume=True)
    for given, said in [
        ({"k": 0}, "k must be a positive integer; got 0"),
        ({"k": True}, "k must be a positive integer; got True"),
        ({"k": 3, "batch_size": -1}, "batch_size must be a positive integer; got -1"),
        ({"k": "5"}, "k must be a positive integer; got '5'"),
    ]:
        with pytest.raises(ValueError, match=f"^{re.escape(said)}$"):
            PredictParams.from_arguments(**given)
    with pytest.raises(ValueError, match=r"^resume must be true or false; got 1$"):
        RunParams.from_arguments(resume=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):  # a caller's bug, not the user's
        EncoderParams.from_arguments(nope=1)


def test_run_paths_may_be_path_objects(tmp_path):
    params = RunParams(checkpoint_dir=tmp_path / "ck", log_path=tmp_path / "log")
    assert params.checkpoint_dir == str(tmp_path / "ck") and params.log_path == str(tmp_path / "log")
    assert RunParams.from_json(params.to_json()) == params
