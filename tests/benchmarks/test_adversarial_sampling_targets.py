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
    table = "\n".join(adv.speedup_table({"0": s}))
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
    merged = {"datasets": {"big": big}, "speedups_P@1": adv.merge_speedups({"big": big})}
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
    merged = {"datasets": {"a": plain}, "speedups_P@1": adv.merge_speedups({"a": plain})}
    assert not any("authors' penalty" in row for row in adv.verdict_rows(merged))
    plain["runs"].append(_run(adv.UNIFORM_L2, [(30, 0.35)], 0.35, 60.0, hits=0.35))
    merged = {"datasets": {"a": plain}, "speedups_P@1": adv.merge_speedups({"a": plain})}
    rows = [r for r in adv.verdict_rows(merged) if "authors' penalty" in r]
    assert len(rows) == 2  # time to its final P@1 (never reached: 0.35 > 0.3) and hits@1 (worse by 5 points)
    assert rows[0].endswith("| contradicted (slower or never on a) |")
    assert "Wikipedia-500K 17.5 vs 11.7 %" in rows[1] and "contradicted" in rows[1]


# --- issue 21: the log-likelihood's standard error and several seeds ------------------------------------------


def test_evaluation_records_the_log_likelihoods_standard_error_over_rows(adv):
    import math

    import numpy as np
    import scipy.sparse as sp
    import torch

    # 4 rows, 3 labels; first labels 0, 2, 1, 0 (row 3 also has label 2); fixed logits, so log p is exact
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
    Y = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=np.float32))

    class Fixed:
        name, n_labels = "fixed", 3

        def eval(self):
            return None

        def scores(self, hidden):
            return logits[hidden[:, 0].long()]

    X = np.arange(4, dtype=np.float32)[:, None]
    point = adv.evaluate_head(Fixed(), X, Y)
    logp = torch.log_softmax(logits.double(), 1)[torch.arange(4), torch.tensor([0, 2, 1, 0])].numpy()
    assert point["log_likelihood_first_label"] == pytest.approx(logp.mean())
    assert point["log_likelihood_first_label_se"] == pytest.approx(logp.std(ddof=1) / 2.0)
    assert point["hits@1_first_label"] == 0.5  # rows 0 and 3 (a tie counts as a hit)
    assert adv.mean_and_se(np.array([1.0]))[0] == 1.0 and math.isnan(adv.mean_and_se(np.array([1.0]))[1])


def _seeded(method, seed, hits, loglik=-5.0, loglik_se=0.05, p1=None, curve=None):
    run = _run(method, curve or [(60, hits if p1 is None else p1)], hits if p1 is None else p1, 60.0, hits=hits)
    run["final"].update(log_likelihood_first_label=loglik, log_likelihood_first_label_se=loglik_se, step=1, epochs=1)
    run["final"]["P@3"] = run["final"]["P@5"] = 0.1
    run.update(seed=seed, prepare_seconds=1.0)
    return run


def test_old_part_files_stay_readable_and_new_runs_replace_only_their_method_and_seed(adv):
    old = {
        "settings": {"seed": 0},
        "runs": [_run(adv.ADVERSARIAL, [(60, 0.3)], 0.3, 60.0), _run("ssm-tree", [], 0.1, 60.0)],
    }
    assert [adv.run_seed(r, old) for r in old["runs"]] == [0, 0] and adv.run_seed({"seed": 2}) == 2
    kept = adv.kept_runs(old, [adv.ADVERSARIAL, adv.UNIFORM], [0, 1, 2])
    assert [(r["method"], r["seed"], r["settings"]) for r in kept] == [("ssm-tree", 0, {"seed": 0})]
    assert [r["method"] for r in adv.kept_runs(old, [adv.ADVERSARIAL], [1, 2])] == [adv.ADVERSARIAL, "ssm-tree"]
    assert "seed" not in old["runs"][0]  # the earlier file's runs are not modified
    assert adv.seed_list("0,1,2") == [0, 1, 2]
    with pytest.raises(ValueError, match="distinct"):
        adv.seed_list("1,1")


def test_summary_and_speedups_per_seed(adv):
    part = _part(
        1000,
        _seeded(adv.ADVERSARIAL, 0, 0.30, curve=[(10, 0.2), (60, 0.30)]),
        _seeded(adv.ADVERSARIAL, 1, 0.34, curve=[(10, 0.25), (60, 0.34)]),
        _seeded(adv.UNIFORM, 0, 0.20, curve=[(60, 0.20)]),
        _seeded(adv.UNIFORM, 1, 0.22, curve=[(30, 0.21), (60, 0.22)]),
    )
    summary = adv.method_summary(part)[adv.ADVERSARIAL]
    assert summary["seeds"] == [0, 1] and summary[adv.HITS]["mean"] == pytest.approx(0.32)
    assert summary[adv.HITS]["min"] == 0.30 and summary[adv.HITS]["std"] == pytest.approx(0.04 / 2**0.5)
    s = adv.merge_speedups({"a": part})["a"]
    assert set(s) == {"0", "1"}
    assert s["0"][adv.UNIFORM]["speedup"] == 6.0 and s["1"][adv.UNIFORM]["speedup"] == 6.0  # 60 s vs 10 s
    assert "| neg. sampling, uniform | 1 |" in "\n".join(adv.speedup_table(s))
    assert adv.median_ratio([12.0, None, 3.0]) == 3.0 and adv.median_ratio([None, None, 3.0]) is None
    assert adv.median_ratio([4.0, 2.0]) == 2.0 and adv.median_ratio([]) is None


def test_difference_takes_the_larger_of_the_seeds_and_the_rows_standard_error(adv):
    steady = [(_seeded("a", s, 0.30)["final"], _seeded("b", s, 0.20)["final"]) for s in range(3)]
    d, se = adv.difference(steady, adv.HITS, 1000)
    assert d == pytest.approx(0.10) and se == pytest.approx(adv.proportion_difference(0.3, 0.2, 1000, 1000)[1])
    noisy = [(_seeded("a", s, h)["final"], _seeded("b", s, 0.20)["final"]) for s, h in enumerate((0.10, 0.30, 0.50))]
    d, se = adv.difference(noisy, adv.HITS, 1000)
    assert d == pytest.approx(0.10) and se == pytest.approx(0.2 / 3**0.5)  # seed std 0.2 dominates
    one = [
        (
            _seeded("a", 0, -4.0, loglik=-4.0, loglik_se=0.3)["final"],
            _seeded("b", 0, 0.2, loglik=-5.0, loglik_se=0.4)["final"],
        )
    ]
    assert adv.difference(one, adv.LOGLIK, 1000) == (pytest.approx(1.0), pytest.approx(0.5))


def _three_seeds(adv, name_hits):
    """A part with seeds 0-2: the adversarial head, uniform and frequency with the given hits@1 per seed."""
    runs = [_seeded(m, s, h) for m, hits in name_hits.items() for s, h in enumerate(hits)]
    return _part(1000, *runs)


def _verdict(adv, merged, claim):
    row = next(r for r in adv.verdict_rows(merged) if claim in r)
    return row.rsplit(" | ", 1)[1].rstrip(" |")


def test_multi_seed_verdicts_reach_every_outcome(adv):
    hits_uniform = "hits@1 of the first label) than neg. sampling, uniform"
    win = _three_seeds(adv, {adv.ADVERSARIAL: (0.30, 0.31, 0.29), adv.UNIFORM: (0.20, 0.21, 0.19)})
    tie = _three_seeds(adv, {adv.ADVERSARIAL: (0.10, 0.30, 0.50), adv.UNIFORM: (0.20, 0.21, 0.19)})  # +0.1, se 0.12
    loss = _three_seeds(adv, {adv.ADVERSARIAL: (0.20, 0.21, 0.19), adv.UNIFORM: (0.30, 0.31, 0.29)})

    def merged(**parts):
        return {"datasets": parts, "speedups_P@1": adv.merge_speedups(parts)}

    assert _verdict(adv, merged(a=win, b=win), hits_uniform) == "reproduced"
    assert _verdict(adv, merged(a=win, b=tie), hits_uniform) == "partially"
    assert _verdict(adv, merged(a=tie), hits_uniform) == "not reproduced (no difference beyond 2 SE)"
    assert _verdict(adv, merged(a=win, b=loss), hits_uniform).startswith("contradicted")
    row = next(r for r in adv.verdict_rows(merged(a=win)) if hits_uniform in r)
    assert (
        "a 30.0 (29.0 to 31.0) vs 20.0 (19.0 to 21.0) % (+10.0 +- 1.9, 3 seeds)" in row
    )  # binomial SE above the seeds
    # a one-seed set keeps the one-seed rule and wording beside a three-seed set
    one = _part(1000, _seeded(adv.ADVERSARIAL, 0, 0.30), _seeded(adv.UNIFORM, 0, 0.20))
    row = next(r for r in adv.verdict_rows(merged(a=win, one=one)) if hits_uniform in r)
    assert "one 30.0 vs 20.0 % (+10.0 +- 1.9)" in row and row.endswith("| reproduced |")


def test_log_likelihood_rows_are_judged_where_the_runs_kept_the_standard_error(adv):
    claim = "log-likelihood of the first label above neg. sampling, uniform"
    higher = _part(1000, _seeded(adv.ADVERSARIAL, 0, 0.3, loglik=-4.0), _seeded(adv.UNIFORM, 0, 0.2, loglik=-5.0))
    lower = _part(1000, _seeded(adv.ADVERSARIAL, 0, 0.3, loglik=-5.5), _seeded(adv.UNIFORM, 0, 0.2, loglik=-5.0))
    close = _part(1000, _seeded(adv.ADVERSARIAL, 0, 0.3, loglik=-5.0), _seeded(adv.UNIFORM, 0, 0.2, loglik=-5.1))
    old = _part(1000, _run(adv.ADVERSARIAL, [(60, 0.3)], 0.3, 60.0), _run(adv.UNIFORM, [(60, 0.2)], 0.2, 60.0))

    def merged(**parts):
        return {"datasets": parts, "speedups_P@1": adv.merge_speedups(parts)}

    assert _verdict(adv, merged(a=higher), claim) == "reproduced"
    assert _verdict(adv, merged(a=higher, b=lower), claim).startswith("contradicted")
    assert _verdict(adv, merged(a=close), claim) == "not reproduced (no difference beyond 2 SE)"  # 0.1 < 2 x 0.07
    assert _verdict(adv, merged(a=old), claim).startswith("untested (no standard error")
    row = next(r for r in adv.verdict_rows(merged(a=higher, old=old)) if claim in r)
    assert (
        row.endswith("| reproduced; judged on a (the other sets' runs kept no SE) |")
        and "old -1.00 vs -1.00 (no SE)" in row
    )


def test_speed_rows_use_the_median_ratio_over_seeds(adv):
    def part(adv_times):
        runs = []
        for s, t in enumerate(adv_times):
            runs += [
                _seeded(adv.UNIFORM, s, 0.2, curve=[(30, 0.1), (60, 0.2)]),
                _seeded(adv.ADVERSARIAL, s, 0.3, curve=[(t, 0.2), (60, 0.3)]),
            ]
        return _part(1000, *runs)

    fast, mixed = part([3, 5, 6]), part([3, 6, 60])  # ratios 20, 12, 10 / 20, 10, 1
    merged = {"datasets": {"f": fast, "m": mixed}, "speedups_P@1": adv.merge_speedups({"f": fast, "m": mixed})}
    row = next(r for r in adv.verdict_rows(merged) if "faster than neg. sampling, uniform (" in r)
    assert "f median 12.0x (seeds: 20.0x, 12.0x, 10.0x)" in row and "m median 10.0x" in row
    assert row.endswith("| reproduced |")


def test_a_method_with_tree_overrides_fits_and_reuses_its_own_tree(adv):
    import torch

    base = {"split": "median", "reg": 0.1, "reg_scaling": "constant"}
    assert adv.method_tree_params(adv.ADVERSARIAL, base) == base
    assert adv.method_tree_params("ns-tree-nodesize", base) == {
        "split": "median",
        "reg": 0.03,
        "reg_scaling": "node_size",
    }
    assert "ns-tree-nodesize" in adv.DIAGNOSTICS and "ns-tree-nodesize" in adv.TITLES
    data = adv.load_set("synthetic-quick", 32, 0)
    cache: dict = {}
    plain = adv.train_curve(adv.ADVERSARIAL, data, 0.5, 100, 0, base, cache, 200, (1.0,))
    scaled = adv.train_curve("ns-tree-nodesize", data, 0.5, 100, 0, base, cache, 200, (1.0,))
    assert len(cache) == 2  # one fit per tree setting
    again = adv.train_curve(adv.ADVERSARIAL, data, 0.5, 100, 1, base, cache, 200, (1.0,))
    assert len(cache) == 2 and again["prepare_seconds"] == plain["prepare_seconds"]  # the plain fit, reused
    assert scaled["tree_params"]["reg_scaling"] == "node_size" and "tree_params" not in plain
    fits = [fit["state"] for fit in cache.values()]
    shared = [k for k, v in fits[0].items() if torch.is_tensor(v) and v.dtype.is_floating_point]
    assert any(not torch.equal(fits[0][k], fits[1][k]) for k in shared)  # the penalty changed the fitted tree


def test_a_seed_run_for_one_method_only_is_named_with_it_and_its_targets_are_not_judged(adv):
    # the full softmax alone at seeds 1 and 2 (wordnet-hypernyms' single-label long runs in stop 60): the
    # comparisons have seed 0 only, and the page must not say seeds 0, 1, 2 for them
    part = _part(
        1000,
        _seeded(adv.ADVERSARIAL, 0, 0.30, curve=[(10, 0.2), (60, 0.30)]),
        _seeded(adv.UNIFORM, 0, 0.20, curve=[(60, 0.20)]),
        *(_seeded(adv.SOFTMAX, s, 0.35, curve=[(60, 0.35)]) for s in (0, 1, 2)),
    )
    merged = {"speedups_P@1": adv.merge_speedups({"a": part}), "datasets": {"a": part}}
    assert adv.seeds_text(merged, "a") == f"0 ({adv.SOFTMAX} at 0, 1, 2)"
    by_seed = {str(seed): adv.targets(sub, []) for seed, sub in adv.seed_parts(part).items()}
    lines = adv._targets_lines(by_seed)
    assert lines[0] == "Targets per seed:" and "ends above uniform: True" in lines[2]
    assert lines[3:] == [
        f"- seed {s}: not judged (no run of the adversarial head beside the softmax or uniform at this seed)."
        for s in (1, 2)
    ]
    # every method at the same seeds: the plain list
    same = _part(1000, *(_seeded(m, s, 0.3) for m in (adv.ADVERSARIAL, adv.UNIFORM) for s in (0, 1)))
    assert adv.seeds_text({"speedups_P@1": adv.merge_speedups({"b": same}), "datasets": {"b": same}}, "b") == "0, 1"
