"""What training says while it runs and when it ends: verbosity levels, per-epoch lines, the fit summary.

Levels (``XCClassifier(verbose=...)``, :func:`resolve_verbose`):

* ``0``: silent;
* ``1``: one line per epoch on stderr (epoch i/n, loss, validation metric, seconds, ``* best`` when the
  validation metric is the best so far) and the summary line at the end;
* ``2``: the same, plus a progress bar during each epoch when stderr is a terminal or a notebook (never when
  it is a file or a pipe: a bar's redraws would fill it);
* ``"auto"``: 2 when stderr is a terminal or a notebook, else 0.

The per-epoch JSON records go to the history (``Trainer.history``, ``log_path``) whatever the level.
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from sparsexc.errors import ConfigurationError

__all__ = [
    "VERBOSE_LEVELS",
    "best_so_far",
    "epoch_line",
    "fit_summary",
    "interactive",
    "resolve_verbose",
]

VERBOSE_LEVELS: tuple[Any, ...] = ("auto", 0, 1, 2)


def _in_notebook() -> bool:
    # a Jupyter kernel (its stderr is no terminal, yet shows tqdm's notebook bar); IPython is never imported here
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except (AttributeError, TypeError, RuntimeError):  # an odd IPython: no notebook
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def interactive(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default: the current ``sys.stderr``) is a terminal, or we run in a notebook."""
    stream = sys.stderr if stream is None else stream
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        tty = False
    return tty or _in_notebook()


def resolve_verbose(verbose: Any, stream: TextIO | None = None) -> int:
    """The level 0, 1 or 2 for ``verbose`` (one of :data:`VERBOSE_LEVELS`; ``False``/``True`` mean 0/2).

    ``"auto"`` is 2 when ``stream`` (default: ``sys.stderr``) is a terminal or a notebook, else 0.

    Raises
    ------
    ValueError
        For any other value, naming the allowed ones.
    """
    if isinstance(verbose, bool):  # the older on/off form
        return 2 if verbose else 0
    if isinstance(verbose, str):
        if verbose == "auto":
            return 2 if interactive(stream) else 0
    elif isinstance(verbose, numbers.Integral) and verbose in (0, 1, 2):
        return int(verbose)
    raise ConfigurationError(
        f"verbose={verbose!r}; use 'auto', 0 (silent), 1 (a line per epoch) or 2 (a progress bar "
        "and a line per epoch), or True/False"
    )


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _ran(run: int, epochs: int) -> str:
    # "all 20 epochs" when every epoch asked for was run
    return f"all {run} epochs" if run == epochs and run > 1 else _epochs(run)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def epoch_line(record: dict[str, Any], epochs: int, val_metric: str | None, best: bool) -> str:
    """One human-readable line for an epoch's history ``record``, e.g.
    ``epoch  3/20  loss 0.0712  val P@1 0.5432  2.1 s  * best``."""
    width = len(str(epochs))
    parts = [
        f"epoch {record['epoch']:>{width}}/{epochs}",
        f"loss {record['train_loss']:.4f}",
    ]
    value = _number(record.get(f"val_{val_metric}")) if val_metric else None
    if value is not None:
        parts.append(f"val {val_metric} {value:.4f}")
    seconds = _number(record.get("seconds"))
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    if best:
        parts.append("* best")
    return "  ".join(parts)


def best_so_far(history: Sequence[dict[str, Any]], val_metric: str, higher_is_better: bool = True) -> list[bool]:
    """For each epoch of ``history``: whether its ``val_<val_metric>`` beat every earlier epoch's (the rule the
    trainer keeps its best weights by: strictly better; the first epoch with a value counts as best)."""
    marks, best = [], None
    for record in history:
        value = _number(record.get(f"val_{val_metric}"))
        improved = value is not None and (best is None or (value > best if higher_is_better else value < best))
        if improved:
            best = value
        marks.append(improved)
    return marks


def fit_summary(
    history: Sequence[dict[str, Any]],
    best_epoch: int | None,
    epochs: int,
    patience: int | None,
    val_metric: str,
    stopped_early: bool | None = None,
) -> dict[str, Any]:
    """How a training run ended, as a dict (``Trainer.fit_summary``, ``XCClassifier.fit_summary_``, run.json).

    Parameters
    ----------
    history : list of dict
        The per-epoch records (``epoch``, ``train_loss``, ``val_<metric>`` ...).
    best_epoch : int or None
        The epoch whose weights were kept (None without validation data: the last epoch's are).
    epochs, patience, val_metric
        The run's settings.
    stopped_early : bool or None
        What the trainer knows; None infers it from the history (fewer epochs than ``epochs`` and ``patience``
        epochs without gain since ``best_epoch``), for a run read back from its files.

    Returns
    -------
    dict
        ``epochs_run``, ``epochs``, ``stopped_early``, ``patience``, ``kept_epoch``, ``val_metric`` (None without
        validation data), ``kept_value`` (the validation metric of the kept epoch, or None) and ``message``, e.g.
        ``"stopped early after epoch 13: validation P@1 did not improve for 5 epochs; kept epoch 8 (P@1 0.4321)"``
        or ``"ran all 20 epochs; kept epoch 17 (P@1 0.6120)"``.
    """
    run = len(history)
    has_val = any(_number(r.get(f"val_{val_metric}")) is not None for r in history)
    if stopped_early is None:
        stopped_early = (
            has_val
            and patience is not None
            and best_epoch is not None
            and run < epochs
            and run - best_epoch >= patience
        )
    kept = best_epoch if (has_val and best_epoch is not None) else (run or None)
    kept_value = None
    if has_val and kept is not None and 1 <= kept <= run:
        kept_value = _number(history[kept - 1].get(f"val_{val_metric}"))
    shown = f" ({val_metric} {kept_value:.4f})" if kept_value is not None else ""
    if run == 0:
        message = "no epoch was trained"
    elif stopped_early:
        message = (
            f"stopped early after epoch {run}: validation {val_metric} did not improve for "
            f"{_epochs(run - (kept or run))}; kept epoch {kept}{shown}"
        )
    elif not has_val:
        message = f"ran {_ran(run, epochs)}; kept the last (no validation data to choose by)"
    elif run > epochs:  # a resumed run whose checkpoint had trained more than this run's epochs
        message = f"ran {_epochs(run)} (the checkpoint's, more than epochs={epochs}); kept epoch {kept}{shown}"
    else:
        message = f"ran {_ran(run, epochs)}; kept epoch {kept}{shown}"
    return {
        "epochs_run": run,
        "epochs": epochs,
        "stopped_early": bool(stopped_early),
        "patience": patience,
        "kept_epoch": kept,
        "val_metric": val_metric if has_val else None,
        "kept_value": kept_value,
        "message": message,
    }
