"""What training says on stderr (per-epoch lines, a bar only on a terminal, how it ended) and its curves PNG."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import make_multilabel_classification

from sparsexc._params import TrainParams
from sparsexc.heads import SoftmaxHead
from sparsexc.models import SparseEncoder, XCModel
from sparsexc.train import Trainer
from sparsexc.train.curves import plot_curves
from sparsexc.train.progress import (
    best_so_far,
    epoch_line,
    fit_summary,
    interactive,
    resolve_verbose,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BASE = {"device": "cpu", "batch_size": 16}
# a learning rate too small to move any weight: the validation metric stays the same, so patience ends the run
FROZEN = {"optimizer": "sgd", "lr": 1e-30}


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _data(n=240, d=30, c=6):
    X, Y = make_multilabel_classification(n, d, n_classes=c, sparse=True, return_indicator="sparse", random_state=0)
    return X.astype(np.float32).tocsr(), Y.tocsr()


def _model():
    torch.manual_seed(0)
    encoder = SparseEncoder(30, {"hidden_sizes": (16,), "dropout": 0.2})
    return XCModel(encoder, SoftmaxHead(encoder.out_dim, 6))


def _fit(monkeypatch, stream, log_path=None, **params):
    monkeypatch.setattr(sys, "stderr", stream)
    X, Y = _data()
    trainer = Trainer(_model(), TrainParams(**{**BASE, **params}), log_path=log_path)
    trainer.fit(X[:200], Y[:200], X[200:], Y[200:])
    return trainer, stream.getvalue()


# ------------------------------------------------------------------------------------------ stderr lines


def test_no_bar_redraws_when_stderr_is_not_a_terminal(monkeypatch):
    trainer, err = _fit(monkeypatch, io.StringIO(), epochs=3, progress=True)
    assert "\r" not in err and "\x1b" not in err  # no redraws, no cursor moves
    lines = err.splitlines()
    assert len(lines) == 3 + 1  # one per epoch, then how it ended
    assert len(err) < 400  # (a bar writes kilobytes per epoch)
    assert [line.split()[1] for line in lines[:3]] == ["1/3", "2/3", "3/3"]
    assert all("loss " in line and "val P@1 0." in line and " s" in line for line in lines[:3])
    assert lines[-1] == trainer.fit_summary["message"]


def test_a_terminal_gets_the_bar_and_the_lines(monkeypatch):
    _, err = _fit(monkeypatch, Terminal(), epochs=2, progress=True)
    assert "\r" in err and "ex/s" in err  # tqdm's bar
    assert "epoch 1/2  loss" in err and "epoch 2/2  loss" in err and "ran all 2 epochs; kept epoch" in err


def test_progress_bar_off_keeps_the_lines_only(monkeypatch):
    _, err = _fit(monkeypatch, Terminal(), epochs=2, progress=True, progress_bar=False)
    assert "\r" not in err and len(err.splitlines()) == 3


def test_progress_off_is_silent_and_the_log_keeps_the_json_records(monkeypatch, tmp_path):
    log = tmp_path / "log.jsonl"
    trainer, err = _fit(monkeypatch, Terminal(), epochs=2, progress=False, log_path=str(log))
    assert err == ""
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records == json.loads(json.dumps(trainer.history)) and "val_P@1" in records[0]


def test_the_best_so_far_is_marked(monkeypatch):
    trainer, err = _fit(monkeypatch, io.StringIO(), epochs=3, progress=True)
    marked = [line.endswith("* best") for line in err.splitlines()[:3]]
    assert marked == best_so_far(trainer.history, "P@1") and marked[0]


def test_early_stop_message_names_the_last_and_the_kept_epoch(monkeypatch):
    trainer, err = _fit(monkeypatch, io.StringIO(), epochs=10, patience=2, progress=True, **FROZEN)
    value = trainer.history[0]["val_P@1"]
    expected = (
        f"stopped early after epoch 3: validation P@1 did not improve for 2 epochs; kept epoch 1 (P@1 {value:.4f})"
    )
    assert trainer.stopped_early and trainer.best_epoch == 1 and len(trainer.history) == 3
    assert err.splitlines()[-1] == expected
    assert trainer.fit_summary == {
        "epochs_run": 3,
        "epochs": 10,
        "stopped_early": True,
        "patience": 2,
        "kept_epoch": 1,
        "val_metric": "P@1",
        "kept_value": value,
        "message": expected,
    }


def test_ran_all_epochs_message(monkeypatch):
    trainer, _ = _fit(monkeypatch, io.StringIO(), epochs=2)
    kept = trainer.best_epoch
    assert trainer.fit_summary["message"] == (
        f"ran all 2 epochs; kept epoch {kept} (P@1 {trainer.history[kept - 1]['val_P@1']:.4f})"
    )
    assert not trainer.fit_summary["stopped_early"]


# -------------------------------------------------------------------------------------- the helpers


def test_fit_summary_infers_early_stopping_from_a_saved_history():
    history = [{"epoch": e, "train_loss": 1.0, "val_P@1": v} for e, v in enumerate([0.2, 0.5, 0.4, 0.4, 0.3], 1)]
    inferred = fit_summary(history, 2, epochs=20, patience=3, val_metric="P@1")
    assert inferred["stopped_early"] and inferred["message"] == (
        "stopped early after epoch 5: validation P@1 did not improve for 3 epochs; kept epoch 2 (P@1 0.5000)"
    )
    full = fit_summary(history, 2, epochs=5, patience=3, val_metric="P@1")
    assert not full["stopped_early"] and full["message"] == "ran all 5 epochs; kept epoch 2 (P@1 0.5000)"
    no_val = fit_summary([{"epoch": 1, "train_loss": 1.0}], None, epochs=1, patience=5, val_metric="P@1")
    assert no_val["kept_epoch"] == 1 and no_val["val_metric"] is None and not no_val["stopped_early"]
    assert no_val["message"] == "ran 1 epoch; kept the last (no validation data to choose by)"


def test_best_so_far_follows_the_metric_direction():
    history = [{"epoch": e, "val_m": v} for e, v in enumerate([0.5, 0.4, 0.6, 0.6], 1)]
    assert best_so_far(history, "m") == [True, False, True, False]
    assert best_so_far(history, "m", higher_is_better=False) == [
        True,
        True,
        False,
        False,
    ]


def test_epoch_line_format():
    record = {"epoch": 3, "train_loss": 0.07123, "val_P@1": 0.54321, "seconds": 2.14}
    assert epoch_line(record, 20, "P@1", best=True) == "epoch  3/20  loss 0.0712  val P@1 0.5432  2.1 s  * best"
    assert epoch_line(record, 20, None, best=False) == "epoch  3/20  loss 0.0712  2.1 s"


def test_resolve_verbose_levels_and_errors():
    assert [resolve_verbose(v) for v in (0, 1, 2, False, True, np.int64(1))] == [
        0,
        1,
        2,
        0,
        2,
        1,
    ]
    assert resolve_verbose("auto", Terminal()) == 2 and resolve_verbose("auto", io.StringIO()) == 0
    assert interactive(Terminal()) and not interactive(io.StringIO())
    for bad in (3, -1, "yes", 1.5, None):
        with pytest.raises(ValueError, match=r"verbose=.*use 'auto', 0 \(silent\), 1 .* or 2"):
            resolve_verbose(bad)


# ------------------------------------------------------------------------------------------ curves PNG


def test_plot_curves_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_P@1": 0.1 * e} for e in range(1, 6)]
    path = tmp_path / "curves.png"
    assert plot_curves(history, path, val_metric="P@1", kept_epoch=4, title="a run") is True
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) > 5000
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no temporary left beside it
    # without validation values the plot is still drawn
    assert plot_curves([{"epoch": 1, "train_loss": 0.5}], tmp_path / "b.png", val_metric="P@1") is True


def test_plot_curves_without_matplotlib_writes_nothing(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    assert plot_curves([{"epoch": 1, "train_loss": 0.5}], tmp_path / "c.png") is False
    assert not (tmp_path / "c.png").exists()


def test_plot_curves_refuses_an_empty_history(tmp_path):
    with pytest.raises(ValueError, match="no epoch with a train_loss"):
        plot_curves([], tmp_path / "d.png")
