"""``sparsexc datasets ...``: list the named data sets, describe one, convert files to the XC text format."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from sparsexc.errors import ConfigurationError, UnknownNameError

from ._errors import UserError
from ._table import format_table

__all__ = ["datasets"]

_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder holding the data set folders (default: $SPARSEXC_DATA, else ~/sparsexc_data).",
)


@click.group()
def datasets() -> None:
    """List, describe, download and convert data sets."""


@datasets.command("list")
@_DATA_DIR
def list_cmd(data_dir: str | None) -> None:
    """Names of the data sets, whether their files are found, where they come from, and what they are.

    The table is followed by one line per source: its address and the licence of its data.
    """
    from sparsexc.datasets import REGISTRY, locate, resolve_data_dir
    from sparsexc.datasets._sources import origin_of

    root, origin = resolve_data_dir(data_dir)
    rows = []
    used: dict = {}
    for name, spec in REGISTRY.items():
        try:
            locate(spec, data_dir)
            status = "found"
        except FileNotFoundError:
            status = "bundled" if name == "bibtex" else "missing"
        source = origin_of(name)
        if source is not None:
            used.setdefault(source.key, source)
        rows.append((name, status, source.key if source is not None else "-", spec.description))
    click.echo(f"data directory: {root} (from {origin})")
    width = max(len(row[0]) for row in rows)
    source_width = max(len(row[2]) for row in rows)
    for name, status, key, description in rows:
        click.echo(f"{name.ljust(width)}  {status.ljust(7)}  {key.ljust(source_width)}  {description}")
    click.echo("")
    click.echo("sources ('sparsexc datasets download NAME' fetches a set from its source):")
    for key, source in used.items():
        click.echo(f"  {key.ljust(source_width)}  {source.title}, {source.url}; data licence: {source.licence}")


def _stats_rows(train_stats: dict, test_stats: dict) -> list[tuple]:
    rows: list[tuple] = []
    for key, label in (
        ("rows", "rows"),
        ("features", "features"),
        ("labels", "labels"),
        ("label_cardinality", "labels per row (mean)"),
        ("labels_per_row_max", "labels per row (max)"),
        ("rows_without_labels", "rows without labels"),
        ("labels_without_rows", "labels without rows"),
        ("features_per_row", "features per row (mean)"),
        ("features_per_row_max", "features per row (max)"),
    ):
        rows.append((label, train_stats[key], test_stats[key]))
    for q in train_stats["label_frequency_quantiles"]:
        rows.append(
            (
                f"rows per label, quantile {q[1:]}%",
                _number(train_stats["label_frequency_quantiles"][q]),
                _number(test_stats["label_frequency_quantiles"][q]),
            )
        )
    return rows


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


@datasets.command("info")
@click.argument("name")
@_DATA_DIR
@click.option(
    "--split", type=int, default=None, help="bibtex: XC split 1..10; sets with a generated split: its seed (default 1)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the statistics and provenance as JSON.")
def info_cmd(name: str, data_dir: str | None, split: int | None, as_json: bool) -> None:
    """Train/test statistics of the data set NAME (see 'sparsexc datasets list')."""
    from sparsexc.datasets import describe, load

    data = load(name, data_dir, split=split)
    train_stats, test_stats = describe(data.train), describe(data.test)
    if as_json:
        click.echo(
            json.dumps(
                {"name": data.name, "train": train_stats, "test": test_stats, "info": data.info}, indent=2, default=str
            )
        )
        return
    click.echo(f"{data.name}: {data.info.get('description', '')}")
    click.echo(format_table(["", "train", "test"], _stats_rows(train_stats, test_stats), digits=3))
    split_info = data.info.get("split", {})
    click.echo(f"split: {json.dumps(split_info, default=str)}")
    click.echo(f"source: {data.info.get('data_dir', '')} ({data.info.get('data_dir_from', '')})")


@datasets.command("convert")
@click.argument("source")
@click.argument("out")
@click.option(
    "--label-xml",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Mulan XML label header of an ARFF input (default: NAME.xml beside it, if there).",
)
@_DATA_DIR
@click.option("--split", type=int, default=None, help="With a data set NAME: which split to export.")
def convert_cmd(source: str, out: str, label_xml: str | None, data_dir: str | None, split: int | None) -> None:
    """Write SOURCE in the XC text format.

    SOURCE is a file in any readable format (XC text, ARFF, .mat, headerless svmlight/LibSVM), written to the
    file OUT; or the NAME of a data set, whose parts are written to OUT/NAME_train.txt and OUT/NAME_test.txt.
    """
    from sparsexc.cli._data import LABEL_XML_FLAG
    from sparsexc.io import read_any, write_xc

    if Path(source).exists():
        if data_dir is not None or split is not None:
            raise click.UsageError("--data-dir and --split go with a data set NAME, not a file")
        data = read_any(source, label_xml=label_xml, label_xml_option=LABEL_XML_FLAG)
        write_xc(out, data.X, data.Y)
        click.echo(f"wrote {out}: {data.n_samples} rows, {data.n_features} features, {data.n_labels} labels")
        return
    from sparsexc.datasets import get_spec, load

    if label_xml is not None:
        raise click.UsageError("--label-xml goes with an ARFF file, not a data set NAME")
    try:
        get_spec(source)
    except UnknownNameError as exc:
        raise UserError(f"{source!r} is neither an existing file nor a data set: {exc}") from None  # exit 2
    splits = load(source, data_dir, split=split)
    os.makedirs(out, exist_ok=True)
    for part in ("train", "test"):
        path = Path(out) / f"{splits.name}_{part}.txt"
        piece = getattr(splits, part)
        write_xc(path, piece.X, piece.Y)
        click.echo(f"wrote {path}: {piece.n_samples} rows, {piece.n_features} features, {piece.n_labels} labels")


@datasets.command("download")
@click.argument("name")
@_DATA_DIR
@click.option(
    "--mirror",
    default=None,
    metavar="URL",
    help="Base URL that replaces the sources' (default: $SPARSEXC_MIRROR); file layout: docs/data.md.",
)
@click.option("--force", is_flag=True, help="Download again even when the files are there.")
def download_cmd(name: str, data_dir: str | None, mirror: str | None, force: bool) -> None:
    """Download the data set NAME from its public source, verify it, and install it where 'load' reads it.

    Files go to a resumable '.part' file first (a cut transfer resumes on the next run), are checked against
    their pinned SHA-256 (files with no known checksum are checked by parsing, and their SHA-256 is printed),
    extracted, and the set's folder appears complete or not at all. A progress bar shows on a terminal.
    """
    from sparsexc.datasets import (
        ChecksumError,
        DownloadError,
        NoSourceError,
        UnknownDatasetError,
        download,
        resolve_data_dir,
    )

    from ._errors import RunFailure, resource_error

    root, _ = resolve_data_dir(data_dir)
    try:
        result = download(name, data_dir, mirror=mirror, force=force, log=click.echo)
    except (UnknownDatasetError, NoSourceError) as exc:
        raise UserError(str(exc)) from None
    except ChecksumError as exc:
        raise RunFailure(f"{exc}; the file was deleted: run the command again, or check the mirror") from None
    except DownloadError as exc:
        raise RunFailure(str(exc)) from None
    except ConfigurationError as exc:  # a bad --mirror / SPARSEXC_MIRROR
        raise UserError(str(exc)) from None
    except OSError as exc:
        problem = resource_error(exc)
        if problem is None:
            raise
        raise RunFailure(
            f"{problem} while downloading {name} into {root}; free some space or choose another "
            "--data-dir (a cut transfer resumes on the next run)"
        ) from None
    if result.already:
        click.echo(f"{result.name}: already in {result.folder} (use --force to download again)")
        return
    verified = "checked by parsing (no pinned checksum)" if result.unpinned else "sha256 verified"
    click.echo(f"{result.name}: downloaded into {result.folder} ({len(result.files)} files, {verified})")
