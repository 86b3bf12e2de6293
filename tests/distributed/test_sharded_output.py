"""Label-sharded output layer on 2 gloo processes: loss, gradients, logsumexp and top-k equal the unsharded
computation (SoftmaxHead's loss, torch.logsumexp, topk_lower_id_ties)."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

from sparsexc.distributed import (
    ShardedOutputLayer,
    label_shard,
    sharded_logsumexp,
    sharded_softmax_loss,
    sharded_topk,
    spawn,
)
from sparsexc.heads import SoftmaxHead
from sparsexc.heads.base import topk_lower_id_ties
from sparsexc.heads.labels import LabelBatch

C, D, B = 11, 7, 6


def _setup():
    torch.manual_seed(0)
    head = SoftmaxHead(D, C).double()
    with torch.no_grad():
        head.output.bias.uniform_(-1, 1)
        head.output.weight[9] = head.output.weight[2]  # labels 2 and 9 (on different shards) tie
        head.output.bias[9] = head.output.bias[2]
    hidden = torch.randn(B, D, dtype=torch.float64)
    Y = sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1], [0] * 11, [0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
                                [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1],
                                [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]], dtype=np.float32))
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
    out["shard"] = (start, stop)
    return out


def _check(results):
    for key, (got, want) in results.items():
        if key == "shard":
            continue
        if key.startswith("topk"):
            got_i, got_v = got if isinstance(got, tuple) else (got, None)
            want_i, want_v = want if isinstance(want, tuple) else (want, None)
            np.testing.assert_array_equal(got_i, want_i, err_msg=key)
            if got_v is not None:
                np.testing.assert_allclose(got_v, want_v, rtol=1e-12, err_msg=key)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=key)


def test_sharded_equals_unsharded_on_two_ranks():
    results = spawn(_compare, 2)
    assert [r["shard"] for r in results] == [(0, 5), (5, 11)]
    for r in results:
        _check(r)
    # the tie between labels 2 and 9 is broken towards 2 in the merged top-k, as unsharded
    for row in results[0][f"topk{C}"][0][0]:
        assert list(row).index(2) < list(row).index(9)


def test_sharded_in_one_process_is_the_plain_computation():
    results = _compare()
    assert results["shard"] == (0, C)
    _check(results)
