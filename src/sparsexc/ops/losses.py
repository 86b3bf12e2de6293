"""The sparsemax loss (Martins & Astudillo, 2016) for class ids, multi-label and label-proportion targets."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ._targets import as_label_proportions
from .sparsemax import _check_algorithm, project

__all__ = ["SparsemaxLoss", "sparsemax_loss"]

_REDUCTIONS = ("none", "sum", "mean")


class SparsemaxLossFunction(torch.autograd.Function):
    """Per-row sparsemax loss; the backward pass reuses the forward's projection: grad = p - q."""

    @staticmethod
    def forward(
        ctx,
        z: Tensor,
        rows: Tensor,
        cols: Tensor,
        q: Tensor,
        non_empty: Tensor,
        algorithm: str,
        k: int | None,
    ) -> Tensor:
        projection, z_rows = project(z, -1, algorithm, k)
        p, tau, shift = projection.p, projection.tau, projection.shift
        # L = 1/2 |q - p|^2 + sum_j q_j (tau - z_j)_+ : equal to -q.z + 1/2 sum_{j in S}(z_j^2 - tau^2)
        # + 1/2 |q|^2 (use z_j = p_j + tau on S), but a sum of non-negative terms in shifted coordinates,
        # so it stays accurate for large scores and is exactly 0 when p = q is a one-hot vector.
        index, mask = projection.support_index, projection.support_mask
        if index is not None and mask is not None:
            on_support = p.gather(1, index) * mask
            p_squared = on_support.square().sum(dim=1)
        else:
            p_squared = torch.linalg.vector_norm(p, dim=1).square()
        p_label = p[rows, cols]
        z_label = z_rows[rows, cols] - shift[rows]
        per_label = 0.5 * ((q - p_label).square() - p_label.square()) + q * (tau[rows] - z_label).clamp(min=0)
        loss = 0.5 * p_squared + torch.zeros_like(p_squared).index_add_(0, rows, per_label)
        # |p|^2 - sum over labels of p^2 is the unlabelled part of |p|^2 >= 0, up to rounding
        loss = loss.clamp(min=0)
        if projection.nonfinite_rows is not None:
            loss = torch.where(projection.nonfinite_rows, float("nan"), loss)
        loss = torch.where(non_empty, loss, 0)
        ctx.save_for_backward(p, rows, cols, q, non_empty)
        ctx.dtype = z.dtype
        return loss.to(z.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        p, rows, cols, q, non_empty = ctx.saved_tensors
        weight = torch.where(non_empty, grad_output.to(p.dtype), 0)
        grad = p * weight[:, None]
        grad.index_put_((rows, cols), -q * weight[rows], accumulate=True)
        return grad.to(ctx.dtype), None, None, None, None, None, None


def sparsemax_loss(
    z: Tensor,
    target: object,
    reduction: str = "mean",
    ignore_empty: bool = False,
    *,
    algorithm: str = "auto",
    k: int | None = None,
) -> Tensor:
    r"""Sparsemax loss of scores ``z`` (B, C) against label proportions ``q`` built from ``target``.

    .. math::
        L(z; q) = -q^\top z + \tfrac12 \sum_{j \in S(z)} (z_j^2 - \tau(z)^2) + \tfrac12 \|q\|^2
                = \tfrac12 \|q - p\|^2 + \sum_j q_j (\tau(z) - z_j)_+ ,

    with :math:`p = \mathrm{sparsemax}(z) = [z - \tau]_+` and :math:`S` its support. It is convex,
    :math:`\ge 0`, zero exactly when :math:`p = q`, and its gradient is :math:`p - q`. For a single
    label (q one-hot) it is the paper's loss; with ``q = y / |y|_1`` it is the multi-label version.

    Parameters
    ----------
    z : Tensor (B, C), floating point
        Scores. Entries of -inf mask classes out. A row whose maximum is not finite (a NaN, +inf, or
        only -inf) gets a NaN loss.
    target
        One of: class ids, LongTensor (B,); a dense (B, C) multi-hot or proportion matrix (any
        non-negative numbers, bool included); a CSR label batch ``(indices, offsets)`` (all weights 1),
        ``(indices, offsets, values)``, an object with ``indices`` and ``offsets`` attributes (such as
        the heads' ``LabelBatch``), or a torch sparse CSR/COO tensor (B, C). Each row is normalised to
        ``q = y / |y|_1``. The CSR forms never build a dense (B, C) target.
    reduction : {"none", "sum", "mean"}
        ``"none"``: per-row losses (B,); ``"sum"``; ``"mean"``: the sum divided by the number of rows
        that have labels.
    ignore_empty : bool
        A row without labels is an error unless this is True; then it contributes 0 (and no gradient)
        and is left out of the mean's denominator (a batch of only empty rows has mean 0).
    algorithm, k
        How the projection is computed (see :func:`sparsexc.ops.sparsemax`).

    Returns
    -------
    Tensor
        Scalar, or (B,) for ``reduction="none"``, in the dtype of ``z``.

    Notes
    -----
    The backward pass reuses the forward's projection (grad = p - q, no second projection). Double
    backward is not supported.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, _REDUCTIONS))}; got {reduction!r}")
    if not isinstance(z, Tensor) or not z.is_floating_point() or z.dim() != 2:
        found = f"shape {tuple(z.shape)} of dtype {z.dtype}" if isinstance(z, Tensor) else type(z).__name__
        raise ValueError(f"z must be a 2-d floating-point tensor of scores (batch, n_labels); got {found}")
    _check_algorithm(algorithm, k)
    n_rows, n_cols = z.shape
    work_dtype = z.dtype if z.dtype in (torch.float32, torch.float64) else torch.float32
    labels = as_label_proportions(target, n_rows, n_cols, work_dtype, z.device)
    if not ignore_empty and not bool(labels.non_empty.all()):
        empty = (~labels.non_empty).nonzero().squeeze(1)[:5].tolist()
        raise ValueError(
            f"target rows without any label (first ones: {empty}); the sparsemax loss needs at least "
            "one label per row, or pass ignore_empty=True to leave such rows out"
        )
    losses = SparsemaxLossFunction.apply(z, labels.rows, labels.cols, labels.q, labels.non_empty, algorithm, k)
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "sum":
        return total
    return total / labels.non_empty.sum().clamp(min=1).to(total.dtype)


class SparsemaxLoss(nn.Module):
    """Module form of :func:`sparsemax_loss`; ``forward(z, target)``."""

    def __init__(
        self, reduction: str = "mean", ignore_empty: bool = False, *, algorithm: str = "auto", k: int | None = None
    ) -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(map(repr, _REDUCTIONS))}; got {reduction!r}")
        _check_algorithm(algorithm, k)
        self.reduction, self.ignore_empty, self.algorithm, self.k = reduction, ignore_empty, algorithm, k

    def forward(self, z: Tensor, target: object) -> Tensor:
        return sparsemax_loss(z, target, self.reduction, self.ignore_empty, algorithm=self.algorithm, k=self.k)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, ignore_empty={self.ignore_empty}, algorithm={self.algorithm!r}"
