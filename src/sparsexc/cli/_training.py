"""The work behind ``sparsexc train`` and ``sparsexc quickstart``: fit, save, evaluate, write the run files.

A run directory ``OUT`` ends up holding::

    OUT/model/        the fitted XCClassifier (XCClassifier.save: model.safetensors + config.json)
    OUT/run.json      options (as CLI keys, reusable with --config), estimator parameters, data source,
                      sizes, train seconds, versions and machine, date
    OUT/metrics.json  test metrics, a flat {"P@1": ..., "micro-F1": ...} dict
    OUT/train_log.jsonl  one JSON line of training/validation metrics per epoch
    OUT/curves.png    the loss and validation metric per epoch, the kept epoch marked (with matplotlib)
    OUT/checkpoints/  only with --checkpoint-every / --resume
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from sparsexc._params import RunParams
from sparsexc.cli._data import describe_source, describe_test, load_source
from sparsexc.cli._errors import doing
from sparsexc.cli._evaluation import table_keys, test_metrics
from sparsexc.cli._files import environment_info, write_json
from sparsexc.cli._settings import ESTIMATOR_NAMES, SETTING_OPTIONS, params_from_options
from sparsexc.cli._table import format_metrics_table
from sparsexc.distributed.context import is_main
from sparsexc.errors import ConfigurationError

__all__ = [
    "ESTIMATOR_KEYS",
    "METRICS_FILE",
    "MODEL_DIR",
    "RUN_FILE",
    "checked_estimator",
    "estimator_kwargs",
    "nested_head_params",
    "run_params",
    "train_and_evaluate",
    "training_data_errors",
    "warn_if_unlabelled",
]  # fmt: skip

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
MODEL_DIR = "model"
CHECKPOINT_DIR = "checkpoints"
TRAIN_LOG = "train_log.jsonl"
CURVES_FILE = "curves.png"

# CLI option name -> XCClassifier constructor parameter (the same name unless listed here)
_RENAMED = {
    "head_param": "head_params",
    "tree_param": "tree_params",
    "ridge_param": "ridge_params",
    **{k: v for k, v in ESTIMATOR_NAMES.items() if k != v},
}
# CLI options that are passed to the estimator (the rest say where data and outputs go, or are fit's run
# plumbing): the head and the settings generated from the Params dataclasses (sparsexc.cli._settings)
ESTIMATOR_KEYS = ("head", "head_param", "tree_param", "ridge_param", *SETTING_OPTIONS)
# options given as repeated KEY=VALUE pairs (a mapping of settings)
_PAIR_KEYS = ("head_param", "tree_param", "ridge_param")


def estimator_kwargs(options: dict[str, Any], out: Path, verbose: bool) -> dict[str, Any]:
    """XCClassifier keyword arguments for the CLI ``options``; unset options keep the estimator's defaults.

    ``--head-param`` pairs become the ``head_params`` dict, ``--tree-param`` pairs the ``tree_params`` dict,
    ``--ridge-param`` pairs the ``ridge_params`` dict.
    """
    kwargs: dict[str, Any] = {}
    for key in ESTIMATOR_KEYS:
        value = options.get(key)
        if key in _PAIR_KEYS:
            value = nested_head_params(value) if value else None
        if value is not None:
            kwargs[_RENAMED.get(key, key)] = value
    kwargs["verbose"] = 2 if verbose else 0  # a bar only on a terminal; the epoch lines always
    return kwargs


def run_params(options: dict[str, Any], out: Path) -> RunParams:
    """``fit``'s run plumbing for the CLI ``options`` (``--checkpoint-every``, ``--resume``): checkpoints, when
    asked for, go to ``OUT/checkpoints`` and the per-epoch log to ``OUT/train_log.jsonl``."""
    checkpoints = options.get("checkpoint_every") is not None or bool(options.get("resume"))
    return params_from_options(
        RunParams,
        options,
        checkpoint_dir=str(out / CHECKPOINT_DIR) if checkpoints else None,
        log_path=str(out / TRAIN_LOG),
    )


def nested_head_params(pairs: Any) -> dict[str, Any]:
    """``--head-param`` pairs as the ``head_params`` dict: ``tree.dim=4`` sets ``{"tree": {"dim": 4}}``."""
    out: dict[str, Any] = {}
    for key, value in dict(pairs).items():
        *outer, last = str(key).split(".")
        target = out
        for part in outer:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise click.UsageError(f"--head-param {key}: {part!r} is set to a value and to nested settings")
        if isinstance(target.get(last), dict) and isinstance(value, dict):
            target[last] = {**target[last], **value}
        else:
            target[last] = value
    return out


def checked_estimator(options: dict[str, Any], out: Path, verbose: bool) -> Any:
    """The XCClassifier for the CLI ``options``, its settings checked before any data are read.

    The estimator validates every setting (head name, head params against the head's typed Params, encoder
    and training params) when it builds its settings; the validation metric's name and the device's
    availability, which it checks only in ``fit``, are checked here too. A bad setting is a
    ``click.UsageError``, an optional package a setting needs but that is not installed a ``UserError``
    (both exit code 2).
    """
    from sparsexc._optional import MissingDependencyError
    from sparsexc.cli._errors import UserError
    from sparsexc.estimator import XCClassifier
    from sparsexc.heads._metric_bridge import parse_val_metric

    try:
        clf = XCClassifier(**estimator_kwargs(options, out, verbose))
        clf._check_settings()
        parse_val_metric(clf.val_metric)
        if clf.device not in ("auto", "cpu"):  # a device that may be missing here (its check imports torch)
            from sparsexc.train.trainer import resolve_device

            resolve_device(clf.device)
        clf._family().check_run(run_params(options, out))  # e.g. --checkpoint-every with --model tree
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    except MissingDependencyError as exc:  # e.g. --head-param ann=hnsw without hnswlib: said before any data
        raise UserError(str(exc)) from None
    return clf


def warn_if_unlabelled(Y: Any, name: str) -> None:
    """One warning line on stderr when a test set holds no label at all: every metric is then 0."""
    if Y.nnz == 0 and is_main():
        click.echo(f"sparsexc: warning: {name} holds no labels at all, so every metric is 0", err=True)


@contextlib.contextmanager
def training_data_errors(source: dict[str, Any]) -> Iterator[None]:
    """A :class:`~sparsexc.errors.ConfigurationError` raised inside (by ``XCClassifier.fit``) is re-raised naming ``source``'s training data:
    the settings were checked before, so what the estimator refuses then is in the data (e.g. labels without
    any positive)."""
    try:
        yield
    except ConfigurationError as exc:
        name = source["train"] if "train" in source else f"the training set of {describe_source(source)}"
        raise ConfigurationError(f"{name}: {exc}") from None


def log(message: str) -> None:
    """Progress line on stderr (stdout is kept for tables)."""
    click.echo(f"[sparsexc] {message}", err=True)


def train_and_evaluate(
    source: dict[str, Any],
    options: dict[str, Any],
    out: Path,
    *,
    verbose: bool = True,
    recorded_options: dict[str, Any] | None = None,
    command: str = "train",
    overwrite: bool = False,
) -> dict[str, float]:
    """Fit an XCClassifier on ``source``'s training data with ``options``, save it and its run files under
    ``out``, print the test metrics table on stdout and return the metrics.

    ``recorded_options`` (default: ``options``) go to run.json as ``"options"``, a mapping that
    ``sparsexc train --config`` accepts again. ``out`` is claimed for the run first
    (:func:`sparsexc.cli._runlock.claim_run_dir`: locked while it runs; a folder holding a run needs
    ``overwrite`` or ``options["resume"]``). Running out of memory or disk space ends in a
    :class:`~sparsexc.cli._errors.RunFailure` naming the step.
    """
    from sparsexc.cli._runlock import claim_run_dir

    clf = checked_estimator(options, out, verbose)
    run = run_params(options, out)
    with claim_run_dir(out, overwrite=overwrite, resume=run.resume):
        return _run(clf, run, source, options, out, verbose, recorded_options, command)


def _run(
    clf: Any,
    run_plumbing: RunParams,
    source: dict[str, Any],
    options: dict[str, Any],
    out: Path,
    verbose: bool,
    recorded_options: dict[str, Any] | None,
    command: str,
) -> dict[str, float]:
    say = log if verbose and is_main() else (lambda message: None)  # one voice in a data-parallel run
    # No log line before the data are loaded: a bad name or file then ends with the error line alone.
    with doing("loading the data"):
        train, test = load_source(source)
    say(
        f"data: {describe_source(source)}; train {train.n_samples} rows x {train.n_features} features, "
        f"{train.n_labels} labels; test {test.n_samples} rows"
    )
    started = time.perf_counter()
    doing_training = doing(f"training ({train.n_samples} rows x {train.n_features} features, {train.n_labels} labels)")
    with doing_training, training_data_errors(source):
        # the data set's label names, if it has any
        clf.fit(train.X, train.Y, label_names=train.label_names, **run_plumbing.to_dict())
    train_seconds = time.perf_counter() - started
    # A data-parallel run: rank 0 alone saves, evaluates and reports. A label-sharded model: every rank
    # takes part in saving (the shards are gathered on rank 0) and in predicting (each scores its labels).
    every_rank = clf._family().every_rank_saves(clf.model_)
    if not (is_main() or every_rank):
        return {}
    say(f"features: {clf.preprocess_.describe()}")  # the preprocessing fit chose (preprocess="auto") or was given
    say(f"model: {clf.resolved_model().describe()}")  # the family fit chose (model="auto") or was given
    budget = getattr(clf, "budget_", None)  # the neural family's epochs, patience, hold-out and refit
    if budget is not None:
        say(f"budget: {budget.describe()}")
    say(f"trained in {train_seconds:.1f} s; saving to {out / MODEL_DIR}")
    with doing(f"saving the model to {out / MODEL_DIR}"):
        clf.save(out / MODEL_DIR)

    started = time.perf_counter()
    warn_if_unlabelled(test.Y, describe_test(source))
    with doing(f"scoring the {test.n_samples} test rows"):
        metrics = test_metrics(clf, test.X, test.Y, train.Y)
    eval_seconds = time.perf_counter() - started
    if not is_main():
        return {}
    run = {
        "command": command,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "options": _as_config(recorded_options if recorded_options is not None else options),
        "estimator_params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in clf.get_params().items()},
        "run_params": run_plumbing.to_dict(),  # fit's run plumbing
        "data": source,
        # how the training files' svmlight feature ids were read, for predict/evaluate on a lone file
        **({"svmlight_zero_based": train.meta["zero_based"]} if train.meta.get("format") == "svmlight" else {}),
        "n_train": train.n_samples,
        "n_test": test.n_samples,
        "n_features": int(clf.n_features_in_),
        "n_labels": int(clf.n_labels_),
        "train_seconds": round(train_seconds, 3),
        "eval_seconds": round(eval_seconds, 3),
        "epochs_run": len(clf.history_),
        "best_epoch": clf.best_epoch_,
        "stopped_early": clf.fit_summary_["stopped_early"],
        "preprocess": clf.preprocess_.config(),  # the feature transform fit chose or was given
        "model_choice": clf.resolved_model().to_dict(),  # the model family fit chose or was given, and why
        "fit_summary": clf.fit_summary_,  # how training ended, for 'sparsexc report'
        "budget": None if budget is None else budget.to_dict(),  # the training budget (sparsexc.train.budget)
        "environment": environment_info(),
    }
    for name, content in ((RUN_FILE, run), (METRICS_FILE, metrics)):
        with doing(f"writing {out / name}"):
            write_json(out / name, content)
    if clf.history_:  # a model trained without epochs (model "tree") has no curves
        write_curves(out, clf.history_, clf.fit_summary_, say)
    click.echo(format_metrics_table(metrics, table_keys()))
    say(f"run files in {out}")
    return metrics


def write_curves(
    out: Path, history: list[dict[str, Any]], summary: dict[str, Any], say: Any, path: Path | None = None
) -> Path | None:
    """Draw ``history``'s curves into ``path`` (default ``out/curves.png``); return the path, or None (said
    with ``say``, once) when matplotlib is not installed."""
    from sparsexc.train.curves import NO_MATPLOTLIB, plot_curves

    path = out / CURVES_FILE if path is None else path
    with doing(f"writing {path}"):
        drawn = plot_curves(
            history,
            path,
            val_metric=summary.get("val_metric"),
            kept_epoch=summary.get("kept_epoch"),
            title=f"{out.name}: {summary.get('message', '')}",
        )
    if not drawn:
        say(NO_MATPLOTLIB)
        return None
    return path


def _as_config(options: dict[str, Any]) -> dict[str, Any]:
    # set options only, with the flag spelling (hidden-sizes) and head-param as a {key: value} mapping
    out: dict[str, Any] = {}
    for key, value in options.items():
        if value is None or value is False or (key in _PAIR_KEYS and not value):
            continue
        out[key.replace("_", "-")] = dict(value) if key in _PAIR_KEYS else value
    return out
