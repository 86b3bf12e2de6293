"""Label-sharded heads (``shard_labels=True``) on 2 gloo processes equal the unsharded heads in float64 at the
same seed: loss, gradients (weights, bias, dense hidden), scores, top-k (up to swaps of labels tied within the
rounding), label sets and the tuned threshold, for softmax, sigmoid, sampled-softmax and negative-sampling, on
dense and on the linear model's sparse hidden."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from _topk import assert_same_topk

from sparsexc.datasets.synthetic import synthetic
from sparsexc.distributed import label_shard
from sparsexc.heads import get_head
from sparsexc.heads.labels import LabelBatch

C, D, B = 11, 9, 8  # 11 labels: shards of 5 and 6
RTOL, ATOL = 1e-10, 1e-12  # float64: the sharded and the whole computations differ by rounding only
CASES = [
    ("softmax", {}),
    ("sigmoid", {}),
    ("sampled-softmax", {"sampler": "frequency", "num_negatives": 5}),
    ("sampled-softmax", {"sampler": "uniform", "num_negatives": 4, "positives": "one"}),
    ("negative-sampling", {"sampler": "frequency", "num_negatives": 6, "reg": 0.1}),
]


def _data():
    split = synthetic(40, D, C, labels_per_sample=2.0, nnz_per_sample=5, seed=1)
    return split.train.X, split.train.Y


def _heads(name, params):
    X, Y = _data()
    torch.manual_seed(0)
    ref = get_head(name)(D, C, params)
    sharded = get_head(name)(D, C, {**params, "shard_labels": True})
    for head in (ref, sharded):
        head.prepare(X, Y)
    with torch.no_grad():
        ref.output.bias.uniform_(-1, 1)
        ref.output.weight[9] = ref.output.weight[2]  # labels 2 and 9 (different shards) tie, up to rounding
        ref.output.bias[9] = ref.output.bias[2]
    sharded.load_state_dict(ref.state_dict())  # full tensors: each rank keeps its rows
    return ref.double(), sharded.double(), X, Y


def _hidden(X, sparse):
    rows = X[:B]
    if sparse:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(rows.toarray()).double().to_sparse_csr()
    torch.manual_seed(3)
    return torch.randn(B, D, dtype=torch.float64, requires_grad=True)


def _compare(name, params, sparse):
    torch.set_num_threads(1)
    ref, sharded, X, Y = _heads(name, params)
    labels = LabelBatch.from_csr(Y[:B], "cpu")
    start, stop = label_shard(C)
    out = {"shard": (start, stop)}
    results = []
    for head in (ref, sharded):
        hidden = _hidden(X, sparse)
        torch.manual_seed(11)  # the same positives / negatives for both heads
        loss = head.loss(hidden, labels)
        loss.backward()
        # the unsharded sampled heads' default sparse gradients (sparse_gradients), densified to compare
        results.append(
            (
                loss.item(),
                *(g.to_dense() if g.is_sparse else g for g in (head.output.weight.grad, head.output.bias.grad)),
                None if sparse else hidden.grad,
            )
        )
    (ref_loss, ref_w, ref_b, ref_h), (loss, w, b, h) = results
    out["loss"] = (loss, ref_loss)
    out["grad_weight"] = (w.numpy(), ref_w[start:stop].numpy())
    out["grad_bias"] = (b.numpy(), ref_b[start:stop].numpy())
    if not sparse:
        out["grad_hidden"] = (h.numpy(), ref_h.numpy())
    hidden = _hidden(X, sparse)
    with torch.no_grad():
        out["scores"] = (sharded.scores(hidden).numpy(), ref.scores(hidden).numpy())
        for k in (1, 3, C + 2):
            idx, val = sharded.topk(hidden, k)
            ridx, rval = ref.topk(hidden, k)
            out[f"topk{k}"] = ((idx.numpy(), val.numpy()), (ridx.numpy(), rval.numpy()))
        tuned = sharded.tune(hidden, labels), ref.tune(hidden, labels)
        out["tuned"] = (tuned[0]["threshold"], tuned[1]["threshold"])
        out["sets"] = (sharded.predict_sets(hidden).to_csr().toarray(), ref.predict_sets(hidden).to_csr().toarray())
    return out


def _compare_all():
    return [_compare(name, params, sparse) for name, params in CASES for sparse in (False, True)]


def _check(result):
    for key, (got, want) in result.items():
        if key == "shard":
            continue
        if key.startswith("topk"):  # labels 2 and 9 tie up to rounding: either may come first
            assert_same_topk(got, want, rtol=RTOL, atol=ATOL, err_msg=key)
        elif key in ("sets", "tuned"):
            np.testing.assert_array_equal(got, want, err_msg=key)
        else:
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=key)


@pytest.fixture(scope="module")
def two_ranks(label_sharded_runs):
    # run in the same 2-process spawn as test_label_sharded_training.py's jobs (tests/distributed/conftest.py)
    return [r["heads"] for r in label_sharded_runs[1]]


def test_sharded_heads_equal_unsharded_on_two_ranks(two_ranks):
    for rank_results in two_ranks:
        assert len(rank_results) == 2 * len(CASES)
        for (_name, _params), result in zip([c for c in CASES for _ in (0, 1)], rank_results):
            _check(result)
    assert [r[0]["shard"] for r in two_ranks] == [(0, 5), (5, 11)]
    for a, b in zip(*two_ranks):  # the collectives give every rank the same loss and predictions
        assert a["loss"] == b["loss"] and np.array_equal(a["topk3"][0][0], b["topk3"][0][0])
    # how exact ties across the shards are broken (to the lower id): test_sharded_output.py


def test_sharded_heads_in_one_process_are_the_plain_heads():
    for result in _compare_all():
        assert result["shard"] == (0, C)
        _check(result)
