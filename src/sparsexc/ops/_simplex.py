"""Euclidean projection of the rows of a matrix onto the probability simplex (the sparsemax forward pass).

For a row z in R^K the projection is p = [z - tau]_+ where the threshold tau solves
``f(tau) = sum_j (z_j - tau)_+ - 1 = 0``. Three exact ways to find tau are implemented:

``sort``
    Algorithm 1 of Martins & Astudillo (2016): sort the row, ``tau = max_m (sum of the m largest - 1) / m``
    (the maximum is reached at m = |support|, and every other m gives a lower bound). O(K log K).
``topk``
    The same on the k largest entries only. The result is exact when the k-th largest entry is <= the
    threshold found (then nothing outside the top k can be in the support); rows that fail this
    certificate are redone with 2k (entmax's doubling schedule), up to a full sort.
``bisect``
    A linear-time threshold search. Starting from a lower bound of tau (``max - 1``, or a better one
    supplied by the caller), it takes Newton steps on the convex, decreasing, piecewise-linear f, which
    are Michelot's pivoting steps ``tau <- (sum_{z_j > tau} z_j - 1) / |{z_j > tau}|``. From below, each
    step stays a lower bound and only removes candidates; the iteration stops when the candidate set no
    longer changes, and the last step is then the exact tau computed on the found support. Candidates
    are compacted into a narrower matrix whenever they fill at most an eighth of it, so later steps
    touch only the survivors; once they fit in 256 columns (or after 50 steps) they are sorted, which
    is exact as they include the support. (The name is the API's; it is not a halving bisection:
    Newton steps from below are safe here and take a few steps.)

``algorithm="auto"`` picks by row length K (thresholds measured on CPU, see the constants below).

Every algorithm works on rows shifted by their maximum (``z - max``), so ties, huge (1e30) and tiny
magnitudes keep full precision, and the result is the same up to rounding. Rows whose maximum is not
finite are handled once, up front: a row with a NaN gives a NaN row, a row of only -inf gives zeros, and
a row with +inf entries gives the uniform distribution on them (the limit of the projection).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "ALGORITHMS",
    "AUTO_BISECT_MAX_K",
    "AUTO_SORT_MAX_K",
    "AUTO_TOPK_K",
    "SimplexProjection",
    "SimplexSupport",
    "project_rows",
]

ALGORITHMS = ("auto", "sort", "topk", "bisect")

#: ``algorithm="auto"``: a full sort up to this row length, ...
AUTO_SORT_MAX_K = 64
#: ... ``bisect`` from there up to this length, and above it ``topk`` with k = ``AUTO_TOPK_K``, followed
#: for the rows whose support is larger by ``bisect`` started from the lower bound the top-k gave.
#: Measured with ``python benchmarks/sparsemax_speed.py --thresholds --threads 1`` (batch 256, float32,
#: CPU; sharp and flat score rows): see benchmarks/results/sparsemax_speed.md.
AUTO_BISECT_MAX_K = 4096
#: First partial-sort size of ``algorithm="auto"`` on long rows; the default ``k`` of ``algorithm="topk"``.
AUTO_TOPK_K = 64
# Michelot steps before the remaining rows are finished by sorting their (few) candidates.
_MAX_PIVOT_STEPS = 50
# Once the candidates fit in this many columns, they are sorted rather than stepped through.
_SORT_SURVIVORS_MAX_K = 256
# Candidates are compacted into a narrower matrix once they fill at most 1/_COMPACT_RATIO of it
# (compaction costs more per entry than a dense pass, so it pays only when the set is small).
_COMPACT_RATIO = 8


@dataclass
class SimplexProjection:
    """The projection of N rows of length K, and what the backward pass and the loss reuse.

    Attributes
    ----------
    p : Tensor (N, K)
        The projections (rows sum to 1).
    tau : Tensor (N,)
        Threshold relative to ``shift``: ``p = [z - shift - tau]_+``.
    shift : Tensor (N,)
        The row maximum (0 on rows whose maximum is not finite).
    support_index, support_mask : Tensor (N, W) or None
        When not None, columns ``support_index[i][support_mask[i]]`` are exactly the support of row i
        (padding entries have mask False and may repeat columns). When None, ``dense_support`` is set.
    dense_support : Tensor (N, K) bool or None
        The support as a dense mask (used when the support is too wide to list).
    nan_rows : Tensor (N,) bool or None
        Rows that contained a NaN (None when there are none).
    nonfinite_rows : Tensor (N,) bool or None
        Rows whose maximum is not finite: NaN, +inf or all -inf (None when there are none).
    """

    p: Tensor
    tau: Tensor
    shift: Tensor
    support_index: Tensor | None
    support_mask: Tensor | None
    dense_support: Tensor | None
    nan_rows: Tensor | None
    nonfinite_rows: Tensor | None = None

    def support(self) -> SimplexSupport:
        """The support alone (what the Jacobian reads), without the (N, K) projections."""
        return SimplexSupport(self.support_index, self.support_mask, self.dense_support, self.nan_rows)


@dataclass
class SimplexSupport:
    """The support of a :class:`SimplexProjection`: all that the sparsemax Jacobian needs.

    The fields are those of :class:`SimplexProjection`: either ``support_index`` and ``support_mask`` (the
    support listed per row) or ``dense_support`` (a dense mask) is set; ``nan_rows`` marks the rows with a NaN.
    """

    support_index: Tensor | None
    support_mask: Tensor | None
    dense_support: Tensor | None
    nan_rows: Tensor | None


@dataclass
class _Candidates:
    """Candidate entries of some rows that include each row's support, and each row's threshold.

    ``values`` are shifted (z - max), padded with -inf; ``index`` gives their columns (None: all K
    columns in order); ``rows`` the rows of the full matrix they belong to (None: all rows, in order).
    """

    values: Tensor
    index: Tensor | None
    tau: Tensor
    rows: Tensor | None = None
    sorted: bool = False  # values sorted descending, so each support is a prefix


def _tau_from_sorted(values: Tensor) -> Tensor:
    """``max_m (sum of the first m values - 1) / m`` over the columns of descending-sorted rows.

    With all K entries this is the exact threshold; with the k largest it is a lower bound that is
    exact whenever the support has fewer than k entries.
    """
    ranks = torch.arange(1, values.shape[1] + 1, device=values.device, dtype=values.dtype)
    return ((values.cumsum(dim=1) - 1) / ranks).amax(dim=1)


def _by_sort(z: Tensor, shift: Tensor) -> _Candidates:
    values, index = torch.sort(z, dim=1, descending=True)
    values = values - shift[:, None]
    return _Candidates(values, index, _tau_from_sorted(values), sorted=True)


def _top_k(z: Tensor, shift: Tensor, k: int) -> tuple[_Candidates, Tensor]:
    """The k largest entries per row, the threshold they give, and which rows it is certified exact for."""
    values, index = torch.topk(z, k, dim=1, sorted=True)
    values = values - shift[:, None]
    tau = _tau_from_sorted(values)
    # exact when the k-th largest is not above tau: nothing outside the top k can be in the support
    certified = torch.ones_like(tau, dtype=torch.bool) if k == z.shape[1] else values[:, -1] <= tau
    return _Candidates(values, index, tau, sorted=True), certified


def _split(group: _Candidates, certified: Tensor, rows: Tensor | None) -> tuple[_Candidates, Tensor, Tensor]:
    """The certified rows of ``group`` (as a group of their own), and the others' local and global row ids."""
    keep = certified.nonzero().squeeze(1)
    redo = (~certified).nonzero().squeeze(1)
    assert group.index is not None  # top-k candidates list their columns
    kept = _Candidates(
        group.values[keep],
        group.index[keep],
        group.tau[keep],
        keep if rows is None else rows[keep],
        sorted=True,
    )
    return kept, redo, (redo if rows is None else rows[redo])


def _by_topk(z: Tensor, shift: Tensor, k: int, rows: Tensor | None = None) -> list[_Candidates]:
    """Top-k with doubling: a list of candidate groups, one per k that was needed."""
    group, certified = _top_k(z, shift, min(k, z.shape[1]))
    if bool(certified.all()):
        group.rows = rows
        return [group]
    kept, redo, redo_rows = _split(group, certified, rows)
    return [kept] + _by_topk(z[redo], shift[redo], 2 * k, redo_rows)


def _compact(
    values: Tensor, index: Tensor | None, mask: Tensor, counts: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Move the masked entries of each row to the front of a (N, width) matrix padded with -inf.

    Returns the new values, their columns, and the count per row. Works on flat positions (nonzero,
    bincount, 1-d index_select / index_copy), which on CPU is much faster than 2-d advanced indexing
    or a row-wise sum of the boolean mask.
    """
    n_rows, n_cols = values.shape
    flat = mask.reshape(-1).nonzero().squeeze(1)  # row-major, so each row's entries are consecutive
    row = torch.div(flat, n_cols, rounding_mode="floor")
    counts = torch.bincount(row, minlength=n_rows) if counts is None else counts.long()
    width = int(counts.max())
    starts = counts.cumsum(0) - counts
    target = row * width + torch.arange(flat.numel(), device=flat.device) - starts[row]
    new_values = values.new_full((n_rows * width,), float("-inf"))
    new_values.index_copy_(0, target, values.reshape(-1).index_select(0, flat))
    new_index = torch.zeros(n_rows * width, dtype=torch.long, device=values.device)
    new_index.index_copy_(0, target, flat - row * n_cols if index is None else index.reshape(-1).index_select(0, flat))
    return new_values.view(n_rows, width), new_index.view(n_rows, width), counts


def _by_pivot(z: Tensor, shift: Tensor, tau: Tensor | None = None, rows: Tensor | None = None) -> _Candidates:
    """Michelot / Newton threshold search from a lower bound ``tau`` (shifted; default ``max - 1``)."""
    n_rows, n_cols = z.shape
    eps = torch.finfo(z.dtype).eps
    # tau >= max - 1, since the max entry gets p <= 1. (On flat rows the first Newton step below
    # improves it to (sum - 1) / K.)
    tau = z.new_full(shift.shape, -1.0) if tau is None else tau
    # Rounding slack of thresholds computed before the shift (shifted thresholds lie in [-1, 0)).
    slack = 4 * eps * (shift.abs() + 2)

    # Pruning pass on the unshifted rows (no full-size copy): the slack makes the candidate set a
    # superset of {z - shift > tau}, which is all the Newton steps below need. Whether to compact is
    # judged on every 16th column (it only picks the route; both are exact).
    threshold = (shift + tau - slack)[:, None]
    sampled = (z[:, ::16] > threshold).sum(dim=1, dtype=torch.int32).max()
    index: Tensor | None = None
    if int(sampled) * 16 <= n_cols // _COMPACT_RATIO:
        values, index, _ = _compact(z, None, z > threshold)
        values -= shift[:, None]
    else:
        values = z - shift[:, None]

    previous = torch.full((n_rows,), n_cols + 1, dtype=torch.long, device=z.device)
    for _ in range(_MAX_PIVOT_STEPS):
        if values.shape[1] <= _SORT_SURVIVORS_MAX_K:
            break  # few survivors: one sort finishes faster than more steps
        mask = values > tau[:, None]
        counts = mask.sum(dim=1)
        if int(counts.max()) <= values.shape[1] // _COMPACT_RATIO:
            values, index, counts = _compact(values, index, mask, counts)
            mask = torch.arange(values.shape[1], device=z.device)[None, :] < counts[:, None]
        step = (torch.where(mask, values, 0).sum(dim=1) - 1) / counts.clamp(min=1)
        # max() keeps the iteration monotone under rounding, so it always terminates
        tau = torch.maximum(tau, step)
        if bool((counts == previous).all()):
            return _Candidates(values, index, tau, rows)
        previous = counts
    # The survivors {z > tau} of a lower bound tau hold every support, so sorting them is exact.
    # (Reached when they are few, or after many steps on adversarially spaced scores.)
    values = torch.where(values > tau[:, None], values, float("-inf"))
    values, order = torch.sort(values, dim=1, descending=True)
    index = order if index is None else index.gather(1, order)
    return _Candidates(values, index, _tau_from_sorted(values), rows, sorted=True)


def _auto(z: Tensor, shift: Tensor) -> list[_Candidates]:
    n_cols = z.shape[1]
    if n_cols <= AUTO_SORT_MAX_K:
        return [_by_sort(z, shift)]
    if n_cols <= AUTO_BISECT_MAX_K:
        return [_by_pivot(z, shift)]
    group, certified = _top_k(z, shift, AUTO_TOPK_K)
    if bool(certified.all()):
        return [group]
    kept, redo, _ = _split(group, certified, None)
    # The top-k threshold is a lower bound for the rows it did not certify: start the search there.
    rest = z if redo.numel() == z.shape[0] else z[redo]
    return [kept, _by_pivot(rest, shift[redo], group.tau[redo], redo)]


def _assemble(
    groups: list[_Candidates], n_rows: int, n_cols: int, like: Tensor
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None]:
    """Scatter every group's probabilities into one (N, K) matrix and collect the support."""
    tau = like.new_empty(n_rows)
    pieces = []
    for group in groups:
        if group.values.shape[0] == 0:
            continue
        # in place: the candidate values are this module's own temporaries
        probs = group.values.sub_(group.tau[:, None]).clamp_(min=0)
        support = probs > 0
        if group.sorted and group.index is not None and probs.shape[1] > 0:  # sorted groups list their columns
            # each support is a prefix: drop the columns no row needs
            width = max(int(support.sum(dim=1).max()), 1)
            probs, support, group.index = probs[:, :width], support[:, :width], group.index[:, :width]
        pieces.append((group, probs, support))
        if group.rows is None:
            tau = group.tau
        else:
            tau[group.rows] = group.tau

    if len(pieces) == 1 and pieces[0][0].index is None and pieces[0][0].rows is None:
        _, probs, support = pieces[0]  # one dense group covering every row: no scatter needed
        return probs, tau, None, None, support

    p = like.new_zeros((n_rows, n_cols))
    dense = any(group.index is None for group, _, _ in pieces)
    width = max(probs.shape[1] for _, probs, _ in pieces)
    listed = not dense and width <= max(n_cols // 4, 1)
    support_index = torch.zeros((n_rows, width), dtype=torch.long, device=like.device) if listed else None
    support_mask = torch.zeros((n_rows, width), dtype=torch.bool, device=like.device) if listed else None
    for group, probs, support in pieces:
        rows = group.rows
        if group.index is None:
            p[rows] = probs  # a dense group always comes with its rows here (see the early return)
        elif rows is None:
            p.scatter_add_(1, group.index, probs)  # add, not write: padding repeats columns with 0
        else:
            p.index_put_((rows[:, None], group.index), probs, accumulate=True)
        if support_index is not None and support_mask is not None and group.index is not None:  # listed
            sel = slice(None) if rows is None else rows
            w = probs.shape[1]
            support_index[sel, :w] = group.index
            support_mask[sel, :w] = support
    return p, tau, support_index, support_mask, (None if listed else p > 0)


def project_rows(z: Tensor, algorithm: str = "auto", k: int | None = None) -> SimplexProjection:
    """Project every row of ``z`` (N, K), a float32 or float64 matrix, onto the probability simplex."""
    n_rows, n_cols = z.shape
    if z.numel() == 0:  # no rows, or rows of length 0 (which have no distribution to return)
        return SimplexProjection(
            z.clone(),
            z.new_zeros(n_rows),
            z.new_zeros(n_rows),
            None,
            None,
            torch.zeros(z.shape, dtype=torch.bool, device=z.device),
            None,
        )
    shift = z.amax(dim=1)
    finite = torch.isfinite(shift)
    special = None if bool(finite.all()) else ~finite
    work = z
    if special is not None:
        # Solve the other rows undisturbed, then overwrite these from their definitions.
        # Stand-in rows (0, -inf, ..., -inf) are certified at once by every algorithm.
        work = z.clone()
        work[special] = float("-inf")
        work[special, 0] = 0
        shift = torch.where(special, 0, shift)

    if algorithm == "sort":
        groups = [_by_sort(work, shift)]
    elif algorithm == "topk":
        groups = _by_topk(work, shift, AUTO_TOPK_K if k is None else k)
    elif algorithm == "bisect":
        groups = [_by_pivot(work, shift)]
    else:
        groups = _auto(work, shift)
    p, tau, support_index, support_mask, dense_support = _assemble(groups, n_rows, n_cols, work)

    nan_rows = None
    if special is not None:
        rows = special.nonzero().squeeze(1)
        z_rows = z[rows]
        is_pos_inf = z_rows == float("inf")
        # +inf entries share the mass; a NaN row is NaN; an all -inf row is zero
        fill = is_pos_inf.to(p.dtype) / is_pos_inf.sum(dim=1, keepdim=True).clamp(min=1)
        has_nan = torch.isnan(z_rows).any(dim=1)
        fill = torch.where(has_nan[:, None], float("nan"), fill)
        p[rows] = fill
        # Their projection is locally constant (or undefined): no support for the backward pass.
        if support_mask is not None:
            support_mask[rows] = False
        if dense_support is not None:
            dense_support[rows] = False
        nan_rows = torch.zeros(n_rows, dtype=torch.bool, device=z.device)
        nan_rows[rows] = has_nan
        nan_rows = nan_rows if bool(has_nan.any()) else None
    return SimplexProjection(p, tau, shift, support_index, support_mask, dense_support, nan_rows, special)
