"""Label-sharded output layer on 2 gloo processes: loss, gradients, logsumexp and top-k equal the unsharded
computation (SoftmaxHead's loss, torch.logsumexp, topk_lower_id_ties; top-k orders up to swaps of labels tied
within the rounding), and exact ties across the shards go to the lower id (a stable argsort)."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from _topk import assert_same_topk

from sparsexc.distributed import (
    ShardedOutputLayer,
    label_shard,
    sharded_logsumexp,
    sharded_topk,
    spawn,
)
from sparsexc.heads import SoftmaxHead
from sparsexc.heads.base import topk_lower_id_ties
from sparsexc.heads.labels import LabelBatch
from sparsexc.heads.softmax import sharded_softmax_loss

C, D, B = 11, 7, 6
# scores with exact ties inside each shard (labels 0-4, 5-10) and across them; row 0: labels 2 and 9 tie for first
TIED = np.array(
    [
        [1, 0, 3, 1, 2, 0, 1, 2, 2, 3, 0],
        [2] * C,
        [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0],
        [1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0],
        [0] * 10 + [1],
        [3, 0, 0, 0, 0, 3, 0, 0, 0, 0, 3],
    ],
    dtype=np.float64,
)
# near ties: labels 2 and 9 have equal weights, so their scores differ by rounding only (and the sharded and
# the whole products may round differently); the top-k orders must agree except for swaps within this tolerance
RTOL, ATOL = 1e-10, 1e-12


def _setup():
    torch.manual_seed(0)
    head = SoftmaxHead(D, C).double()
    with torch.no_grad():
        head.output.bias.uniform_(-1, 1)
        head.output.weight[9] = head.output.weight[2]  # labels 2 and 9 (on different shards) tie
        head.output.bias[9] = head.output.bias[2]
    hidden = torch.randn(B, D, dtype=torch.float64)
    Y = sp.csr_matrix(
        np.array(
            [
                [1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1],
                [0] * 11,
                [0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
                [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
                [0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1],
                [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
            ],
            dtype=np.float32,
        )
    )
    return head, hidden, LabelBatch.from_csr(Y, "cpu")


def _compare():
    """On every rank: (sharded, unsharded) pairs of everything the shard can be checked against."""
    head, hidden, labels = _setup()
    out = {}
    # unsharded reference
    h_ref = hidden.clone().requires_grad_(True)
    ref_loss = head.loss(h_ref, labels)
    ref_loss.backward()
    start, stop = label_shard(C)
    ref_logits = head.output(hidden).detach()
    # sharded
    layer = ShardedOutputLayer.from_full(head.output).double()
    h = hidden.clone().requires_grad_(True)
    loss = sharded_softmax_loss(layer(h), labels, layer.start)
    loss.backward()
    out["loss"] = (loss.item(), ref_loss.item())
    out["grad_weight"] = (layer.weight.grad.numpy(), head.output.weight.grad[start:stop].numpy())
    out["grad_bias"] = (layer.bias.grad.numpy(), head.output.bias.grad[start:stop].numpy())
    out["grad_hidden"] = (h.grad.numpy(), h_ref.grad.numpy())
    with torch.no_grad():
        for k in (1, 3, C, C + 4):
            idx, val = layer.topk(hidden, k)
            ridx, rval = topk_lower_id_ties(ref_logits, k)
            out[f"topk{k}"] = ((idx.numpy(), val.numpy()), (ridx.numpy(), rval.numpy()))
        big = ref_logits + 1e4  # exp would overflow without the max shift
        local = big[:, start:stop]
        out["lse"] = (sharded_logsumexp(local).numpy(), torch.logsumexp(big, dim=1).numpy())
    # the linear model's torch.sparse_csr hidden
    with warnings.catch_warnings():  # torch flags sparse CSR as beta
        warnings.simplefilter("ignore", UserWarning)
        sparse_h = hidden.to_sparse_csr()
    out["sparse_scores"] = (layer(sparse_h).detach().numpy(), ref_logits[:, start:stop].numpy())
    # one label on two ranks: a shard without columns takes part with -inf / nothing
    one = ref_logits[:, :1]
    mine = one if start == 0 else one[:, :0]
    out["lse_one"] = (sharded_logsumexp(mine).numpy(), torch.logsumexp(one, dim=1).numpy())
    out["topk_one"] = (sharded_topk(mine, 3, 0)[0].numpy(), np.zeros((B, 1), dtype=np.int64))
    # exact ties within and across the shards (small integers: no rounding anywhere): the merged top-k breaks them
    # to the lower id, as a stable argsort of the whole row does
    tied = torch.from_numpy(TIED)
    for k in (3, C):
        idx, val = sharded_topk(tied[:, start:stop], k, start)
        order = np.argsort(-TIED, axis=1, kind="stable")[:, :k]
        out[f"ties{k}"] = ((idx.numpy(), val.numpy()), (order, np.take_along_axis(TIED, order, 1)))
    out["shard"] = (start, stop)
    return out


def _check(results):
    for key, (got, want) in results.items():
        if key == "shard":
            continue
        if key.startswith("ties"):  # exact scores: exactly the same order
            np.testing.assert_array_equal(got[0], want[0], err_msg=key)
            np.testing.assert_array_equal(got[1], want[1], err_msg=key)
        elif key == "topk_one":
            np.testing.assert_array_equal(got, want, err_msg=key)
        elif key.startswith("topk"):
            assert_same_topk(got, want, rtol=RTOL, atol=ATOL, err_msg=key)
        else:
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=key)


def test_sharded_equals_unsharded_on_two_ranks():
    results = spawn(_compare, 2)
    assert [r["shard"] for r in results] == [(0, 5), (5, 11)]
    for r in results:
        _check(r)
    # the exact tie between labels 2 and 9 (shards 0 and 1) is broken towards 2 in the merged top-k
    for r in results:
        assert list(r[f"ties{C}"][0][0][0][:2]) == [2, 9]


def test_sharded_in_one_process_is_the_plain_computation():
    results = _compare()
    assert results["shard"] == (0, C)
    _check(results)
