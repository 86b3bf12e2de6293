"""The mean over ranks of sparse COO gradients, by all-gather (gloo and NCCL alike).

DistributedDataParallel's buckets hold dense gradients: a parameter whose ``.grad`` is a sparse COO tensor
(:class:`sparsexc.ops.sparse_grad.SparseGradientParameter`: the sampled heads' output rows, the linear
model's feature rows, a sparse first layer) cannot go through them, and NCCL has no sparse all-reduce.
So those parameters are left out of DDP and their gradients averaged here: every rank all-gathers the
others' stored entries (padded to the largest count) and sums them. The traffic is the touched entries,
O(S nnz), not the O(numel) of a dense all-reduce of the same parameter, which is the point at large C.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from sparsexc.distributed.context import is_distributed, world_size

__all__ = ["all_reduce_sparse_mean"]


def all_reduce_sparse_mean(grad: torch.Tensor | None, param: torch.Tensor) -> torch.Tensor | None:
    r"""The mean over ranks :math:`\frac1S \sum_r g_r` of ``param``'s gradients, on every rank: sparse COO
    gradients by an all-gather of their entries (coalesced result), dense ones by an all-reduce.

    A parameter marked for sparse gradients may still get a dense one from a head that reads it whole (the
    sampled heads' pairs on the linear model's transposed layer; the optimiser makes it row-sparse later):
    when any rank's gradient is dense, every rank's is densified and all-reduced.

    Parameters
    ----------
    grad : torch.Tensor or None
        This rank's gradient of ``param``'s shape: a sparse COO tensor (coalesced or not), a dense tensor, or
        None when this rank's step did not reach ``param`` (it contributes nothing; every rank must still call).
    param : torch.Tensor
        The parameter (its shape, dtype and device).

    Returns
    -------
    torch.Tensor or None
        The averaged gradient (the same on every rank), or None when no rank had one. Without a process
        group: ``grad`` itself.
    """
    if not is_distributed():
        return grad
    world, device = world_size(), param.device
    dense = grad is not None and not grad.is_sparse
    indices: torch.Tensor | None
    values: torch.Tensor | None
    if grad is not None and grad.is_sparse:
        grad = grad.coalesce()
        indices, values, sparse_dim = grad.indices(), grad.values(), grad.sparse_dim()
    else:
        indices = values = None
        sparse_dim = 0
    # every rank's entry count, sparse dims and layout, so the collectives below match
    meta = torch.tensor(
        [0 if indices is None else indices.shape[1], sparse_dim, int(dense)], dtype=torch.long, device=device
    )
    metas = [torch.empty_like(meta) for _ in range(world)]
    dist.all_gather(metas, meta)
    if any(int(m[2]) for m in metas):
        total = torch.zeros_like(param) if grad is None else grad.to_dense()
        dist.all_reduce(total)
        return total / world
    counts = [int(m[0]) for m in metas]
    dims = {int(m[1]) for m in metas} - {0}
    if not dims:
        return None
    if len(dims) > 1:
        raise ValueError(f"all_reduce_sparse_mean: the ranks' gradients have different sparse dims {sorted(dims)}")
    sparse_dim = dims.pop()
    dense_shape = tuple(param.shape[sparse_dim:])
    if indices is None or values is None:  # this rank had no gradient (the two are None together)
        indices = torch.zeros(sparse_dim, 0, dtype=torch.long, device=device)
        values = torch.zeros((0, *dense_shape), dtype=param.dtype, device=device)
    most = max(counts)
    pad = most - indices.shape[1]
    indices = torch.cat([indices, indices.new_zeros(sparse_dim, pad)], 1)
    values = torch.cat([values, values.new_zeros((pad, *dense_shape))], 0)
    all_indices = [torch.empty_like(indices) for _ in range(world)]
    all_values = [torch.empty_like(values) for _ in range(world)]
    dist.all_gather(all_indices, indices.contiguous())
    dist.all_gather(all_values, values.contiguous())
    merged_indices = torch.cat([i[:, :n] for i, n in zip(all_indices, counts)], 1)
    merged_values = torch.cat([v[:n] for v, n in zip(all_values, counts)], 0) / world
    # entries of coalesced gradients: valid indices, so the invariant check can be skipped
    return torch.sparse_coo_tensor(merged_indices, merged_values, param.shape, check_invariants=False).coalesce()
