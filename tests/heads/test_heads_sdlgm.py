"""SDLGM head: loss against a brute-force recomputation, gradcheck, sets/top-k rules, priors, temperature,
estimator + CLI integration, bit-exact save/load and Trainer resume."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import make_multilabel_classification

from sparsexc.estimator import XCClassifier
from sparsexc.heads import LabelBatch, SparseLatentHead, build_head, get_head
from sparsexc.latent import two_step_sample
from sparsexc.models import SparseEncoder, XCModel
from sparsexc.train import Trainer

ROWS = [[0, 2], [1], [], [0, 1, 2, 4], [3]]
N_ROWS = len(ROWS)
C = 5


def _labels(rows, n_labels=C) -> LabelBatch:
    Y = np.zeros((len(rows), n_labels), np.float32)
    for i, r in enumerate(rows):
        Y[i, r] = 1
    return LabelBatch.from_csr(sp.csr_matrix(Y))


def _head(params=None, in_dim=4, seed=0) -> SparseLatentHead:
    torch.manual_seed(seed)
    return SparseLatentHead(in_dim, C, {"max_labels": 3, **(params or {})}).double()


def _hidden(n=N_ROWS, in_dim=4, seed=1):
    return torch.randn(n, in_dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_loss_matches_a_brute_force_recomputation_of_every_term():
    head = _head({"kl_weight": 0.7, "length_weight": 0.3, "noise": 0.05, "temperature": 0.9})
    Y = sp.csr_matrix(_labels(ROWS).to_dense().numpy())
    head.prepare(sp.csr_matrix((len(ROWS), 2)), Y)
    h = _hidden()
    torch.manual_seed(11)
    loss = head.loss(h, _labels(ROWS))
    # the same draw, recomputed with numpy formulas
    a = (h @ head.labels.weight.T + head.labels.bias).detach()
    c = (h @ head.levels.weight.T + head.levels.bias).detach()
    torch.manual_seed(11)
    draw = two_step_sample(c, a, 0.9, 0.9)
    z = np.clip(draw.mask.numpy(), 0, 1)
    pi = 0.05 + 0.9 * z
    Yd = Y.toarray()
    nll = -(Yd * np.log(pi) + (1 - Yd) * np.log(1 - pi)).sum(1)
    counts = np.array([2, 2, 2, 1, 1]) + 1.0  # add-one label counts of ROWS
    log_p_lab = np.log(counts / counts.sum())
    levels = np.array([2, 1, 1, 3])  # min(|y|, 3) of the labelled rows, counted in 1..3
    log_p_len = np.log((np.bincount(levels - 1, minlength=3) + 1.0) / (len(levels) + 3))
    q = np.exp(c.numpy() - np.logaddexp.reduce(c.numpy(), axis=1, keepdims=True))
    kl_len = (q * (np.log(q) - log_p_len)).sum(1)
    kl_lab = np.zeros(len(ROWS))
    for i in range(len(ROWS)):
        left = list(range(C))
        for j, item in enumerate(draw.order[i].tolist()):
            lq = a[i, left].numpy() - np.logaddexp.reduce(a[i, left].numpy())
            lp = log_p_lab[left] - np.logaddexp.reduce(log_p_lab[left])
            kl_lab[i] += q[i, j:].sum() * (np.exp(lq) * (lq - lp)).sum()  # weight q(L >= j + 1)
            left.remove(item)
    sizes = np.array([len(r) for r in ROWS])
    level_nll = np.where(sizes > 0, -np.log(q[np.arange(5), np.clip(sizes, 1, 3) - 1]), 0.0)
    expected = np.mean(nll + 0.7 * (kl_len + kl_lab) + 0.3 * level_nll)
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_loss_gradcheck_and_gradients_reach_both_layers():
    head = _head({"temperature": 0.8})
    labels = _labels(ROWS)

    def f(h):
        torch.manual_seed(3)  # the same noise at every evaluation
        return head.loss(h, labels)

    h = _hidden().requires_grad_(True)
    head.eval()  # no step counting during gradcheck's many evaluations
    assert torch.autograd.gradcheck(f, (h,))
    head.train()
    f(h).backward()
    for layer in (head.labels, head.levels):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_sets_are_the_top_mode_level_labels_and_topk_follows_the_label_scores():
    head = _head()
    h = _hidden(n=20)
    head.eval()
    sets = head.predict_sets(h).to_csr().toarray().astype(bool)
    levels = head.level_probabilities(h).argmax(1).numpy() + 1
    scores = head.scores(h).detach().numpy()
    assert np.allclose(scores.sum(1), 1.0)
    for i in range(20):
        assert sets[i].sum() == levels[i] <= 3
        assert set(np.flatnonzero(sets[i])) == set(np.argsort(-scores[i], kind="stable")[: levels[i]])
    idx, val = head.topk(h, 4)
    assert np.array_equal(idx.numpy(), np.argsort(-scores, axis=1, kind="stable")[:, :4])
    assert np.allclose(val.detach().numpy(), np.take_along_axis(scores, idx.numpy(), 1))
    assert torch.equal(head.predict_sets(h).indices, head.predict_sets(h).indices)  # deterministic at eval


def test_temperature_follows_the_schedule_over_training_steps_only():
    head = _head({"schedule": "exponential", "temperature": 2.0, "min_temperature": 0.5, "anneal_rate": 0.1})
    labels, h = _labels(ROWS), _hidden()
    assert head.temperature() == 2.0
    head.train()
    for _ in range(3):
        head.loss(h, labels)
    assert int(head.step) == 3 and head.temperature() == pytest.approx(2.0 * np.exp(-0.3))
    head.eval()
    head.loss(h, labels)
    assert int(head.step) == 3


def test_uniform_prior_keeps_zero_logits_and_params_are_validated():
    head = _head({"prior": "uniform"})
    head.prepare(sp.csr_matrix((5, 2)), sp.csr_matrix(_labels(ROWS).to_dense().numpy()))
    assert torch.all(head.label_prior == 0) and torch.all(head.level_prior == 0)
    for bad, match in (
        ({"max_labels": 0}, "max_labels"),
        ({"noise": 0.5}, "noise"),
        ({"prior": "x"}, "prior"),
        ({"schedule": "x"}, "schedule"),
        ({"n_samples": 0}, "n_samples"),
        ({"oops": 1}, "oops"),
    ):
        with pytest.raises(ValueError, match=match):
            SparseLatentHead(4, C, bad)
    with pytest.raises(ValueError, match="must not exceed the number of labels"):
        SparseLatentHead(4, C, {"max_labels": 6})
    assert get_head("sdlgm") is SparseLatentHead
    rebuilt = build_head(_head().config())
    assert isinstance(rebuilt, SparseLatentHead) and rebuilt.params.max_labels == 3


def _data(n=300, d=40, c=8, seed=0):
    X, Y = make_multilabel_classification(
        n, d, n_classes=c, n_labels=2, sparse=True, return_indicator="sparse", random_state=seed
    )
    return sp.csr_matrix(X, dtype=np.float32), sp.csr_matrix(Y, dtype=np.float32)


@pytest.mark.parametrize("hidden_sizes", [(), (16,)])
def test_estimator_fits_saves_and_loads_bit_exact(tmp_path, hidden_sizes):
    X, Y = _data()
    clf = XCClassifier(
        head="sdlgm",
        head_params={"max_labels": 5},
        hidden_sizes=hidden_sizes,
        epochs=15,
        batch_size=32,
        patience=None,
        random_state=2,
        device="cpu",
    ).fit(X, Y)
    sets = clf.predict(X)
    assert sets.getnnz(1).min() >= 1 and sets.getnnz(1).max() <= 5
    most_frequent = np.asarray(Y.sum(0)).max() / Y.shape[0]  # P@1 of always ranking the most frequent label first
    assert clf.score(X, Y) > most_frequent + 0.1
    clf.save(tmp_path / "m")
    again = XCClassifier.load(tmp_path / "m")
    a, b = clf.model_.state_dict(), again.model_.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert int(again.model_.head.step) == int(clf.model_.head.step) > 0
    assert (again.predict(X) != sets).nnz == 0
    ia, sa = clf.predict_topk(X, 5)
    ib, sb = again.predict_topk(X, 5)
    assert np.array_equal(ia, ib) and np.array_equal(sa, sb)
    assert np.array_equal(clf.predict_proba(X[:7]), again.predict_proba(X[:7]))


def test_trainer_resume_is_bit_exact_for_the_stochastic_head(tmp_path, monkeypatch):
    X, Y = _data(n=200)
    params = {"epochs": 2, "batch_size": 32, "seed": 4, "device": "cpu"}

    def model():
        torch.manual_seed(0)
        enc = SparseEncoder(40, {"hidden_sizes": [16]})
        return XCModel(enc, SparseLatentHead(16, 8, {"max_labels": 4}))

    plain = model()
    Trainer(plain, params).fit(X, Y)

    calls = {"n": 0}
    step = Trainer._step

    def crash_after_ten(self, *args):
        calls["n"] += 1
        if calls["n"] == 11:  # mid second epoch (7 steps per epoch), after the checkpoint at step 9
            raise KeyboardInterrupt
        return step(self, *args)

    monkeypatch.setattr(Trainer, "_step", crash_after_ten)
    with pytest.raises(KeyboardInterrupt):
        Trainer(model(), params, checkpoint_dir=tmp_path, checkpoint_every=3).fit(X, Y)
    monkeypatch.setattr(Trainer, "_step", step)
    resumed = model()
    Trainer(resumed, params, checkpoint_dir=tmp_path, checkpoint_every=3).fit(X, Y, resume=True)
    a, b = plain.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and int(b["head.step"]) == 14


def test_cli_trains_the_sdlgm_head(tmp_path):
    import json

    from sparsexc.cli import main

    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--dataset",
            "bibtex",
            "--head",
            "sdlgm",
            "--head-param",
            "max_labels=5",
            "--epochs",
            "1",
            "--hidden-sizes",
            "64",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["model"]["head"]["name"] == "sdlgm" and config["model"]["head"]["params"]["max_labels"] == 5
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["P@1"] > 0.1
