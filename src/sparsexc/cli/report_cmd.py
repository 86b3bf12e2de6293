"""``sparsexc report``: what a run folder holds, in words: settings, training curves, how training ended, test
metrics; and its curves as a PNG, drawn from the saved history (so also for runs trained without matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sparsexc._params import RunParams
from sparsexc.errors import SparsexcError

__all__ = ["report"]

# parameters that describe the run's files or its output, not the model, left out of the table: the run plumbing
# (among the estimator parameters in run.json files written before it moved to fit) and the verbosity
_NOT_SETTINGS = (*RunParams.field_names(), "verbose")


@click.command()
@click.argument("run_dir", metavar="RUN", type=click.Path())
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="Where to write the curves PNG (default: RUN/curves.png).",
)
@click.option(
    "--no-plot",
    is_flag=True,
    default=False,
    help="Print the report only; write no PNG.",
)
def report(run_dir: str, plot_path: str | None, no_plot: bool) -> None:
    """Report on the run folder RUN written by 'sparsexc train' or 'sparsexc quickstart'.

    Prints the run's settings, a table of its training curves (epoch, training loss, validation metric; the
    best-so-far and the kept epochs marked), how training ended and the test metrics, and draws the curves
    into RUN/curves.png (needs matplotlib: pip install 'sparsexc[plots]'; without it the report is printed
    and no PNG is written).
    """
    from sparsexc.cli._errors import UserError
    from sparsexc.cli._rundir import load_history, load_run
    from sparsexc.cli._training import METRICS_FILE, log, write_curves

    # a PNG asked for by name: its package is checked before anything
    if plot_path is not None and not no_plot:
        from sparsexc._optional import require

        require("matplotlib", "--plot")  # MissingDependencyError: one line, exit 2
    run_path = Path(run_dir)
    if not run_path.is_dir():
        raise UserError(f"{run_dir}: no such folder; give the --out folder of 'sparsexc train'")
    try:
        run = load_run(run_path)
        history, _ = load_history(run_path)
        metrics = _read_metrics(run_path / METRICS_FILE)
    except (OSError, SparsexcError) as exc:  # each names the file (and line or field)
        raise UserError(str(exc)) from None
    summary = _summary(run, history)
    click.echo(_format_report(run_path, run, history, summary, metrics))
    if not no_plot and history:  # a model trained without epochs has no curves to draw
        written = write_curves(run_path, history, summary, log, Path(plot_path) if plot_path else None)
        if written is not None:
            log(f"curves written to {written}")


def _read_metrics(path: Path) -> dict[str, Any] | None:
    from sparsexc.cli._files import read_json
    from sparsexc.cli._rundir import RunFolderError

    if not path.is_file():
        return None
    metrics = read_json(path)
    if not isinstance(metrics, dict):
        raise RunFolderError(f"{path}: not a JSON object of metrics")
    return metrics


def _summary(run: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's fit summary: the one run.json recorded, else (older runs) inferred from the history."""
    from sparsexc.train.progress import fit_summary

    saved = run.get("fit_summary")
    if isinstance(saved, dict) and isinstance(saved.get("message"), str):
        return saved
    params = _params(run)
    best, epochs, patience = (
        run.get("best_epoch"),
        params.get("epochs"),
        params.get("patience"),
    )
    return fit_summary(
        history,
        best if isinstance(best, int) else None,
        epochs if isinstance(epochs, int) else len(history),
        patience if isinstance(patience, int) else None,
        str(params.get("val_metric") or "P@1"),
    )


def _params(run: dict[str, Any]) -> dict[str, Any]:
    params = run.get("estimator_params")
    return params if isinstance(params, dict) else {}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


def _higher_is_better(metric: str) -> bool:
    from sparsexc.heads._metric_bridge import parse_val_metric

    try:
        return parse_val_metric(metric)[2]
    except ValueError:  # a name this version does not know: assume a score
        return True


def curves_table(history: list[dict[str, Any]], val_metric: str | None, kept_epoch: int | None) -> str:
    """The curves as a text table: epoch, training loss, validation metric, and a mark column (``best``: the
    best validation value so far; ``kept``: the epoch whose weights the model has)."""
    from sparsexc.cli._table import format_table
    from sparsexc.train.progress import best_so_far

    best = best_so_far(history, val_metric, _higher_is_better(val_metric)) if val_metric else [False] * len(history)
    headers = ["epoch", "train loss"] + ([f"val {val_metric}"] if val_metric else []) + ["seconds", "mark"]
    rows = []
    for record, is_best in zip(history, best):
        row: list[object] = [record["epoch"], float(record["train_loss"])]
        if val_metric:
            value = record.get(f"val_{val_metric}")
            row.append(float(value) if isinstance(value, (int, float)) else "-")
        seconds = record.get("seconds")
        row.append(f"{seconds:.1f}" if isinstance(seconds, (int, float)) else "-")
        marks = ["best"] * is_best + ["kept"] * (record["epoch"] == kept_epoch)
        rows.append([*row, ", ".join(marks)])
    return format_table(headers, rows)


def _data(source: dict[str, Any]) -> str:
    from sparsexc.cli._data import describe_source

    try:
        return describe_source(source)
    except KeyError:  # a source this version does not describe: show it as recorded
        return str(source)


def _facts(rows: list[list[str]]) -> str:
    # "name  value" lines, names padded: a list of facts needs no header or rule
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _format_report(
    run_path: Path,
    run: dict[str, Any],
    history: list[dict[str, Any]],
    summary: dict[str, Any],
    metrics: dict[str, Any] | None,
) -> str:
    from sparsexc.cli._evaluation import table_keys
    from sparsexc.cli._table import format_metrics_table

    about = [
        ["run", str(run_path.resolve())],
        ["command", f"{run.get('command', '?')}, {run.get('created', '?')}"],
        ["data", _data(run["data"])],
    ]
    sizes = [run.get(k) for k in ("n_train", "n_test", "n_features", "n_labels")]
    if all(isinstance(v, int) for v in sizes):
        shape = f"{sizes[0]} train rows, {sizes[1]} test rows, {sizes[2]} features, {sizes[3]} labels"
        about.append(["sizes", shape])
    if isinstance(run.get("train_seconds"), (int, float)):
        about.append(["train time", f"{run['train_seconds']:.1f} s"])
    params = _params(run)
    settings = [[key, _cell(value)] for key, value in params.items() if key not in _NOT_SETTINGS]

    blocks = [_facts(about)]
    if settings:
        blocks.append("settings\n" + _facts(settings))
    if history:
        blocks.append("training curves\n" + curves_table(history, summary.get("val_metric"), summary.get("kept_epoch")))
    else:
        blocks.append("training curves: none (a model trained without epochs)")
    blocks.append(summary["message"])
    if metrics is None:
        blocks.append("test metrics: none (no metrics.json: the run did not finish)")
    else:
        blocks.append("test metrics\n" + format_metrics_table(metrics, table_keys()))
    return "\n\n".join(blocks)
