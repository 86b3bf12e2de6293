"""Trainer's ``on_epoch_end`` callback: called once per epoch trained, after the epoch's record is made."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_multilabel_classification

from sparsexc.errors import ConfigurationError
from sparsexc.heads import SoftmaxHead
from sparsexc.models import SparseEncoder, XCModel
from sparsexc.train import Trainer, TrainParams


def _data(n=200, d=20, c=5, seed=0):
    X, Y = make_multilabel_classification(n, d, n_classes=c, sparse=True, return_indicator="sparse", random_state=seed)
    return X.astype(np.float32), Y


def _model(d=20, c=5):
    torch.manual_seed(0)
    encoder = SparseEncoder(d, {"hidden_sizes": (8,), "dropout": 0.3})
    return XCModel(encoder, SoftmaxHead(encoder.out_dim, c))


PARAMS = {"device": "cpu", "batch_size": 32, "lr": 0.05, "seed": 1}


def test_called_once_per_epoch_with_the_finished_record():
    X, Y = _data()
    seen = []

    def on_epoch_end(trainer, record):
        # the record is made: it is the last history entry, with the validation metrics and early stopping done
        seen.append((trainer, dict(record), dict(trainer.history[-1]), len(trainer.history)))
        record["train_loss"] = -1.0  # a copy: the history keeps its own

    trainer = Trainer(_model(), TrainParams(epochs=4, patience=1, **PARAMS), on_epoch_end=on_epoch_end)
    history = trainer.fit(X[:150], Y[:150], X[150:], Y[150:])
    assert len(seen) == len(history) >= 1
    for epoch, (who, record, last, length) in enumerate(seen, start=1):
        assert who is trainer and length == epoch and record == last == history[epoch - 1]
        assert record["epoch"] == epoch and "val_P@1" in record and record["seconds"] > 0
    assert all(r["train_loss"] >= 0 for r in history)


def test_an_evaluating_callback_leaves_training_unchanged():
    X, Y = _data()
    plain = _model()
    Trainer(plain, TrainParams(epochs=3, **PARAMS)).fit(X, Y)
    scores = []
    watched = _model()
    callback = lambda trainer, record: scores.append(trainer.model.predict_scores(X[:10]))  # noqa: E731
    Trainer(watched, TrainParams(epochs=3, **PARAMS), on_epoch_end=callback).fit(X, Y)
    assert len(scores) == 3 and not np.array_equal(scores[0], scores[-1])
    for a, b in zip(plain.state_dict().values(), watched.state_dict().values()):
        assert torch.equal(a, b)  # scoring in eval mode draws no random numbers and restores training mode


def test_a_resumed_run_calls_it_for_the_epochs_it_trains_only(tmp_path):
    X, Y = _data()
    Trainer(_model(), TrainParams(epochs=2, **PARAMS), checkpoint_dir=tmp_path).fit(X, Y)
    epochs = []
    trainer = Trainer(
        _model(),
        TrainParams(epochs=3, **PARAMS),
        checkpoint_dir=tmp_path,
        on_epoch_end=lambda trainer, record: epochs.append(record["epoch"]),
    )
    history = trainer.fit(X, Y, resume=True)
    assert epochs == [3] and len(history) == 3


def test_a_callback_that_is_not_callable_is_refused():
    with pytest.raises(ConfigurationError, match="on_epoch_end must be a callable"):
        Trainer(_model(), TrainParams(**PARAMS), on_epoch_end="print")  # type: ignore[arg-type]
