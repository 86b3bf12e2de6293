"""``sparsexc train``: fit an XCClassifier on a data set or on files, save it, report test metrics."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import click

from sparsexc.cli._config import merge_config, read_config_file
from sparsexc.cli._data import data_source
from sparsexc.cli._defaults import EstimatorOption
from sparsexc.cli._settings import run_options, setting_options
from sparsexc.cli._types import HEAD_NAME, KEY_VALUE
from sparsexc.errors import ConfigurationError

__all__ = ["train"]

_PATH_KEYS = ("train", "test", "label_xml", "data_dir", "out")
_SOURCE_KEYS = ("dataset", "split", "data_dir", "train", "test", "label_xml")


@click.command()
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False),
    help="JSON or TOML file of options (keys = flag names, - or _); explicit flags override it.",
)
@click.option("--dataset", help="Registered data set name (see 'sparsexc datasets list').")
@click.option("--split", type=click.IntRange(min=1), help="Split number for data sets with several splits.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Folder holding the data set folders (default: $SPARSEXC_DATA, else ~/sparsexc_data).",
)
@click.option(
    "--train",
    "train",
    type=click.Path(exists=True, dir_okay=False),
    help="Training file (XC text, ARFF, headerless svmlight/LibSVM, .mat).",
)
@click.option("--test", "test", type=click.Path(exists=True, dir_okay=False), help="Test file, same format.")
@click.option(
    "--label-xml",
    "label_xml",
    type=click.Path(exists=True, dir_okay=False),
    help="Mulan XML label file of ARFF --train/--test files (default: NAME.xml beside them, if there).",
)
@click.option("--head", cls=EstimatorOption, type=HEAD_NAME, help="Output layer (docs/heads/).")
@click.option(
    "--head-param",
    "head_param",
    type=KEY_VALUE,
    multiple=True,
    help="Head parameter KEY=VALUE (VALUE parsed as JSON when possible; KEY.SUB=VALUE sets a nested setting, "
    "e.g. tree.dim=4); repeatable.",
)
@click.option(
    "--tree-param",
    "tree_param",
    type=KEY_VALUE,
    multiple=True,
    help="Label-tree model setting KEY=VALUE for --model tree (sparsexc.tree.LabelTreeParams: loss, "
    "branching, max_leaf_size, C, threshold, n_trees, n_jobs, ...; VALUE parsed as JSON when possible); "
    "repeatable.",
)
@setting_options
@run_options
@click.option(
    "--overwrite",
    is_flag=True,
    default=False,
    help="Replace the run in OUT (its run files are deleted first); without it (or --resume) a folder "
    "holding a run is an error.",
)
@click.option(
    "--nproc-per-node",
    type=click.IntRange(min=1),
    help="Train data-parallel on N processes (torchrun; gloo on CPU, NCCL on GPU). See docs/distributed.md.",
)
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (required: flag or config key).")
@click.option("--quiet", "-q", is_flag=True, default=False, help="No progress bar or log lines on stderr.")
@click.option(
    "--print-config",
    is_flag=True,
    default=False,
    help="Print the full configuration (every setting, defaults included) as JSON, a file --config reads, "
    "and exit without training.",
)
@click.pass_context
def train(ctx: click.Context, **options) -> None:
    """Fit a model and evaluate it on the test set.

    Writes OUT/model/ (the saved model), OUT/run.json (options, data source, versions, train seconds, how
    training ended), OUT/metrics.json (test P@k, nDCG@k, PSP@k for k = 1, 3, 5 and the F1 scores of the
    predicted label sets), OUT/train_log.jsonl and, with matplotlib, OUT/curves.png; prints one line per
    epoch on stderr and the metrics table. 'sparsexc report OUT' shows the run again.
    """
    from sparsexc.cli._training import train_and_evaluate
    from sparsexc.distributed.context import process_group

    config_path = options.pop("config")
    if config_path is not None:
        try:
            config = read_config_file(config_path)
        except ConfigurationError as exc:  # a malformed file is a usage error (exit 2), like a bad key or value
            raise click.UsageError(str(exc)) from None
        options = merge_config(ctx, config, config_path, path_keys=_PATH_KEYS, exclude=("config", "print_config"))
        options.pop("config", None)
    for key in ("train", "test", "label_xml"):  # a path from the config file has not been checked by click.Path
        if options.get(key) is not None and not Path(options[key]).is_file():
            flag = "--" + key.replace("_", "-")
            raise click.BadParameter(f"file {options[key]!r} does not exist", param_hint=f"'{flag}'")
    for key in _PATH_KEYS:  # absolute paths, so run.json's options work as a config file from anywhere
        if options.get(key) is not None:
            options[key] = str(Path(options[key]).resolve())
    if options.pop("print_config"):
        from sparsexc.cli._settings import full_config

        click.echo(json.dumps(full_config(options), indent=2))
        return
    if options.get("out") is None:
        raise click.UsageError("missing the output folder: give --out DIR (or 'out' in the config file)")
    nproc = options.pop("nproc_per_node")
    overwrite = options.pop("overwrite")  # like quiet, not recorded: a rerun of run.json's options must not replace
    recorded = {k: v for k, v in options.items() if k != "quiet"}
    source = data_source(*(options.pop(k) for k in _SOURCE_KEYS))
    out = Path(options.pop("out")).resolve()
    quiet = options.pop("quiet")
    if nproc is not None and nproc > 1 and "WORLD_SIZE" not in os.environ:
        _relaunch(nproc, recorded, source, options, out, quiet, overwrite)
        return
    with process_group(options.get("device") or "auto"):  # joins torchrun's group when there is one
        train_and_evaluate(source, options, out, verbose=not quiet, recorded_options=recorded, overwrite=overwrite)


def _relaunch(nproc: int, recorded: dict, source: dict, options: dict, out: Path, quiet: bool, overwrite: bool) -> None:
    # The settings and the data are checked here first, so that a mistake ends with one error line from
    # this process (exit 2) instead of one per worker and torchrun's failure report; the workers read
    # the data again (a registered data set from the parsed cache). This process holds the run folder's
    # lock while the workers run; they are told so (HELD_ENV) and claim nothing.
    from sparsexc.cli._data import load_source
    from sparsexc.cli._errors import REPORTED_ENV, AlreadySaid, RunFailure, doing
    from sparsexc.cli._files import write_json
    from sparsexc.cli._runlock import HELD_ENV, LAUNCH_CONFIG, claim_run_dir
    from sparsexc.cli._training import _as_config, checked_estimator, training_data_errors
    from sparsexc.distributed.launch import relaunch_with_torchrun
    from sparsexc.estimator.classifier import _check_targets as check_targets  # fit's own check of the labels

    checked_estimator(options, out, verbose=False)
    with claim_run_dir(out, overwrite=overwrite, resume=bool(options.get("resume"))):
        with doing("loading the data"):
            train, _ = load_source(source)
        with training_data_errors(source), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the warnings are rank 0's to give; the errors are said here
            check_targets(train.Y)
        # the options go to the workers as a config file (the run.json "options" form that --config reads)
        config = out / LAUNCH_CONFIG
        with doing(f"writing {config}"):
            write_json(config, _as_config(recorded))
        args = ["sparsexc.cli", "train", "--config", str(config)] + (["--quiet"] if quiet else [])
        fd, reported = tempfile.mkstemp(prefix="sparsexc-errors-", suffix=".txt")
        os.close(fd)
        os.environ[HELD_ENV], os.environ[REPORTED_ENV] = str(out), reported
        try:
            code = relaunch_with_torchrun(nproc, args)
            said = os.path.getsize(reported) > 0
        finally:
            os.environ.pop(HELD_ENV, None)
            os.environ.pop(REPORTED_ENV, None)
            os.unlink(reported)
    if code != 0 and said:
        raise AlreadySaid  # a worker has said why, in one line: nothing to add
    if code != 0:
        raise RunFailure(f"the {nproc} training processes (torchrun) exited with code {code}")
