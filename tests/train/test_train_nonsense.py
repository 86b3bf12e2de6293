"""Training that stops on nonsense: a NaN or infinite loss stops training at that step, on every rank at
once (issue 16), and targets with nothing to learn are refused (no positive at all) or warned about (one
label only)."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sparsexc.distributed import rank, spawn
from sparsexc.estimator import XCClassifier
from sparsexc.heads import SoftmaxHead
from sparsexc.models import SparseEncoder, XCModel
from sparsexc.train import NonFiniteLossError, Trainer, load_checkpoint

STEPS_PER_EPOCH = 4


def _huge_feature_data(n=64, n_features=100, n_labels=30, seed=0):
    """The reported case: every row holds 50 feature values of 1e30 besides ordinary ones; one label a row."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, n_features, density=0.2, random_state=seed, format="lil")
    X[:, :50] = 1e30
    Y = sp.csr_matrix((np.ones(n), (np.arange(n), rng.integers(0, n_labels, n))), shape=(n, n_labels))
    return X.tocsr(), Y


def _record_step_losses(monkeypatch) -> list[float]:
    """The loss of every training step as ``Trainer._step`` returns it (one process: the batch loss)."""
    losses: list[float] = []
    step = Trainer._step

    def recording(self, *args, **kwargs):
        losses.append(step(self, *args, **kwargs))
        return losses[-1]

    monkeypatch.setattr(Trainer, "_step", recording)
    return losses


@pytest.mark.parametrize("head", ["negative-sampling", "sampled-softmax"])
def test_the_reported_case_stops_at_the_first_non_finite_step(head, monkeypatch):
    X, Y = _huge_feature_data()
    losses = _record_step_losses(monkeypatch)
    # preprocess="none": the raw 1e30 features must reach the loss (preprocessing would scale them; issue 20)
    clf = XCClassifier(
        head=head, epochs=2, batch_size=16, validation_fraction=0, random_state=0, verbose=False, preprocess="none"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's sparse-tensor notices
        with pytest.raises(NonFiniteLossError) as info:
            clf.fit(X, Y)
    # training stopped at the first step whose loss is not finite: every step before it was finite
    assert losses and not math.isfinite(losses[-1]) and all(math.isfinite(v) for v in losses[:-1])
    done = len(losses)
    epoch, step = (done - 1) // STEPS_PER_EPOCH + 1, (done - 1) % STEPS_PER_EPOCH + 1
    err = info.value
    assert (err.epoch, err.step) == (epoch, step) and not math.isfinite(err.loss)
    message = str(err)
    assert f"at epoch {epoch}, step {step} of {STEPS_PER_EPOCH}" in message
    assert "largest absolute feature value is 1e+30" in message and "lower lr" in message
    if head == "negative-sampling":  # the reported run: its very first step overflows
        assert (err.epoch, err.step) == (1, 1)
    assert not hasattr(clf, "model_")  # not fitted
    copy = pickle.loads(pickle.dumps(err))
    assert (type(copy), str(copy), copy.epoch, copy.step) == (NonFiniteLossError, message, epoch, step)


def _model(seed=0):
    torch.manual_seed(seed)
    encoder = SparseEncoder(12, {"hidden_sizes": (8,), "dropout": 0.0})
    return XCModel(encoder, SoftmaxHead(encoder.out_dim, 5))


def _small_data(seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(40, 12, density=0.3, random_state=seed, format="csr", dtype=np.float32)
    Y = sp.csr_matrix((np.ones(40), (np.arange(40), rng.integers(0, 5, 40))), shape=(40, 5))
    return X, Y


def _poison_step(trainer: Trainer, at: int, value: float, only_rank: int | None = None) -> None:
    # the real step runs (gradients, all-reduces); its returned loss is replaced by ``value`` at call ``at``
    calls = {"n": 0}
    step = trainer._step

    def poisoned(*args, **kwargs):
        loss = step(*args, **kwargs)
        calls["n"] += 1
        hit = calls["n"] == at and (only_rank is None or rank() == only_rank)
        return value if hit else loss

    trainer._step = poisoned


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_trainer_stops_and_keeps_the_last_good_checkpoint(tmp_path, value):
    X, Y = _small_data()
    trainer = Trainer(
        _model(),
        {"device": "cpu", "batch_size": 8, "epochs": 3, "progress": False},
        checkpoint_dir=tmp_path,
        checkpoint_every=1,
    )
    _poison_step(trainer, at=7, value=value)  # 5 steps an epoch: epoch 2, step 2
    with pytest.raises(NonFiniteLossError) as info:
        trainer.fit(X, Y)
    assert (info.value.epoch, info.value.step) == (2, 2)
    assert "at epoch 2, step 2 of 5" in str(info.value) and "check X for extreme feature values" in str(info.value)
    _, state = load_checkpoint(tmp_path)
    assert state["global_step"] == 6 and len(state["history"]) == 1  # the step before; epoch 1 complete


def test_finite_losses_train_as_before():
    X, Y = _small_data()
    history = Trainer(_model(), {"device": "cpu", "batch_size": 8, "epochs": 2, "progress": False}).fit(X, Y)
    assert len(history) == 2 and all(math.isfinite(r["train_loss"]) for r in history)


def _data_parallel_job():
    # 2 ranks; rank 1 alone sees a NaN loss at its 3rd step: both must stop at that step
    X, Y = _small_data()
    trainer = Trainer(_model(), {"device": "cpu", "batch_size": 8, "epochs": 2, "progress": False})
    _poison_step(trainer, at=3, value=float("nan"), only_rank=1)
    try:
        trainer.fit(X, Y)
    except NonFiniteLossError as exc:
        return exc.epoch, exc.step, str(exc)
    return None


def test_every_data_parallel_rank_stops_at_the_same_step():
    results = spawn(_data_parallel_job, 2)
    assert results[0] is not None and results[0] == results[1]
    assert results[0][:2] == (1, 3)


# ---------------------------------------------------------------------------------------------- degenerate targets


def test_targets_without_any_positive_are_refused():
    X, _ = _small_data()
    Y = sp.csr_matrix((40, 5))
    with pytest.raises(ValueError, match="Y holds no positive label: all 40 rows have an empty label set"):
        XCClassifier(epochs=1, verbose=False).fit(X, Y)
    with pytest.raises(ValueError, match="Y holds no label at all"):  # label lists: no label column either
        XCClassifier(epochs=1, verbose=False).fit(X, [[] for _ in range(40)])


@pytest.mark.parametrize("n_labels", [1, 5])
def test_targets_with_one_label_warn(n_labels):
    X, _ = _small_data()
    rows = np.arange(0, 40, 2)
    Y = sp.csr_matrix((np.ones(len(rows)), (rows, np.full(len(rows), n_labels - 1))), shape=(40, n_labels))
    with pytest.warns(UserWarning, match=rf"all belong to one label \(label {n_labels - 1}, in 20 of 40 rows"):
        XCClassifier(epochs=1, hidden_sizes=(), verbose=False, val_metric="P@1").fit(X, Y)


def test_two_labels_do_not_warn():
    X, _ = _small_data()
    Y = sp.csr_matrix((np.ones(2), ([0, 1], [0, 3])), shape=(40, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message="Sparse invariant checks")  # torch's own notice
        XCClassifier(epochs=1, hidden_sizes=(), verbose=False).fit(X, Y)
