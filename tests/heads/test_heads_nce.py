"""The nce head: loss against brute force, gradcheck (float64, dense and sparse hidden), self-normalised logits on
a known distribution, protocol, estimator save/load bit for bit."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _sampled_toy import P_DATA, ROWS, C, D, train_on_two_contexts
from _sampled_toy import fixed_draws as _setup
from _sampled_toy import label_batch as _labels

from sparsexc.estimator import XCClassifier
from sparsexc.heads import NCEHead, get_head


def test_nce_loss_matches_brute_force():
    head, h, labels, rows, negatives, log_q = _setup(NCEHead, {"reg": 0.01})
    Z = (h @ head.output.weight.T + head.output.bias).detach().numpy()
    lq = log_q.numpy()
    total = 0.0
    for p, (r, y) in enumerate(zip(rows.tolist(), labels.indices.tolist())):
        total += np.logaddexp(0, lq[r, y] - Z[r, y]) + 0.01 * Z[r, y] ** 2
        total += np.mean([np.logaddexp(0, Z[r, j] - lq[r, j]) + 0.01 * Z[r, j] ** 2 for j in negatives[p].tolist()])
    assert head.loss(h, labels).item() == pytest.approx(total / 3, rel=1e-12)  # 3 rows have labels


@pytest.mark.parametrize("sparse", [False, True])
def test_nce_loss_gradcheck(sparse):
    head, h, labels, *_ = _setup(NCEHead, {})
    hidden = h.to_sparse_csr() if sparse else h
    w = head.output.weight.detach().clone().requires_grad_(True)
    b = head.output.bias.detach().clone().requires_grad_(True)
    head._modules.pop("output", None)  # the loss reads output.weight / output.bias: make them plain tensors

    def loss(w, b):
        head.output = SimpleNamespace(weight=w, bias=b)
        return head.loss(hidden, labels)

    assert torch.autograd.gradcheck(loss, (w, b))


def test_nce_logits_are_self_normalised_log_probabilities():
    # p_n != p_D (a frequency sampler fitted on other data); at the NCE optimum xi = log p_D itself (no constant)
    head = train_on_two_contexts(NCEHead, {"reg": 0.0})
    p_data = P_DATA
    with torch.no_grad():
        scores = head.scores(torch.eye(2, dtype=torch.float64)).numpy()
    assert np.abs(scores - np.log(p_data)).max() < 0.3  # the logits themselves, not up to a constant
    assert np.abs(np.exp(scores).sum(axis=1) - 1.0).max() < 0.15  # so they nearly sum to 1 in probability


def test_protocol_scores_are_the_plain_logits():
    torch.manual_seed(0)
    head = get_head("nce")(D, C, {"sampler": "frequency"})
    head.prepare(sp.csr_matrix(np.ones((4, D), np.float32)), _labels(ROWS).to_csr())
    h = torch.randn(6, D)
    torch.testing.assert_close(head.scores(h), head.output(h))
    idx, val = head.topk(h, 3)
    torch.testing.assert_close(val, torch.gather(head.scores(h), 1, idx))


def test_estimator_trains_nce_with_the_tree_sampler_and_loads_it_bit_exactly(tmp_path):
    rng = np.random.default_rng(0)
    X = sp.random(300, 30, density=0.2, random_state=0, format="csr", dtype=np.float32)
    Y = sp.csr_matrix((rng.random((300, 9)) < 0.25).astype(np.float32))
    clf = XCClassifier(head="nce", head_params={"sampler": "tree", "tree": {"dim": 4}}, hidden_sizes=(), epochs=2,
                       patience=None, device="cpu", random_state=0)  # fmt: skip
    assert clf._settings()[3].optimizer == "adagrad"
    clf.fit(X, Y)
    clf.save(tmp_path / "m")
    again = XCClassifier.load(tmp_path / "m")
    assert np.array_equal(clf.decision_function(X), again.decision_function(X))
    assert again.model_.head.sampler.name == "tree"
