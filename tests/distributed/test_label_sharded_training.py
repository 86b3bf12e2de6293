"""Label-sharded training (``shard_labels=True``) on 2 gloo processes: equals 1-process unsharded training
with the same global batch; checkpoints keep one file per shard and resume on 1 or 2 ranks; the saved model
loads in one process and predicts the same top-k."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _topk import assert_same_topk
from test_data_parallel import ATOL, RTOL, _same_history  # float32 sums split over 2 ranks: equal to rounding

from sparsexc.datasets.synthetic import synthetic
from sparsexc.distributed import full_state_dict, spawn
from sparsexc.estimator import XCClassifier
from sparsexc.heads import get_head
from sparsexc.models import SparseEncoder, XCModel
from sparsexc.train import Trainer

C = 13
# (hidden sizes or encoder params, head, head params, train params): the linear model (sparse hidden) and an MLP
MATCH = [
    ((), "softmax", {}, {}),
    # Adam: dense gradients in both runs (a one-process run's default sparse gradients would be lazy Adam)
    (
        (16,),
        "sampled-softmax",
        {"sampler": "frequency", "num_negatives": 5, "sparse_gradients": False},
        {"grad_clip": 0.5},
    ),
    ((16,), "negative-sampling", {"sampler": "uniform", "num_negatives": 4}, {"optimizer": "adagrad", "lr": 0.05}),
    # the replicated encoder's first layer with sparse gradients (lazy Adam in both runs), clipping on
    ({"hidden_sizes": (16,), "sparse_gradients": True}, "softmax", {}, {"grad_clip": 0.5}),
    ((16,), "sigmoid", {}, {}),
    # the sampled heads' default sparse gradients on a shard: lazy Adam (RowSparseAdam) in both runs
    ((16,), "sampled-softmax", {"sampler": "frequency", "num_negatives": 5}, {}),
]
# interrupted and resumed on another number of ranks: a plain optimiser's state, and a SplitOptimizer's (dense
# Adam for the encoder, lazy Adam for the shard's sparse gradients)
CHECKPOINTED = [
    ((), "softmax", {}, {}, True),
    ((16,), "negative-sampling", {"sampler": "uniform", "num_negatives": 4}, {}, True),
]


def _data():
    split = synthetic(200, 30, C, labels_per_sample=2.0, nnz_per_sample=6, seed=4)
    return split.train.X[:120], split.train.Y[:120], split.test.X, split.test.Y


def _model(hidden, head, head_params, shard):
    torch.manual_seed(0)
    encoder = SparseEncoder(30, hidden if isinstance(hidden, dict) else {"hidden_sizes": hidden})
    return XCModel(encoder, get_head(head)(encoder.out_dim, C, {**head_params, "shard_labels": shard}))


class _Stop(Exception):
    pass


def _train(
    hidden,
    head,
    head_params,
    train_params,
    shard,
    epochs=3,
    checkpoint_dir=None,
    checkpoint_every=None,
    resume=False,
    stop_after=None,
):
    """Train (alone or on this process's group); return the history and the full flat weights."""
    torch.set_num_threads(1)
    X, Y, Xv, Yv = _data()
    model = _model(hidden, head, head_params, shard)
    if shard:  # the unsharded model's initial weights, each rank keeping its label rows
        model.load_state_dict(_model(hidden, head, head_params, False).state_dict())
    step, calls = Trainer._step, {"n": 0}

    def stopping_step(self, *args):
        if stop_after is not None and calls["n"] == stop_after:
            raise _Stop
        calls["n"] += 1
        return step(self, *args)

    Trainer._step = stopping_step
    try:
        params = {
            "epochs": epochs,
            "batch_size": 25,
            "lr": 0.01,
            "seed": 5,
            "device": "cpu",
            **train_params,
        }
        trainer = Trainer(model, params, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every)
        trainer.fit(X, Y, Xv, Yv, resume=resume)
    except _Stop:
        return {"stopped": True}
    finally:
        Trainer._step = step
    state = full_state_dict(model)
    weights = None if state is None else torch.cat([v.flatten() for v in state.values()]).numpy()
    topk = model.predict_topk(Xv, 5)
    return {
        "history": trainer.history,
        "weights": weights,
        "topk": topk,
        "tuned": trainer.tuned,
        "rows": model.head.output.weight.shape[0],
    }


def _fit_and_save(path):
    torch.set_num_threads(1)
    X, Y, Xv, _ = _data()
    clf = XCClassifier(
        head="softmax", head_params={"shard_labels": True}, hidden_sizes=(8,), epochs=2, device="cpu", random_state=1
    )
    clf.fit(X, Y)
    clf.save(path)  # every rank calls it: the shards are gathered on rank 0
    return clf.predict_topk(Xv, 5), clf.predict(Xv).toarray()


def _jobs(tmp):
    from test_label_sharded_heads import _compare_all

    out = [_train(h, n, hp, tp, True) for h, n, hp, tp in MATCH]
    for i, ck in enumerate(CHECKPOINTED):
        # 2 ranks, checkpoint every 3 steps (5 steps an epoch), stopped before step 8: resumed on 1 rank below
        out.append(_train(*ck, checkpoint_dir=str(tmp / f"two{i}"), checkpoint_every=3, stop_after=7))
        out.append(_train(*ck, checkpoint_dir=str(tmp / f"one{i}"), resume=True))  # 1-rank checkpoint, on 2
    out.append(_fit_and_save(str(tmp / "model")))
    return {"training": out, "heads": _compare_all()}


def run_all(tmp):
    """Every 2-rank job of the label-sharding tests in one spawn (starting the processes is the slow part):
    per rank, {"training": [...], "heads": [...]} (the heads' comparisons of test_label_sharded_heads.py)."""
    for i, ck in enumerate(CHECKPOINTED):
        stopped = _train(*ck, checkpoint_dir=str(tmp / f"one{i}"), checkpoint_every=3, stop_after=7)
        assert stopped["stopped"]
    return spawn(_jobs, 2, (tmp,))


@pytest.fixture(scope="module")
def runs(label_sharded_runs):
    tmp, results = label_sharded_runs
    return tmp, [r["training"] for r in results]


def test_two_rank_sharded_training_equals_one_process(runs):
    _, results = runs
    for i, case in enumerate(MATCH):
        one = _train(*case, False)
        rank0, rank1 = results[0][i], results[1][i]
        assert (rank0["rows"], rank1["rows"], one["rows"]) == (6, 7, C)  # each rank held its labels only
        assert rank1["weights"] is None  # gathered on rank 0 only
        np.testing.assert_allclose(rank0["weights"], one["weights"], rtol=RTOL, atol=ATOL, err_msg=case[1])
        _same_history(rank0["history"], one["history"])
        _same_history(rank1["history"], one["history"])
        # weights equal to rounding: near-tied labels may swap
        assert_same_topk(rank0["topk"], one["topk"], rtol=RTOL, atol=ATOL, err_msg=case[1])
        np.testing.assert_array_equal(rank1["topk"][0], rank0["topk"][0])  # merged by all-gather: the same
        assert rank0["tuned"]["threshold"] == one["tuned"]["threshold"]
        initial = torch.cat([v.flatten() for v in _model(*case[:3], False).state_dict().values()]).numpy()
        assert np.abs(one["weights"] - initial).max() > 1e-2  # training moved the weights


@pytest.mark.parametrize("i", range(len(CHECKPOINTED)))
def test_sharded_checkpoints_resume_on_other_rank_counts(runs, i):
    tmp, results = runs
    ck = CHECKPOINTED[i]
    full = _train(*ck)
    n = len(MATCH) + 2 * i
    two = tmp / f"two{i}"
    # 2 ranks wrote one shard file each (the folder of the last checkpoint only) and rank 0 checkpoint.pt
    shards = sorted(p.relative_to(two).as_posix() for p in (two / "label_shards").rglob("*.pt"))
    assert shards == ["label_shards/step-000000006/shard-0-of-2.pt", "label_shards/step-000000006/shard-1-of-2.pt"]
    resumed = _train(*ck, checkpoint_dir=str(two), resume=True)  # on 1 rank
    np.testing.assert_allclose(resumed["weights"], full["weights"], rtol=RTOL, atol=ATOL, err_msg=ck[1])
    _same_history(resumed["history"], full["history"])
    resumed2 = results[0][n + 1]  # the 1-rank checkpoint resumed on 2 ranks
    np.testing.assert_allclose(resumed2["weights"], full["weights"], rtol=RTOL, atol=ATOL, err_msg=ck[1])
    _same_history(resumed2["history"], full["history"])


def test_saved_sharded_model_predicts_the_same_in_one_process(runs):
    tmp, results = runs
    _X, _Y, Xv, _ = _data()
    loaded = XCClassifier.load(tmp / "model")
    assert loaded.model_.head.output.weight.shape == (C, 8)  # one process: the whole layer
    topk = loaded.predict_topk(Xv, 5)
    for rank_result in results:
        (idx, val), sets = rank_result[len(MATCH) + 2 * len(CHECKPOINTED)]
        assert_same_topk(topk, (idx, val), rtol=1e-6, atol=1e-7)  # one layer vs two shards: equal to rounding
        np.testing.assert_array_equal(loaded.predict(Xv).toarray(), sets)
