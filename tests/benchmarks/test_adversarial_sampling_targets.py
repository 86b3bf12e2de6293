"""benchmarks/adversarial_sampling.py: the target check and the set/method registry (no training)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def adv(load_benchmark):
    return load_benchmark("adversarial_sampling")


def _run(method, curve, final_p1, seconds, hits=None):
    points = [{"train_seconds": t, "P@1": p} for t, p in curve]
    final = {
        "P@1": final_p1,
        "train_seconds": seconds,
        "hits@1_first_label": final_p1 if hits is None else hits,
        "log_likelihood_first_label": -1.0,
    }
    return {"method": method, "curve": points, "final": final}


def test_time_target_takes_the_first_point_within_one_point_of_the_softmax(adv):
    part = {
        "dataset": {"n_labels": 50_000},
        "runs": [
            _run(adv.SOFTMAX, [(100, 0.5), (1000, 0.656)], 0.656, 1000.0),
            _run(adv.ADVERSARIAL, [(20, 0.35), (150, 0.640), (180, 0.647), (200, 0.66)], 0.66, 200.0),
            _run(adv.UNIFORM, [(200, 0.45)], 0.45, 200.0),
        ],
    }
    t = adv.targets(part, [])
    assert t["qualifies_C_ge_40000"] and t["adversarial_seconds_to_softmax_P1"] == 180  # 0.640 < 0.646 <= 0.647
    assert t["time_ratio"] == pytest.approx(0.18) and t["fifth_of_softmax_time_met"]
    assert t["ends_above_uniform"]
    part["runs"][1] = _run(adv.ADVERSARIAL, [(20, 0.35), (300, 0.515)], 0.515, 300.0)  # never reaches the bar
    t = adv.targets(part, [])
    assert t["time_ratio"] is None and not t["fifth_of_softmax_time_met"]
    part["dataset"]["n_labels"] = 19_005
    assert not adv.targets(part, [])["qualifies_C_ge_40000"]


def test_synthetic_sets_and_diagnostic_methods(adv):
    assert adv.SYNTHETIC["synthetic-50k"]["n_labels"] == 50_000 >= 40_000
    assert adv.SYNTHETIC["synthetic-1m"]["n_labels"] == 1_000_000
    with pytest.raises(ValueError, match="synthetic-50k"):
        adv.load_set("synthetic-7", 32, 0)
    assert set(adv.DIAGNOSTICS) <= set(adv.METHODS) and not set(adv.DIAGNOSTICS) & set(adv.DEFAULT_METHODS)
    assert adv.METHODS["ns-tree-neg100"][1]["num_negatives"] == 100 and adv.METHODS["ns-tree-lr0.1"][3] == 0.1
    assert all(m in adv.TITLES for m in adv.METHODS)


def test_speedups_compare_first_times_at_each_baselines_final_value(adv):
    part = {
        "dataset": {"n_labels": 50_000},
        "runs": [
            _run(adv.UNIFORM, [(10, 0.1), (100, 0.3), (300, 0.45)], 0.45, 300.0),
            _run(adv.ADVERSARIAL, [(20, 0.35), (45, 0.46), (300, 0.5)], 0.5, 300.0),
            _run("ns-frequency", [(6, 0.55), (60, 0.56)], 0.56, 60.0),
        ],
    }
    s = adv.speedups(part)
    assert set(s) == {adv.UNIFORM, "ns-frequency"}
    u = s[adv.UNIFORM]  # uniform first at 0.45 after 300 s, the tree after 45 s; uniform never reaches 0.5
    assert (u["baseline_seconds"], u["adversarial_seconds"], u["speedup"]) == (300, 45, pytest.approx(300 / 45))
    assert u["baseline_seconds_to_adversarial_final"] is None and u["adversarial_final"] == 0.5
    f = s["ns-frequency"]  # the tree never reaches frequency's 0.56; frequency passes the tree's 0.5 at 6 s
    assert f["adversarial_seconds"] is None and f["speedup"] is None and f["baseline_seconds_to_adversarial_final"] == 6
    table = "\n".join(adv.speedup_table(s))
    assert "6.7x" in table and "never" in table
    assert adv.speedups({"runs": [part["runs"][0]]}) == {}


def test_speed_verdict_needs_ten_x_everywhere_and_is_contradicted_by_one_slow_set(adv):
    assert adv.speed_verdict({"a": 12.0, "b": 10.0}) == "reproduced"
    assert adv.speed_verdict({"a": 6.7, "b": 1.2}) == "partially"  # 1.2x: within the one-seed margin
    assert adv.speed_verdict({"a": 1.5, "b": 0.9}) == "not reproduced (no ratio beyond 2x)"
    assert adv.speed_verdict({"a": 6.0, "b": None}).startswith("contradicted (slower or never on b")
    assert adv.speed_verdict({"a": 6.0, "b": 0.1}).startswith("contradicted (slower or never on b")
    assert adv.speed_verdict({}) == "untested"


def _part(n_eval, *runs):
    return {"dataset": {"n_labels": 1000, "n_test_eval": n_eval}, "runs": list(runs)}


def test_verdict_rows_judge_hits_against_two_binomial_standard_errors(adv):
    # 1,000 rows: se of 0.30 vs 0.20 is about 0.019, so +0.10 is a win; 100 rows: 0.36 vs 0.30 (se 0.066) is not
    big = _part(
        1000,
        _run(adv.ADVERSARIAL, [(10, 0.3)], 0.3, 60.0, hits=0.30),
        _run(adv.UNIFORM, [(60, 0.2)], 0.2, 60.0, hits=0.20),
        _run(adv.FREQUENCY, [(6, 0.4)], 0.4, 60.0, hits=0.40),
    )
    small = _part(
        100,
        _run(adv.ADVERSARIAL, [(10, 0.36)], 0.36, 60.0, hits=0.36),
        _run(adv.UNIFORM, [(60, 0.30)], 0.30, 60.0, hits=0.30),
    )
    merged = {"datasets": {"big": big}, "speedups_P@1": {"big": adv.speedups(big)}}
    rows = adv.verdict_rows(merged)
    by_claim = {r.split(" | ")[0]: r.rsplit(" | ", 1)[1] for r in rows}
    assert by_claim["| Higher final accuracy (hits@1 of the first label) than neg. sampling, uniform"] == "reproduced |"
    assert by_claim["| Higher final accuracy (hits@1 of the first label) than neg. sampling, frequency"].startswith(
        "contradicted"
    )
    assert by_claim["| Higher final accuracy (hits@1 of the first label) than NCE, tree as base distribution"] == (
        "untested |"
    )
    merged = {"datasets": {"big": big, "small": small}, "speedups_P@1": {}}
    rows = adv.verdict_rows(merged)
    uniform = next(r for r in rows if "hits@1 of the first label) than neg. sampling, uniform" in r)
    assert uniform.endswith("| partially |") and "small 36.0 vs 30.0 % (+6.0 +- 6.6)" in uniform


def test_the_authors_baseline_forms_get_rows_only_where_they_ran(adv):
    assert adv.METHODS[adv.UNIFORM_L2][1] == {"sampler": "uniform", "reg_centre": "zero"}
    assert adv.METHODS[adv.TREE_INVAUX][1]["bias_init"] == "inverse_aux"
    plain = _part(
        1000,
        _run(adv.ADVERSARIAL, [(10, 0.3)], 0.3, 60.0, hits=0.30),
        _run(adv.UNIFORM, [(60, 0.2)], 0.2, 60.0, hits=0.20),
    )
    merged = {"datasets": {"a": plain}, "speedups_P@1": {"a": adv.speedups(plain)}}
    assert not any("authors' penalty" in row for row in adv.verdict_rows(merged))
    plain["runs"].append(_run(adv.UNIFORM_L2, [(30, 0.35)], 0.35, 60.0, hits=0.35))
    merged = {"datasets": {"a": plain}, "speedups_P@1": {"a": adv.speedups(plain)}}
    rows = [r for r in adv.verdict_rows(merged) if "authors' penalty" in r]
    assert len(rows) == 2  # time to its final P@1 (never reached: 0.35 > 0.3) and hits@1 (worse by 5 points)
    assert rows[0].endswith("| contradicted (slower or never on a) |")
    assert "Wikipedia-500K 17.5 vs 11.7 %" in rows[1] and "contradicted" in rows[1]
