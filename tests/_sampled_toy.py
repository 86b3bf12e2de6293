"""A sampled head trained on a known distribution: two contexts (one-hot features, so the linear model is
non-parametric), p_D(y|x) over 6 labels, and a frequency sampler fitted on *other* data, so p_n != p_D."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from sparsexc.heads import LabelBatch

P_DATA = np.array([[0.4, 0.25, 0.15, 0.1, 0.06, 0.04], [0.05, 0.05, 0.1, 0.2, 0.25, 0.35]])


def train_on_two_contexts(head_cls: Any, params: dict[str, Any]) -> Any:
    """``head_cls(2, 6, {sampler: frequency, 20 negatives, dense gradients, **params})`` in float64 after 600 Adam
    steps of 256 rows drawn from 6,000 samples of :data:`P_DATA`; seeded."""
    rng = np.random.default_rng(0)
    n = 6000
    ctx = rng.integers(0, 2, n)
    y = np.array([rng.choice(6, p=P_DATA[c]) for c in ctx])
    X = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), ctx)), shape=(n, 2))
    Y = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), y)), shape=(n, 6))
    torch.manual_seed(0)
    settings = {"sampler": "frequency", "num_negatives": 20, "sparse_gradients": False, **params}
    head = head_cls(2, 6, settings).double()  # plain torch.optim.Adam: dense grads
    other = sp.csr_matrix(np.eye(6, dtype=np.float32)[[0] * 40 + [5] * 5 + [1, 2, 3, 4]])
    head.sampler.fit(sp.csr_matrix((other.shape[0], 2), dtype=np.float32), other)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(600):
        rows = rng.integers(0, n, 256)
        hidden = torch.from_numpy(X[rows].toarray()).double()
        opt.zero_grad()
        head.loss(hidden, LabelBatch.from_csr(Y[rows])).backward()
        opt.step()
    return head
