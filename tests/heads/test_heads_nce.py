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
from sparsexc.heads.nce import log_prior


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


def test_log_prior_is_the_smoothed_log_frequency_and_normalised():
    Y = sp.csr_matrix(np.array([[1, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32))
    expected = np.log(np.array([3.0, 2.0, 1.0, 2.0]) / (4 + 4))  # counts + 1 over pairs + C
    assert np.allclose(log_prior(Y), expected, rtol=0, atol=1e-15)
    assert np.exp(log_prior(Y)).sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("bias_init", ["log_prior", "zero"])
def test_prepare_sets_the_biases_by_bias_init(bias_init):
    torch.manual_seed(0)
    Y = _labels(ROWS).to_csr()
    head = get_head("nce")(D, C, {"sampler": "frequency", "bias_init": bias_init})
    before = head.output.bias.detach().clone()
    head.prepare(sp.csr_matrix(np.ones((Y.shape[0], D), np.float32)), Y)
    expected = torch.from_numpy(log_prior(Y)).to(before) if bias_init == "log_prior" else before
    assert torch.equal(head.output.bias.detach(), expected)


EPOCHS = 5


def _p_at_1_after_training(bias_init: str) -> tuple[float, float]:
    """P@1 of the NCE head with the tree as noise after EPOCHS epochs on a small latent-hierarchy set (1,000 labels),
    and P@1 of always predicting the most frequent training label."""
    from sparsexc.datasets import latent_hierarchy
    from sparsexc.heads import LabelBatch
    from sparsexc.metrics import precision_at_k
    from sparsexc.train import TrainParams, build_optimizer

    splits = latent_hierarchy(4000, 1000, 16, seed=3)
    X, Y = splits.train.X.toarray(), splits.train.Y
    torch.manual_seed(0)
    head = get_head("nce")(16, 1000, {"sampler": "tree", "bias_init": bias_init})
    head.prepare(splits.train.X, Y)
    optimizer = build_optimizer(head.parameters(), TrainParams(optimizer="adagrad", lr=1e-2))
    for epoch in range(EPOCHS):
        order = np.random.default_rng(epoch).permutation(X.shape[0])
        for start in range(0, X.shape[0], 128):
            rows = order[start : start + 128]
            optimizer.zero_grad()
            head.loss(torch.from_numpy(X[rows]), LabelBatch.from_csr(Y[rows])).backward()
            optimizer.step()
    most_frequent = int(np.argmax(np.bincount(Y.indices, minlength=1000)))
    trivial = float(splits.test.Y[:, most_frequent].mean())
    with torch.no_grad():
        top = head.topk(torch.from_numpy(splits.test.X.toarray()), 1)
    return float(precision_at_k(splits.test.Y, (top[0].numpy(), top[1].numpy()), 1)), trivial


def test_log_prior_start_learns_where_a_zero_start_ranks_the_undrawn_labels_first():
    # with zero biases the labels the tree never draws keep logit ~0 and outrank the plausible ones, which the
    # negatives push down (measured: P@1 exactly 0 on synthetic sets); the normalised start learns
    (zero, trivial), (prior, _) = _p_at_1_after_training("zero"), _p_at_1_after_training("log_prior")
    assert prior > zero + 0.1
    assert prior > trivial + 0.05  # above always predicting the most frequent label


def test_a_loaded_sampler_plus_init_output_starts_where_prepare_does():
    # what benchmarks/adversarial_sampling.py does when two tree heads share one fitted tree
    from sparsexc.datasets import latent_hierarchy

    splits = latent_hierarchy(600, 50, 8, seed=1)
    torch.manual_seed(0)
    fitted = get_head("nce")(8, 50, {"sampler": "tree"})
    fitted.prepare(splits.train.X, splits.train.Y)
    torch.manual_seed(0)
    loaded = get_head("nce")(8, 50, {"sampler": "tree"})
    loaded.sampler.load_state_dict(fitted.sampler.state_dict())
    assert not torch.equal(loaded.output.bias, fitted.output.bias)  # without the hook the biases stay at zero
    loaded.init_output(splits.train.X, splits.train.Y)
    assert torch.equal(loaded.output.bias, fitted.output.bias)
    assert torch.equal(loaded.output.weight, fitted.output.weight)
