"""Training curves as a PNG: the loss and the validation metric per epoch, the kept epoch marked.

matplotlib is optional (the ``plots`` extra: ``pip install 'sparsexc[plots]'``): it is imported only when a
plot is drawn, and :func:`plot_curves` returns False without it. The figure is drawn on matplotlib's Agg
canvas directly (no ``pyplot``: no global figure state, no GUI backend chosen or changed) and written
atomically (:func:`sparsexc._atomic.atomic_write`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import IO, Any

from sparsexc._atomic import atomic_write

__all__ = ["NO_MATPLOTLIB", "plot_curves"]

# said once when no plot can be drawn
NO_MATPLOTLIB = "no curves.png drawn: matplotlib is not installed (pip install 'sparsexc[plots]')"


def _values(history: Sequence[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    out = []
    for record in history:
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((int(record["epoch"]), float(value)))
    return out


def plot_curves(
    history: Sequence[dict[str, Any]],
    path: str | os.PathLike[str],
    *,
    val_metric: str | None = "P@1",
    kept_epoch: int | None = None,
    title: str | None = None,
) -> bool:
    """Draw the training loss and ``val_<val_metric>`` per epoch of ``history`` into the PNG file ``path``.

    Parameters
    ----------
    history : list of dict
        Per-epoch records with ``epoch`` and ``train_loss`` (and ``val_<val_metric>`` when validated), as in
        ``XCClassifier.history_`` or a run's ``train_log.jsonl``.
    path : path
        The PNG to write (atomically: a reader never sees half a file).
    val_metric : str or None
        The validation metric to draw; its panel says "no validation data" when the history lacks it.
    kept_epoch : int or None
        The epoch whose weights were kept: a dashed line and a star on both curves.
    title : str or None
        Figure title.

    Returns
    -------
    bool
        True when the file was written; False when matplotlib is not installed (nothing is written).

    Raises
    ------
    ValueError
        When ``history`` holds no epoch with a ``train_loss``.
    """
    loss = _values(history, "train_loss")
    if not loss:
        raise ValueError("the history holds no epoch with a train_loss: nothing to plot")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    val = _values(history, f"val_{val_metric}") if val_metric else []

    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_val = fig.subplots(1, 2)
    for ax, points, label, colour in (
        (ax_loss, loss, "training loss", "tab:blue"),
        (ax_val, val, f"validation {val_metric}", "tab:orange"),
    ):
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
        if not points:
            ax.text(
                0.5,
                0.5,
                "no validation data",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
            continue
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker="o", markersize=3, color=colour)
        ax.xaxis.get_major_locator().set_params(integer=True)
        kept = dict(points).get(kept_epoch) if kept_epoch is not None else None
        if kept is not None:
            ax.axvline(kept_epoch, color="grey", linestyle="--", linewidth=1)
            ax.plot(
                [kept_epoch],
                [kept],
                marker="*",
                markersize=12,
                color="tab:red",
                linestyle="none",
                label=f"kept epoch {kept_epoch}",
            )
            ax.legend(loc="best", fontsize="small")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    data = buffer.getvalue()

    def write(fh: IO[bytes]) -> None:
        fh.write(data)

    atomic_write(path, write)
    return True
