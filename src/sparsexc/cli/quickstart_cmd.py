"""``sparsexc quickstart``: train and evaluate on the Bibtex data bundled inside the package."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from sparsexc.cli._settings import setting_option

__all__ = ["quickstart"]


@click.command()
@setting_option("epochs")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Output folder (default: a new temporary folder, printed at the end).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    default=False,
    help="Replace the run in --out (its run files are deleted first); without it a folder holding a run is an error.",
)
@click.option("--quiet", "-q", is_flag=True, default=False, help="No progress bar or log lines on stderr.")
def quickstart(epochs: int, out: str | None, overwrite: bool, quiet: bool) -> None:
    """Train a model on the bundled Bibtex data (XC split 1) and print its test metrics.

    The estimator's defaults (model "auto": the label tree on this data); --epochs asks for the neural model.
    Needs no data folder or network. Measured on a shared 2-core machine: about 12 s of CPU time, 17 s wall
    (benchmarks/results/quickstart_time.md); longer while other jobs load the machine.
    The run folder can then be used with 'sparsexc evaluate DIR' and 'sparsexc predict DIR ...'.
    """
    from sparsexc.cli._training import log, train_and_evaluate

    out_dir = Path(out).resolve() if out is not None else Path(tempfile.mkdtemp(prefix="sparsexc-quickstart-"))
    # The estimator's defaults throughout: quickstart shows what a user gets without choosing anything.
    options = {} if epochs is None else {"epochs": epochs}
    if not quiet:
        log(f"quickstart: the default model on the bundled Bibtex data; output folder {out_dir}")
    train_and_evaluate(
        {"bundled": "bibtex"}, options, out_dir, verbose=not quiet, command="quickstart", overwrite=overwrite
    )
    click.echo(
        f"\nrun folder: {out_dir}\n  sparsexc evaluate {out_dir}\n  sparsexc predict {out_dir} --input FILE --top-k 5"
    )
