"""benchmarks/sparsemax_attention.py: quick mode end to end, and the attention properties it relies on."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _references import sparsemax_reference
from _shared_data import require_dataset

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "sparsemax_attention.py"


def _load_module():
    spec = importlib.util.spec_from_file_location("bench_sparsemax_attention", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


sa = _load_module()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    require_dataset("debtags")  # the benchmark reads the Debian package index of ../shared/datasets/raw
    out = tmp_path_factory.mktemp("attention")
    report = sa.main(["--quick", "--out-dir", str(out), "--examples", "2"])
    return out, report


def test_quick_mode_writes_the_report(quick_run):
    out, _report = quick_run
    saved = json.loads((out / "sparsemax_attention_quick.json").read_text())
    md = (out / "sparsemax_attention_quick.md").read_text()
    assert saved["quick"] is True and saved["data"]["n_labels"] == 593
    assert set(saved["summary"]) == set(sa.VARIANTS)
    assert len(saved["rows"]) == len(sa.VARIANTS) and len(saved["examples"]) == 2
    for rho in sa.ATTENTION_VARIANTS:
        s = saved["summary"][rho]
        assert 0.0 <= s["metrics.P@1"]["mean"] <= 1.0 and 0.0 <= s["metrics.P@5"]["mean"] <= 1.0
        length, support = s["attention.length"]["mean"], s["attention.support"]["mean"]
        assert 1.0 <= length <= saved["config"]["max_len"]
        assert 0.0 <= support <= length + 1e-9
        assert 1.0 <= s["attention.n90"]["mean"] <= length + 1e-9
    for rho in ("softmax", "sparsemax"):
        assert saved["summary"][rho]["attention.mass"]["mean"] == pytest.approx(1.0, abs=1e-5)
    # softmax never gives an exact zero to a real token; sparsemax does on this data
    soft, sparse = saved["summary"]["softmax"], saved["summary"]["sparsemax"]
    assert soft["attention.nonzero"]["mean"] == pytest.approx(soft["attention.length"]["mean"])
    assert sparse["attention.support"]["mean"] < sparse["attention.length"]["mean"]
    assert "| sparsemax |" in md and "Paper's claim" in md and "load average" in md
    assert saved["load_average_start"] and saved["machine"]["cpu_count"] >= 1
    # no attention: scores and metrics, no attention statistics ('–' on the page), top label only in the examples
    none = saved["summary"][sa.NO_ATTENTION]
    assert 0.0 <= none["metrics.P@1"]["mean"] <= 1.0 and not any(k.startswith("attention.") for k in none)
    assert [r["attention"] for r in saved["rows"] if r["variant"] == sa.NO_ATTENTION] == [None]
    assert "| none | " in md and "| – |" in md and "no attention (the BiGRU's last states" in md
    assert all(ex["variants"]["none"]["top_tokens"] is None for ex in saved["examples"])


def test_quick_mode_trains_with_early_stopping(quick_run):
    out, _report = quick_run
    saved = json.loads((out / "sparsemax_attention_quick.json").read_text())
    cfg = saved["config"]
    assert (cfg["max_epochs"], cfg["patience"]) == (3, 1)
    for r in saved["rows"]:
        values = [h["val_P@1"] for h in r["history"]]
        assert len(values) == r["epochs_run"] <= cfg["max_epochs"]
        assert r["best_epoch"] == values.index(max(values)) + 1 and r["best_val_P@1"] == max(values)
        # a run ends either because the patience ran out (exactly `patience` epochs after its best) or at the cap
        if r["stopped_early"]:
            assert r["epochs_run"] - r["best_epoch"] == cfg["patience"] and not r["cap_hit"]
        else:
            assert r["cap_hit"] and r["epochs_run"] == cfg["max_epochs"]
        assert r["cpu_seconds"] >= r["train_cpu_seconds"] >= 0.0
    md = (out / "sparsemax_attention_quick.md").read_text()
    assert "| variant | seed | best epoch | epochs run | stopped by |" in md and "at most 3 epochs" in md


@pytest.fixture(scope="module")
def quick_parts(quick_run):
    cfg = sa.Config(subset=60, emb=8, hidden=8, attn=8)
    parts, vocab, _labels, info = sa.load_debtags_tokens(cfg)
    return parts, vocab, cfg, info


@pytest.mark.parametrize("rho", sa.ATTENTION_VARIANTS)
def test_weights_mask_padding_and_match_references(quick_parts, rho):
    parts, vocab, cfg, info = quick_parts
    torch.manual_seed(3)
    model = sa.AttentionTagger(len(vocab), info["n_labels"], rho, cfg)
    with torch.no_grad():
        model.query.mul_(10.0)  # larger scores, so sparsemax is sparse at initialisation too
    model.eval()
    data = parts["test"]
    ids, lengths = data.ids, data.lengths
    with torch.no_grad():
        context, weights = model(ids, lengths)
        h = model.embed(ids[:, : weights.shape[1]])
        packed = torch.nn.utils.rnn.pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
        h, _ = torch.nn.utils.rnn.pad_packed_sequence(
            model.gru(packed)[0], batch_first=True, total_length=weights.shape[1]
        )
        z = (torch.tanh(model.key(h)) @ model.query).double().numpy()
    w = weights.double().numpy()
    n_zero_real = 0
    for i, n in enumerate(lengths.tolist()):
        assert np.all(w[i, n:] == 0.0), "padding must get weight exactly 0"
        real = w[i, :n]
        if rho == "softmax":
            ref = np.exp(z[i, :n] - z[i, :n].max())
            np.testing.assert_allclose(real, ref / ref.sum(), atol=1e-6)
        elif rho == "sparsemax":
            np.testing.assert_allclose(real, sparsemax_reference(z[i, :n]), atol=1e-5)
            assert 1 <= int((real > 0).sum()) <= n
        else:
            np.testing.assert_allclose(real, 1 / (1 + np.exp(-z[i, :n])), atol=1e-6)
        if rho != "sigmoid":
            assert real.sum() == pytest.approx(1.0, abs=1e-5)
        n_zero_real += int((real == 0).sum())
        # the context is the weighted sum of the states of the real tokens
        np.testing.assert_allclose(context[i].double().numpy(), real @ h[i, :n].double().numpy(), atol=1e-5)
    if rho == "sparsemax":
        assert n_zero_real > 0
    else:
        assert n_zero_real == 0


def test_a_row_does_not_depend_on_the_padding_of_its_batch(quick_parts):
    parts, vocab, cfg, info = quick_parts
    data = parts["test"]
    lengths = data.lengths
    short = int(torch.argmin(lengths))
    assert lengths[short] < lengths.max()
    for rho in sa.VARIANTS:
        torch.manual_seed(0)
        model = sa.AttentionTagger(len(vocab), info["n_labels"], rho, cfg).eval()
        with torch.no_grad():
            c_batch, w_batch = model(data.ids, lengths)
            c_alone, w_alone = model(data.ids[short : short + 1], lengths[short : short + 1])
        n = int(lengths[short])
        torch.testing.assert_close(c_batch[short], c_alone[0], atol=1e-6, rtol=1e-5)
        if rho == sa.NO_ATTENTION:
            assert w_batch is None and w_alone is None
        else:
            torch.testing.assert_close(w_batch[short, :n], w_alone[0, :n], atol=1e-6, rtol=1e-5)


def test_no_attention_context_is_the_last_states_of_the_two_directions(quick_parts):
    parts, vocab, cfg, info = quick_parts
    torch.manual_seed(1)
    model = sa.AttentionTagger(len(vocab), info["n_labels"], sa.NO_ATTENTION, cfg).eval()
    data = parts["test"]
    with torch.no_grad():
        context, weights = model(data.ids, data.lengths)
        for i, n in enumerate(data.lengths.tolist()):  # one row at a time, unpacked: no padding at all
            states, _ = model.gru(model.embed(data.ids[i : i + 1, :n]))
            H = cfg.hidden  # forward state after the last token, backward state after the first
            expected = torch.cat([states[0, n - 1, :H], states[0, 0, H:]])
            torch.testing.assert_close(context[i], expected, atol=1e-6, rtol=1e-5)
    assert weights is None and context.shape == (len(data.names), 2 * cfg.hidden)


def test_early_stopping_stops_after_patience_epochs_and_keeps_the_best(quick_parts):
    parts, vocab, cfg, info = quick_parts
    # lr 0: the weights never move, so validation P@1 never improves on epoch 1's
    frozen = dataclasses.replace(cfg, lr=0.0, max_epochs=10, patience=2)
    _model, log = sa.train_variant(parts, len(vocab), info["n_labels"], "softmax", 0, frozen)
    assert (log["best_epoch"], log["epochs_run"], log["stopped_early"], log["cap_hit"]) == (1, 3, True, False)
    assert len({h["val_P@1"] for h in log["history"]}) == 1
    # the cap: two epochs, patience 5 cannot run out
    short = dataclasses.replace(cfg, max_epochs=2, patience=5)
    model, log = sa.train_variant(parts, len(vocab), info["n_labels"], sa.NO_ATTENTION, 0, short)
    assert (log["epochs_run"], log["stopped_early"], log["cap_hit"]) == (2, False, True)
    # the kept weights are the best epoch's: scoring them again gives the recorded validation P@1
    from sparsexc.metrics import evaluate

    again = evaluate(parts["val"].Y, sa.predict(model, parts["val"])[0], ks=(1,))["P@1"]
    assert round(again, 4) == log["best_val_P@1"] == max(h["val_P@1"] for h in log["history"])


def test_attention_stats_on_hand_made_rows():
    weights = np.array([[0.5, 0.3, 0.2, 0.0], [1.0, 0.0, 0.0, 0.0]])
    lengths = np.array([3, 3])
    is_name = np.array([[True, False, False, False], [False, True, False, False]])
    s = sa.attention_stats(weights, lengths, is_name, "sparsemax")
    entropy = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2))
    assert s["length"] == 3 and s["support"] == pytest.approx(2.0) and s["nonzero"] == pytest.approx(2.0)
    assert s["n90"] == pytest.approx(2.0)  # 3 words for row 1 (0.5 + 0.3 < 0.9), 1 word for row 2
    assert s["entropy"] == pytest.approx(entropy / 2)
    assert s["name_share"] == pytest.approx(0.25)
    g = sa.attention_stats(np.array([[0.9, 0.2, 0.6]]), np.array([3]), np.zeros((1, 3), bool), "sigmoid")
    assert g["support"] == 2 and g["mass"] == pytest.approx(1.7) and g["n90"] == 3  # 0.9 * 1.7 > 0.9 + 0.6


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="rho must be one of"):
        sa.attend(
            torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.zeros(3), torch.ones(1, 2, dtype=torch.bool), "relu"
        )
    with pytest.raises(SystemExit):
        sa.parse_args(["--variants", "relu"])
    with pytest.raises(SystemExit):
        sa.parse_args(["--threads", "0"])
    with pytest.raises(SystemExit):  # no attention reads the GRU's last states: it needs the GRU
        sa.parse_args(["--variants", "none", "--encoder", "none"])
    with pytest.raises(SystemExit):
        sa.parse_args(["--patience", "0"])
    with pytest.raises(ValueError, match="needs the bigru encoder"):
        sa.AttentionTagger(10, 3, sa.NO_ATTENTION, sa.Config(encoder="none"))
    _args, cfg = sa.parse_args(["--max-epochs", "7", "--patience", "2"])
    assert (cfg.max_epochs, cfg.patience, cfg.seeds) == (7, 2, (0, 1, 2))
