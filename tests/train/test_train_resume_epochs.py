"""Trainer: resuming with another ``epochs`` than the checkpoint's, per-epoch lines on stderr, input checks."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_multilabel_classification

from sparsexc._params import TrainParams
from sparsexc.heads import SoftmaxHead
from sparsexc.models import SparseEncoder, XCModel
from sparsexc.train import Trainer

BASE = {"device": "cpu", "batch_size": 32, "seed": 3}


def _data():
    X, Y = make_multilabel_classification(240, 30, n_classes=6, sparse=True, return_indicator="sparse", random_state=0)
    return X.astype(np.float32), Y


def _model(seed=0):
    torch.manual_seed(seed)
    encoder = SparseEncoder(30, {"hidden_sizes": (16,), "dropout": 0.2})  # dropout: the torch RNG matters
    return XCModel(encoder, SoftmaxHead(encoder.out_dim, 6))


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _untimed(history):
    return [{k: v for k, v in r.items() if k not in ("seconds", "examples_per_second")} for r in history]


def _fit(model, epochs, ckpt=None, resume=False, log_path=None, **params):
    X, Y = _data()
    trainer = Trainer(model, TrainParams(epochs=epochs, **BASE, **params), checkpoint_dir=ckpt, log_path=log_path)
    trainer.fit(X[:200], Y[:200], X[200:], Y[200:], resume=resume)
    return trainer


def test_resume_with_more_epochs_trains_on_like_an_uninterrupted_run(tmp_path):
    plain_model = _model()
    plain = _fit(plain_model, 4)
    log = tmp_path / "log.jsonl"
    _fit(_model(), 2, tmp_path / "ck", log_path=str(log))  # a finished 2-epoch run
    resumed_model = _model(seed=9)  # other initial weights: everything must come from the checkpoint
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        resumed = _fit(resumed_model, 4, tmp_path / "ck", resume=True, log_path=str(log))
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert _untimed(resumed.history) == _untimed(plain.history) and resumed.tuned == plain.tuned
    assert _same(_weights(resumed_model), _weights(plain_model))  # bit for bit (the RNG state is checkpointed)
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2, 3, 4]
    state = json.loads((tmp_path / "ck" / "checkpoint.json").read_text())
    assert state["epoch"] == 4 and state["finished"]


def _scripted_validation(monkeypatch, trainer, values):
    scripted = iter(values)
    monkeypatch.setattr(trainer, "_validate", lambda *args: {"P@1": next(scripted)})


def test_resume_after_early_stopping_stays_stopped_and_says_so(tmp_path, monkeypatch):
    X, Y = _data()
    model = _model()
    first = Trainer(model, TrainParams(epochs=10, patience=2, **BASE), checkpoint_dir=tmp_path)
    _scripted_validation(monkeypatch, first, [0.2, 0.5, 0.4, 0.3])
    first.fit(X[:200], Y[:200], X[200:], Y[200:])
    assert first.stopped_early and len(first.history) == 4

    again_model = _model(seed=9)
    again = Trainer(again_model, TrainParams(epochs=20, patience=2, **BASE), checkpoint_dir=tmp_path)
    _scripted_validation(monkeypatch, again, [])  # any validation would fail: nothing may be trained
    with pytest.warns(UserWarning, match=r"stopped early at epoch 4 .*best epoch 2.*not trained on to epochs=20"):
        again.fit(X[:200], Y[:200], X[200:], Y[200:], resume=True)
    assert again.stopped_early and again.best_epoch == 2 and again.history == first.history
    assert _same(_weights(again_model), _weights(model))


def test_resume_with_fewer_epochs_than_done_trains_nothing_and_says_so(tmp_path):
    model = _model()
    first = _fit(model, 3, tmp_path)
    again_model = _model(seed=9)
    with pytest.warns(UserWarning, match=r"trained 3 epoch\(s\), more than epochs=1; nothing is trained"):
        again = _fit(again_model, 1, tmp_path, resume=True)
    assert again.history == first.history and len(again.history) == 3
    assert _same(_weights(again_model), _weights(model))


def test_per_epoch_lines_go_to_stderr_and_stdout_stays_empty(capsys):
    X, Y = _data()
    Trainer(_model(), TrainParams(epochs=2, progress=True, **BASE)).fit(X[:200], Y[:200], X[200:], Y[200:])
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [line for line in captured.err.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"] and all("val P@1 0." in line for line in lines)


@pytest.mark.parametrize("metric", ["P@7", "nDCG@10"])
def test_val_metric_ranking_more_labels_than_exist_is_refused(metric):
    X, Y = _data()
    with pytest.raises(ValueError, match=rf"val_metric='{metric}'.*n_labels=6"):
        Trainer(_model(), TrainParams(val_metric=metric, **BASE)).fit(X[:200], Y[:200], X[200:], Y[200:])


def test_feature_counts_must_match_the_model_exactly():
    X, Y = _data()
    with pytest.raises(ValueError, match="X has 29 features, but the model is expecting 30 features"):
        Trainer(_model(), TrainParams(**BASE)).fit(X[:, :29], Y)
    with pytest.raises(ValueError, match="X_val has 20 features, but the model is expecting 30 features"):
        Trainer(_model(), TrainParams(**BASE)).fit(X[:200], Y[:200], X[200:, :20], Y[200:])
