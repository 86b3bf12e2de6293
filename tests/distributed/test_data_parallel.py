"""Data-parallel training on 2 gloo processes equals 1 process with the same global batch, with dense and
with sparse COO gradients (averaged outside DDP); checkpoints are written by rank 0 only and resume on
another number of ranks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist

from sparsexc.datasets.synthetic import synthetic
from sparsexc.distributed import spawn
from sparsexc.heads import get_head
from sparsexc.models import SparseEncoder, XCModel
from sparsexc.train import Trainer

# float32 sums are split differently over 2 ranks (two partial gradients, then all-reduce), so the runs
# agree to rounding, not bit for bit; a few Adam steps keep the gap near 1e-6
RTOL, ATOL = 1e-4, 1e-5


def _data():
    split = synthetic(260, 40, 12, labels_per_sample=2.0, nnz_per_sample=8, seed=3)
    # 133 training rows in batches of 33: 2 ranks split 16 + 17, and the last batch has one row, so one
    # rank has none
    return split.train.X[:133], split.train.Y[:133], split.test.X, split.test.Y


def _model(hidden, head, sparse=False, head_params=None):
    torch.manual_seed(0)
    encoder = SparseEncoder(40, {"hidden_sizes": hidden, "sparse_gradients": sparse})
    return XCModel(encoder, get_head(head)(encoder.out_dim, 12, head_params))


class _Stop(Exception):
    pass


def _run(
    hidden,
    head,
    epochs,
    checkpoint_dir=None,
    checkpoint_every=None,
    resume=False,
    stop_after=None,
    log_path=None,
    *,
    sparse=False,
    head_params=None,
    optimizer="adam",
    lr=0.01,
):
    """Train on this process's group (or alone); return history, flat weights and the files written."""
    import sparsexc.train.trainer as trainer_module

    torch.set_num_threads(1)
    X, Y, Xv, Yv = _data()
    model = _model(hidden, head, sparse, head_params)
    writes = []
    save, step = trainer_module.save_checkpoint, Trainer._step
    calls = {"n": 0}

    def counting_save(directory, tensors, state):
        writes.append(state["global_step"])
        save(directory, tensors, state)

    def stopping_step(self, *args):
        if stop_after is not None and calls["n"] == stop_after:
            raise _Stop
        calls["n"] += 1
        return step(self, *args)

    trainer_module.save_checkpoint, Trainer._step = counting_save, stopping_step
    try:
        trainer = Trainer(
            model,
            dict(
                epochs=epochs,
                batch_size=33,
                lr=lr,
                optimizer=optimizer,
                seed=5,
                device="cpu",
            ),
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every,
            log_path=log_path,
        )
        try:
            trainer.fit(X, Y, Xv, Yv, resume=resume)
        except _Stop:
            return {"stopped": True, "writes": writes}
    finally:
        trainer_module.save_checkpoint, Trainer._step = save, step
    weights = torch.cat([p.detach().flatten() for p in model.parameters()]).numpy()
    return {"history": trainer.history, "weights": weights, "writes": writes}


def _same_history(a, b):
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        np.testing.assert_allclose(ra["train_loss"], rb["train_loss"], rtol=RTOL, atol=ATOL)
        assert ra["val_P@1"] == pytest.approx(rb["val_P@1"], abs=1e-12)


def _draws(resume_dir=None):
    """The uniform sampler's draws at every step of a 2-epoch negative-sampling run with dropout (interrupted
    after step 6 and resumed when ``resume_dir`` is given), and the final weights."""
    from sparsexc.samplers import UniformSampler

    torch.set_num_threads(1)
    X, Y, _, _ = _data()
    draws, sample = [], UniformSampler._sample

    def recording(self, *args):
        out = sample(self, *args)
        draws.append(out[0].clone())
        return out

    UniformSampler._sample = recording
    try:

        def fit(**kwargs):
            torch.manual_seed(0)
            encoder = SparseEncoder(40, {"hidden_sizes": (16,), "dropout": 0.5})
            model = XCModel(encoder, get_head("negative-sampling")(16, 12, {"sampler": "uniform", "num_negatives": 3}))
            # batches of 32: the ranks' shares are equal (16 + 16) but in the last batch, so without per-rank
            # streams they would consume the generator alike and draw the same negatives
            trainer = Trainer(
                model, dict(epochs=2, batch_size=32, seed=5, device="cpu"), checkpoint_dir=resume_dir, **kwargs
            )
            trainer.fit(X, Y, resume=resume_dir is not None and "checkpoint_every" not in kwargs)
            return model

        if resume_dir is not None:
            step = Trainer._step
            calls = {"n": 0}

            def stopping(self, *args):
                if calls["n"] == 6:
                    raise _Stop
                calls["n"] += 1
                return step(self, *args)

            Trainer._step = stopping
            try:
                fit(checkpoint_every=3)
            except _Stop:
                pass
            finally:
                Trainer._step = step
            # as when a run is restarted, the interrupted run is over on every rank before any resumes: rank 0
            # alone writes the checkpoints, so without this a rank could read the one of step 3 while rank 0 still
            # writes that of step 6, resume 3 steps behind the others and leave the group out of step
            dist.barrier()
            draws.clear()
        model = fit()
    finally:
        UniformSampler._sample = sample
    weights = torch.cat([q.detach().flatten() for q in model.parameters()]).numpy()
    return {"draws": [d.numpy() for d in draws], "weights": weights}


def _run_many(jobs):
    out = []
    for i, job in enumerate(jobs):
        if isinstance(job, tuple):
            out.append(_run(*job))
        elif "draws" in job:
            out.append(_draws(*job["draws"]))
        else:
            out.append(_run(*job["args"], **job["kwargs"]))
        # every rank ends job i before any starts job i + 1, so a job's collectives never meet the next one's; a
        # rank that got out of step fails here, naming the job
        ends = [None] * dist.get_world_size()
        dist.all_gather_object(ends, (i, len(out)))
        assert ends == [(i, len(out))] * len(ends), f"ranks out of step after job {i}: (job, results) per rank {ends}"
    return out


# the linear model (sparse CSR hidden) and an MLP; then the same with sparse COO gradients: the linear model's
# transposed output layer (its bias stays dense, in DDP), the MLP's first layer
MATCH = [
    ((), "softmax", 3, {}),
    ((16,), "sigmoid", 3, {}),
    ((), "softmax", 3, {"sparse": True}),
    ((16,), "sigmoid", 3, {"sparse": True}),
]
# sampled heads: every rank draws its own negatives, so no one-process twin; their sparse gradients (weight and
# bias; with the linear model no parameter is left for DDP) must step as the dense DDP path does (plain SGD,
# exact for sparse gradients) on the same draws
SAMPLED = [
    (
        (hidden, "negative-sampling", 2),
        {
            "head_params": {"sampler": "uniform", "num_negatives": 4, "sparse_gradients": sparse},
            "optimizer": "sgd",
            "lr": 0.5,
        },
    )
    for hidden in ((16,), ())
    for sparse in (True, False)
]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Every 2-rank job of this file in one spawn (starting the processes is the slow part)."""
    tmp = tmp_path_factory.mktemp("dp")
    # 1 rank, checkpoint every 4 steps (one epoch is 5 steps), stopped before step 9: resumed on 2 ranks below
    ck1 = tmp / "one"
    stopped1 = _run((16,), "softmax", 2, str(ck1), 4, False, 8)
    jobs = [
        *({"args": args, "kwargs": kwargs} for *args, kwargs in MATCH),
        *({"args": args, "kwargs": kwargs} for args, kwargs in SAMPLED),
        # 2 ranks, checkpoint every 4 steps, stopped before step 8: resumed on 1 rank in the test
        ((16,), "softmax", 2, str(tmp / "two"), 4, False, 7, str(tmp / "log.jsonl")),
        ((16,), "softmax", 2, str(ck1), None, True),
        {"draws": ()},
        {"draws": ()},
        {"draws": (str(tmp / "draws"),)},
    ]
    return tmp, stopped1, spawn(_run_many, 2, (jobs,))


def test_two_ranks_match_one_rank(two_ranks):
    _, _, results = two_ranks
    timing = ("seconds", "examples_per_second")
    drop = lambda history: [{k: v for k, v in r.items() if k not in timing} for r in history]  # noqa: E731
    for i, (hidden, head, epochs, kwargs) in enumerate(MATCH):
        one = _run(hidden, head, epochs, **kwargs)
        rank0, rank1 = results[0][i], results[1][i]
        np.testing.assert_array_equal(rank0["weights"], rank1["weights"])  # DDP keeps the replicas equal
        np.testing.assert_allclose(rank0["weights"], one["weights"], rtol=RTOL, atol=ATOL)
        _same_history(rank0["history"], one["history"])
        assert drop(rank0["history"]) == drop(rank1["history"])  # losses and val metrics reduced, not local
        initial = torch.cat([p.detach().flatten() for p in _model(hidden, head, **kwargs).parameters()]).numpy()
        assert np.abs(one["weights"] - initial).max() > 1e-2  # training moved the weights


def test_sampled_heads_sparse_gradients_step_as_dense_ones(two_ranks):
    _, _, results = two_ranks
    runs = {}
    for i, (args, kwargs) in enumerate(SAMPLED, start=len(MATCH)):
        rank0, rank1 = results[0][i], results[1][i]
        np.testing.assert_array_equal(rank0["weights"], rank1["weights"])  # the replicas stay equal
        runs[args[0], kwargs["head_params"]["sparse_gradients"]] = rank0
    for hidden in ((16,), ()):
        sparse, dense = runs[hidden, True], runs[hidden, False]
        np.testing.assert_allclose(sparse["weights"], dense["weights"], rtol=RTOL, atol=ATOL)
        _same_history(sparse["history"], dense["history"])
        initial = torch.cat([p.detach().flatten() for p in _model(hidden, "negative-sampling").parameters()]).numpy()
        assert np.abs(sparse["weights"] - initial).max() > 1e-2  # training moved the weights


def test_rank0_writes_and_resume_on_other_rank_counts(two_ranks):
    tmp, stopped1, results = two_ranks
    full = _run((16,), "softmax", 2)
    # 2 ranks stopped at step 7: only rank 0 wrote (steps 4 and 5, the epoch end); resume on 1 rank
    stopped2 = [r[len(MATCH) + len(SAMPLED)] for r in results]
    assert stopped2[0]["stopped"] and stopped2[0]["writes"] == [4, 5] and stopped2[1]["writes"] == []
    assert (tmp / "log.jsonl").is_file() and sorted(p.name for p in (tmp / "two").iterdir()) == [
        "checkpoint.json",
        "checkpoint.pt",
    ]
    resumed = _run((16,), "softmax", 2, str(tmp / "two"), None, True)
    np.testing.assert_allclose(resumed["weights"], full["weights"], rtol=RTOL, atol=ATOL)
    _same_history(resumed["history"], full["history"])
    # 1 rank stopped at step 8 after a checkpoint at step 8, resumed on 2 ranks (in the fixture's spawn)
    assert stopped1["stopped"] and stopped1["writes"] == [4, 5, 8]
    resumed2 = [r[len(MATCH) + len(SAMPLED) + 1] for r in results]
    np.testing.assert_array_equal(resumed2[0]["weights"], resumed2[1]["weights"])
    np.testing.assert_allclose(resumed2[0]["weights"], full["weights"], rtol=RTOL, atol=ATOL)
    _same_history(resumed2[0]["history"], full["history"])
    assert resumed2[0]["writes"] == [10] and resumed2[1]["writes"] == []


def test_ranks_draw_their_own_negatives_reproducibly_and_resume_them(two_ranks):
    _, _, results = two_ranks
    first, again, resumed = ([r[i] for r in results] for i in (-3, -2, -1))
    steps = len(first[0]["draws"])
    assert steps == 10 and all(len(r["draws"]) == steps for r in first)
    # the ranks' draws differ at every step (before, rank 1's row i got rank 0's row i's negatives)
    for a, b in zip(first[0]["draws"], first[1]["draws"]):
        n = min(len(a), len(b))
        assert not np.array_equal(a[:n], b[:n])
    for rank in (0, 1):  # a function of (seed, step, rank): the same run draws the same
        for a, b in zip(first[rank]["draws"], again[rank]["draws"]):
            np.testing.assert_array_equal(a, b)
        # resumed after step 6 on 2 ranks: the remaining steps draw as the uninterrupted run did
        assert len(resumed[rank]["draws"]) == steps - 6
        for a, b in zip(first[rank]["draws"][6:], resumed[rank]["draws"]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(resumed[rank]["weights"], first[rank]["weights"], rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(first[0]["weights"], first[1]["weights"])  # the replicas stay equal
