"""TrainState is the checkpoint's JSON state: the keys of the old dict state, and checkpoints written in the old
dict form (by the code before TrainState) still resume to the same result as an uninterrupted run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.datasets import make_multilabel_classification

from sparsexc._params import TrainParams
from sparsexc.heads import SoftmaxHead
from sparsexc.models import SparseEncoder, XCModel
from sparsexc.train import Trainer, load_checkpoint, save_checkpoint
from sparsexc.train.state import TrainState

BASE = {"device": "cpu", "batch_size": 32, "seed": 3}

# the 13 keys of the dict state of the Trainer before TrainState (checkpoint format 1)
OLD_KEYS = {
    "epoch",
    "step_in_epoch",
    "global_step",
    "loss_sum",
    "history",
    "best_metric",
    "best_epoch",
    "bad_epochs",
    "finished",
    "stopped_early",
    "n_rows",
    "batch_size",
    "seed",
}


def _data():
    X, Y = make_multilabel_classification(240, 30, n_classes=6, sparse=True, return_indicator="sparse", random_state=0)
    return X.astype(np.float32), Y


def _model(seed=0):
    torch.manual_seed(seed)
    encoder = SparseEncoder(30, {"hidden_sizes": (16,), "dropout": 0.2})  # dropout: the torch RNG matters
    return XCModel(encoder, SoftmaxHead(encoder.out_dim, 6))


def _fit(model, epochs, ckpt=None, resume=False, checkpoint_every=None, **params):
    X, Y = _data()
    trainer = Trainer(
        model, TrainParams(epochs=epochs, **BASE, **params), checkpoint_dir=ckpt, checkpoint_every=checkpoint_every
    )
    trainer.fit(X[:200], Y[:200], X[200:], Y[200:], resume=resume)
    return trainer


def _untimed(history):
    return [{k: v for k, v in r.items() if k not in ("seconds", "examples_per_second")} for r in history]


def test_the_json_state_has_the_old_keys_and_round_trips():
    state = TrainState(n_rows=10, batch_size=4, seed=1, epoch=2, history=[{"epoch": 1}], best_metric=0.5)
    as_dict = state.to_dict()
    assert set(as_dict) == OLD_KEYS  # no label_shards key unless there are shards
    assert TrainState.from_dict({"format": 1, **as_dict}) == state
    assert json.loads(json.dumps(as_dict)) == as_dict  # plain JSON
    as_dict["history"][0]["epoch"] = 99  # a copy: editing it leaves the state alone
    assert state.history == [{"epoch": 1}]
    sharded = TrainState(n_rows=10, batch_size=4, seed=1, label_shards={"folder": "label_shards/step-000000001"})
    assert set(sharded.to_dict()) == OLD_KEYS | {"label_shards"}
    assert TrainState.from_dict(sharded.to_dict()).label_shards == sharded.label_shards


def test_check_resumes_names_the_setting_that_differs():
    run = TrainState(n_rows=10, batch_size=4, seed=1)
    run.check_resumes(TrainState(n_rows=10, batch_size=4, seed=1, epoch=3), "ck")  # same identity: fine
    with pytest.raises(ValueError, match="checkpoint has batch_size=8, this run 4"):
        run.check_resumes(TrainState(n_rows=10, batch_size=8, seed=1), "ck")


@pytest.mark.parametrize("higher, values, best", [(True, [0.2, 0.5, 0.4], 0.5), (False, [0.5, 0.2, 0.4], 0.2)])
def test_improves_follows_the_metric_direction(higher, values, best):
    state = TrainState(n_rows=1, batch_size=1, seed=0)
    for value in values:
        if state.improves(value, higher):
            state.best_metric = value
    assert state.best_metric == best
    assert not state.improves(best, higher)  # a tie is no improvement


def test_end_epoch_moves_on_and_finishes_at_epochs():
    state = TrainState(n_rows=1, batch_size=1, seed=0, step_in_epoch=3, loss_sum=1.5)
    state.end_epoch({"epoch": 1}, epochs=2)
    assert (state.epoch, state.step_in_epoch, state.loss_sum, state.finished) == (1, 0, 0.0, False)
    state.end_epoch({"epoch": 2}, epochs=2)
    assert state.finished and state.history == [{"epoch": 1}, {"epoch": 2}]


def test_observe_keeps_the_best_epoch_and_stops_after_patience_bad_epochs():
    state = TrainState(n_rows=10, batch_size=5, seed=0)
    improved = []
    for value in (0.5, 0.7, 0.7, 0.6, 0.9, 0.8, 0.8, 0.85, 1.0):  # a tie is no gain; the 0.9 resets the count
        improved.append(state.observe(value, higher_is_better=True, patience=3))
        state.end_epoch({"epoch": state.epoch + 1}, epochs=100)
        if state.finished:
            break
    assert improved == [True, True, False, False, True, False, False, False]  # stopped before the 1.0
    assert (state.best_epoch, state.best_metric, state.epoch) == (5, 0.9, 8)
    assert state.finished and state.stopped_early
    free = TrainState(n_rows=10, batch_size=5, seed=0)
    for value in (0.5, 0.4, 0.3):  # no patience: bad epochs are counted, the run goes on
        free.observe(value, higher_is_better=True, patience=None)
        free.end_epoch({}, epochs=100)
    assert (free.best_epoch, free.bad_epochs, free.finished, free.stopped_early) == (1, 2, False, False)


def test_checkpoint_json_keeps_the_old_keys(tmp_path):
    _fit(_model(), 1, tmp_path)
    written = json.loads((tmp_path / "checkpoint.json").read_text())
    assert set(written) == OLD_KEYS | {"format"}


def test_a_checkpoint_in_the_old_dict_form_resumes_like_an_uninterrupted_run(tmp_path):
    plain_model = _model()
    plain = _fit(plain_model, 3)
    _fit(_model(), 1, tmp_path, checkpoint_every=4)  # 7 steps an epoch: a mid-epoch checkpoint, then the epoch end
    tensors, state = load_checkpoint(tmp_path)
    # rewrite it as the code before TrainState did: a plain dict of the 13 keys, built by hand
    old = {
        "epoch": state["epoch"],
        "step_in_epoch": state["step_in_epoch"],
        "global_step": state["global_step"],
        "loss_sum": state["loss_sum"],
        "history": state["history"],
        "best_metric": state["best_metric"],
        "best_epoch": state["best_epoch"],
        "bad_epochs": state["bad_epochs"],
        "finished": state["finished"],
        "stopped_early": state["stopped_early"],
        "n_rows": 200,
        "batch_size": BASE["batch_size"],
        "seed": BASE["seed"],
    }
    assert state["epoch"] == 1 and state["finished"] and "best_model" in tensors
    save_checkpoint(tmp_path, tensors, old)
    resumed_model = _model(seed=9)  # other initial weights: everything must come from the checkpoint
    resumed = _fit(resumed_model, 3, tmp_path, resume=True)
    assert _untimed(resumed.history) == _untimed(plain.history) and resumed.tuned == plain.tuned
    assert resumed.best_epoch == plain.best_epoch
    plain_weights, resumed_weights = plain_model.state_dict(), resumed_model.state_dict()
    assert all(torch.equal(plain_weights[k], resumed_weights[k]) for k in plain_weights)
