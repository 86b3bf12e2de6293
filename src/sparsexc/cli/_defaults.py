"""The defaults ``--help`` shows for the estimator's options, read from where they are declared.

The CLI's estimator options default to None (so that a config file and an explicit flag can be told apart);
what applies then is ``XCClassifier``'s constructor default, or for ``optimizer``/``lr`` the head's choice.
:class:`EstimatorOption` appends that default to the option's help as ``[default: ...]``, looked up from the
constructor's signature and the registered heads when the help is shown (the help of ``train`` imports the
heads anyway, for the ``--head`` choices), so no value is written twice.
"""

from __future__ import annotations

import inspect
from typing import Any

import click

__all__ = ["CHOSEN_FROM_DATA", "DeclaredOption", "EstimatorOption", "estimator_default"]


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value)) if value else "'' (linear model)"
    return str(value)


def _optimizer_default() -> str:
    from sparsexc.heads import get_head, list_heads

    by_optimizer: dict[str, list[str]] = {}
    for name in sorted(list_heads()):
        by_optimizer.setdefault(get_head(name).default_optimizer, []).append(name)
    if len(by_optimizer) == 1:
        return next(iter(by_optimizer))
    common = max(by_optimizer, key=lambda o: len(by_optimizer[o]))
    others = "; ".join(f"{o} for {', '.join(heads)}" for o, heads in sorted(by_optimizer.items()) if o != common)
    return f"the head's: {others}; {common} for the others"


def _lr_default() -> str:
    from sparsexc.estimator.classifier import DEFAULT_LR
    from sparsexc.heads import get_head, list_heads

    text = "by optimiser: " + ", ".join(f"{o} {_value(lr)}" for o, lr in DEFAULT_LR.items())
    scaled = [f"{name} x{_value(float(get_head(name).default_lr_scale))}" for name in sorted(list_heads())
              if get_head(name).default_lr_scale != 1]  # fmt: skip
    return text + (f"; times the head's scale: {', '.join(scaled)}" if scaled else "")


# what --help says for a setting whose estimator default is chosen from the data (sparsexc.train.budget)
CHOSEN_FROM_DATA = "chosen from the data"


def _chosen_from_data(option: str) -> bool:
    """Whether the field of the estimator option ``option`` declares ``chosen_from_data``."""
    from sparsexc._params import ESTIMATOR_SETTINGS

    return any(
        f.name == option and f.metadata.get("chosen_from_data", False)
        for params in ESTIMATOR_SETTINGS
        for f, _ in params.settings()
    )


def estimator_default(option: str) -> str:
    """The default that applies when the CLI option ``option`` (its Python name) is not given, in words."""
    from sparsexc.estimator import XCClassifier

    if option == "optimizer":
        return _optimizer_default()
    if option == "lr":
        return _lr_default()
    from sparsexc.cli._settings import ESTIMATOR_NAMES  # imported here: it builds its options with this module

    value = inspect.signature(XCClassifier).parameters[ESTIMATOR_NAMES.get(option, option)].default
    if value is None and _chosen_from_data(option):
        return CHOSEN_FROM_DATA
    if option == "sparse_gradients":
        return "--sparse-gradients" if value else "--dense-gradients"
    if value is None:
        return "none"
    return _value(value)


class EstimatorOption(click.Option):
    """A ``click.Option`` whose help ends with the estimator's default (:func:`estimator_default`)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None or self.name is None:
            return record
        try:
            default = estimator_default(self.name)
        except ImportError:  # --help must work even if the estimator cannot be imported
            return record
        names, text = record
        return names, f"{text}  [default: {default}]".strip()


class DeclaredOption(click.Option):
    """A ``click.Option`` whose help ends with the default declared on its ``Params`` field (``declared``),
    for the run and prediction settings: the option's own default is None, as for :class:`EstimatorOption`."""

    def __init__(self, *args: Any, declared: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.declared = declared

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None or self.declared is None or self.declared is False or self.required:
            return record
        names, text = record
        return names, f"{text}  [default: {_value(self.declared)}]".strip()
