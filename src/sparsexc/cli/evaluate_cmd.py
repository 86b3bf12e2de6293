"""``sparsexc evaluate``: test metrics of a trained run folder."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["evaluate"]

EVALUATION_FILE = "evaluation.json"


@click.command()
@click.argument("run_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--test", "test", type=click.Path(exists=True, dir_okay=False),
              help="Test file to use instead of the test set recorded in DIR/run.json.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False),
              help=f"Where to write the metrics as JSON (default: DIR/{EVALUATION_FILE}).")
def evaluate(run_dir: str, test: str | None, json_path: str | None) -> None:
    """Evaluate the model saved by 'sparsexc train --out DIR'.

    Prints P@1/3/5, nDCG@1/3/5, PSP@1/3/5 (inverse propensities from the run's training labels) and the F1
    scores of the predicted label sets, and writes them as JSON.
    """
    from sparsexc.cli._data import load_source
    from sparsexc.cli._evaluation import table_keys, test_metrics
    from sparsexc.cli._files import write_json
    from sparsexc.cli._rundir import load_model, load_run
    from sparsexc.cli._table import format_metrics_table
    from sparsexc.cli._training import log

    run = load_run(run_dir)
    clf = load_model(run_dir)
    train, test_data = load_source(run["data"])
    if test is not None:
        from sparsexc.io import read_any

        test_data = read_any(test)
    if test_data.n_features != clf.n_features_in_:
        raise ValueError(
            f"{test or 'the test set'} has {test_data.n_features} features; the model expects {clf.n_features_in_}"
        )
    metrics = test_metrics(clf, test_data.X, test_data.Y, train.Y)
    out = Path(json_path) if json_path is not None else Path(run_dir) / EVALUATION_FILE
    write_json(out, metrics)
    click.echo(format_metrics_table(metrics, table_keys()))
    log(f"metrics written to {out}")
