"""XCClassifier(verbose=...): what fit says on stderr at each level, the same model at every level, and
``fit_summary_`` (how training ended), also after save/load."""

from __future__ import annotations

import io
import sys

import pytest
import torch

from sparsexc.estimator import XCClassifier

FAST = {
    "hidden_sizes": (8,),
    "epochs": 3,
    "batch_size": 32,
    "device": "cpu",
    "random_state": 7,
}


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _fit(data, monkeypatch, stream, **params):
    monkeypatch.setattr(sys, "stderr", stream)
    X, Y = data
    clf = XCClassifier(**{**FAST, **params}).fit(X, Y)
    return clf, stream.getvalue()


def test_default_is_auto_a_bar_in_a_terminal_and_silence_in_a_file(data, monkeypatch):
    assert XCClassifier().verbose == "auto"
    _, in_terminal = _fit(data, monkeypatch, Terminal())
    assert "\r" in in_terminal and "epoch 3/3  loss" in in_terminal and "kept epoch" in in_terminal
    _, in_file = _fit(data, monkeypatch, io.StringIO())
    assert in_file == ""


@pytest.mark.parametrize("stream", [io.StringIO, Terminal])
def test_level_one_is_lines_without_a_bar(data, monkeypatch, stream):
    clf, err = _fit(data, monkeypatch, stream(), verbose=1)
    lines = err.splitlines()
    assert "\r" not in err and len(lines) == len(clf.history_) + 1
    assert lines[0].startswith("epoch 1/3  loss ") and lines[-1] == clf.fit_summary_["message"]


def test_level_two_draws_no_bar_into_a_file(data, monkeypatch):
    clf, err = _fit(data, monkeypatch, io.StringIO(), verbose=2)
    assert "\r" not in err and len(err.splitlines()) == len(clf.history_) + 1


def test_the_same_seed_gives_the_same_model_at_every_level(data, monkeypatch):
    fitted = [
        _fit(data, monkeypatch, stream, verbose=level)[0]
        for level, stream in (
            (0, io.StringIO()),
            (1, io.StringIO()),
            (2, Terminal()),
            ("auto", Terminal()),
        )
    ]
    reference = fitted[0].model_.state_dict()
    for clf in fitted[1:]:
        state = clf.model_.state_dict()
        assert all(torch.equal(reference[k], state[k]) for k in reference)
        assert [r["train_loss"] for r in clf.history_] == [r["train_loss"] for r in fitted[0].history_]


def test_a_bad_level_is_refused_naming_the_allowed_ones(data, monkeypatch):
    with pytest.raises(ValueError, match=r"verbose='loud'; use 'auto', 0 \(silent\)"):
        _fit(data, monkeypatch, io.StringIO(), verbose="loud")


def test_fit_summary_says_how_training_ended_and_survives_save_and_load(data, monkeypatch, tmp_path):
    # a learning rate too small to move a weight: the validation P@1 never improves, patience ends the run
    clf, _ = _fit(
        data,
        monkeypatch,
        io.StringIO(),
        epochs=10,
        patience=2,
        optimizer="sgd",
        lr=1e-30,
        verbose=0,
    )
    summary = clf.fit_summary_
    assert summary["stopped_early"] and summary["kept_epoch"] == clf.best_epoch_ == 1
    assert summary["epochs_run"] == len(clf.history_) == 3
    assert summary["message"].startswith(
        "stopped early after epoch 3: validation P@1 did not improve for 2 epochs; kept epoch 1 (P@1 "
    )
    clf.save(tmp_path / "m")
    assert XCClassifier.load(tmp_path / "m").fit_summary_ == summary
