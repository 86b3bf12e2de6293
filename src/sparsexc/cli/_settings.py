"""The CLI options of the settings, generated from the Params dataclasses.

* ``sparsexc train``'s model settings: one option per field of :class:`~sparsexc._params.EncoderParams`,
  :class:`~sparsexc._params.TrainParams` and :class:`~sparsexc._params.FitParams` that
  :class:`~sparsexc.estimator.XCClassifier` takes as a parameter; ``--help`` shows the estimator's default
  (:class:`~sparsexc.cli._defaults.EstimatorOption`).
* ``sparsexc train``'s run plumbing: one option per field of :class:`~sparsexc._params.RunParams` but the
  paths, which the CLI derives from ``--out`` (fields marked ``cli_from``); they go to ``fit``.
* ``sparsexc predict``'s options: one per field of :class:`~sparsexc._params.PredictParams`.

The flag is the field's name with dashes (or its ``cli_flag``), the type follows the annotation and the
declared choices or range, and the help is the field's help. Every option defaults to None (unless
``cli_required``), so that an option not given leaves the declared default and a config file can be told from
an explicit flag.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, Union, get_args, get_origin

import click

from sparsexc._params import ESTIMATOR_SETTINGS, Params, PredictParams, Range, RunParams, choices_of
from sparsexc.cli._defaults import DeclaredOption, EstimatorOption
from sparsexc.cli._types import INT_LIST
from sparsexc.errors import ConfigurationError

__all__ = [
    "ESTIMATOR_NAMES",
    "PREDICT_OPTIONS",
    "RUN_OPTIONS",
    "SETTING_OPTIONS",
    "full_config",
    "params_from_options",
    "predict_options",
    "run_options",
    "setting_option",
    "setting_options",
]

F = TypeVar("F", bound=Callable[..., Any])
P = TypeVar("P", bound=Params)


def _settings() -> Iterator[tuple[dataclasses.Field, Any]]:
    """(field, type hint) of every estimator setting that is a CLI option, in declaration order."""
    for params_cls in ESTIMATOR_SETTINGS:
        for field, hint in params_cls.settings():
            if "from_estimator" not in field.metadata:  # derived from the estimator's verbose
                yield field, hint


def _options_of(params_cls: type[Params]) -> list[tuple[dataclasses.Field, Any]]:
    """(field, type hint) of the fields of ``params_cls`` that are options (not derived by the CLI)."""
    return [(field, hint) for field, hint in params_cls.settings() if "cli_from" not in field.metadata]


def _dest(field: dataclasses.Field) -> str:
    """The option's Python name (the key of config files and of run.json's "options")."""
    return str(field.metadata.get("cli_flag", field.name))


def _plain(hint: Any) -> Any:
    """``hint`` without its None (``int | None`` -> ``int``)."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _click_type(field: dataclasses.Field, hint: Any) -> Any:
    choices = choices_of(field)
    if choices is not None:
        return click.Choice(choices)
    if get_origin(hint) is tuple:
        return INT_LIST  # the only tuple setting: hidden sizes (positive integers)
    bounds: Range | None = field.metadata.get("range")
    if hint in (int, float) and bounds is not None:
        kind = click.IntRange if hint is int else click.FloatRange
        return kind(min=bounds.low, max=bounds.high, min_open=bounds.low_open, max_open=bounds.high_open)
    return hint if hint in (int, float) else None  # None: a string


def _option(field: dataclasses.Field, hint: Any, estimator: bool = True) -> Callable[[F], F]:
    """The ``click.option`` decorator of one setting: an estimator parameter's (its default shown by
    :class:`EstimatorOption`), or (``estimator=False``) a run or prediction setting's (its field's default)."""
    dest = _dest(field)
    flag = dest.replace("_", "-")
    hint = _plain(hint)
    help_text = field.metadata.get("help", "")
    shown: dict[str, Any] = (
        {"cls": EstimatorOption} if estimator else {"cls": DeclaredOption, "declared": field.default}
    )
    if field.metadata.get("cli_required"):
        shown["required"] = True
    if hint is bool:
        off = field.metadata.get("cli_off", f"no-{flag}")
        return click.option(f"--{flag}/--{off}", dest, default=None, help=help_text, **shown)
    return click.option(f"--{flag}", dest, type=_click_type(field, hint), help=help_text, **shown)


# option name -> estimator parameter, for every generated option
ESTIMATOR_NAMES: dict[str, str] = {
    _dest(field): str(field.metadata.get("estimator_name", field.name)) for field, _ in _settings()
}
SETTING_OPTIONS: tuple[str, ...] = tuple(ESTIMATOR_NAMES)


def setting_options(command: F) -> F:
    """Decorator: add one option per estimator setting to a click command, in declaration order."""
    for field, hint in reversed(list(_settings())):  # click lists the last applied first
        command = _option(field, hint)(command)
    return command


def setting_option(name: str) -> Callable[[F], F]:
    """The option of one estimator setting (by its option name), for commands that take only a few."""
    for field, hint in _settings():
        if _dest(field) == name:
            return _option(field, hint)
    raise KeyError(f"no estimator setting {name!r}; the settings are: {', '.join(SETTING_OPTIONS)}")


def _add_options(params_cls: type[Params], command: F) -> F:
    for field, hint in reversed(_options_of(params_cls)):  # click lists the last applied first
        command = _option(field, hint, estimator=False)(command)
    return command


def run_options(command: F) -> F:
    """Decorator: add the run plumbing's options (the fields of RunParams but the paths) to a click command."""
    return _add_options(RunParams, command)


def predict_options(command: F) -> F:
    """Decorator: add one option per prediction setting (the fields of PredictParams) to a click command."""
    return _add_options(PredictParams, command)


# option names of the run plumbing (sparsexc train) and of the prediction settings (sparsexc predict)
RUN_OPTIONS: tuple[str, ...] = tuple(_dest(field) for field, _ in _options_of(RunParams))
PREDICT_OPTIONS: tuple[str, ...] = tuple(_dest(field) for field, _ in _options_of(PredictParams))


def params_from_options(params_cls: type[P], options: dict[str, Any], **derived: Any) -> P:
    """``params_cls`` from the parsed ``options`` (by option name; None: the field's default) and the values
    the CLI ``derived`` (by field name). A bad value is a ``click.UsageError``."""
    given = {field.name: options.get(_dest(field)) for field, _ in _options_of(params_cls)}
    try:
        return params_cls.from_arguments(**given, **derived)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None


# options of `sparsexc train` that are neither settings nor recorded: they say how to run this command
_NOT_CONFIG = ("quiet", "overwrite", "print_config", "config")


def full_config(options: dict[str, Any]) -> dict[str, Any]:
    """What ``sparsexc train --print-config`` prints: every setting (with dashes, as ``--config`` reads them),
    its default where ``options`` leave it unset, and the data and run options that ``options`` set.

    ``optimizer`` and ``lr`` show what the head's default resolves to, ``head-param`` every field of the
    head's Params (nested sampler settings as mappings), ``tree-param`` every field of the label-tree model's
    LabelTreeParams (used with ``model`` "tree"; its ``seed`` is the ``seed`` unless set), ``ridge-param`` every field
    of the ridge model's RidgeParams. The values are checked as for training: a bad
    setting is a ``click.UsageError``.
    """
    from pathlib import Path

    from sparsexc.cli._training import checked_estimator

    clf = checked_estimator(options, Path("OUT"), verbose=False)
    _, head_params, _, train = clf._settings()
    params = clf.get_params(deep=False)
    from sparsexc.estimator._families import get_family

    tree_params = get_family("tree").params(clf).to_dict()  # type: ignore[attr-defined]
    ridge_params = get_family("ridge").params(clf).to_dict()  # type: ignore[attr-defined]
    config: dict[str, Any] = {
        "head": clf.head,
        "head-param": head_params.to_dict(),
        "tree-param": tree_params,
        "ridge-param": ridge_params,
    }
    for option, name in ESTIMATOR_NAMES.items():
        value = getattr(train, option) if option in ("optimizer", "lr") else params[name]
        config[option.replace("_", "-")] = list(value) if isinstance(value, tuple) else value
    for key, value in options.items():
        if key in ESTIMATOR_NAMES or key in ("head", "head_param", "tree_param", "ridge_param") or key in _NOT_CONFIG:
            continue
        if value is not None and value is not False:
            config[key.replace("_", "-")] = value
    return config
