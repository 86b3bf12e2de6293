"""The training strategy of one process (the data-parallel and label-sharded ones run in
tests/distributed/test_strategy.py): chosen from the model, every hook the plain computation."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from sparsexc.heads import SoftmaxHead
from sparsexc.models import SparseEncoder, XCModel
from sparsexc.train.data_parallel import LossModule
from sparsexc.train.strategy import SingleProcess, choose_strategy


def _model(shard_labels=False):
    torch.manual_seed(0)
    encoder = SparseEncoder(12, {"hidden_sizes": (8,)})
    return XCModel(encoder, SoftmaxHead(encoder.out_dim, 5, {"shard_labels": shard_labels}))


def test_one_process_is_single_process_even_with_a_one_shard_layer():
    for shard_labels in (False, True):
        strategy = choose_strategy(_model(shard_labels))
        assert type(strategy) is SingleProcess and strategy.name == "single process"
        assert strategy.is_main and strategy.writes_checkpoints and not strategy.every_rank_saves


def test_single_process_hooks_are_the_plain_computation():
    strategy, model = SingleProcess(), _model()
    rows = np.array([4, 1, 3])
    mine, weight = strategy.batch_rows(rows)
    assert mine is rows and weight == 1.0
    before = torch.get_rng_state()
    with strategy.randomness(seed=1, step=5, device=torch.device("cpu")):
        assert torch.equal(torch.get_rng_state(), before)  # torch's global stream, not a forked one
    assert type(strategy.wrap(model, "float32")) is LossModule
    assert strategy.batch_loss(0.25, torch.device("cpu")) == 0.25
    X = sp.random(6, 12, density=0.4, random_state=0, format="csr", dtype=np.float32)
    got, expected = strategy.predict_topk(model, X, 2, 4), model.predict_topk(X, 2, batch_size=4)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_checkpoint_shards_only_for_a_model_with_a_sharded_layer(tmp_path):
    strategy = SingleProcess()
    plain = _model()
    tensors = {"model": plain.state_dict(), "optimizer": {}}
    assert strategy.save_shards(tmp_path, tensors, plain, None, 1) == (tensors, None)
    assert strategy.load_shards(tmp_path, tensors, None, plain, None) is tensors
    sharded = _model(shard_labels=True)
    optimizer = torch.optim.Adam(sharded.parameters())
    tensors = {"model": sharded.state_dict(), "optimizer": optimizer.state_dict()}
    left, index = strategy.save_shards(tmp_path, tensors, sharded, optimizer, 3)
    assert index is not None and index["n_shards"] == 1 and (tmp_path / index["folder"] / index["files"][0]).exists()
    assert not any(k.startswith("head.output.") for k in left["model"])  # moved to the shard file
    restored = strategy.load_shards(tmp_path, left, index, sharded, optimizer)
    assert all(torch.equal(restored["model"][k], v) for k, v in sharded.state_dict().items())
