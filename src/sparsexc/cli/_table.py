"""Plain-text tables for the terminal (stdout), shared by the CLI commands.

Two helpers: :func:`format_table` lays out any rows under headers, :func:`format_metrics_table` lays out
a flat metrics dict (``{"P@1": 0.63, "nDCG@3": ..., "micro-F1": ...}``): the ``NAME@k`` metrics form a
grid with one row per NAME and one column per k, every other metric follows as ``name  value``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

__all__ = ["format_metrics_table", "format_table", "format_value"]

_AT_K = re.compile(r"^(?P<name>.+)@(?P<k>\d+)$")


def format_value(value: object, digits: int = 4) -> str:
    """A cell: floats with ``digits`` decimals, ``nan`` as ``-``, everything else via ``str``."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], digits: int = 4) -> str:
    """Rows under headers, columns padded to their widest cell; the first column left-aligned, others right.

    Parameters
    ----------
    headers : sequence of str, length n_columns
    rows : sequence of rows, each of length n_columns (a shorter row is padded with empty cells)
    digits : int
        Decimals for float cells.
    """
    n_columns = len(headers)
    cells = [[format_value(v, digits) for v in row] + [""] * (n_columns - len(row)) for row in rows]
    if any(len(row) > n_columns for row in cells):
        raise ValueError(f"a row has more cells than the {n_columns} headers")
    widths = [max([len(h)] + [len(row[j]) for row in cells]) for j, h in enumerate(headers)]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0])] + [row[j].rjust(widths[j]) for j in range(1, n_columns)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(list(headers)), rule] + [line(row) for row in cells])


def format_metrics_table(metrics: Mapping[str, object], keys: Sequence[str] | None = None, digits: int = 4) -> str:
    """A metrics dict as text: a ``NAME@k`` grid, then the other numeric metrics one per line.

    ``keys`` picks and orders the metrics shown (absent keys are skipped); by default all of them.
    Non-numeric entries (lists, dicts, strings) are left out, so a whole ``metrics.json`` can be passed.
    """
    grid: dict[str, dict[int, object]] = {}
    others: list[tuple[str, object]] = []
    chosen = metrics.items() if keys is None else [(k, metrics[k]) for k in keys if k in metrics]
    for key, value in chosen:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        match = _AT_K.match(key)
        if match:
            grid.setdefault(match["name"], {})[int(match["k"])] = float(value)
        else:
            others.append((key, float(value)))
    blocks = []
    if grid:
        ks = sorted({k for by_k in grid.values() for k in by_k})
        rows = [[name] + [by_k.get(k, "") for k in ks] for name, by_k in grid.items()]
        blocks.append(format_table(["metric"] + [f"@{k}" for k in ks], rows, digits))
    if others:
        blocks.append(format_table(["metric", "value"], [list(item) for item in others], digits))
    return "\n\n".join(blocks) if blocks else "(no metrics)"
