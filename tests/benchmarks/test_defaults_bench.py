"""benchmarks/defaults.py: arguments, the run plan, the trivial ranking, the targets (pure functions on
hand-made rows), the page, and a --quick run of sparsexc-default alone (no peers venv needed)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import scipy.sparse as sp


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("defaults")


@pytest.fixture(scope="module")
def peers(bench):
    return sys.modules["peers"]  # the module defaults.py imports (and the workers' harness)


def test_arguments(bench, peers):
    args = bench.parse_args([])
    assert args.datasets == list(peers.DATASETS) and len(args.datasets) == 16 and args.systems == "all"
    assert not args.merge and args.timeout == 900.0 and args.threads == 2
    assert bench.parse_args(["--quick"]).datasets == ["flags"]
    args = bench.parse_args(["--datasets", "medical,enron", "--systems", "default", "--merge", "--timeout", "60"])
    assert args.datasets == ["medical", "enron"] and args.systems == "default" and args.merge and args.timeout == 60
    for bad in (["--datasets", "nope"], ["--datasets", "bibtex:raw"], ["--systems", "heads"], ["--threads", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_plan_runs_each_peer_on_each_input_and_the_default_once(bench, peers):
    pairs = bench.plan(["bibtex", "debtags", "emotions"], "all")
    n = len(peers.PEERS)
    assert len(pairs) == (2 + 1 + 2) * n + 3
    assert ("bibtex:raw", "omikuji-parabel") in pairs and ("emotions:std", "pecos-xrlinear") in pairs
    assert [p for p in pairs if p[1] == "sparsexc-default"] == [
        (d, "sparsexc-default") for d in ("bibtex", "debtags", "emotions")
    ]
    assert bench.plan(["bibtex"], "default") == [("bibtex", "sparsexc-default")]
    assert all(s != "sparsexc-default" for _, s in bench.plan(["bibtex"], "peers"))


def test_trivial_ranks_by_training_frequency(bench):
    Y_train = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=np.float32))
    Y_test = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 1, 1], [0, 0, 1]], dtype=np.float32))
    t = bench.trivial_metrics(Y_train, Y_test)
    # ranking: label 1 (3 rows), label 2 (2), label 0 (1); label 1 is relevant for test rows 0 and 2
    assert t["P@1"] == pytest.approx(0.5)
    assert t["P@5"] == pytest.approx((1 + 1 + 2 + 1) / 20)  # 3 labels, 5 slots: the empty ones are misses


def _row(dataset, system, p1, cpu, status="ok"):
    family = "sparsexc" if system.startswith("sparsexc-") else "peer"
    if status != "ok":
        return {"dataset": dataset, "system": system, "family": family, "status": status, "error": "timed out"}
    return {"dataset": dataset, "system": system, "family": family, "status": "ok", "train_cpu_seconds": cpu,
            "train_seconds": cpu, "metrics": {"P@1": p1, "P@5": p1 / 2, "PSP@5": p1 / 3}}  # fmt: skip


def test_set_summary_targets(bench):
    rows = [
        _row("enron", "napkinxc-plt", 0.60, 1.0),
        _row("enron:raw", "napkinxc-plt", 0.64, 2.0),  # napkinXC's better input
        _row("enron", "omikuji-bonsai", 0.62, 0.5),
        _row("enron:raw", "omikuji-bonsai", 0.70, 9.0, status="timeout"),
        _row("enron", "sparsexc-default", 0.6370, 3.0),
        _row("enron", "sparsexc-softmax", 0.99, 0.1),  # not a peer and not the default: ignored
    ]
    s = bench.set_summary("enron", rows, {"P@1": 0.30, "P@5": 0.2})
    assert (s["best_peer"], s["best_peer_input"], s["peer_P@1"], s["peer_cpu_s"]) == (
        "napkinxc-plt",
        "enron:raw",
        64.0,
        2.0,
    )
    assert (s["default_P@1"], s["default_P@5"], s["default_PSP@5"]) == (63.7, 31.85, 21.23)
    assert s["gap_points"] == -0.3 and s["within"] and not s["ahead"]
    assert s["cpu_ratio"] == 1.5 and s["cpu_ok"] and s["trivial_P@1"] == 30.0 and s["above_trivial"]
    rows[4] = _row("enron", "sparsexc-default", 0.66, 4.5)  # ahead by 2 points, 2.25x the CPU
    s = bench.set_summary("enron", rows, {"P@1": 0.655, "P@5": 0.2})
    assert s["ahead"] and s["within"] and s["cpu_ratio"] == 2.25 and not s["cpu_ok"]
    assert not s["above_trivial"]  # 0.5 point above the trivial ranking is "at" it
    rows[4] = _row("enron", "sparsexc-default", 0.62, 1.0)  # 2 points behind
    s = bench.set_summary("enron", rows, None)
    assert not s["within"] and not s["ahead"] and s["above_trivial"] is None and s["trivial_P@1"] is None
    rows[4] = _row("enron", "sparsexc-default", 0, 0, status="timeout")
    s = bench.set_summary("enron", rows, {"P@1": 0.3, "P@5": 0.2})
    assert s["default_status"] == "timeout" and s["default_error"] == "timed out"
    assert s["within"] is None and s["cpu_ok"] is None and s["above_trivial"] is None
    s = bench.set_summary("enron", rows[:4], None)
    assert s["default_status"] == "not run" and s["best_peer"] == "napkinxc-plt"


def test_peers_tied_at_the_best_p1_are_judged_by_the_cheaper_one(bench):
    rows = [
        _row("bibtex:raw", "omikuji-parabel", 0.6366, 1.5),
        _row("bibtex", "pecos-xrlinear", 0.6366, 0.5),  # the same P@1 for a third of the CPU
        _row("bibtex", "napkinxc-plt", 0.6322, 0.1),
        _row("bibtex", "sparsexc-default", 0.6473, 2.5),
    ]
    for order in (rows, rows[::-1]):  # whichever comes first
        s = bench.set_summary("bibtex", order, None)
        assert (s["best_peer"], s["peer_cpu_s"], s["cpu_ratio"], s["cpu_ok"]) == ("pecos-xrlinear", 0.5, 5.0, False)


def test_overall_counts_and_targets(bench):
    def summary(within, ahead, cpu, trivial):
        return {"within": within, "ahead": ahead, "cpu_ok": cpu, "above_trivial": trivial}

    sets = [summary(True, True, True, True), summary(True, True, True, True), summary(True, False, True, True)]
    total = bench.overall(sets)
    assert (total["sets"], total["ahead"], total["within"], total["cpu_ok"]) == (3, 2, 3, 3)
    assert total["p1_target_met"] and total["cpu_target_met"] and total["trivial_target_met"]  # ahead on 2/3
    sets[1] = summary(True, False, None, True)  # a set that could not be judged counts as missed
    total = bench.overall(sets)
    assert not total["p1_target_met"] and not total["cpu_target_met"] and total["trivial_target_met"]
    lines = bench.summary_lines(total)
    assert lines[0].startswith("- ahead of the best peer on 1/3, within 0.5 point of P@1 on 3/3")
    assert lines[0].endswith("**missed**") and lines[1] == "- CPU <= 2x the best peer's on 2/3: **missed**"


def _tiny_set(peers, monkeypatch, n_samples: int) -> str:
    """A generated set of ``n_samples`` rows (80% train) registered for the run as "synthetic-tiny"."""
    tiny = {"n_samples": n_samples, "n_features": 30, "n_labels": 6, "labels_per_sample": 2.0, "nnz_per_sample": 6,
            "power": 0.8, "seed": 3}  # fmt: skip
    monkeypatch.setitem(peers.SYNTHETIC_DATASETS, "synthetic-tiny", tiny)
    return "synthetic-tiny"


def test_quick_run_of_the_default_alone(bench, peers, monkeypatch, tmp_path):
    _tiny_set(peers, monkeypatch, 80)
    out = tmp_path / "out"
    argv = ["--quick", "--datasets", "synthetic-tiny", "--systems", "default", "--merge", "--timeout", "300",
            "--threads", "1", "--peers-python", str(tmp_path / "no-such-python"), "--out", str(out)]  # fmt: skip
    assert bench.main(argv) == 0
    report = json.loads((out / "defaults.json").read_text())
    (row,) = report["rows"]
    assert row["system"] == "sparsexc-default" and row["status"] == "ok" and row["settings"] == {}
    assert row["chosen"]["model"]["rule"] is not None and row["chosen"]["preprocess"]  # what model="auto" chose
    (s,) = report["sets"]
    assert s["best_peer"] is None and s["within"] is None and s["trivial_P@1"] is not None
    assert s["default_P@1"] == round(100 * row["metrics"]["P@1"], 2)
    page = (out / "defaults.md").read_text()
    assert "## synthetic-tiny — 64 train / 16 test rows" in page and "| sparsexc-default |" in page
    assert "- ahead of the best peer on 0/1" in page
    merged = json.loads((out / "peers.json").read_text())  # --merge: the peers table has the row too
    assert [r["system"] for r in merged["rows"]] == ["sparsexc-default"]
    assert "`sparsexc-default`: `XCClassifier()`" in (out / "peers.md").read_text()
    with pytest.raises(SystemExit):  # the peers need their venv: refused up front, with how to create it
        bench.main(argv[:4] + ["all", *argv[5:]])


def test_holdout_split_is_seeded_disjoint_and_the_small_holdout_draw(peers):
    X = sp.csr_matrix(np.arange(50, dtype=np.float32).reshape(25, 2))
    Y = sp.csr_matrix(np.eye(25, 3, dtype=np.float32))
    (Xf, _), (Xh, Yh) = peers.holdout_split(X, Y, 123)
    order = np.random.default_rng(123).permutation(25)  # benchmarks/small_holdout.py's draw: the first 5 held out
    assert sorted(Xh[:, 0].toarray().ravel() // 2) == sorted(order[:5]) and Xf.shape[0] == 20 and Yh.shape == (5, 3)
    assert set(Xf[:, 0].toarray().ravel()).isdisjoint(Xh[:, 0].toarray().ravel())
    again = peers.holdout_split(X, Y, 123)[1][0]
    assert (again != Xh).nnz == 0 and (peers.holdout_split(X, Y, 124)[1][0] != Xh).nnz > 0


def _holdout_row(system, dataset, seed, p1, cpu=1.0, status="ok"):
    return {"system": system, "dataset": dataset, "holdout_seed": seed, "status": status,
            "metrics": {"P@1": p1}, "train_cpu_seconds": cpu}  # fmt: skip


def test_holdout_summary_pairs_the_default_with_the_peer_of_best_mean(bench, peers):
    seeds = [1, 2, 3]
    rows = [_holdout_row("sparsexc-default", "emotions", s, p, 0.2) for s, p in zip(seeds, (0.70, 0.74, 0.72))]
    rows += [_holdout_row("napkinxc-plt", "emotions:std", s, p, 0.02) for s, p in zip(seeds, (0.71, 0.70, 0.72))]
    rows += [_holdout_row("napkinxc-plt", "emotions", s, p) for s, p in zip(seeds, (0.80, 0.40, 0.40))]
    rows += [_holdout_row("omikuji-parabel", "emotions", s, 0.9) for s in seeds[:2]]  # a seed missing: not judged
    s = bench.holdout_summary("emotions", rows, seeds)
    assert (s["best_peer"], s["best_peer_input"]) == ("napkinxc-plt", "emotions:std")
    assert s["default_mean"] == 72.0 and s["peer_mean"] == 71.0 and s["difference"] == 1.0
    assert s["difference_se"] == round(float(np.std([-1.0, 4.0, 0.0], ddof=1) / np.sqrt(3)), 2)
    assert s["seeds_ahead"] == 1 and s["default_cpu_s"] == pytest.approx(0.2) and s["peer_cpu_s"] == pytest.approx(0.02)
    rows[0]["status"] = "error"  # the default failed on one seed: the set is not judged
    assert bench.holdout_summary("emotions", rows, seeds)["best_peer"] is None


def test_holdout_run_of_the_default_alone_never_reads_the_test_split(bench, peers, monkeypatch, tmp_path):
    _tiny_set(peers, monkeypatch, 100)
    out = tmp_path / "out"
    argv = ["--datasets", "synthetic-tiny", "--systems", "default", "--timeout", "300", "--threads", "1",
            "--holdout-seeds", "123,124", "--out", str(out), "--work-dir", str(tmp_path / "work")]  # fmt: skip
    assert bench.main(argv) == 0
    report = json.loads((out / "defaults_holdout.json").read_text())
    assert [r["holdout_seed"] for r in report["rows"]] == [123, 124] and not (out / "defaults.json").exists()
    exported = tmp_path / "work" / "data" / "synthetic-tiny-holdout123"
    train_rows = peers.load_csr(exported / "train_Y.npz").shape[0] + peers.load_csr(exported / "test_Y.npz").shape[0]
    assert train_rows == 80  # the 80 training rows of the split (100 x 0.8), split 64 / 16: no test row
    assert peers.load_csr(exported / "test_Y.npz").shape[0] == 16
    (s,) = report["sets"]
    assert s["best_peer"] is None and len(s["default_P@1"]) == 2  # no peer ran; the default's P@1 per seed
    assert "| synthetic-tiny | (a row missing or failed) |" in (out / "defaults_holdout.md").read_text()
    for bad in (["--holdout-seeds", "1,x"], ["--holdout-seeds", "1", "--merge"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)
