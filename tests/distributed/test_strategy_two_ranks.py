"""The training strategy is chosen once from the model and the process group: on 2 gloo ranks a plain model
trains data parallel (each rank a row share, its own random stream, validation gathered), a model with
``shard_labels=True`` label sharded (every rank the whole batch, the same stream, every rank saves)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from sparsexc.distributed import full_state_dict, rank, spawn
from sparsexc.heads import SoftmaxHead
from sparsexc.models import SparseEncoder, XCModel
from sparsexc.train.strategy import DataParallel, LabelSharded, choose_strategy


def _model(shard_labels):
    torch.manual_seed(0)
    encoder = SparseEncoder(12, {"hidden_sizes": (8,)})
    return XCModel(encoder, SoftmaxHead(encoder.out_dim, 5, {"shard_labels": shard_labels}))


def _job():
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    rows = np.arange(5)
    X = sp.random(7, 12, density=0.4, random_state=0, format="csr", dtype=np.float32)
    out = {}
    for shard_labels in (False, True):
        model = _model(shard_labels)
        strategy = choose_strategy(model)
        mine, weight = strategy.batch_rows(rows)
        torch.manual_seed(1)
        with strategy.randomness(seed=1, step=2, device=cpu):
            draw = torch.rand(3)
        topk = strategy.predict_topk(model, X, 2, 3)
        out[shard_labels] = {
            "type": type(strategy).__name__,
            "rows": mine.tolist(),
            "weight": weight,
            "draw": draw.tolist(),
            "topk": [a.tolist() for a in topk],
            "writes": strategy.writes_checkpoints,
            "every_rank_saves": strategy.every_rank_saves,
            "is_main": strategy.is_main,
            "batch_loss": strategy.batch_loss(float(rank() + 1), cpu),
        }
        full = full_state_dict(model)  # a collective: the whole layer on rank 0, None elsewhere
        if full is not None:  # the same weights in one unsharded model
            whole = _model(False)
            whole.load_state_dict(full)
            out[shard_labels]["whole_topk"] = [a.tolist() for a in whole.predict_topk(X, 2, batch_size=3)]
    return out


def test_strategies_on_two_ranks():
    r0, r1 = spawn(_job, 2)
    assert r0[False]["type"] == r1[False]["type"] == DataParallel.__name__
    assert (r0[False]["rows"], r1[False]["rows"]) == ([0, 1], [2, 3, 4])  # contiguous row shares
    assert (r0[False]["weight"], r1[False]["weight"]) == (2 * 2 / 5, 2 * 3 / 5)  # S b_r / B
    assert r0[False]["draw"] != r1[False]["draw"]  # each rank its own stream
    assert r0[False]["topk"] == r1[False]["topk"] == r0[False]["whole_topk"]  # row shards gathered on every rank
    assert (r0[False]["writes"], r1[False]["writes"]) == (True, False) and not r0[False]["every_rank_saves"]
    assert r0[True]["type"] == r1[True]["type"] == LabelSharded.__name__
    assert r0[True]["rows"] == r1[True]["rows"] == [0, 1, 2, 3, 4] and r0[True]["weight"] == 1.0
    assert r0[True]["draw"] == r1[True]["draw"]  # the ranks draw alike (the replicated encoder)
    assert r0[True]["topk"] == r1[True]["topk"]
    # the shards' top-k merged: the whole model's labels, and its scores up to the rounding of other matmul shapes
    assert r0[True]["topk"][0] == r0[True]["whole_topk"][0]
    np.testing.assert_allclose(r0[True]["topk"][1], r0[True]["whole_topk"][1], rtol=1e-5, atol=1e-6)
    assert r0[True]["writes"] and r1[True]["writes"] and r1[True]["every_rank_saves"]
    assert (r0[True]["is_main"], r1[True]["is_main"]) == (True, False)
    assert r0[True]["batch_loss"] == r1[True]["batch_loss"] == 1.5  # (1 + 2) / 2 on every rank
