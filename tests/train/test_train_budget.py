"""The training budget rules (sparsexc.train.budget): epochs and patience from the number of rows, the hold-out
size, when small data refits, and that explicit values win."""

from __future__ import annotations

import math

import pytest

from sparsexc._params import TrainParams
from sparsexc.train import budget as b
from sparsexc.train.budget import TrainingBudget, holdout_rows, plan_budget, refit_epochs, refits, resolve_budget


def test_small_data_gets_the_minimum_number_of_steps_and_a_patience_in_steps():
    got = resolve_budget(240, 128)  # medical-sized: 2 steps an epoch
    assert got.steps_per_epoch == 2
    assert got.epochs == math.ceil(b.MIN_STEPS / 2) and got.epochs * got.steps_per_epoch >= b.MIN_STEPS
    assert got.patience == math.ceil(b.PATIENCE_STEPS / 2)
    assert got.chosen == {"epochs": "rule", "patience": "rule"}


def test_large_data_keeps_the_epoch_floors():
    got = resolve_budget(300_000, 128)  # 2344 steps an epoch: the step minimums are met by the floors
    assert (got.epochs, got.patience) == (b.MIN_EPOCHS, b.MIN_PATIENCE)
    assert resolve_budget(None, 128).epochs == b.MIN_EPOCHS  # rows not known yet: the large-data values


@pytest.mark.parametrize("n", [1, 77, 240, 5_000, 300_000])
def test_explicit_values_override_the_rule(n):
    got = resolve_budget(n, 64, epochs=7, patience=2)
    assert (got.epochs, got.patience) == (7, 2)
    assert got.chosen == {"epochs": "given", "patience": "given"}
    assert resolve_budget(n, 64, epochs=7).chosen == {"epochs": "given", "patience": "rule"}


def test_no_validation_means_no_patience():
    assert resolve_budget(240, 128, patience=3, has_validation=False).patience is None


def test_the_holdout_has_a_minimum_size_before_a_refit_and_the_share_else():
    assert holdout_rows(333, 0.1, refit=True) == round(b.MAX_HOLDOUT_SHARE * 333)  # 83, not 33
    assert holdout_rows(333, 0.1) == 33  # no refit: the held-out rows are lost to the model, the share only
    assert holdout_rows(600, 0.1, refit=True) == b.MIN_VALIDATION_ROWS  # 60 < 100 <= 150: the minimum
    assert holdout_rows(1500, 0.1, refit=True) == 150  # 150 > 100: the share
    assert holdout_rows(100_000, 0.1) == 10_000
    assert holdout_rows(333, 0.0, refit=True) == 0 and holdout_rows(1, 0.5) == 0
    assert holdout_rows(2, 0.1) == 1 and holdout_rows(2, 0.1, refit=True) == 1  # at least 1, at most n - 1


def test_small_data_refits_only_with_the_rules_epochs_and_a_holdout():
    assert refits(333, None, held_out=True)
    assert not refits(333, 20, held_out=True)  # explicit epochs: one run, the best epoch kept
    assert not refits(333, None, held_out=False)  # the user's X_val is no training data
    assert not refits(b.REFIT_BELOW, None, held_out=True)


def test_plan_budget_counts_the_refit_rows():
    got = plan_budget(250, 83, 128, held_out=True)
    assert (got.n_rows, got.validation_rows, got.refit, got.refit_rows, got.refit_epochs) == (250, 83, True, 333, None)
    assert not plan_budget(250, 83, 128, held_out=False).refit
    assert not plan_budget(250, 0, 128, held_out=True).refit


def test_the_refit_makes_as_many_steps_as_the_kept_epochs():
    # 40 kept epochs of 2 steps = 80 steps; 333 rows make 3 steps an epoch: 27 epochs
    assert refit_epochs(40, 2, 333, 128) == round(80 / 3)
    assert refit_epochs(1, 1, 10_000, 16) == 1  # at least one epoch


def test_the_budget_round_trips_and_rejects_a_damaged_record():
    got = plan_budget(250, 83, 128, held_out=True)
    got.refit_epochs = 12
    assert TrainingBudget.from_dict(got.to_dict()) == got
    assert "refit on all 333 rows for 12 epochs" in got.describe()
    for bad, match in [
        ({**got.to_dict(), "extra": 1}, "unknown key 'extra'"),
        ({**got.to_dict(), "epochs": -1}, "epochs must be"),
        ({**got.to_dict(), "chosen": {"epochs": "guess", "patience": "rule"}}, "chosen"),
        ({k: v for k, v in got.to_dict().items() if k != "epochs"}, "lacks the key 'epochs'"),
        ([1], "must be an object"),
    ]:
        with pytest.raises(ValueError, match=match):
            TrainingBudget.from_dict(bad)


def test_the_help_texts_state_the_rules_numbers():
    help_of = {f.name: f.metadata["help"] for f, _ in TrainParams.settings()}
    assert f"{b.MIN_EPOCHS} epochs and {b.MIN_STEPS} steps" in help_of["epochs"]
    assert f"{b.MIN_PATIENCE} epochs and {b.PATIENCE_STEPS} steps" in help_of["patience"]
