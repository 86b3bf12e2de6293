"""XCClassifier's training budget chosen from the data (sparsexc.train.budget): small data is trained past the
trivial precision for every head, the refit on all rows is deterministic, recorded and survives save/load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone

from sparsexc import XCClassifier
from sparsexc.datasets.synthetic import synthetic
from sparsexc.metrics import evaluate
from sparsexc.train import budget as b

QUICK = {"hidden_sizes": (8,), "device": "cpu", "verbose": 0, "random_state": 0, "preprocess": "none"}


@pytest.fixture(scope="module")
def small():
    """300 training rows of 200 features and 30 labels, and 100 test rows (seeded)."""
    return synthetic(400, 200, 30, seed=0, test_size=0.25, noise=0.3)


@pytest.fixture
def cheap(monkeypatch):
    """The rules with fewer steps, for the tests of how the budget is applied (not of how well it trains)."""
    monkeypatch.setattr(b, "MIN_STEPS", 60)
    monkeypatch.setattr(b, "PATIENCE_STEPS", 20)


@pytest.fixture
def fitted(small, cheap):
    return XCClassifier(head="softmax", **QUICK).fit(small.train.X, small.train.Y)


def _p1(clf, data):
    return float(evaluate(data.test.Y, clf.predict_topk(data.test.X, 1), ks=(1,))["P@1"])


@pytest.mark.parametrize("head", ["sigmoid", "softmax", "sparsemax"])
def test_small_data_beats_the_trivial_precision_where_the_old_budget_did_not(small, head):
    """The old defaults (20 epochs, patience 5: 40 steps on 225 rows) stay near the trivial P@1 (always the most
    frequent training label: 0.52 here); the rule's budget gets well past it (0.79 to 0.91 when written)."""
    Y = small.train.Y
    top = int(np.asarray(Y.sum(0)).ravel().argmax())
    trivial = float(np.mean(np.asarray(small.test.Y[:, top].todense()).ravel() > 0))
    settings = {**QUICK, "hidden_sizes": (32,), "preprocess": "auto"}
    old = XCClassifier(head=head, epochs=20, patience=5, **settings).fit(small.train.X, Y)
    new = XCClassifier(head=head, **settings).fit(small.train.X, Y)
    assert _p1(new, small) >= trivial + 0.15
    assert _p1(new, small) >= _p1(old, small) + 0.1


def test_the_budget_is_recorded_and_resolved_before_fit(small, fitted):
    X = small.train.X
    got = fitted.budget_
    n_val = b.holdout_rows(X.shape[0], 0.1, refit=True)
    assert (got.n_rows, got.validation_rows, got.refit, got.refit_rows) == (X.shape[0] - n_val, n_val, True, 300)
    assert got.epochs * got.steps_per_epoch >= b.MIN_STEPS and got.chosen == {"epochs": "rule", "patience": "rule"}
    kept = fitted.fit_summary_["kept_epoch"]
    assert got.refit_epochs == b.refit_epochs(kept, got.steps_per_epoch, 300, 128)
    assert f"then refit on all 300 rows for {got.refit_epochs} epochs" in fitted.fit_summary_["message"]
    before = XCClassifier(head="softmax", **QUICK).resolved_budget(X)
    assert before.to_dict() == {**got.to_dict(), "refit_epochs": None}
    assert fitted.history_ and fitted.best_epoch_ == kept  # the choosing run's curves and kept epoch


def test_the_refit_is_deterministic(small, fitted):
    again = XCClassifier(head="softmax", **QUICK).fit(small.train.X, small.train.Y)
    for name, tensor in fitted.model_.state_dict().items():
        assert torch.equal(tensor, again.model_.state_dict()[name]), name
    assert again.tuned_ == fitted.tuned_ and again.budget_ == fitted.budget_


def test_explicit_epochs_train_once_and_keep_the_best_epoch(small, cheap):
    clf = XCClassifier(head="softmax", epochs=6, **QUICK).fit(small.train.X, small.train.Y)
    assert not clf.budget_.refit and clf.budget_.chosen == {"epochs": "given", "patience": "rule"}
    assert clf.budget_.validation_rows == 30  # the plain 10%: without a refit the held-out rows are lost
    assert len(clf.history_) <= 6 and "refit" not in clf.fit_summary_["message"]


def test_given_validation_rows_are_not_trained_on(small, cheap):
    X, Y = small.train.X, small.train.Y
    clf = XCClassifier(head="softmax", **QUICK).fit(X[:250], Y[:250], X[250:], Y[250:])
    assert (clf.budget_.n_rows, clf.budget_.validation_rows, clf.budget_.refit) == (250, 50, False)


def test_no_validation_trains_the_rules_epochs(small, cheap):
    clf = XCClassifier(head="softmax", validation_fraction=0, **QUICK).fit(small.train.X, small.train.Y)
    assert clf.budget_.patience is None and not clf.budget_.refit
    assert len(clf.history_) == clf.budget_.epochs == max(b.MIN_EPOCHS, math.ceil(b.MIN_STEPS / 3))  # 3 steps


def test_a_saved_model_loads_its_budget_and_refits_the_same_way(small, fitted, tmp_path):
    fitted.save(tmp_path / "m")
    loaded = XCClassifier.load(tmp_path / "m")
    assert loaded.budget_ == fitted.budget_
    assert loaded.get_params()["epochs"] is None and loaded.get_params()["patience"] is None
    assert loaded.fit_summary_["kept_epoch"] == fitted.fit_summary_["kept_epoch"]
    refitted = clone(loaded).fit(small.train.X, small.train.Y)
    for name, tensor in fitted.model_.state_dict().items():
        assert torch.equal(tensor, refitted.model_.state_dict()[name]), name


def test_a_damaged_budget_record_is_refused(fitted, tmp_path):
    import json

    from sparsexc.estimator import ModelFormatError

    fitted.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["budget"]["epochs"] = "many"
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="budget"):
        XCClassifier.load(tmp_path / "m")


def test_a_negative_sampling_head_trains_on_the_rules_budget(small, cheap):
    X, Y = small.train.X[:150], small.train.Y[:150]
    clf = XCClassifier(head="negative-sampling", **QUICK).fit(X, Y)
    assert clf.budget_.refit and clf.budget_.refit_epochs is not None
    assert clf.predict_topk(X, 3)[0].shape == (150, 3)
