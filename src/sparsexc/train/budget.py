"""The training budget chosen from the data: how long to train, when to stop, and how to choose on small data.

The estimator's ``epochs=None`` and ``patience=None`` (its defaults) mean "chosen from the data" by the rules
below, so that 300 rows and 300,000 rows both get enough optimiser steps. An explicit value always wins. The
:class:`~sparsexc.train.Trainer` used alone takes concrete :class:`~sparsexc._params.TrainParams` and never
applies these rules. With ``n`` training rows and ``b`` rows per step, an epoch is ``s = ceil(n / b)`` steps:

* **epochs** ``= max(MIN_EPOCHS, ceil(MIN_STEPS / s))``: at least :data:`MIN_STEPS` optimiser steps (medical's
  300 rows left after the old hold-out made 3 steps an epoch, so 20 epochs were 60 steps), and the old 20
  epochs on large data;
* **patience** ``= max(MIN_PATIENCE, ceil(PATIENCE_STEPS / s))`` epochs: early stopping waits at least
  :data:`PATIENCE_STEPS` steps without gain (5 epochs of 2 steps each ended every small run after 10 steps);
* **the hold-out** (``validation_fraction`` of the rows, when ``fit`` gets no ``X_val``) holds at least
  ``min(MIN_VALIDATION_ROWS, MAX_HOLDOUT_SHARE * n)`` rows when the model is refitted (:func:`holdout_rows`):
  P@1 on medical's 33 rows moved 3 points per row, so the kept epoch was a coin toss;
* **refit** (:func:`refits`): below :data:`REFIT_BELOW` rows, with ``epochs`` chosen by the rule and the
  hold-out taken from the training rows, the run on the rest chooses the number of steps (its kept epoch), then
  the model is trained again from the same initial weights on *all* rows for as many steps
  (:func:`refit_epochs`), with the set threshold tuned on the hold-out's predictions of the first run. Small
  data cannot spare a fifth of its rows for model selection alone.

The evidence for each number is in ``docs/getting-started.md`` ("Training budget").
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = [
    "MAX_HOLDOUT_SHARE",
    "MIN_EPOCHS",
    "MIN_PATIENCE",
    "MIN_STEPS",
    "MIN_VALIDATION_ROWS",
    "PATIENCE_STEPS",
    "REFIT_BELOW",
    "TrainingBudget",
    "holdout_rows",
    "plan_budget",
    "refit_epochs",
    "refits",
    "resolve_budget",
]

MIN_STEPS = 1000  # least optimiser steps of a run whose epochs are chosen by the rule
MIN_EPOCHS = 20  # ... and least epochs (the estimator's old default, what large data gets)
PATIENCE_STEPS = 400  # early stopping waits at least this many steps without gain ...
MIN_PATIENCE = 5  # ... and at least this many epochs (the old default)
MIN_VALIDATION_ROWS = 100  # the hold-out holds at least this many rows ...
MAX_HOLDOUT_SHARE = 0.25  # ... but never more than this share of the rows for that minimum
REFIT_BELOW = 10_000  # fewer training rows than this: choose the steps on the hold-out, then refit on all rows


@dataclasses.dataclass
class TrainingBudget:
    """What the rules chose (or the user gave) for one ``fit``: the estimator's ``budget_``.

    Attributes
    ----------
    n_rows : int
        Rows the (first) run trains on: the training rows less the hold-out.
    batch_size, steps_per_epoch : int
        Rows per step, and ``ceil(n_rows / batch_size)``.
    epochs, patience : int or None
        The run's most epochs and its early-stopping patience in epochs (None: no early stopping, as when
        there is no validation data).
    chosen : dict
        ``{"epochs": "rule" | "given", "patience": "rule" | "given"}``.
    validation_rows : int
        Rows held out for early stopping and tuning (0: none; the user's ``X_val`` rows when given).
    refit : bool
        Whether the model is trained again on all rows after the first run chose the number of steps.
    refit_rows, refit_epochs : int or None
        The refit's rows and epochs (filled in by ``fit`` once the first run has chosen).
    """

    n_rows: int
    batch_size: int
    steps_per_epoch: int
    epochs: int
    patience: int | None
    chosen: dict[str, str]
    validation_rows: int = 0
    refit: bool = False
    refit_rows: int | None = None
    refit_epochs: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> TrainingBudget:
        """The budget :meth:`to_dict` wrote; a ValueError naming the key for anything else (a saved model's
        ``"budget"`` is read back with this)."""
        if not isinstance(d, dict):
            raise ValueError(f"must be an object; got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"holds the unknown key {unknown[0]!r}")
        missing = [n for n in names[:6] if n not in d]
        if missing:
            raise ValueError(f"lacks the key {missing[0]!r}")
        for name in ("n_rows", "batch_size", "steps_per_epoch", "epochs", "patience", "validation_rows",
                     "refit_rows", "refit_epochs"):  # fmt: skip
            value = d.get(name)
            if value is None and name in ("patience", "validation_rows", "refit_rows", "refit_epochs"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0; got {value!r}")
        chosen = d["chosen"]
        if (
            not isinstance(chosen, dict)
            or set(chosen) != {"epochs", "patience"}
            or not all(v in ("rule", "given") for v in chosen.values())
        ):
            raise ValueError(f"chosen must map epochs and patience to 'rule' or 'given'; got {chosen!r}")
        if not isinstance(d.get("refit", False), bool):
            raise ValueError(f"refit must be true or false; got {d['refit']!r}")
        return cls(**{**d, "chosen": dict(chosen)})

    def describe(self) -> str:
        """One line, e.g. ``"250 rows, up to 500 epochs of 2 steps (rule); patience 200 epochs (rule); 83
        validation rows; then refit on all 333 rows for 43 epochs"``."""
        line = (
            f"{self.n_rows} rows, up to {self.epochs} epochs of {self.steps_per_epoch} steps ({self.chosen['epochs']})"
            f"; patience {'none' if self.patience is None else f'{self.patience} epochs'} ({self.chosen['patience']})"
            f"; {self.validation_rows} validation rows"
        )
        if self.refit:
            then = "" if self.refit_epochs is None else f" for {self.refit_epochs} epochs"
            line += f"; then refit on all {self.refit_rows} rows{then}"
        return line


def resolve_budget(
    n_rows: int | None,
    batch_size: int,
    epochs: int | None = None,
    patience: int | None = None,
    *,
    has_validation: bool = True,
) -> TrainingBudget:
    """The epochs and patience of a run on ``n_rows`` rows in batches of ``batch_size`` (see the module).

    Parameters
    ----------
    n_rows : int or None
        Rows trained on; None (not known yet) gives the large-data values, ``MIN_EPOCHS`` and ``MIN_PATIENCE``.
    batch_size : int
    epochs, patience : int or None
        The user's values; None is the rule's. ``patience`` is dropped (None) without validation data.
    has_validation : bool
        Whether the run has validation data to stop on.

    Returns
    -------
    TrainingBudget
        ``validation_rows`` 0 and ``refit`` False: the caller (the estimator's split) sets them.
    """
    steps = math.ceil(n_rows / batch_size) if n_rows else None
    chosen_epochs = epochs if epochs is not None else _at_least(MIN_EPOCHS, MIN_STEPS, steps)
    chosen_patience = patience if patience is not None else _at_least(MIN_PATIENCE, PATIENCE_STEPS, steps)
    return TrainingBudget(
        n_rows=int(n_rows or 0),
        batch_size=int(batch_size),
        steps_per_epoch=int(steps or 0),
        epochs=int(chosen_epochs),
        patience=int(chosen_patience) if has_validation else None,
        chosen={"epochs": "rule" if epochs is None else "given", "patience": "rule" if patience is None else "given"},
    )


def plan_budget(
    n_train: int,
    n_validation: int,
    batch_size: int,
    epochs: int | None = None,
    patience: int | None = None,
    *,
    held_out: bool,
) -> TrainingBudget:
    """The whole budget of a fit on ``n_train`` rows with ``n_validation`` validation rows: :func:`resolve_budget`
    for the run on ``n_train`` rows, and whether (:func:`refits`) and on how many rows it is refitted.

    ``held_out``: the validation rows were held out of the training rows (so a refit trains on
    ``n_train + n_validation`` rows), not given apart. ``refit_epochs`` stays None: the first run chooses it.
    """
    budget = resolve_budget(n_train, batch_size, epochs, patience, has_validation=n_validation > 0)
    n_all = n_train + (n_validation if held_out else 0)
    budget.validation_rows = int(n_validation)
    budget.refit = n_validation > 0 and refits(n_all, epochs, held_out)
    budget.refit_rows = n_all if budget.refit else None
    return budget


def _at_least(epochs: int, steps: int, steps_per_epoch: int | None) -> int:
    """``max(epochs, ceil(steps / steps_per_epoch))``: at least ``epochs`` epochs and ``steps`` steps."""
    return epochs if not steps_per_epoch else max(epochs, math.ceil(steps / steps_per_epoch))


def holdout_rows(n_rows: int, fraction: float, refit: bool = False) -> int:
    """Rows held out of ``n_rows`` for ``validation_fraction=fraction`` (0 for ``fraction=0`` or one row).

    ``round(fraction * n)``, at least 1 and at most ``n - 1``; when the model is refitted on all rows afterwards
    (``refit``, :func:`refits`), at least ``min(MIN_VALIDATION_ROWS, round(MAX_HOLDOUT_SHARE * n))``: a hold-out
    big enough to choose on costs the final model no row then (without a refit it would: the label tree and an
    explicit ``epochs`` keep the plain share).
    """
    if fraction <= 0 or n_rows < 2:
        return 0
    wanted = round(fraction * n_rows)
    if refit:
        wanted = max(wanted, min(MIN_VALIDATION_ROWS, round(MAX_HOLDOUT_SHARE * n_rows)))
    return min(max(1, wanted), n_rows - 1)


def refits(n_rows: int, epochs: int | None, held_out: bool) -> bool:
    """Whether a fit on ``n_rows`` training rows (before the hold-out) refits on all rows: the user left
    ``epochs`` to the rule (None), the validation rows were held out of the training rows (not the user's
    ``X_val``), and there are fewer than :data:`REFIT_BELOW` rows."""
    return epochs is None and held_out and n_rows < REFIT_BELOW


def refit_epochs(kept_epoch: int, steps_per_epoch: int, n_rows: int, batch_size: int) -> int:
    """Epochs of the refit on ``n_rows`` rows that make as many steps as ``kept_epoch`` epochs of
    ``steps_per_epoch`` (rounded, at least 1): the number of steps is what the first run chose."""
    return max(1, round(kept_epoch * steps_per_epoch / math.ceil(n_rows / batch_size)))
