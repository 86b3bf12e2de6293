"""``all_reduce_sparse_mean`` on 2 gloo ranks equals the mean of the densified gradients, whatever each rank
holds (different entry counts, repeated indices, no gradient at all, a dense gradient), for row-sparse and
element-sparse ones; sparse in, sparse out, and dense when any rank's gradient is dense."""

from __future__ import annotations

import numpy as np
import torch

from sparsexc.distributed import rank, spawn
from sparsexc.distributed.sparse_gradients import all_reduce_sparse_mean

SHAPE = (7, 3)
DENSE_RESULTS = ("mixed", "dense_and_none")


def _coo(indices, values, shape):
    return torch.sparse_coo_tensor(indices, values, shape, check_invariants=True)


def _grads():
    """Per rank: a row-sparse gradient (uncoalesced, row 4 twice on rank 0), an element-sparse one (sparse_dim 2),
    a bias-like 1-d one, and one only rank 1 has."""
    g = torch.Generator().manual_seed(0)
    rows = [torch.tensor([[4, 1, 4]]), torch.tensor([[0, 4, 6, 2, 3]])]
    row_sparse = [_coo(i, torch.randn(i.shape[1], 3, generator=g, dtype=torch.float64), SHAPE) for i in rows]
    cells = [torch.tensor([[0, 6], [2, 1]]), torch.tensor([[6], [1]])]
    element_sparse = [_coo(i, torch.randn(i.shape[1], generator=g, dtype=torch.float64), SHAPE) for i in cells]
    bias = [
        _coo(torch.tensor([[1, 5]]), torch.tensor([1.0, 2.0], dtype=torch.float64), (7,)),
        _coo(torch.tensor([[5]]), torch.tensor([4.0], dtype=torch.float64), (7,)),
    ]
    only_one = [None, row_sparse[1] * 3]
    # a marked parameter read whole by a head gets a dense gradient: mixed with a sparse one, or with none
    mixed = [row_sparse[0], torch.randn(SHAPE, generator=g, dtype=torch.float64)]
    dense_and_none = [None, torch.randn(SHAPE, generator=g, dtype=torch.float64)]
    return {
        "row_sparse": row_sparse,
        "element_sparse": element_sparse,
        "bias": bias,
        "only_one": only_one,
        "mixed": mixed,
        "dense_and_none": dense_and_none,
    }


def _reduce():
    me = rank()
    out = {}
    for name, grads in _grads().items():
        param = torch.zeros(grads[1].shape, dtype=torch.float64)
        got = all_reduce_sparse_mean(grads[me], param)
        layout_ok = not got.is_sparse if name in DENSE_RESULTS else got.is_sparse and got.is_coalesced()
        out[name] = (layout_ok, got.to_dense().numpy())
    out["none"] = all_reduce_sparse_mean(None, torch.zeros(SHAPE))
    return out


def _mismatch():
    grads = _grads()
    # rank 0 row-sparse, rank 1 element-sparse: the same parameter cannot have both
    try:
        all_reduce_sparse_mean([grads["row_sparse"][0], grads["element_sparse"][1]][rank()], torch.zeros(SHAPE))
    except ValueError as exc:
        return str(exc)
    return None


def test_mean_over_two_ranks_equals_the_dense_mean():
    results = spawn(_reduce, 2)
    for name, grads in _grads().items():
        want = sum(g.to_dense() for g in grads if g is not None).numpy() / 2
        for r in results:
            layout_ok, got = r[name]
            assert layout_ok, name
            np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=name)
    assert results[0]["none"] is None and results[1]["none"] is None


def test_different_sparse_dims_are_a_clear_error():
    for message in spawn(_mismatch, 2):
        assert message is not None and "different sparse dims" in message


def test_one_process_returns_the_gradient_itself():
    grad = _grads()["row_sparse"][0]
    assert all_reduce_sparse_mean(grad, torch.zeros(SHAPE)) is grad
