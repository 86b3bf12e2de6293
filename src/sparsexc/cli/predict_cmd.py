"""``sparsexc predict``: top-k labels and scores of a trained model for a features file.

Output formats
--------------
``xc`` (the XC repository's score-file layout)::

    n_rows n_labels
    l:s l:s ...            one line per input row, the K best labels, best first

with 0-based label ids and scores printed with 6 significant digits (``%.6g``); ``n_labels`` is the model's
label count. ``jsonl``: one JSON object per input row, ``{"labels": [l, ...], "scores": [s, ...]}``, best
first. Scores are the model's decision scores (what its head ranks by).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import TextIO

import click
import numpy as np

__all__ = ["format_predictions", "predict"]


def format_predictions(indices: np.ndarray, scores: np.ndarray, n_labels: int, fmt: str) -> Iterator[str]:
    """Lines (with newline) of the ``xc`` or ``jsonl`` output for top-k ``indices``/``scores`` (n_rows, k)."""
    if fmt == "xc":
        yield f"{indices.shape[0]} {n_labels}\n"
        for row_indices, row_scores in zip(indices.tolist(), scores.tolist()):
            yield " ".join(f"{label}:{score:.6g}" for label, score in zip(row_indices, row_scores)) + "\n"
    elif fmt == "jsonl":
        for row_indices, row_scores in zip(indices.tolist(), scores.tolist()):
            yield json.dumps({"labels": row_indices, "scores": row_scores}) + "\n"
    else:
        raise ValueError(f"unknown format {fmt!r}; use 'xc' or 'jsonl'")


@click.command()
@click.argument("run_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Features file (XC text with or without labels, svmlight/LibSVM, any format sparsexc reads).")
@click.option("--top-k", "top_k", required=True, type=click.IntRange(min=1), help="Labels per row.")
@click.option("--output", type=click.Path(dir_okay=False), help="Output file (default: stdout).")
@click.option("--label-xml", "label_xml", type=click.Path(exists=True, dir_okay=False),
              help="Mulan XML label file of an ARFF input (default: NAME.xml beside it, if there).")
@click.option("--format", "fmt", type=click.Choice(["xc", "jsonl"]), default="xc", show_default=True,
              help="Output format (see 'sparsexc predict --help' / docs/cli.md).")
def predict(run_dir: str, input_path: str, top_k: int, output: str | None, label_xml: str | None, fmt: str) -> None:
    """Write the top-k labels and scores the model in DIR gives each row of a features file.

    xc format: a header line 'n_rows n_labels', then per row 'label:score label:score ...' (best first,
    0-based label ids). jsonl format: per row {"labels": [...], "scores": [...]}.
    """
    from sparsexc.cli._data import read_file
    from sparsexc.cli._errors import doing
    from sparsexc.cli._files import atomic_open
    from sparsexc.cli._rundir import load_model, svmlight_zero_based
    from sparsexc.cli._training import log

    clf = load_model(run_dir)
    n_labels = int(clf.n_labels_)
    if top_k > n_labels:
        raise click.BadParameter(f"{top_k} is more than the model's {n_labels} labels", param_hint="'--top-k'")
    X = read_file(input_path, clf, input_path, label_xml=label_xml, labels=False,
                  zero_based=svmlight_zero_based(run_dir)).X
    indices, scores = clf.predict_topk(X, k=top_k)
    lines = format_predictions(np.asarray(indices), np.asarray(scores), n_labels, fmt)
    if output is None:
        _write_lines(sys.stdout, lines)
    else:
        with doing(f"writing {output}"), atomic_open(output) as handle:
            _write_lines(handle, lines)
        log(f"{X.shape[0]} rows of top-{top_k} predictions written to {output}")


def _write_lines(handle: TextIO, lines: Iterator[str]) -> None:
    for line in lines:
        handle.write(line)
