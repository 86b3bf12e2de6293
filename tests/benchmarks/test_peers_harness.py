"""benchmarks/peers.py and peers_worker.py: the parts that need no peer package (arguments, top-k helpers,
metrics from a predictions file, table rendering, the goal check, subprocess failures and timeouts)."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp


@pytest.fixture(scope="module")
def peers(load_benchmark):
    return load_benchmark("peers")


@pytest.fixture(scope="module")
def worker(peers):
    return sys.modules["peers_worker"]  # imported by peers.py from benchmarks/


def test_parse_args_defaults_quick_and_errors(peers):
    args = peers.parse_args([])
    assert args.datasets == list(peers.DATASETS) and args.threads == 2 and args.systems == "all"
    assert peers.parse_args(["--quick"]).datasets == ["bibtex"]
    assert peers.parse_args(["--quick", "--datasets", "delicious,tmc2007-500"]).datasets == ["delicious", "tmc2007-500"]
    assert peers.parse_args(["--datasets", "bibtex:raw"]).datasets == ["bibtex:raw"]
    assert peers.base_name("bibtex:raw") == "bibtex" and peers.base_name("debtags") == "debtags"
    assert peers.parse_args(["--datasets", "emotions:std"]).datasets == ["emotions:std"]
    assert peers.base_name("emotions:std") == "emotions"
    bad_args = (["--datasets", "nope"], ["--datasets", "nope:raw"], ["--datasets", "bibtex:std"], ["--threads", "0"],
                ["--timeout", "-1"])  # fmt: skip
    for bad in bad_args:
        with pytest.raises(SystemExit):
            peers.parse_args(bad)


def test_resolve_systems_groups_order_and_unknown(peers):
    heads = ["sigmoid", "softmax"]
    tree_rows = list(peers.SPARSEXC_MODELS)  # the label-tree rows and XCClassifier(), before the heads
    assert tree_rows == ["sparsexc-tree", "sparsexc-tree-logistic", "sparsexc-tree-3trees", "sparsexc-default"]
    assert peers.resolve_systems("all", heads) == [*peers.PEERS, *tree_rows, "sparsexc-sigmoid", "sparsexc-softmax"]
    assert peers.resolve_systems("sparsexc,napkinxc-plt,sparsexc-sigmoid", heads) == [
        *tree_rows,
        "sparsexc-sigmoid",
        "sparsexc-softmax",
        "napkinxc-plt",
    ]
    with pytest.raises(ValueError, match="'sparsexc-nope' is unknown"):
        peers.resolve_systems("sparsexc-nope", heads)
    with pytest.raises(ValueError, match="names no system"):
        peers.resolve_systems(" , ", heads)
    assert peers.system_settings("sparsexc-sparsemax", quick=False)["hidden_sizes"] == [512]
    assert peers.system_settings("omikuji-parabel", quick=True) == {"n_trees": 1}


def test_topk_helpers_match_brute_force(worker):
    rng = np.random.default_rng(0)
    S = rng.integers(0, 4, size=(30, 9)).astype(np.float64)  # many ties: lower id must win
    idx, val = worker.topk_from_dense(S, 4)
    for i in range(S.shape[0]):
        expected = sorted(range(S.shape[1]), key=lambda j: (-S[i, j], j))[:4]
        assert idx[i].tolist() == expected and np.allclose(val[i], S[i, expected])
    pairs = [[(j, S[i, j]) for j in rng.permutation(9)[: rng.integers(0, 9)]] for i in range(30)]
    pidx, _pval = worker.topk_from_pairs(pairs, 4)
    for i, row in enumerate(pairs):
        expected = sorted(row, key=lambda p: (-p[1], p[0]))[:4]
        assert pidx[i, : len(expected)].tolist() == [p[0] for p in expected]
        assert (pidx[i, len(expected) :] == -1).all()  # short rows are padded with -1
    sets = worker.sets_from_lists([[2, 0], [], [1, 1]], 3)
    assert sets.toarray().tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]


def test_csr_round_trip_sorts_indices(worker, tmp_path):
    M = sp.csr_matrix((np.array([1.0, 2.0, 3.0], np.float32), np.array([2, 0, 1]), np.array([0, 2, 3])), shape=(2, 3))
    worker.save_csr(tmp_path / "m.npz", M)
    back = worker.load_csr(tmp_path / "m.npz")
    assert back.has_sorted_indices and (back.toarray() == M.toarray()).all()


def _fake_problem():
    Y_test = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 1]], dtype=np.float32))
    Y_train = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1]], dtype=np.float32))
    indices = np.array([[2, 1, 0, -1, -1], [0, 1, 3, 2, -1], [3, 2, 0, 1, -1]])
    scores = np.array([[0.9, 0.5, 0.4, -np.inf, -np.inf], [0.8, 0.7, 0.1, 0.0, -np.inf], [0.6, 0.5, 0.2, 0.1, -np.inf]])
    sets = sp.csr_matrix(np.array([[0, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    return Y_test, Y_train, indices, scores, sets


def test_metrics_from_fake_predictions_file(peers, tmp_path):
    Y_test, Y_train, indices, scores, sets = _fake_problem()
    path = tmp_path / "predictions.npz"
    np.savez(
        path,
        indices=indices,
        scores=scores.astype(np.float32),
        set_indptr=sets.indptr.astype(np.int64),
        set_indices=sets.indices.astype(np.int64),
    )
    m = peers.metrics_from_predictions(path, Y_test, Y_train)
    # by hand: top-1 hits 1,0,1; top-3 hits 2,1,2 (of 3 each); P@5 counts 5 slots with the -1 padding as misses
    assert m["P@1"] == pytest.approx(2 / 3)
    assert m["P@3"] == pytest.approx((2 + 1 + 2) / 9)
    assert m["P@5"] == pytest.approx((2 + 1 + 2) / 15)
    # micro-F1 over the sets: tp = 1 + 1 + 0, fp = 0 + 1 + 0, fn = 1 + 0 + 2
    assert m["micro-F1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 3))
    assert set(m) == set(peers.METRIC_COLUMNS)
    # PSP@1 by hand: gains = inverse propensities (Jain et al.) of the hits, normalised by the best gain per row
    from sparsexc.metrics import inverse_propensity

    w = inverse_propensity(Y_train)
    best = max(w[0], w[2]) + w[1] + max(w[2], w[3])
    assert m["PSP@1"] == pytest.approx((w[2] + 0 + w[3]) / best)
    np.savez(tmp_path / "topk_only.npz", indices=indices, scores=scores)
    assert "micro-F1" not in peers.metrics_from_predictions(tmp_path / "topk_only.npz", Y_test, Y_train)
    np.savez(tmp_path / "short.npz", indices=indices[:2], scores=scores[:2])
    with pytest.raises(ValueError, match="predictions for 2 rows"):
        peers.metrics_from_predictions(tmp_path / "short.npz", Y_test, Y_train)


def _row(system, family, p1, train_s, status="ok"):
    if status != "ok":
        return {
            "dataset": "bibtex",
            "system": system,
            "family": family,
            "status": status,
            "error": "timed out after 9 s",
        }
    metrics = {c: p1 for c in ("P@1", "P@3", "P@5", "nDCG@5", "PSP@1", "PSP@3", "PSP@5")}
    return {
        "dataset": "bibtex",
        "system": system,
        "family": family,
        "status": "ok",
        "metrics": metrics,
        "train_seconds": train_s,
        "predict_ms_per_1000": 2.0,
        "model_mib": 1.0,
        "peak_rss_mib": 300.0,
    }


def test_table_bolds_best_and_shows_failures(peers):
    rows = [
        _row("napkinxc-plt", "peer", 0.64, 1.0),
        _row("sparsexc-sigmoid", "sparsexc", 0.63, 12.0),
        _row("omikuji-bonsai", "peer", 0, 0, status="timeout"),
    ]
    table = peers.dataset_table(rows).splitlines()
    assert table[0].startswith("| system | P@1 |") and len(table) == 5
    assert "| napkinxc-plt | **64.00** |" in table[2] and "| **1.00** |" in table[2]  # best P@1, fastest
    assert "| sparsexc-sigmoid | 63.00 |" in table[3] and "| 12.0 |" in table[3]
    assert "–" in table[3]  # no micro-F1 in these rows
    assert table[4].startswith("| omikuji-bonsai | timed out after 9 s |")
    assert table[2].count("|") == table[4].count("|")  # a failed row keeps the column count


def test_goal_check_and_report(peers):
    rows = [
        _row("napkinxc-plt", "peer", 0.64, 2.0),
        _row("pecos-xrlinear", "peer", 0.60, 0.5),
        _row("sparsexc-sigmoid", "sparsexc", 0.6250, 12.0),
        _row("sparsexc-softmax", "sparsexc", 0.62, 1.0),
    ]
    g = peers.goal_check(rows)
    assert g["best_sparsexc"] == "sparsexc-sigmoid" and g["best_peer"] == "napkinxc-plt"
    assert g["P@1_gap_points"] == pytest.approx(-1.5) and g["time_ratio"] == pytest.approx(6.0)
    assert not g["p1_goal_met"] and not g["time_goal_met"]
    assert peers.goal_check(rows[:2]) is None
    report = peers.markdown_report({"rows": rows, "datasets": {}, "machine": {}})
    assert "behind by 1.50 points" in report and "6.0x the peer's time" in report
    merged = peers.merge_rows(rows, [_row("napkinxc-plt", "peer", 0.7, 3.0)])
    assert len(merged) == 4 and merged[0]["metrics"]["P@1"] == 0.7


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_run_pair_records_results_errors_and_timeouts(peers, worker, tmp_path):
    Y_test, Y_train, indices, scores, _sets = _fake_problem()
    data = tmp_path / "data"
    data.mkdir()
    worker.save_csr(data / "test_Y.npz", Y_test)
    worker.save_csr(data / "train_Y.npz", Y_train)
    fake_worker = tmp_path / "fake_worker.py"
    fake_worker.write_text(
        "import json, sys, numpy as np\nfrom pathlib import Path\n"
        "spec = json.loads(Path(sys.argv[1]).read_text()); out = Path(spec['out_dir'])\n"
        f"np.savez(out / 'predictions.npz', indices=np.array({indices.tolist()}), scores=np.array({np.where(np.isinf(scores), -1.0, scores).tolist()}))\n"
        "(out / 'result.json').write_text(json.dumps({'train_seconds': 1.5, 'predict_ms_per_1000': 3.0,"
        " 'model_bytes': 2**20, 'peak_rss_mib': 100.0, 'rss_before_fit_mib': 90.0, 'numpy': np.__version__}))\n"
    )
    ok = _script(tmp_path / "ok-python", f'exec "{sys.executable}" "{fake_worker}" "$2"')
    fail = _script(tmp_path / "fail-python", 'echo "Traceback" >&2; echo "MemoryError: std::bad_alloc" >&2; exit 3')
    slow = _script(tmp_path / "slow-python", "exec sleep 30")
    args = peers.parse_args(["--datasets", "bibtex", "--timeout", "60"])
    args.peers_python = ok
    row = peers.run_pair("napkinxc-plt", "bibtex", data, tmp_path / "work", args)
    assert row["status"] == "ok" and row["metrics"]["P@1"] == pytest.approx(2 / 3)
    assert row["model_mib"] == 1.0 and row["train_seconds"] == 1.5 and row["family"] == "peer"
    args.peers_python = fail
    row = peers.run_pair("napkinxc-plt", "bibtex", data, tmp_path / "work", args)
    assert row["status"] == "error" and row["error"] == "exit 3: MemoryError: std::bad_alloc"
    args.peers_python, args.timeout = slow, 0.5
    row = peers.run_pair("omikuji-bonsai", "bibtex", data, tmp_path / "work", args)
    assert row["status"] == "timeout" and row["error"] == "timed out after 0.5 s" and "metrics" not in row


def test_merge_reports_combines_parallel_runs(peers, tmp_path):
    a = {
        "command": "run a",
        "datasets": {"bibtex": {"n_train": 1, "n_test": 1, "n_features": 1, "n_labels": 1, "features": "tfidf-l2"}},
        "peer_versions": {"napkinxc": "0.7.2"},
        "rows": [_row("napkinxc-plt", "peer", 0.64, 2.0)],
    }
    b = {
        "command": "run b",
        "datasets": {},
        "peer_versions": {},
        "rows": [_row("sparsexc-sigmoid", "sparsexc", 0.66, 4.0), _row("napkinxc-plt", "peer", 0.65, 2.0)],
    }
    for name, rep in (("a.json", a), ("b.json", b)):
        (tmp_path / name).write_text(json.dumps(rep))
    report = peers.merge_reports([tmp_path / "a.json", tmp_path / "b.json"], tmp_path / "out", "merge")
    assert [r["system"] for r in report["rows"]] == ["napkinxc-plt", "sparsexc-sigmoid"]
    assert report["rows"][0]["metrics"]["P@1"] == 0.65  # the later file wins
    assert (
        report["goals"]["bibtex"]["P@1_gap_points"] == pytest.approx(1.0) and report["goals"]["bibtex"]["p1_goal_met"]
    )
    md = (tmp_path / "out" / "peers.md").read_text()
    assert "merged from runs `run a`, `run b`" in md and '"napkinxc": "0.7.2"' in md
    assert (tmp_path / "out" / "peers_p1_vs_time.png").stat().st_size > 1000


def test_omikuji_file_marks_rows_without_labels(peers, tmp_path):
    from sparsexc.io import read_xc, write_xc

    X = sp.csr_matrix(np.array([[0.5, 0, 0], [0, 1, 0], [0, 0, 2]], dtype=np.float32))
    Y = sp.csr_matrix(np.array([[1, 1], [0, 0], [0, 1]], dtype=np.float32))
    path = tmp_path / "train.txt"
    write_xc(path, X, Y)
    peers.omikuji_compatible(path)
    lines = path.read_text().splitlines()
    assert lines[2] == " 1:1" and not lines[1].startswith(" ") and not lines[3].startswith(" ")
    X_back, Y_back = read_xc(path)[:2]  # still valid XC text for our own reader
    assert (X_back.toarray() == X.toarray()).all() and (Y_back.toarray() == Y.toarray()).all()


def test_goal_judges_time_on_cpu_seconds_when_measured(peers):
    rows = [_row("omikuji-bonsai", "peer", 0.64, 4.0), _row("sparsexc-sparsemax", "sparsexc", 0.635, 30.0)]
    rows[0]["train_cpu_seconds"], rows[1]["train_cpu_seconds"] = 2.0, 5.0
    g = peers.goal_check(rows)
    assert g["time_goal_on"] == "CPU" and g["cpu_time_ratio"] == pytest.approx(2.5) and g["time_ratio"] == 7.5
    assert g["time_goal_met"] and g["p1_goal_met"]  # 2.5x the CPU seconds, though 7.5x the wall clock
    line = peers.goal_line("bibtex", g)
    assert "5.0 vs 2.0 CPU s (x2.50)" in line and "goal within 3x CPU time: met" in line
    rows[1]["train_cpu_seconds"] = 7.0
    g = peers.goal_check(rows)
    assert not g["time_goal_met"] and "3.5x the peer's CPU time" in peers.goal_line("bibtex", g)


def test_thread_env_and_sparsexc_settings(peers):
    from sparsexc.estimator import DEFAULT_LR

    env = peers._thread_env(2)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["OMP_NUM_THREADS"] == "2"
    s = peers.system_settings("sparsexc-softmax", quick=False)
    assert s["lr"] == pytest.approx(3 * DEFAULT_LR["adam"]) and s["sparse_gradients"] is True  # typed, one value
    assert "sparse_linear" not in peers.system_settings("sparsexc-sigmoid", quick=False)  # no data-dependent rule
    assert peers.system_settings("sparsexc-default", quick=False) == {}  # no setting at all
    assert peers.system_settings("sparsexc-default", quick=True) == {}
    assert peers.system_settings("sparsexc-sigmoid", quick=False)["lr"] == pytest.approx(9 * DEFAULT_LR["adam"])
    assert peers.system_settings("sparsexc-negative-sampling", quick=False)["lr"] == pytest.approx(
        3 * DEFAULT_LR["adagrad"]
    )
    assert peers.system_settings("sparsexc-sampled-softmax", quick=False)["head_params"] == {"sampler": "frequency"}
    # --quick keeps the head's own settings: a tree sampler behind the quick (64,) encoder would be refused
    quick = peers.system_settings("sparsexc-negative-sampling", quick=True)
    assert quick["head_params"] == {"sampler": "frequency"} and quick["hidden_sizes"] == [64]


def test_memory_preflight_refuses_dense_libmultilabel_only(peers, worker, tmp_path):
    worker.save_csr(tmp_path / "train_X.npz", sp.csr_matrix((3, 999)))
    worker.save_csr(tmp_path / "train_Y.npz", sp.csr_matrix((3, 2048)))
    # (999 + 1) x 2048 float64 = 15.6 MiB
    assert peers.memory_preflight("libmultilabel-ovr", tmp_path, 16.0) is None
    why = peers.memory_preflight("libmultilabel-ovr", tmp_path, 15.0)
    assert why.startswith("not run") and "(1000 x 2048)" in why
    assert peers.memory_preflight("napkinxc-plt", tmp_path, 1.0) is None
    args = peers.parse_args(["--datasets", "bibtex", "--max-rss-mib", "15"])
    row = peers.run_pair("libmultilabel-ovr", "bibtex", tmp_path, tmp_path / "work", args)
    assert row["status"] == "skipped" and row["error"] == why


def test_run_pair_stops_a_worker_over_the_memory_cap(peers, tmp_path):
    hog = tmp_path / "hog.py"
    hog.write_text(
        "import time\nblock = bytearray(300 * 2**20)\nfor i in range(0, len(block), 4096): block[i] = 1\n"
        "time.sleep(30)\n"
    )
    python = _script(tmp_path / "hog-python", f'exec "{sys.executable}" "{hog}"')
    args = peers.parse_args(["--datasets", "bibtex", "--timeout", "25", "--max-rss-mib", "100"])
    args.peers_python = python
    row = peers.run_pair("napkinxc-plt", "bibtex", tmp_path, tmp_path / "work", args)
    assert row["status"] == "error" and row["error"].startswith("stopped: resident memory")
    assert "over the 100 MiB cap" in row["error"] and "metrics" not in row


def test_worker_heads_take_the_typed_settings_as_given(worker, tmp_path):
    system = worker.make_system("sparsexc-softmax", {"hidden_sizes": [4], "epochs": 1, "sparse_gradients": True,
                                                     "validation_fraction": 0.0}, 1, tmp_path)  # fmt: skip
    system.prepare()
    assert "sparsexc.estimator" in sys.modules
    X = sp.random(40, 12, density=0.3, format="csr", dtype=np.float32, random_state=0)
    Y = sp.csr_matrix(np.eye(3, dtype=np.float32)[np.arange(40) % 3])
    system.fit(X, Y, tmp_path / "unused.txt")
    params = system.model.get_params()
    assert params["sparse_gradients"] is True and params["hidden_sizes"] == (4,) and params["head"] == "softmax"
    assert system.describe() == {}  # a head with typed settings chooses nothing worth recording


def test_worker_default_is_xcclassifier_with_no_setting_and_records_its_choices(worker, tmp_path):
    from sparsexc.estimator import XCClassifier

    system = worker.make_system("sparsexc-default", {}, 1, tmp_path)
    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.normal(size=(60, 5)).astype(np.float32))  # dense real values: "auto" standardises
    Y = sp.csr_matrix(np.eye(3, dtype=np.float32)[np.arange(60) % 3])
    system.fit(X, Y, tmp_path / "unused.txt")
    defaults = XCClassifier().get_params()
    assert system.model.get_params() == {**defaults, "verbose": 0}  # verbose does not change the model
    chosen = system.describe()
    assert chosen["preprocess"].startswith("standardize (auto:")
    assert chosen["model"] == system.model.resolved_model().to_dict()  # model="auto": the family and why
    assert chosen["model"]["rule"] is not None  # chosen by a rule of the table, no setting was given
    if chosen["model"]["family"] == "neural":  # where it trained: resolved from "auto"
        assert chosen["device"] != "auto"
    assert "message" in chosen["fit_summary"] and json.loads(json.dumps(chosen)) == chosen


def test_inputs_table_and_best_input_rows(peers):
    assert peers.inputs("bibtex") == ["bibtex", "bibtex:raw"] and peers.inputs("debtags") == ["debtags"]
    assert peers.inputs("emotions") == ["emotions", "emotions:std"]
    assert set(peers.FEATURE_KINDS) == set(peers.DATASETS) and len(peers.DATASETS) == 16
    assert peers.system_input("sparsexc-default", "bibtex") == "bibtex:raw"  # as loaded, never the TF-IDF
    assert peers.system_input("sparsexc-default", "emotions") == "emotions"  # as loaded already
    assert peers.system_input("napkinxc-plt", "bibtex") == "bibtex"
    rows = []
    for dataset, p1 in (("emotions", 0.60), ("emotions:std", 0.70)):
        for system in ("napkinxc-plt", "pecos-xrlinear"):
            rows.append({**_row(system, "peer", p1 if system == "napkinxc-plt" else 1.2 - p1, 1.0), "dataset": dataset})
    rows.append({**_row("omikuji-bonsai", "peer", 0.9, 1.0, status="timeout"), "dataset": "emotions:std"})
    best = {r["system"]: r["dataset"] for r in peers.best_input_rows(rows, "emotions")}
    assert best == {"napkinxc-plt": "emotions:std", "pecos-xrlinear": "emotions"}  # each on its better input
    assert peers.best_input_rows(rows[:2], "emotions") == []  # one input run: nothing to choose (the peers table)
    assert len(peers.best_input_rows(rows[:2], "emotions", min_inputs=1)) == 2
    assert peers.best_input_rows(rows, "emotions:std") == []


def test_std_input_standardises_with_training_statistics(peers):
    X_train = sp.csr_matrix(np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]]))
    X_test = sp.csr_matrix(np.array([[7.0, 10.0]]))
    A, B = peers.prepare_features("flags:std", X_train, X_test)
    assert np.allclose(A.toarray()[:, 0], [-1.2247449, 0.0, 1.2247449]) and A.toarray()[:, 1].tolist() == [0, 0, 0]
    assert np.allclose(B.toarray(), [[2.4494898, 0.0]])  # (7 - 3) / std of the training column
    assert peers.prepare_features("flags", X_train, X_test)[0] is X_train  # the dense sets' NAME: as loaded


def test_typed_settings_render_the_call(peers):
    assert peers.typed_settings("sparsexc-default", {"verbose": 0}) == "XCClassifier()"
    assert peers.typed_settings("sparsexc-softmax", {"hidden_sizes": [512], "lr": 0.003}) == (
        "XCClassifier(head='softmax', device='cpu', hidden_sizes=(512,), lr=0.003)"
    )
    assert (
        peers.typed_settings("sparsexc-tree", {"loss": "logistic"})
        == "LabelTreeModel(LabelTreeParams(loss='logistic'))"
    )
    assert peers.typed_settings("omikuji-parabel", {"n_trees": 3}) == '{"n_trees": 3}'


def test_goal_line_names_why_no_head_finished(peers):
    rows = [_row("napkinxc-plt", "peer", 0.7, 2.0), _row("sparsexc-softmax", "sparsexc", 0, 0, status="timeout")]
    line = peers.goal_line("debian-deps", peers.goal_check(rows), rows)
    assert "**not met**: no sparsexc head finished (sparsexc-softmax: timed out after 9 s)" in line
    assert "not comparable yet" in peers.goal_line("debian-deps", None, rows[:1])


def test_validation_script_scores_settings_on_held_out_training_rows(load_benchmark):
    from sparsexc.datasets.splits import Splits
    from sparsexc.io.data import MultiLabelData

    validation = load_benchmark("peers_validation")
    rng = np.random.default_rng(0)
    Y = sp.csr_matrix(np.eye(3, dtype=np.float32)[np.arange(90) % 3])
    X = sp.csr_matrix(np.hstack([Y.toarray() * 2.0, rng.random((90, 5)) < 0.2]), dtype=np.float32)
    splits = Splits("toy", MultiLabelData(X, Y), MultiLabelData(X[:3], Y[:3]))
    dev, train = np.arange(0, 90, 10), np.setdiff1d(np.arange(90), np.arange(0, 90, 10))
    row = validation.evaluate_setting(
        splits, dev, train, {"hidden_sizes": [], "optimizer": "sgd", "lr": 10.0, "epochs": 3, "sparse_gradients": False}
    )
    # features 0-2 name the label: a linear model trained by SGD ranks the true label first on every held-out row
    assert row["P@1"] == 100.0 and row["epochs_run"] >= 1 and len(row["val_P@1"]) == row["epochs_run"]
    assert row["setting"]["lr"] == 10.0 and row["cpu_seconds"] >= 0


def test_synthetic_data_sets_are_named_only_and_exported_deterministically(peers, worker, monkeypatch, tmp_path):
    assert "synthetic-1m" not in peers.parse_args([]).datasets  # only when named: it is the long run
    assert peers.parse_args(["--datasets", "synthetic-1m"]).datasets == ["synthetic-1m"]
    assert peers.SYNTHETIC_DATASETS["synthetic-1m"]["n_labels"] == 1_000_000
    with pytest.raises(SystemExit):
        peers.parse_args(["--datasets", "synthetic-1m:raw"])
    tiny = {"n_samples": 60, "n_features": 40, "n_labels": 1000, "labels_per_sample": 3.0, "nnz_per_sample": 6,
            "power": 0.8, "seed": 5}  # fmt: skip
    monkeypatch.setitem(peers.SYNTHETIC_DATASETS, "synthetic-tiny", tiny)
    info = peers.export_dataset("synthetic-tiny", tmp_path / "a")
    assert (info["n_train"], info["n_test"], info["n_features"], info["n_labels"]) == (48, 12, 40, 1000)
    assert info["features"].startswith("sparsexc.datasets.synthetic(") and "n_labels=1000" in info["features"]
    peers.export_dataset("synthetic-tiny", tmp_path / "b")
    for name in ("train_X.npz", "train_Y.npz", "test_X.npz", "test_Y.npz"):
        a, b = worker.load_csr(tmp_path / "a" / name), worker.load_csr(tmp_path / "b" / name)
        assert a.shape == b.shape and (a != b).nnz == 0
    assert (tmp_path / "a" / "train.txt").read_text() == (tmp_path / "b" / "train.txt").read_text()
    rows = [{"dataset": d, "system": "pecos-xrlinear"} for d in ("synthetic-1m", "bibtex", "wordnet-hypernyms")]
    assert [r["dataset"] for r in peers.order_rows(rows)] == ["bibtex", "wordnet-hypernyms", "synthetic-1m"]
