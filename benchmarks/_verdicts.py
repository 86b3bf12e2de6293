"""The verdict rule of the papers' pages (issue 21): one wording for every "claim | paper | ours | verdict" table.

A claim "A is better than B" is judged on a list of comparisons (one per data set, or per baseline), each a
difference ``d`` oriented so that ``d > 0`` favours A, with its standard error ``se``:

* **reproduced**: A is better by more than 2 SE in every comparison;
* **partially**: better by more than 2 SE in some, worse by more than 2 SE in none;
* **contradicted**: worse by more than 2 SE in at least one comparison;
* **not reproduced (no difference beyond 2 SE)**: a null result, weaker than a contradiction;
* **untested**: no comparison, or one without a standard error.

:func:`proportion_difference` gives ``(d, se)`` for two rates measured on independent rows (a hit rate such as
P@1 or hits@1 on ``n`` evaluation rows each).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["proportion_difference", "two_se_verdict"]


def two_se_verdict(
    comparisons: Sequence[tuple[float, float]],
    worse: str = "the baseline is better",
    untested: str = "no standard error",
) -> str:
    """The verdict of the module docstring; ``worse`` names, in the contradicted verdict, what beat the claim,
    ``untested`` why a comparison without a finite standard error cannot be judged."""
    if not comparisons:
        return "untested"
    if not all(math.isfinite(se) for _, se in comparisons):
        return f"untested ({untested})"
    wins = [d > 2 * se for d, se in comparisons]
    if any(d < -2 * se for d, se in comparisons):
        return f"contradicted ({worse})"
    if all(wins):
        return "reproduced"
    return "partially" if any(wins) else "not reproduced (no difference beyond 2 SE)"


def proportion_difference(p_a: float, p_b: float, n_a: int, n_b: int) -> tuple[float, float]:
    """``(p_a - p_b, se)`` for two rates over ``n_a`` and ``n_b`` independent 0/1 outcomes.

    se = sqrt(p_a (1 - p_a) / n_a + p_b (1 - p_b) / n_b), the unpaired binomial standard error (conservative when
    both rates come from the same rows, where the paired error is smaller).
    """
    if n_a < 1 or n_b < 1:
        raise ValueError(f"n_a={n_a}, n_b={n_b}: both must be >= 1")
    se = math.sqrt(p_a * (1.0 - p_a) / n_a + p_b * (1.0 - p_b) / n_b)
    return p_a - p_b, se
