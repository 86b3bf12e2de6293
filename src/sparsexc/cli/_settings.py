"""The estimator's settings as options of ``sparsexc train``, generated from the Params dataclasses.

One option per field of :class:`~sparsexc._params.EncoderParams`, :class:`~sparsexc._params.TrainParams` and
:class:`~sparsexc._params.FitParams` that :class:`~sparsexc.estimator.XCClassifier` takes as a parameter: the
flag is the field's name with dashes (or its ``cli_flag``), the type follows the annotation and the declared
choices or range, the help is the field's help and ``--help`` shows the estimator's default
(:class:`~sparsexc.cli._defaults.EstimatorOption`). Every option defaults to None, so that an option not
given leaves the estimator's default and a config file can be told from an explicit flag. Run plumbing
(:class:`~sparsexc._params.RunParams`) is not among them: the CLI derives it from ``--out`` and ``--resume``.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, Union, get_args, get_origin

import click

from sparsexc._params import EncoderParams, FitParams, Range, TrainParams, choices_of
from sparsexc.cli._defaults import EstimatorOption
from sparsexc.cli._types import INT_LIST

__all__ = ["ESTIMATOR_NAMES", "SETTING_OPTIONS", "full_config", "setting_option", "setting_options"]

F = TypeVar("F", bound=Callable[..., Any])

_SOURCES = (EncoderParams, TrainParams, FitParams)


def _settings() -> Iterator[tuple[dataclasses.Field, Any]]:
    """(field, type hint) of every estimator setting that is a CLI option, in declaration order."""
    for params_cls in _SOURCES:
        for field, hint in params_cls.settings():
            if "from_estimator" not in field.metadata:  # derived (verbose) or run plumbing (log_path)
                yield field, hint


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


def _option(field: dataclasses.Field, hint: Any) -> Callable[[F], F]:
    """The ``click.option`` decorator of one setting."""
    dest = _dest(field)
    flag = dest.replace("_", "-")
    hint = _plain(hint)
    help_text = field.metadata.get("help", "")
    if hint is bool:
        off = field.metadata.get("cli_off", f"no-{flag}")
        return click.option(f"--{flag}/--{off}", dest, cls=EstimatorOption, default=None, help=help_text)
    return click.option(f"--{flag}", dest, cls=EstimatorOption, type=_click_type(field, hint), help=help_text)


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


# options of `sparsexc train` that are neither settings nor recorded: they say how to run this command
_NOT_CONFIG = ("quiet", "overwrite", "print_config", "config")


def full_config(options: dict[str, Any]) -> dict[str, Any]:
    """What ``sparsexc train --print-config`` prints: every setting (with dashes, as ``--config`` reads them),
    its default where ``options`` leave it unset, and the data and run options that ``options`` set.

    ``optimizer`` and ``lr`` show what the head's default resolves to, ``head-param`` every field of the
    head's Params (nested sampler settings as mappings). The values are checked as for training: a bad
    setting is a ``click.UsageError``.
    """
    from pathlib import Path

    from sparsexc.cli._training import checked_estimator

    clf = checked_estimator(options, Path("OUT"), verbose=False)
    _, head_params, _, train = clf._settings()
    params = clf.get_params(deep=False)
    config: dict[str, Any] = {"head": clf.head, "head-param": head_params.to_dict()}
    for option, name in ESTIMATOR_NAMES.items():
        value = getattr(train, option) if option in ("optimizer", "lr") else params[name]
        config[option.replace("_", "-")] = list(value) if isinstance(value, tuple) else value
    for key, value in options.items():
        if key in ESTIMATOR_NAMES or key in ("head", "head_param") or key in _NOT_CONFIG:
            continue
        if value is not None and value is not False:
            config[key.replace("_", "-")] = value
    return config
