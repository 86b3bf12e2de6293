"""``sparsexc train``: fit an XCClassifier on a data set or on files, save it, report test metrics."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sparsexc.cli._config import merge_config, read_config_file
from sparsexc.cli._data import data_source
from sparsexc.cli._defaults import EstimatorOption
from sparsexc.cli._errors import RUN_FAILURE, USER_ERROR
from sparsexc.cli._settings import run_options, setting_options
from sparsexc.cli._types import HEAD_NAME, KEY_VALUE
from sparsexc.errors import ConfigurationError

if TYPE_CHECKING:
    from sparsexc.distributed.launch import Nodes

__all__ = ["train"]

_PATH_KEYS = ("train", "test", "label_xml", "data_dir", "out")
_SOURCE_KEYS = ("dataset", "split", "data_dir", "train", "test", "label_xml")
_NODE_KEYS = ("nnodes", "node_rank", "rdzv_endpoint", "rdzv_backend", "rdzv_id")  # torchrun's, as Nodes names them


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
@click.option(
    "--ridge-param",
    "ridge_param",
    type=KEY_VALUE,
    multiple=True,
    help="Ridge model setting KEY=VALUE for --model ridge (sparsexc.estimator._ridge.RidgeParams: kernel auto / "
    "linear / rbf, gamma, max_landmarks, kernel_z); repeatable.",
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
@click.option(
    "--nnodes",
    type=click.IntRange(min=1),
    help="Train on N machines (torchrun's --nnodes), each running this command with its own --node-rank and "
    "the same --rdzv-endpoint; --nproc-per-node processes on each (default 1). See docs/distributed.md.",
)
@click.option(
    "--node-rank",
    type=click.IntRange(min=0),
    help="This machine's number in [0, --nnodes) (torchrun's --node-rank; default 0). With the static "
    "rendezvous node 0 holds global rank 0, which alone claims and writes --out.",
)
@click.option(
    "--rdzv-endpoint",
    help="HOST:PORT where the machines meet (torchrun's --rdzv-endpoint): with the static rendezvous the "
    "address of node 0 and a free port on it. Needed with --nnodes > 1.",
)
@click.option(
    "--rdzv-backend",
    help="torchrun's rendezvous backend: static (the default, as torchrun: nodes numbered by --node-rank) or "
    "c10d (a store at --rdzv-endpoint; the rendezvous numbers the nodes).",
)
@click.option("--rdzv-id", help="The run's id, the same on every machine (torchrun's --rdzv-id; default: torchrun's).")
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
    nodes = _nodes(options)
    nproc = options.pop("nproc_per_node")
    if nproc is None and nodes.several:
        nproc = 1  # one process on each machine
    overwrite = options.pop("overwrite")  # like quiet, not recorded: a rerun of run.json's options must not replace
    recorded = {k: v for k, v in options.items() if k != "quiet"}
    source = data_source(*(options.pop(k) for k in _SOURCE_KEYS))
    out = Path(options.pop("out")).resolve()
    quiet = options.pop("quiet")
    if nproc is not None and (nproc > 1 or nodes.several) and "WORLD_SIZE" not in os.environ:
        _relaunch(nproc, nodes, recorded, source, options, out, quiet, overwrite)
        return
    with process_group(options.get("device") or "auto"):  # joins torchrun's group when there is one
        train_and_evaluate(source, options, out, verbose=not quiet, recorded_options=recorded, overwrite=overwrite)


def _nodes(options: dict) -> Nodes:
    """The machine's place in the launch from (and popped off) ``options``: torchrun's multi-node flags,
    checked together (one error line, exit 2). Not recorded in run.json, like --nproc-per-node: a rerun of the
    recorded options trains in one process."""
    from sparsexc.distributed.launch import Nodes

    given = {key: options.pop(key) for key in _NODE_KEYS}
    try:
        return Nodes(**{key: value for key, value in given.items() if value is not None})
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None


def _relaunch(
    nproc: int, nodes: Nodes, recorded: dict, source: dict, options: dict, out: Path, quiet: bool, overwrite: bool
) -> None:
    # The settings and the data are checked here first, so that a mistake ends with one error line from
    # this process (exit 2) instead of one per worker and torchrun's failure report; the workers read
    # the data again (a registered data set from the parsed cache).
    # On one machine this process claims the run folder and holds its lock while the workers run; they are
    # told so (HELD_ENV) and claim nothing. Over several machines it cannot know which one will hold global
    # rank 0 (c10d numbers the nodes as they come), and a refusal must stop the other machines too: there the
    # workers' rank 0 claims the folder inside the group (claim_run_dir), every rank learns the outcome, and
    # this process writes nothing into OUT (the options go to the workers through a file of its own).
    from sparsexc.cli._data import load_source
    from sparsexc.cli._errors import REPORTED_ENV, AlreadySaid, RunFailure, UserError, doing
    from sparsexc.cli._files import write_json
    from sparsexc.cli._runlock import HELD_ENV, LAUNCH_CONFIG, claim_run_dir
    from sparsexc.cli._training import _as_config, checked_estimator, training_data_errors
    from sparsexc.distributed._torchrun import RENDEZVOUS_FAILED
    from sparsexc.distributed.launch import relaunch_with_torchrun
    from sparsexc.estimator.classifier import _check_targets as check_targets  # fit's own check of the labels

    checked_estimator(options, out, verbose=False)
    resume = bool(options.get("resume"))
    claim = contextlib.nullcontext() if nodes.several else claim_run_dir(out, overwrite=overwrite, resume=resume)
    with claim, tempfile.TemporaryDirectory(prefix="sparsexc-launch-") as scratch:
        with doing("loading the data"):
            train, _ = load_source(source)
        with training_data_errors(source), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the warnings are rank 0's to give; the errors are said here
            check_targets(train.Y)
        # the options go to the workers as a config file (the run.json "options" form that --config reads)
        config = (Path(scratch) if nodes.several else out) / LAUNCH_CONFIG
        with doing(f"writing {config}"):
            write_json(config, _as_config(recorded))
        args = ["sparsexc.cli", "train", "--config", str(config)] + (["--quiet"] if quiet else [])
        if overwrite and nodes.several:  # the workers claim the folder: they replace the run (not recorded)
            args.append("--overwrite")
        reported = Path(scratch) / "errors.txt"
        reported.touch()
        env = {REPORTED_ENV: str(reported), **({} if nodes.several else {HELD_ENV: str(out)})}
        os.environ.update(env)
        try:
            code = relaunch_with_torchrun(nproc, args, nodes)
            # a worker's line, or torchrun's rendezvous failure (said in one line by _torchrun)
            said = reported.stat().st_size > 0 or code == RENDEZVOUS_FAILED
        finally:
            for key in env:
                os.environ.pop(key, None)
    if code != 0 and said:  # a worker has said why, in one line: nothing to add
        already = AlreadySaid()
        already.exit_code = USER_ERROR if code == USER_ERROR else RUN_FAILURE  # the workers' code: a mistake or not
        raise already
    if code != 0 and not nodes.several:
        raise RunFailure(f"the {nproc} training processes (torchrun) exited with code {code}")
    if code != 0:  # the workers of this machine stopped without a word: rank 0, on another machine, said why
        failure = UserError if code == USER_ERROR else RunFailure
        raise failure(
            f"the {nproc} training process(es) of node {nodes.node_rank} of {nodes.nnodes} (torchrun) exited with "
            f"code {code}; the error is said on the machine that holds global rank 0"
        )
