"""Label targets of a loss as sparse label proportions: the non-zero entries of q = y / |y|_1 per row."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["LabelProportions", "as_label_proportions"]


@dataclass
class LabelProportions:
    """The non-zero entries of the target rows q (each summing to 1), in COO form.

    Attributes
    ----------
    rows, cols : LongTensor (nnz,)
        Coordinates of the labelled entries (at most one entry per (row, col)).
    q : Tensor (nnz,)
        Their proportions, positive; they sum to 1 over each non-empty row.
    non_empty : BoolTensor (B,)
        Rows that have at least one label.
    """

    rows: Tensor
    cols: Tensor
    q: Tensor
    non_empty: Tensor


def _from_csr(
    indices: Tensor,
    offsets: Tensor,
    values: Tensor | None,
    n_rows: int,
    n_cols: int,
    dtype: torch.dtype,
    device: torch.device,
) -> LabelProportions:
    if indices.dim() != 1 or offsets.dim() != 1:
        raise ValueError(
            f"target (indices, offsets) must be 1-d; got shapes {tuple(indices.shape)} and {tuple(offsets.shape)}"
        )
    if indices.dtype not in (torch.int32, torch.int64) or offsets.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"target indices and offsets must be integer tensors; got {indices.dtype} and {offsets.dtype}")
    if offsets.numel() != n_rows + 1:
        raise ValueError(
            f"target offsets must have n_rows + 1 = {n_rows + 1} entries (one row per row of z); got {offsets.numel()}"
        )
    indices, offsets = indices.to(device=device, dtype=torch.long), offsets.to(device=device, dtype=torch.long)
    sizes = offsets[1:] - offsets[:-1]
    if int(offsets[0]) != 0 or int(offsets[-1]) != indices.numel() or bool((sizes < 0).any()):
        raise ValueError(
            f"target offsets must start at 0, never decrease and end at len(indices) = {indices.numel()}; "
            f"got first {int(offsets[0])}, last {int(offsets[-1])}"
        )
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= n_cols):
        raise ValueError(
            f"target label ids must lie in [0, {n_cols}) (the number of columns of z); "
            f"got values in [{int(indices.min())}, {int(indices.max())}]"
        )
    rows = torch.repeat_interleave(torch.arange(n_rows, device=device), sizes)
    keys = rows * n_cols + indices
    if keys.numel() and torch.unique(keys).numel() != keys.numel():
        raise ValueError("target has a label repeated within a row; each (row, label) may appear once")
    if values is None:
        weights = torch.ones(indices.numel(), dtype=dtype, device=device)
    else:
        weights = values.to(device=device, dtype=dtype)
        if weights.shape != indices.shape:
            raise ValueError(
                f"target values must match indices in shape; got {tuple(weights.shape)} and {tuple(indices.shape)}"
            )
    return _normalise(rows, indices, weights, n_rows)


def _normalise(rows: Tensor, cols: Tensor, weights: Tensor, n_rows: int) -> LabelProportions:
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        raise ValueError(
            "target weights must be finite and non-negative (they are normalised to proportions q = y / |y|)"
        )
    keep = weights > 0  # explicit zeros are not labels
    rows, cols, weights = rows[keep], cols[keep], weights[keep]
    totals = torch.zeros(n_rows, dtype=weights.dtype, device=weights.device).index_add_(0, rows, weights)
    return LabelProportions(rows, cols, weights / totals[rows], totals > 0)


def as_label_proportions(
    target: object, n_rows: int, n_cols: int, dtype: torch.dtype, device: torch.device
) -> LabelProportions:
    """Read a target given in any supported form for scores of shape (n_rows, n_cols).

    Forms: class ids (LongTensor (B,)); a dense (B, C) multi-hot or proportion matrix; a CSR label
    batch ``(indices, offsets)`` or ``(indices, offsets, values)`` of tensors, or any object with
    ``indices`` and ``offsets`` attributes (e.g. the heads' ``LabelBatch``); a torch sparse CSR or COO
    tensor of shape (B, C). Weights are normalised per row, so q = y / |y|_1.
    """
    if isinstance(target, Tensor) and target.layout in (torch.sparse_csr, torch.sparse_coo):
        if tuple(target.shape) != (n_rows, n_cols):
            raise ValueError(f"sparse target must have the shape of z, {(n_rows, n_cols)}; got {tuple(target.shape)}")
        csr = target.to_sparse_csr() if target.layout == torch.sparse_coo else target
        return _from_csr(csr.col_indices(), csr.crow_indices(), csr.values(), n_rows, n_cols, dtype, device)
    if isinstance(target, (tuple, list)):
        if len(target) not in (2, 3) or not all(isinstance(t, Tensor) for t in target):
            raise TypeError("a CSR target must be a tuple (indices, offsets) or (indices, offsets, values) of tensors")
        return _from_csr(target[0], target[1], target[2] if len(target) == 3 else None, n_rows, n_cols, dtype, device)
    if not isinstance(target, Tensor) and hasattr(target, "indices") and hasattr(target, "offsets"):
        batch = target  # e.g. the heads' LabelBatch
        return _from_csr(batch.indices, batch.offsets, None, n_rows, n_cols, dtype, device)
    if not isinstance(target, Tensor):
        raise TypeError(
            f"target must be a tensor, an (indices, offsets) tuple or a sparse tensor; got {type(target).__name__}"
        )

    target = target.to(device)
    if target.dim() == 1:
        if target.is_floating_point() or target.dtype == torch.bool:
            raise TypeError(f"a 1-d target holds class ids and must be an integer tensor; got {target.dtype}")
        if target.numel() != n_rows:
            raise ValueError(f"class-id target must have one entry per row of z ({n_rows}); got {target.numel()}")
        if n_rows and (int(target.min()) < 0 or int(target.max()) >= n_cols):
            raise ValueError(
                f"class ids must lie in [0, {n_cols}) (the number of columns of z); "
                f"got values in [{int(target.min())}, {int(target.max())}]"
            )
        rows = torch.arange(n_rows, device=device)
        return LabelProportions(
            rows,
            target.long(),
            torch.ones(n_rows, dtype=dtype, device=device),
            torch.ones(n_rows, dtype=torch.bool, device=device),
        )
    if target.dim() == 2:
        if tuple(target.shape) != (n_rows, n_cols):
            raise ValueError(f"a dense target must have the shape of z, {(n_rows, n_cols)}; got {tuple(target.shape)}")
        rows, cols = torch.nonzero(target, as_tuple=True)
        return _normalise(rows, cols, target[rows, cols].to(dtype), n_rows)
    raise ValueError(f"target must be 1-d (class ids) or 2-d (dense labels); got {target.dim()} dimensions")
