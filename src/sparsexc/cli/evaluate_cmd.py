"""``sparsexc evaluate``: test metrics of a trained run folder."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["evaluate"]

EVALUATION_FILE = "evaluation.json"


@click.command()
@click.argument("run_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--test",
    "test",
    type=click.Path(exists=True, dir_okay=False),
    help="Test file to use instead of the test set recorded in DIR/run.json (a headerless svmlight file: "
    "feature ids as the training files were read, else 1-based unless a row uses feature 0).",
)
@click.option(
    "--label-xml",
    "label_xml",
    type=click.Path(exists=True, dir_okay=False),
    help="Mulan XML label file of an ARFF --test file (default: NAME.xml beside it, if there).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    help=f"Where to write the metrics as JSON (default: DIR/{EVALUATION_FILE}).",
)
def evaluate(run_dir: str, test: str | None, label_xml: str | None, json_path: str | None) -> None:
    """Evaluate the model saved by 'sparsexc train --out DIR'.

    Prints P@1/3/5, nDCG@1/3/5, PSP@1/3/5 (inverse propensities from the run's training labels) and the F1
    scores of the predicted label sets, and writes them as JSON.
    """
    from sparsexc.cli._data import LABEL_XML_FLAG, check_widths, describe_test, load_source, read_file
    from sparsexc.cli._errors import doing
    from sparsexc.cli._evaluation import table_keys, test_metrics
    from sparsexc.cli._files import write_json
    from sparsexc.cli._rundir import load_model, load_run, svmlight_zero_based
    from sparsexc.cli._table import format_metrics_table
    from sparsexc.cli._training import RUN_FILE, log, warn_if_unlabelled

    if label_xml is not None and test is None:
        raise click.UsageError(f"{LABEL_XML_FLAG} goes with --test (the run's own files use the run's label file)")
    run = load_run(run_dir)
    clf = load_model(run_dir)
    train, test_data = load_source(run["data"], recorded_in=str(Path(run_dir) / RUN_FILE))
    name = describe_test(run["data"])
    if test is not None:
        zero_based = svmlight_zero_based(run_dir)  # the training files' choice, for a file read alone
        test_data, name = read_file(test, clf, test, label_xml=label_xml, zero_based=zero_based), test
    else:
        check_widths(name, test_data.n_features, test_data.n_labels, "the model", clf.n_features_in_, clf.n_labels_)
    warn_if_unlabelled(test_data.Y, name)
    metrics = test_metrics(clf, test_data.X, test_data.Y, train.Y)
    out = Path(json_path) if json_path is not None else Path(run_dir) / EVALUATION_FILE
    with doing(f"writing {out}"):
        write_json(out, metrics)
    click.echo(format_metrics_table(metrics, table_keys()))
    log(f"metrics written to {out}")
