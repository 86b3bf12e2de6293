"""benchmarks/sparsemax_attention.py: quick mode end to end, and the attention properties it relies on."""

from __future__ import annotations

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
    for rho in sa.VARIANTS:
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


@pytest.fixture(scope="module")
def quick_parts(quick_run):
    cfg = sa.Config(subset=60, emb=8, hidden=8, attn=8)
    parts, vocab, _labels, info = sa.load_debtags_tokens(cfg)
    return parts, vocab, cfg, info


@pytest.mark.parametrize("rho", sa.VARIANTS)
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
        torch.testing.assert_close(w_batch[short, :n], w_alone[0, :n], atol=1e-6, rtol=1e-5)


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
