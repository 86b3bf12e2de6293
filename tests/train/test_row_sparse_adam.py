"""RowSparseAdam equals torch.optim.SparseAdam (the oracle) step for step, bit for bit: row-sparse and
element-sparse gradients, repeated indices, empty gradients, maximize, a changing lr; and their state dicts
are interchangeable."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsexc.train.row_sparse_adam import RowSparseAdam


def _grad(shape, sparse_dim, nnz, generator):
    """A random uncoalesced sparse COO gradient (indices may repeat; nnz may be 0)."""
    indices = torch.stack([torch.randint(0, shape[d], (nnz,), generator=generator) for d in range(sparse_dim)])
    values = torch.randn((nnz, *shape[sparse_dim:]), generator=generator, dtype=torch.float64)
    return torch.sparse_coo_tensor(indices, values, shape, check_invariants=True)


def _run(optimizer_cls, shapes, steps, seed, maximize=False):
    generator = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(shape, generator=generator, dtype=torch.float64)) for shape, _ in shapes]
    optimizer = optimizer_cls(params, lr=0.05, betas=(0.8, 0.95), eps=1e-6, maximize=maximize)
    for step in range(steps):
        for q, (shape, sparse_dim) in zip(params, shapes):
            q.grad = _grad(shape, sparse_dim, int(torch.randint(0, 7, (1,), generator=generator)), generator)
        if step == 2:
            optimizer.param_groups[0]["lr"] = 0.01  # a scheduler's change reaches the step
        optimizer.step()
    return params, optimizer


SHAPES = [((9, 4), 1), ((6, 5), 2), ((7,), 1)]  # rows of a weight, single weights, a bias


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), maximize=st.booleans())
def test_equals_torch_sparse_adam_bit_for_bit(seed, maximize):
    ours, _ = _run(RowSparseAdam, SHAPES, 6, seed, maximize)
    theirs, _ = _run(torch.optim.SparseAdam, SHAPES, 6, seed, maximize)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)


def test_state_dicts_are_interchangeable():
    params, optimizer = _run(torch.optim.SparseAdam, SHAPES, 3, 7)
    twin = [torch.nn.Parameter(q.detach().clone()) for q in params]
    ours = RowSparseAdam(twin, lr=0.05)
    ours.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # (loading may share the moment tensors)
    generator = torch.Generator().manual_seed(1)
    for q, r, (shape, sparse_dim) in zip(params, twin, SHAPES):
        q.grad = _grad(shape, sparse_dim, 5, generator)
        r.grad = q.grad.clone()
    optimizer.step()
    ours.step()
    for a, b in zip(params, twin):
        assert torch.equal(a, b)
    assert ours.state_dict()["state"][0]["step"] == 4


def test_untouched_entries_do_not_move_and_dense_gradients_are_refused():
    q = torch.nn.Parameter(torch.ones(5, 3))
    optimizer = RowSparseAdam([q], lr=0.1)
    q.grad = torch.sparse_coo_tensor(torch.tensor([[1, 3, 1]]), torch.ones(3, 3), (5, 3))
    optimizer.step()
    moved = (q.detach() != 1).any(dim=1)
    assert moved.tolist() == [False, True, False, True, False]
    assert torch.equal(optimizer.state[q]["exp_avg"][0], torch.zeros(3))
    q.grad = torch.ones(5, 3)
    with pytest.raises(RuntimeError, match="dense gradients"):
        optimizer.step()
