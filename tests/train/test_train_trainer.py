"""Trainer: optimisers, schedules, clipping, early stopping, logs, determinism, kill-and-resume."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.datasets import make_multilabel_classification

from sparsexc._params import TrainParams
from sparsexc.heads import SigmoidHead, SoftmaxHead
from sparsexc.models import SparseEncoder, XCModel
from sparsexc.train import Trainer, build_optimizer, lr_multiplier


def _data(n=240, d=30, c=6, seed=0):
    X, Y = make_multilabel_classification(n, d, n_classes=c, sparse=True, return_indicator="sparse", random_state=seed)
    return X.astype(np.float32), Y


def _model(d=30, c=6, hidden=(16,), head=SoftmaxHead, dropout=0.2, seed=0):
    torch.manual_seed(seed)
    encoder = SparseEncoder(d, {"hidden_sizes": hidden, "dropout": dropout})
    return XCModel(encoder, head(encoder.out_dim, c))


def _flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


BASE = {"device": "cpu", "batch_size": 32}


@pytest.mark.parametrize(
    "name, cls",
    [
        ("adam", torch.optim.Adam),
        ("adamw", torch.optim.AdamW),
        ("adagrad", torch.optim.Adagrad),
        ("sgd", torch.optim.SGD),
    ],
)
def test_each_optimizer_is_built_and_trains(name, cls):
    params = TrainParams(optimizer=name, lr=0.05, weight_decay=1e-4, epochs=2, **BASE)
    model = _model()
    opt = build_optimizer(model.parameters(), params)
    assert type(opt) is cls and opt.param_groups[0]["lr"] == 0.05 and opt.param_groups[0]["weight_decay"] == 1e-4
    X, Y = _data()
    before = _flat(model).clone()
    history = Trainer(model, params).fit(X, Y)
    assert len(history) == 2 and all(np.isfinite(r["train_loss"]) for r in history)
    assert not torch.equal(before, _flat(model))


def test_lr_multipliers_follow_the_documented_formulas():
    p = dict(epochs=4, warmup_steps=0)
    spe = 10  # steps per epoch -> 40 steps
    assert lr_multiplier(17, TrainParams(lr_schedule="constant", **p), spe) == 1.0
    assert lr_multiplier(10, TrainParams(lr_schedule="linear", **p), spe) == pytest.approx(0.75)
    assert lr_multiplier(20, TrainParams(lr_schedule="cosine", **p), spe) == pytest.approx(0.5)
    assert lr_multiplier(30, TrainParams(lr_schedule="cosine", **p), spe) == pytest.approx(
        0.5 * (1 + np.cos(0.75 * np.pi))
    )
    step = TrainParams(lr_schedule="step", step_size=2, step_gamma=0.1, **p)
    assert [lr_multiplier(s, step, spe) for s in (0, 19, 20, 39)] == pytest.approx([1, 1, 0.1, 0.1])
    warm = TrainParams(lr_schedule="linear", epochs=4, warmup_steps=4)
    assert [lr_multiplier(s, warm, spe) for s in (0, 3)] == pytest.approx([0.25, 1.0])
    assert lr_multiplier(4 + 18, warm, spe) == pytest.approx(0.5)


def test_schedule_changes_the_optimiser_learning_rate():
    X, Y = _data()
    history = Trainer(
        _model(), TrainParams(lr=0.01, lr_schedule="step", step_size=1, step_gamma=0.5, epochs=3, **BASE)
    ).fit(X, Y)
    assert [r["lr"] for r in history] == pytest.approx([0.005, 0.0025, 0.00125])


@pytest.mark.parametrize("clip", [None, 1e-3])
def test_gradient_clipping_bounds_the_step(clip):
    # plain SGD with lr 1 and one full batch: the update is minus the (clipped) gradient
    X, Y = _data(n=64)
    model = _model(dropout=0.0)
    before = _flat(model).clone()
    trainer = Trainer(
        model, TrainParams(optimizer="sgd", lr=1.0, epochs=1, batch_size=64, grad_clip=clip, device="cpu")
    )
    trainer.fit(X, Y)
    step = torch.linalg.vector_norm(_flat(model) - before).item()
    if clip is None:
        assert step == pytest.approx(trainer.last_grad_norm, rel=1e-4)
    else:
        assert trainer.last_grad_norm > 10 * clip
        assert step == pytest.approx(clip, rel=1e-4)


def test_early_stopping_stops_and_restores_the_best_weights(monkeypatch):
    X, Y = _data()
    model = _model()
    trainer = Trainer(model, TrainParams(epochs=10, patience=2, **BASE))
    scripted = iter([0.2, 0.5, 0.4, 0.3, 0.9])
    snapshots = []

    def fake_validate(X_val, Y_val, val_k, needs_sets):
        snapshots.append(_flat(model).clone())
        return {"P@1": next(scripted)}

    monkeypatch.setattr(trainer, "_validate", fake_validate)
    history = trainer.fit(X[:200], Y[:200], X[200:], Y[200:])
    assert [r["val_P@1"] for r in history] == [0.2, 0.5, 0.4, 0.3]  # stopped after 2 epochs without gain
    assert trainer.stopped_early and trainer.best_epoch == 2
    assert torch.equal(_flat(model), snapshots[1])
    assert "threshold" in trainer.tuned  # the head was tuned on validation data afterwards


def test_jsonl_log_has_one_line_per_epoch(tmp_path):
    X, Y = _data()
    log = tmp_path / "logs" / "train.jsonl"
    Trainer(_model(head=SigmoidHead), TrainParams(epochs=3, **BASE), log_path=str(log)).fit(
        X[:200], Y[:200], X[200:], Y[200:]
    )
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    for r in records:
        assert {"train_loss", "lr", "seconds", "examples_per_second", "val_P@1", "val_P@5", "val_nDCG@3"} <= set(r)
        assert 0.0 <= r["val_P@1"] <= 1.0


def test_same_seed_gives_the_same_model_and_other_seed_does_not():
    X, Y = _data()
    runs = []
    for seed in (3, 3, 4):
        model = _model()
        Trainer(model, TrainParams(epochs=2, seed=seed, **BASE)).fit(X, Y)
        runs.append(_flat(model))
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_bad_settings_raise_clear_errors():
    X, Y = _data()
    with pytest.raises(ValueError, match=r"patience.*validation"):
        Trainer(_model(), TrainParams(patience=2, **BASE)).fit(X, Y)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        Trainer(_model(), TrainParams(**BASE)).fit(X, Y, resume=True)
    with pytest.raises(ValueError, match=r"val_metric.*P@k"):
        Trainer(_model(), TrainParams(val_metric="accuracy", **BASE)).fit(X, Y)
    with pytest.raises(ValueError, match=r"optimizer='rmsprop'.*adam"):
        TrainParams(optimizer="rmsprop")
    with pytest.raises(ValueError, match="rows"):
        Trainer(_model(), TrainParams(**BASE)).fit(X, Y[:10])
    with pytest.raises(ValueError, match="checkpoint_every needs a checkpoint_dir"):
        Trainer(_model(), TrainParams(**BASE), checkpoint_every=5).fit(X, Y)


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    X, Y = _data()
    Trainer(_model(hidden=(16,)), TrainParams(epochs=1, **BASE), checkpoint_dir=tmp_path).fit(X, Y)
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "checkpoint.json").exists()
    with pytest.raises(ValueError, match="do not fit this model"):
        Trainer(_model(hidden=(8,)), TrainParams(epochs=2, **BASE), checkpoint_dir=tmp_path).fit(X, Y, resume=True)
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(_model(hidden=(16,)), TrainParams(epochs=2, device="cpu", batch_size=16), checkpoint_dir=tmp_path).fit(
            X, Y, resume=True
        )


def test_resume_of_a_finished_run_keeps_its_result(tmp_path):
    X, Y = _data()
    model = _model()
    first = Trainer(model, TrainParams(epochs=2, **BASE), checkpoint_dir=tmp_path).fit(
        X[:200], Y[:200], X[200:], Y[200:]
    )
    again_model = _model(seed=9)  # different initial weights: everything must come from the checkpoint
    again = Trainer(again_model, TrainParams(epochs=2, **BASE), checkpoint_dir=tmp_path).fit(
        X[:200], Y[:200], X[200:], Y[200:], resume=True
    )
    assert again == first and torch.equal(_flat(again_model), _flat(model))


_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np, torch
    from safetensors.torch import save_file
    from sklearn.datasets import make_multilabel_classification
    from sparsexc.heads import SoftmaxHead
    from sparsexc.models import SparseEncoder, XCModel
    from sparsexc.train import Trainer

    mode, ckpt, out = sys.argv[1:4]
    torch.set_num_threads(1)
    X, Y = make_multilabel_classification(600, 60, n_classes=12, sparse=True, return_indicator="sparse",
                                          random_state=0)
    torch.manual_seed(0)
    encoder = SparseEncoder(60, {"hidden_sizes": [32], "dropout": 0.3})
    model = XCModel(encoder, SoftmaxHead(32, 12))
    if mode == "slow":  # slow the steps down so the test can kill the run mid-epoch
        step = Trainer._step
        def slow_step(self, *args):
            time.sleep(0.05)
            return step(self, *args)
        Trainer._step = slow_step
    params = {"epochs": 3, "batch_size": 32, "seed": 5, "device": "cpu"}
    trainer = Trainer(model, params, checkpoint_dir=ckpt, checkpoint_every=2, log_path=out + ".jsonl")
    history = trainer.fit(X[:450], Y[:450], X[450:], Y[450:], resume=(mode != "plain"))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out + ".safetensors")
    with open(out + ".json", "w") as fh:
        json.dump({"history": [{k: v for k, v in r.items() if k not in ("seconds", "examples_per_second")}
                               for r in history], "tuned": trainer.tuned}, fh)
""")


def test_kill_9_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    script = tmp_path / "train_script.py"
    script.write_text(_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = [sys.executable, str(script)]
    plain = subprocess.run(
        run + ["plain", str(tmp_path / "ck_plain"), str(tmp_path / "plain")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plain.returncode == 0, plain.stderr

    ckpt = tmp_path / "ck_killed"
    victim = subprocess.Popen(
        run + ["slow", str(ckpt), str(tmp_path / "killed")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    state_file = ckpt / "checkpoint.json"
    deadline = time.monotonic() + 90
    state = None
    while time.monotonic() < deadline and victim.poll() is None:
        if state_file.exists():
            state = json.loads(state_file.read_text())
            if state["epoch"] == 1 and state["step_in_epoch"] >= 4:  # inside the second epoch
                break
        time.sleep(0.01)
    assert victim.poll() is None, "the run ended before it could be killed: " + victim.stderr.read().decode()
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    state = json.loads(state_file.read_text())
    assert state["epoch"] == 1 and 0 < state["step_in_epoch"] < 15 and len(state["history"]) == 1  # mid-epoch
    assert not (tmp_path / "killed.json").exists()

    resumed = subprocess.run(
        run + ["resume", str(ckpt), str(tmp_path / "killed")], env=env, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "plain.json").read_text())
    b = json.loads((tmp_path / "killed.json").read_text())
    assert len(a["history"]) == 3 and a == b  # identical losses, validation metrics and tuned threshold
    wa, wb = load_file(tmp_path / "plain.safetensors"), load_file(tmp_path / "killed.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)  # bit for bit
    log = [json.loads(line) for line in (tmp_path / "killed.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3]


def test_progress_bar_shows_loss_and_examples_per_second(monkeypatch):
    class Terminal(io.StringIO):  # stderr as a terminal: the bar is drawn there
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    X, Y = _data()
    Trainer(_model(), TrainParams(epochs=1, progress=True, **BASE)).fit(X, Y)
    err = sys.stderr.getvalue()
    assert "loss=" in err and "ex/s" in err and "\r" in err


def test_device_auto_picks_cuda_only_when_present(monkeypatch):
    from sparsexc.train import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
