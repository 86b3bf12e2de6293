"""Sparsemax: the Euclidean projection onto the probability simplex, with a closed-form backward pass."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._simplex import ALGORITHMS, SimplexProjection, SimplexSupport, project_rows

__all__ = ["Sparsemax", "sparsemax"]


def _check_algorithm(algorithm: str, k: int | None) -> None:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(map(repr, ALGORITHMS))}; got {algorithm!r}")
    if k is not None:
        if algorithm != "topk":
            raise ValueError(f"k is only used by algorithm='topk'; got k={k!r} with algorithm={algorithm!r}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int; got {k!r}")


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # half precision is projected in float32 and rounded once at the end
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _as_rows(x: Tensor, dim: int) -> Tensor:
    """``x`` with ``dim`` moved last, flattened to (N, K) contiguous rows."""
    moved = x.movedim(dim, -1)
    return moved.reshape(math.prod(moved.shape[:-1]), moved.shape[-1]).contiguous()


def _from_rows(rows: Tensor, like: Tensor, dim: int) -> Tensor:
    moved_shape = like.movedim(dim, -1).shape
    return rows.reshape(moved_shape).movedim(-1, dim)


def project(z: Tensor, dim: int, algorithm: str, k: int | None) -> tuple[SimplexProjection, Tensor]:
    """Validate, move ``dim`` last, upcast half precision and project: (projection, the (N, K) rows used)."""
    if not isinstance(z, Tensor) or not z.is_floating_point():
        raise TypeError(
            f"sparsemax expects a floating-point tensor; got {type(z).__name__}"
            + (f" of dtype {z.dtype}" if isinstance(z, Tensor) else "")
        )
    if z.dim() == 0:
        raise ValueError("sparsemax needs at least one dimension to normalise over; got a 0-d tensor")
    if not -z.dim() <= dim < z.dim():
        raise ValueError(f"dim must be in [{-z.dim()}, {z.dim() - 1}] for a {z.dim()}-d tensor; got {dim}")
    _check_algorithm(algorithm, k)
    rows = _as_rows(z, dim).to(_compute_dtype(z.dtype))
    return project_rows(rows, algorithm, k), rows


def support_jvp(grad: Tensor, support: SimplexSupport) -> Tensor:
    """``J v`` for the sparsemax Jacobian ``J = diag(s) - s s^T / |S|``, i.e. ``s * (v - mean of v over S)``.

    ``grad`` is (N, K). Only the support is read (no sort); built from differentiable ops in ``grad``,
    so the result can be differentiated again (the Jacobian itself is piecewise constant in z).
    """
    index, mask = support.support_index, support.support_mask
    if index is not None and mask is not None:
        picked = torch.where(mask, grad.gather(1, index), 0)
        mean = picked.sum(dim=1, keepdim=True) / mask.sum(dim=1, keepdim=True).clamp(min=1)
        # scatter_add, not scatter: padding entries may repeat a column, and they carry 0
        out = torch.zeros_like(grad).scatter_add_(1, index, torch.where(mask, picked - mean, 0))
    else:
        mask = support.dense_support
        assert mask is not None  # a support not listed per row is a dense mask
        picked = torch.where(mask, grad, 0)
        mean = picked.sum(dim=1, keepdim=True) / mask.sum(dim=1, keepdim=True).clamp(min=1)
        out = torch.where(mask, grad - mean, 0)
    if support.nan_rows is not None:
        out = torch.where(support.nan_rows[:, None], float("nan"), out)
    return out


class SparsemaxFunction(torch.autograd.Function):
    """Autograd wrapper: the forward pass projects, the backward pass applies the closed-form Jacobian."""

    @staticmethod
    def forward(ctx, z: Tensor, dim: int, algorithm: str, k: int | None) -> Tensor:
        projection, _ = project(z, dim, algorithm, k)
        ctx.dim, ctx.dtype = dim, z.dtype
        ctx.support = projection.support()  # the support alone: the (N, K) projections are not kept
        return _from_rows(projection.p.to(z.dtype), z, dim)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        grad = _as_rows(grad_output, ctx.dim).to(_compute_dtype(ctx.dtype))
        grad_z = support_jvp(grad, ctx.support).to(ctx.dtype)
        return _from_rows(grad_z, grad_output, ctx.dim), None, None, None


def sparsemax(z: Tensor, dim: int = -1, *, algorithm: str = "auto", k: int | None = None) -> Tensor:
    r"""Sparsemax: the Euclidean projection of ``z`` onto the probability simplex along ``dim``.

    .. math:: \mathrm{sparsemax}(z) = \arg\min_{p \in \Delta^{K-1}} \|p - z\|^2 = [z - \tau(z)]_+,

    where the threshold :math:`\tau` solves :math:`\sum_j (z_j - \tau)_+ = 1`. Unlike softmax the result
    has exact zeros: the support is :math:`S = \{j : z_j > \tau\}`.

    Parameters
    ----------
    z : Tensor, float64, float32, float16 or bfloat16, any shape
        Scores. Half-precision inputs are projected in float32 and the result is rounded to the input
        dtype. Entries equal to -inf get probability 0 (masking); a slice of only -inf gives zeros; a
        slice containing NaN gives NaN; +inf entries share the whole mass equally (the limit).
    dim : int
        The dimension to normalise over.
    algorithm : {"auto", "sort", "topk", "bisect"}
        How the threshold is found; all are exact and agree up to rounding.
        ``"sort"``: full sort, O(K log K). ``"topk"``: sort of the ``k`` largest, doubling ``k`` for
        slices whose support is not shown to lie in the top k. ``"bisect"``: linear-time threshold
        search (Michelot/Newton steps on tau from a lower bound, on a shrinking candidate set, ending
        with tau recomputed exactly on the found support). ``"auto"``: ``"sort"`` for K <= 64
        (``AUTO_SORT_MAX_K``), ``"bisect"`` for K <= 4096 (``AUTO_BISECT_MAX_K``), and above that the
        top 64 (``AUTO_TOPK_K``) by partial sort, followed for the slices whose support is larger by
        ``"bisect"`` started from the top-k's lower bound on tau. These thresholds were measured on CPU
        (``benchmarks/sparsemax_speed.py --thresholds``).
    k : int, optional
        First partial-sort size for ``algorithm="topk"`` (default 64). Not accepted by other algorithms.

    Returns
    -------
    Tensor, same shape and dtype as ``z``
        Non-negative, summing to 1 along ``dim``.

    Notes
    -----
    The backward pass is the Jacobian-vector product :math:`J v = s \odot (v - \bar v_S)` with
    :math:`s` the support indicator and :math:`\bar v_S` the mean of :math:`v` over the support; it
    reads only the support saved by the forward pass. Double backward works (it is linear in the
    incoming gradient; the second derivative in ``z`` is zero almost everywhere).
    """
    return SparsemaxFunction.apply(z, dim, algorithm, k)


class Sparsemax(nn.Module):
    """Module form of :func:`sparsemax` along ``dim`` (see there for ``algorithm`` and ``k``)."""

    def __init__(self, dim: int = -1, *, algorithm: str = "auto", k: int | None = None) -> None:
        super().__init__()
        _check_algorithm(algorithm, k)
        self.dim, self.algorithm, self.k = dim, algorithm, k

    def forward(self, z: Tensor) -> Tensor:
        return sparsemax(z, self.dim, algorithm=self.algorithm, k=self.k)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, algorithm={self.algorithm!r}" + (f", k={self.k}" if self.k is not None else "")
