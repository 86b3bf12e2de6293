"""Sampled heads: losses against brute force, gradcheck, bias correction on a known distribution, protocol,
estimator and CLI integration, save/load and resume bit for bit, errors."""

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
from sparsexc.heads import NegativeSamplingHead, SampledSoftmaxHead, get_head
from sparsexc.heads.pairs import pair_logits


def test_pair_logits_match_dense_scores_for_dense_and_sparse_hidden():
    torch.manual_seed(1)
    head = NegativeSamplingHead(6, 7, {"sampler": "uniform"}).double()
    h = torch.randn(5, 6, dtype=torch.float64) * (torch.rand(5, 6) < 0.5)
    rows, ids = torch.tensor([0, 4, 4, 2]), torch.randint(7, (4, 3))
    full = head.output(h)[rows[:, None], ids]
    torch.testing.assert_close(pair_logits(head.output, h, rows, ids), full)
    torch.testing.assert_close(pair_logits(head.output, h.to_sparse_csr(), rows, ids), full)
    w = head.output.weight.detach().clone().requires_grad_(True)
    b = head.output.bias.detach().clone().requires_grad_(True)
    for hidden in (h, h.to_sparse_csr()):
        assert torch.autograd.gradcheck(
            lambda w, b, hidden=hidden: pair_logits(SimpleNamespace(weight=w, bias=b), hidden, rows, ids), (w, b)
        )


def _functional_output(head, w, b):
    """Make the head's loss a function of (w, b): its output layer becomes plain tensors."""
    head._modules.pop("output", None)
    head.output = SimpleNamespace(weight=w, bias=b)


@pytest.mark.parametrize("centre", ["log_pn", "zero"])
def test_negative_sampling_loss_matches_eq6_brute_force(centre):
    head, h, labels, rows, negatives, log_q = _setup(NegativeSamplingHead, {"reg": 0.01, "reg_centre": centre})
    Z = (h @ head.output.weight.T + head.output.bias).detach().numpy()
    # the penalty's centre: the paper's Eq. 6 (log p_n), or 0 as the authors' code has it for its baselines
    lq = log_q.numpy() if centre == "log_pn" else np.zeros_like(log_q.numpy())
    total = 0.0
    for p, (r, y) in enumerate(zip(rows.tolist(), labels.indices.tolist())):
        total += np.logaddexp(0, -Z[r, y]) + 0.01 * (Z[r, y] + lq[r, y]) ** 2
        total += np.mean([np.logaddexp(0, Z[r, j]) + 0.01 * (Z[r, j] + lq[r, j]) ** 2 for j in negatives[p].tolist()])
    assert head.loss(h, labels).item() == pytest.approx(total / 3, rel=1e-12)  # 3 rows have labels
    # the two centres differ wherever log p_n is not 0 (it is not here)
    other = "zero" if centre == "log_pn" else "log_pn"
    head.params = type(head.params)(**{**head.params.to_dict(), "reg_centre": other})
    assert head.loss(h, labels).item() != pytest.approx(total / 3, rel=1e-6)


@pytest.mark.parametrize("remove_hits", [True, False])
def test_sampled_softmax_loss_matches_brute_force(remove_hits):
    head, h, labels, rows, negatives, log_q = _setup(SampledSoftmaxHead, {"remove_accidental_hits": remove_hits})
    Z = (h @ head.output.weight.T + head.output.bias).detach().numpy()
    lq = log_q.numpy()
    total = 0.0
    for p, (r, y) in enumerate(zip(rows.tolist(), labels.indices.tolist())):
        o = [Z[r, y] - lq[r, y]] + [
            Z[r, j] - lq[r, j] for j in negatives[p].tolist() if not (remove_hits and j in ROWS[r])
        ]
        total += (np.logaddexp.reduce(o) - o[0]) / len(ROWS[r])
    assert head.loss(h, labels).item() == pytest.approx(total / 3, rel=1e-12)


@pytest.mark.parametrize("cls", [NegativeSamplingHead, SampledSoftmaxHead])
@pytest.mark.parametrize("sparse", [False, True])
def test_loss_gradcheck(cls, sparse):
    head, h, labels, *_ = _setup(cls, {})
    hidden = h.to_sparse_csr() if sparse else h

    w = head.output.weight.detach().clone().requires_grad_(True)
    b = head.output.bias.detach().clone().requires_grad_(True)

    def f(w, b):
        _functional_output(head, w, b)
        return head.loss(hidden, labels)

    assert torch.autograd.gradcheck(f, (w, b))


def test_bias_correction_recovers_the_data_distribution():
    # the proposal is fitted on other data, so p_n != p_D and the raw logits are biased
    head = train_on_two_contexts(NegativeSamplingHead, {"reg": 1e-4})
    p_data = P_DATA
    with torch.no_grad():
        eye = torch.eye(2, dtype=torch.float64)
        corrected = head.scores(eye).numpy()
        raw = head.output(eye).numpy()
    target = np.log(p_data)
    centred = lambda a: a - a.mean(axis=1, keepdims=True)  # noqa: E731 - equal up to a constant per x
    assert np.abs(centred(corrected) - centred(target)).max() < 0.25
    assert np.abs(centred(raw) - centred(target)).max() > 1.0  # without the correction it is far off


@pytest.mark.parametrize("name", ["negative-sampling", "sampled-softmax"])
def test_protocol_scores_topk_sets_and_tuning(name):
    torch.manual_seed(0)
    head = get_head(name)(D, C, {"sampler": "frequency"})
    head.prepare(sp.csr_matrix(np.ones((4, D), np.float32)), _labels(ROWS).to_csr())
    h = torch.randn(6, D)
    scores = head.scores(h)
    if name == "negative-sampling":
        torch.testing.assert_close(scores, head.output(h) + head.sampler.log_prob_all(h))
    else:
        torch.testing.assert_close(scores, head.output(h))
    idx, val = head.topk(h, 3)
    torch.testing.assert_close(val, torch.gather(scores, 1, idx))
    tuned = head.tune(h[:4], _labels(ROWS), "micro-F1")
    assert tuned["threshold"] > 0 and head.tuned_state() == {"threshold": tuned["threshold"]}
    sets = head.predict_sets(h).to_dense()
    expected = torch.softmax(scores, 1) * C > tuned["threshold"]
    assert torch.equal(sets.bool(), expected)


def test_loss_of_a_batch_without_labels_is_zero_with_a_graph():
    head = NegativeSamplingHead(D, C, {"sampler": "uniform"})
    loss = head.loss(torch.randn(2, D), _labels([[], []]))
    assert loss.item() == 0.0 and loss.requires_grad


def test_one_positive_per_row_draws_from_the_row_labels():
    head = NegativeSamplingHead(D, C, {"sampler": "uniform", "positives": "one"})
    torch.manual_seed(3)
    rows, pos = head.positive_pairs(_labels(ROWS))
    assert rows.tolist() == [0, 1, 3] and all(p in ROWS[r] for r, p in zip(rows.tolist(), pos.tolist()))


@pytest.mark.parametrize(
    "params, word",
    [
        ({"sampler": "kmeans"}, "sampler"),
        ({"num_negatives": 0}, "num_negatives"),
        ({"positives": "some"}, "positives"),
        ({"reg": -1.0}, "reg"),
        ({"tree_split": "x"}, "tree_split"),
        ({"nope": 1}, "nope"),
    ],
)
def test_bad_params_raise_value_error(params, word):
    with pytest.raises(ValueError, match=word):
        NegativeSamplingHead(D, C, params)


def _data():
    rng = np.random.default_rng(0)
    X = sp.random(300, 30, density=0.2, random_state=0, format="csr", dtype=np.float32)
    Y = sp.csr_matrix((rng.random((300, 9)) < 0.25).astype(np.float32))
    return X, Y


def test_estimator_defaults_to_adagrad_and_save_load_is_bit_exact(tmp_path):
    X, Y = _data()
    clf = XCClassifier(
        head="negative-sampling",
        head_params={"sampler": "tree", "tree_dim": 4},
        hidden_sizes=(),
        epochs=2,
        patience=None,
        device="cpu",
    )
    assert clf._settings()[3].optimizer == "adagrad" and clf._settings()[3].lr == pytest.approx(1e-2)
    assert XCClassifier(head="softmax")._settings()[3].optimizer == "adam"
    clf.fit(X, Y)
    clf.save(tmp_path / "m")
    again = XCClassifier.load(tmp_path / "m")
    assert np.array_equal(clf.decision_function(X), again.decision_function(X))
    assert (clf.predict(X) != again.predict(X)).nnz == 0
    assert again.model_.head.sampler.name == "tree" and bool(again.model_.head.sampler.fitted)


def test_tree_sampler_with_a_hidden_layer_is_refused():
    X, Y = _data()
    clf = XCClassifier(
        head="negative-sampling", head_params={"sampler": "tree"}, hidden_sizes=(8,), epochs=1, device="cpu"
    )
    with pytest.raises(ValueError, match="hidden_sizes"):
        clf._settings()  # from the settings alone (Head.check_encoder), before any data
    with pytest.raises(ValueError, match="hidden_sizes"):
        clf.fit(X, Y)
    head = NegativeSamplingHead(8, Y.shape[1], {"sampler": "tree"})  # built directly: refused when prepared
    with pytest.raises(ValueError, match="8-d hidden vectors"):
        head.prepare(X, Y)


@pytest.mark.parametrize("name", ["negative-sampling", "sampled-softmax"])
@pytest.mark.parametrize("hidden, decided", [((), "tree"), ((8,), "frequency")])
def test_default_sampler_is_decided_by_the_inputs_and_saved(tmp_path, name, hidden, decided):
    X, Y = _data()
    assert get_head(name).Params().sampler == "auto"
    clf = XCClassifier(
        head=name,
        head_params={"tree_dim": 4},
        hidden_sizes=hidden,
        epochs=1,
        patience=None,
        device="cpu",
        random_state=0,
    ).fit(X, Y)
    assert clf.model_.head.sampler.name == decided and clf.model_.head.params.sampler == decided
    assert clf.get_params()["head_params"] == {"tree_dim": 4}  # the user's settings are not rewritten
    clf.save(tmp_path / "m")
    again = XCClassifier.load(tmp_path / "m")
    assert again.model_.head.sampler.name == decided
    np.testing.assert_array_equal(again.decision_function(X), clf.decision_function(X))


@pytest.mark.parametrize("cls", [NegativeSamplingHead, SampledSoftmaxHead])
def test_auto_sampler_exists_only_after_prepare(cls):
    X, Y = _data()
    head = cls(X.shape[1], Y.shape[1])  # sampler="auto": decided by prepare
    assert head.sampler is None
    with pytest.raises(ValueError, match=r"no sampler yet.*prepare"):
        head.ready_sampler  # noqa: B018 - the property raises
    head.prepare(X, Y)
    assert head.ready_sampler is head.sampler and head.sampler.name == "tree"


@pytest.mark.parametrize(
    "head,head_params",
    [
        ("sampled-softmax", {"sampler": "tree", "tree_dim": 4}),
        # prepare sets these biases again on resume: the checkpoint restored after it must win, bit for bit
        ("negative-sampling", {"sampler": "tree", "tree": {"dim": 4}, "bias_init": "inverse_aux"}),
    ],
)
def test_interrupted_training_resumes_bit_for_bit(tmp_path, monkeypatch, head, head_params):
    from sparsexc.train import Trainer

    X, Y = _data()
    kwargs = dict(
        head=head,
        head_params=head_params,
        hidden_sizes=(),
        epochs=2,
        batch_size=32,
        patience=None,
        validation_fraction=0.0,
        device="cpu",
    )
    plain = XCClassifier(**kwargs).fit(X, Y)
    step, calls = Trainer._step, {"n": 0}

    def failing_step(self, *args):
        calls["n"] += 1
        if calls["n"] == 14:
            raise KeyboardInterrupt
        return step(self, *args)

    monkeypatch.setattr(Trainer, "_step", failing_step)
    ck = str(tmp_path / "ck")
    with pytest.raises(KeyboardInterrupt):
        XCClassifier(**kwargs).fit(X, Y, checkpoint_dir=ck, checkpoint_every=3)
    monkeypatch.setattr(Trainer, "_step", step)
    resumed = XCClassifier(**kwargs).fit(X, Y, checkpoint_dir=ck, checkpoint_every=3, resume=True)
    for key, value in plain.model_.state_dict().items():
        assert torch.equal(value, resumed.model_.state_dict()[key]), key


def test_cli_trains_the_negative_sampling_head(tmp_path):
    from sparsexc.cli import main

    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--dataset",
            "bibtex",
            "--head",
            "negative-sampling",
            "--head-param",
            "sampler=tree",
            "--hidden-sizes",
            "",
            "--epochs",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    assert XCClassifier.load(out / "model").model_.head.params.sampler == "tree"
