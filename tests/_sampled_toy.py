"""What the sampled heads' tests share: a small batch with fixed draws (for losses against brute force), and a
head trained on a known distribution: two contexts (one-hot features, so the linear model is non-parametric),
p_D(y|x) over 6 labels, and a frequency sampler fitted on *other* data, so p_n != p_D."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from sparsexc.heads import LabelBatch

ROWS = [[0, 2], [1], [], [0, 1, 2, 4]]  # a batch's label sets: rows with several, one and no label
C, D = 5, 4  # labels, input width


def label_batch(rows: list[list[int]], n_labels: int = C) -> LabelBatch:
    """A LabelBatch of the label sets ``rows``."""
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.array([j for r in rows for j in sorted(r)], dtype=np.int64)
    return LabelBatch.from_csr(sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(rows), n_labels)))


def fixed_draws(head_cls: Any, params: dict[str, Any], seed: int = 0) -> tuple[Any, ...]:
    """``head_cls(D, C, uniform sampler, 3 negatives, **params)`` in float64 whose sampler returns fixed negatives
    and log q from a fixed (B, C) table: ``(head, h, labels, rows, negatives, log_q)`` for :data:`ROWS`."""
    torch.manual_seed(seed)
    head = head_cls(D, C, {"sampler": "uniform", "num_negatives": 3, **params}).double()
    h = torch.randn(len(ROWS), D, dtype=torch.float64)
    labels = label_batch(ROWS)
    rows = labels.row_ids()
    negatives = torch.randint(C, (rows.numel(), 3))
    log_q = torch.log_softmax(torch.randn(len(ROWS), C, dtype=torch.float64), 1)

    def sample(x, n, rows=None, generator=None):
        return negatives, log_q[rows[:, None], negatives]

    def log_prob(x, labels, rows=None):
        return log_q[rows[:, None], labels]

    head.sampler.sample, head.sampler.log_prob = sample, log_prob
    return head, h, labels, rows, negatives, log_q


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
