"""The one place where the spine (heads, trainer, estimator) calls :mod:`sparsexc.metrics`.

Kept apart so the spine never re-implements a metric: set metrics for threshold tuning and the ranking
metrics used for early stopping both come from ``sparsexc.metrics``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from sparsexc.errors import ConfigurationError

__all__ = ["SET_METRICS", "evaluate", "set_metric", "set_metric_from_row_counts"]

# name accepted by ``tune(metric=...)`` -> function name in sparsexc.metrics (f(Y_true, Y_pred) -> float)
SET_METRICS: dict[str, str] = {"micro-F1": "micro_f1", "example-F1": "example_f1"}


def set_metric(name: str) -> Callable[[sp.csr_matrix, sp.csr_matrix], float]:
    """Return the set metric ``f(Y_true, Y_pred) -> float`` (higher is better) called ``name``."""
    if name not in SET_METRICS:
        raise ConfigurationError(f"unknown set metric {name!r}; choose one of {', '.join(map(repr, SET_METRICS))}")
    from sparsexc import metrics

    return getattr(metrics, SET_METRICS[name])


# set metrics that depend on the per-row counts |y_i ∩ ŷ_i|, |y_i|, |ŷ_i| only -> kind of sets.f1_from_counts
_ROW_COUNT_KINDS: dict[str, str] = {"micro-F1": "micro", "example-F1": "example"}


def set_metric_from_row_counts(name: str) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float] | None:
    r"""The set metric ``name`` as ``f(tp_rows, true_rows, pred_rows) -> float`` from the per-row counts
    :math:`|y_i \cap ŷ_i|`, :math:`|y_i|`, :math:`|ŷ_i|` (integer arrays), equal bit for bit to
    ``set_metric(name)(Y_true, Y_pred)`` at its default ``zero_division``; None when the metric needs more
    than per-row counts (then compute it from the sets)."""
    fn = set_metric(name)  # raises for an unknown name
    if name not in _ROW_COUNT_KINDS:
        return None
    import inspect

    from sparsexc.metrics import sets

    kind = _ROW_COUNT_KINDS[name]
    zero_division = inspect.signature(fn).parameters["zero_division"].default
    no_labels = np.zeros(0, dtype=np.int64)  # the per-label counts: unused by the row-count kinds

    def from_counts(tp_rows: np.ndarray, true_rows: np.ndarray, pred_rows: np.ndarray) -> float:
        counts = sets.SetCounts(len(true_rows), 0, tp_rows, true_rows, pred_rows, no_labels, no_labels, no_labels)
        return float(sets.f1_from_counts(counts, kind, zero_division))

    return from_counts


def evaluate(
    Y_true: sp.csr_matrix,
    topk: tuple[np.ndarray, np.ndarray],
    ks: Sequence[int] = (1, 3, 5),
    label_sets: sp.csr_matrix | None = None,
) -> dict[str, Any]:
    """``sparsexc.metrics.evaluate`` on a top-k prediction (and predicted label sets, if given)."""
    from sparsexc import metrics

    return metrics.evaluate(Y_true, topk, ks=tuple(ks), label_sets=label_sets)


def parse_val_metric(name: str) -> tuple[int, bool, bool]:
    """Check a validation-metric name; return (k needed for ranking, needs predicted sets, higher is better).

    Allowed: the ranking keys of ``sparsexc.metrics.evaluate`` at any k (``"P@1"``, ``"nDCG@5"``, ``"R@3"``)
    and its set keys (``"micro-F1"``, ...).
    """
    from sparsexc import metrics

    if name in metrics.SET_KEYS:
        return 1, True, name not in metrics.LOWER_IS_BETTER
    for template in metrics.RANKING_KEYS:
        prefix = template.split("{")[0]
        if name.startswith(prefix) and name[len(prefix) :].isdigit() and int(name[len(prefix) :]) >= 1:
            return int(name[len(prefix) :]), False, True
    allowed = [t.format(k="k") for t in metrics.RANKING_KEYS] + list(metrics.SET_KEYS)
    raise ConfigurationError(f"unknown val_metric {name!r}; allowed: {', '.join(allowed)} (k a positive integer)")
