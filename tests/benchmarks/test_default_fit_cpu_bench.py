"""benchmarks/default_fit_cpu.py: runs are measured interleaved, and the page has one median column per run,
the ratio of the last run to the first and the C each chose."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_runs_are_interleaved_and_summarised(load_benchmark, monkeypatch):
    bench = load_benchmark("default_fit_cpu")
    calls = []
    cpu = {"a": iter([3.0, 1.0, 2.0]), "b": iter([1.0, 0.5, 5.0])}

    def fake(dataset, src):
        calls.append((dataset, src.name))
        return {"cpu": next(cpu[src.name]), "C": 0.3}

    monkeypatch.setattr(bench, "fit_once", fake)
    found = bench.measure(["flags"], 3, {"first": Path("a"), "second": Path("b")})
    assert calls == [("flags", "a"), ("flags", "b")] * 3
    assert found["first"]["flags"]["median_cpu"] == 2.0 and found["second"]["flags"]["median_cpu"] == 1.0
    page = _page(bench, found, 3, "python benchmarks/default_fit_cpu.py")
    assert "| flags | 2.00 | 1.00 | 0.50 | 0.3 / 0.3 |" in page
    runs = {label: {"src": f"/{label}", "sets": sets} for label, sets in found.items()}
    noted = {"runs": runs, "repeats": 3, "environment": {}, "date": "today", "command": "c", "note": "b: a variant."}
    assert "`second` imports `/second`. b: a variant." in bench.report(noted)


def test_a_run_needs_a_label_and_a_folder(load_benchmark):
    bench = load_benchmark("default_fit_cpu")
    with pytest.raises(SystemExit):
        bench.main(["--run", "nolabel"])


def test_holdout_fits_are_measured_per_seed_and_summarised(load_benchmark, monkeypatch):
    bench = load_benchmark("default_fit_cpu")
    calls = []

    def fake(dataset, src, seed=None):
        calls.append((src.name, seed))
        if seed is None:
            return {"cpu": 1.0, "C": 0.3, "cv": {}}
        C = 0.3 if src.name == "a" or seed == bench.FIRST_SEED else 1.0
        return {"cpu": 0.5, "C": C, "cv": {}, "P@1": 50.0 + seed - bench.FIRST_SEED, "P@5": 20.0}

    monkeypatch.setattr(bench, "fit_once", fake)
    found = bench.measure(["flags"], 1, {"first": Path("a"), "second": Path("b")}, holdout_seeds=2)
    seeds = [bench.FIRST_SEED, bench.FIRST_SEED + 1]
    assert calls == [("a", None), ("b", None)] + [(src, seed) for seed in seeds for src in ("a", "b")]
    assert [r["seed"] for r in found["second"]["flags"]["holdout"]] == seeds
    page = _page(bench, found, 1, "python benchmarks/default_fit_cpu.py --holdout-seeds 2")
    # means over the seeds: CPU, P@1, P@5 per run; the second run chose another C on one seed of two
    assert "| flags | 0.50 | 0.50 | 50.50 | 50.50 | 20.00 | 20.00 | 1/2 |" in page


def test_holdout_set_f1s_join_the_page_when_every_record_has_them(load_benchmark, monkeypatch):
    bench = load_benchmark("default_fit_cpu")

    def fake(dataset, src, seed=None):
        if seed is None:
            return {"cpu": 1.0, "C": 0.3, "cv": {}}
        f1 = 40.0 if src.name == "a" else 44.0
        return {"cpu": 0.5, "C": 0.3, "cv": {}, "P@1": 50.0, "P@5": 20.0, "micro-F1": f1, "example-F1": f1 + 2}

    monkeypatch.setattr(bench, "fit_once", fake)
    found = bench.measure(["flags"], 1, {"first": Path("a"), "second": Path("b")}, holdout_seeds=2)
    page = _page(bench, found, 1, "python benchmarks/default_fit_cpu.py --holdout-seeds 2")
    assert "first micro-F1 | second micro-F1 | first example-F1 | second example-F1 | C differs |" in page
    assert "| flags | 0.50 | 0.50 | 50.00 | 50.00 | 20.00 | 20.00 | 40.00 | 44.00 | 42.00 | 46.00 | 0/2 |" in page


def _page(bench, found, repeats, command):
    """The results page of ``measure``'s output, as the script renders it."""
    runs = {label: {"src": f"/{label}", "sets": sets} for label, sets in found.items()}
    return bench.report({"runs": runs, "repeats": repeats, "environment": {}, "date": "today", "command": command})
