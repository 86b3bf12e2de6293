"""``sparsexc predict``: top-k labels and scores of a trained model for a features file.

Output formats
--------------
``xc`` (the XC repository's score-file layout)::

    n_rows n_labels
    l:s l:s ...            one line per input row, the K best labels, best first

with scores printed with 6 significant digits (``%.6g``); ``n_labels`` is the model's label count.
``jsonl``: one JSON object per input row, ``{"labels": [l, ...], "scores": [s, ...]}``, best first. Scores
are the model's decision scores (what its head ranks by).

Labels are the model's label names (``classes_``: a model trained on a data set with names, e.g. a Mulan
ARFF + XML pair or the built text tasks) and else 0-based label ids; ``--ids`` prints the ids always. In the
``xc`` format a name's ``%`` and whitespace are percent-encoded (``Brown%20Creeper:0.93``;
``urllib.parse.unquote`` restores it) and a pair splits at its last ``:`` (names may hold colons).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import click
import numpy as np

from sparsexc._params import PredictParams
from sparsexc.cli._settings import params_from_options, predict_options
from sparsexc.errors import ConfigurationError

__all__ = ["format_predictions", "predict", "xc_label"]

_XC_UNSAFE = re.compile(r"[%\s]")  # what would break an 'l:s l:s' line: whitespace, and % itself (the escape)


def xc_label(name: object) -> str:
    """A label name as the ``xc`` format writes it: ``%`` and whitespace percent-encoded (UTF-8 bytes)."""
    return _XC_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), str(name))


def format_predictions(
    indices: np.ndarray, scores: np.ndarray, n_labels: int, fmt: str, names: list[object] | None = None
) -> Iterator[str]:
    """Lines (with newline) of the ``xc`` or ``jsonl`` output for top-k ``indices``/``scores`` (n_rows, k).

    ``names`` (the model's ``classes_``, one per label): print ``names[i]`` for label ``i``; None: the ids.
    """
    for_row = (lambda row: row) if names is None else (lambda row: [names[i] for i in row])
    if fmt == "xc":
        yield f"{indices.shape[0]} {n_labels}\n"
        show = str if names is None else xc_label
        for row_indices, row_scores in zip(indices.tolist(), scores.tolist()):
            labels = for_row(row_indices)
            yield " ".join(f"{show(label)}:{score:.6g}" for label, score in zip(labels, row_scores)) + "\n"
    elif fmt == "jsonl":
        for row_indices, row_scores in zip(indices.tolist(), scores.tolist()):
            yield json.dumps({"labels": for_row(row_indices), "scores": row_scores}) + "\n"
    else:
        raise ConfigurationError(f"unknown format {fmt!r}; use 'xc' or 'jsonl'")


@click.command()
@click.argument("run_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Features file: XC text (header 'n_rows n_features n_labels', 0-based ids; rows with or without "
    "labels), headerless svmlight/LibSVM (feature ids as the training files were read, else "
    "1-based unless a row uses feature 0: a note on stderr says so), ARFF or .mat.",
)
@predict_options
@click.option("--output", type=click.Path(dir_okay=False), help="Output file (default: stdout).")
@click.option(
    "--label-xml",
    "label_xml",
    type=click.Path(exists=True, dir_okay=False),
    help="Mulan XML label file of an ARFF input (default: NAME.xml beside it, if there).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["xc", "jsonl"]),
    default="xc",
    show_default=True,
    help="xc: a line 'n_rows n_labels', then per row 'label:score label:score ...' (best first, scores "
    "to 6 significant digits; in names, '%' and whitespace are percent-encoded); jsonl: per row "
    '{"labels": [...], "scores": [...]}, best first. Labels are the model\'s label names when it '
    "has them, else 0-based label ids (see --ids).",
)
@click.option(
    "--ids",
    "ids",
    is_flag=True,
    help="Print 0-based label ids even when the model has label names (by default names are printed).",
)
def predict(
    run_dir: str, input_path: str, output: str | None, label_xml: str | None, fmt: str, ids: bool, **settings: Any
) -> None:
    """Write the top-k labels and scores the model in DIR gives each row of a features file.

    Scores are the model's decision scores (what its head ranks by); the output formats are under --format.
    """
    from sparsexc.cli._data import read_file
    from sparsexc.cli._errors import doing
    from sparsexc.cli._files import atomic_open
    from sparsexc.cli._rundir import load_model, svmlight_zero_based
    from sparsexc.cli._training import log

    params = params_from_options(PredictParams, settings)  # --top-k, --batch-size, --beam
    top_k = params.k
    clf = load_model(run_dir)
    n_labels = int(clf.n_labels_)
    if top_k > n_labels:
        raise click.BadParameter(f"{top_k} is more than the model's {n_labels} labels", param_hint="'--top-k'")
    X = read_file(
        input_path, clf, input_path, label_xml=label_xml, labels=False, zero_based=svmlight_zero_based(run_dir)
    ).X
    indices, scores = clf.predict_topk(X, k=top_k, batch_size=params.batch_size, beam=params.beam)
    names = None if ids else clf.classes_.tolist()  # the label ids 0..C-1 for a model without names
    lines = format_predictions(np.asarray(indices), np.asarray(scores), n_labels, fmt, names)
    if output is None:
        _write_lines(sys.stdout, lines)
    else:
        with doing(f"writing {output}"), atomic_open(output) as handle:
            _write_lines(handle, lines)
        log(f"{X.shape[0]} rows of top-{top_k} predictions written to {output}")


def _write_lines(handle: TextIO, lines: Iterator[str]) -> None:
    for line in lines:
        handle.write(line)
