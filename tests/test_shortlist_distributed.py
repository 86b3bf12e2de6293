"""A shortlist model trains data-parallel on 2 gloo processes as on 1 with the same global batch: every rank
fits the same tree and looks up its rows' shortlists by their global positions."""

from __future__ import annotations

import numpy as np
import torch

from sparsexc.datasets.synthetic import synthetic
from sparsexc.distributed import spawn
from sparsexc.heads import get_head
from sparsexc.models import ShortlistModel, SparseEncoder
from sparsexc.train import Trainer
from sparsexc.tree import LabelTreeModel, LabelTreeParams

RTOL, ATOL = 1e-4, 1e-5  # float32 gradients summed in another order over 2 ranks (as test_data_parallel)


def train(head: str) -> dict:
    torch.set_num_threads(1)
    split = synthetic(260, 40, 12, labels_per_sample=2.0, nnz_per_sample=8, seed=3)
    X, Y = split.train.X[:133], split.train.Y[:133]
    torch.manual_seed(0)
    encoder = SparseEncoder(40, {"hidden_sizes": (16,)})
    matcher = LabelTreeModel(LabelTreeParams(branching=2, max_leaf_size=3))
    # no uniform negatives: each rank draws its own (as the sampled heads), so only the hard candidates are equal
    model = ShortlistModel(encoder, get_head(head)(16, 12), matcher, size=4, beam=2, negatives=0)
    trainer = Trainer(model, {"epochs": 2, "batch_size": 33, "lr": 0.01, "seed": 5, "device": "cpu"})
    trainer.fit(X, Y, split.test.X, split.test.Y)
    weights = torch.cat([p.detach().flatten() for p in model.parameters()]).numpy()
    return {"weights": weights, "losses": [r["train_loss"] for r in trainer.history]}


def train_heads(heads: tuple[str, ...]) -> dict:
    return {head: train(head) for head in heads}


def test_two_ranks_match_one_rank():
    heads = ("sparsemax", "sigmoid")
    one = train_heads(heads)
    both = spawn(train_heads, 2, (heads,))  # one spawn: starting the processes is the slow part
    for head in heads:
        rank0, rank1 = both[0][head], both[1][head]
        np.testing.assert_array_equal(rank0["weights"], rank1["weights"])
        np.testing.assert_allclose(rank0["weights"], one[head]["weights"], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(rank0["losses"], one[head]["losses"], rtol=RTOL, atol=ATOL)
