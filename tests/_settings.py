"""Every Params class of sparsexc and a valid non-default value for each of its fields: what the tests of
"every setting is reachable" (estimator and CLI) enumerate, so a new head, sampler or field is covered."""

from __future__ import annotations

import dataclasses
import types
from typing import Any, Union, get_args, get_origin

from sparsexc._params import ESTIMATOR_SETTINGS, Params, PredictParams, RunParams, choices_of
from sparsexc.heads import get_head, list_heads
from sparsexc.samplers import get_sampler, list_samplers

# str fields without declared choices (checked in the classes' validate), and values outside simple rules
_OVERRIDES: dict[tuple[str, str], Any] = {
    ("TrainParams", "val_metric"): "P@3",
    ("TrainParams", "tune_metric"): "macro-F1",
    ("TrainParams", "device"): "cpu",
    ("LabelEmbeddingHeadParams", "diagonal"): "zero",
    ("LabelEmbeddingHeadParams", "ann"): "hnsw",  # needs hnswlib: its MissingDependencyError counts as reached
    ("LabelEmbeddingHeadParams", "alpha"): 0.75,
    ("LabelEmbeddingHeadParams", "threshold"): 0.25,
    ("SparseLatentHeadParams", "schedule"): "exponential",
    ("SparseLatentHeadParams", "prior"): "uniform",
    ("SparseLatentHeadParams", "noise"): 0.02,
    ("SigmoidHeadParams", "threshold"): 0.25,
}


def head_params_classes() -> dict[str, type[Params]]:
    """Registered head name -> its Params class."""
    return {name: get_head(name).Params for name in list_heads()}


def sampler_params_classes() -> dict[str, type[Params]]:
    """Registered sampler name -> its Params class."""
    return {name: get_sampler(name).Params for name in list_samplers()}


def all_params_classes() -> list[type[Params]]:
    """The estimator's settings, the run plumbing, the prediction settings, every head's and every sampler's
    Params (each class once)."""
    classes: list[type[Params]] = [
        *ESTIMATOR_SETTINGS,
        RunParams,
        PredictParams,
        *head_params_classes().values(),
        *sampler_params_classes().values(),
    ]
    return list(dict.fromkeys(classes))


def default_of(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def plain(hint: Any) -> Any:
    """``hint`` without None."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def other_value(owner: type[Params], field: dataclasses.Field, hint: Any) -> Any:
    """A valid value of ``field`` that differs from its default (and from the estimator's default)."""
    if (owner.__name__, field.name) in _OVERRIDES:
        return _OVERRIDES[(owner.__name__, field.name)]
    default = field.metadata.get("estimator_default", default_of(field))
    choices = choices_of(field)
    if choices is not None:
        return next(c for c in choices if c not in (default, "auto"))
    base = plain(hint)
    if isinstance(base, type) and issubclass(base, Params):  # nested settings, as a mapping
        return {f.name: as_json(other_value(base, f, h)) for f, h in base.settings()}
    if base is bool:
        return not default if default is not None else False
    if get_origin(base) is tuple:
        return (0.5, 2.0) if get_args(base)[0] is float else (7, 3)
    if base is int:
        return 2 if default is None else int(default) + 2
    if base is float:
        return 0.25 if default in (None, 0.0) else float(default) / 2
    if base is str and default is None:  # a path of run plumbing
        return "some/where"
    raise AssertionError(f"{owner.__name__}.{field.name}: no value rule for {hint!r}; add one to _OVERRIDES")


def as_json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
