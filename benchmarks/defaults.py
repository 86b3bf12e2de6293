"""The library's defaults against the peers' (issue 20): ``XCClassifier()`` with no setting vs each peer's own.

One command runs, for each chosen data set (default: the 16 of :data:`peers.DATASETS`), through the peers
harness (``benchmarks/peers.py``: the same exports, workers, caps and metrics):

* every peer with its own defaults (:data:`peers.PEER_SETTINGS`) on each of the set's inputs
  (:data:`peers.INPUTS`: TF-IDF + L2 rows and the binary features as shipped for a bag of words; the features
  as loaded and standardised for the dense sets; the built text tasks as loaded), each peer judged on its
  better input (:func:`peers.best_input_rows`);
* ``sparsexc-default``: ``XCClassifier()`` with no model setting, on the features as loaded (the library
  chooses its own preprocessing, ``preprocess="auto"``, and records in the row what it chose);
* the trivial ranking: every test row gets the training set's most frequent labels, most frequent first.

Per set it reports the best peer (on its better input) with its P@1 and training CPU seconds, the default's
P@1, P@5, PSP@5 and CPU seconds, the CPU ratio (default / best peer), the trivial P@1, and the targets of
issue 20 (:func:`set_summary`):

* P@1 within :data:`P1_TOLERANCE_POINTS` point of the best peer on every set, and ahead of it (strictly) on
  at least :data:`AHEAD_SHARE` of the sets;
* training CPU seconds at most :data:`CPU_RATIO_MAX` x the best peer's on every set;
* no set where the default is at the trivial P@1 (above it by more than :data:`TRIVIAL_MARGIN_POINTS`).

Writes ``<out>/defaults.json`` and ``defaults.md`` (the summary lines "ahead on X/N", "within 0.5 on Y/N",
"CPU <= 2x on Z/N", then a table per set), after every pair; ``--merge`` also merges the run's rows into
``<out>/peers.json`` / ``peers.md`` (the peers table), so both come from one run.

Usage::

    python benchmarks/defaults.py --peers-python /path/to/.venv-peers/bin/python            # all 16 sets
    python benchmarks/defaults.py --datasets medical,enron,yeast --out /tmp/defaults
    python benchmarks/defaults.py --datasets flags --systems default --out /tmp/d               # no peers venv
    python benchmarks/defaults.py --merge --out benchmarks/results                     # + peers.json / peers.md
    python benchmarks/defaults.py --quick --systems default --out /tmp/d          # flags, the default only
    python benchmarks/defaults.py --datasets flags,emotions --holdout-seeds 123,124,125,126,127 --out /tmp/h
        # the same systems on 20% hold-outs of the TRAINING rows (never the test split): defaults_holdout.md,
        # the default's paired P@1 difference to the best peer per set (is a test-split gap systematic?)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from _harness import (
    RESULTS,
    add_common_flags,
    command_line,
    dataset_list,
    environment,
    page_header,
    read_json,
    use_shared_datasets,
    utc_now,
    write_json,
    write_text,
)
from peers import (
    DATASETS,
    DEFAULT_SYSTEM,
    PEERS,
    _format,
    add_run_flags,
    base_name,
    best_input_rows,
    check_datasets,
    check_run_flags,
    export_input,
    inputs,
    make_report,
    missing_peers_python,
    peer_versions,
    run_pairs,
    write_outputs,
)
from peers_worker import load_csr

NOTES = RESULTS / "defaults_notes.md"  # hand-written reading of the last run, included in defaults.md
P1_TOLERANCE_POINTS = 0.5  # the default's P@1 at least the best peer's minus this, on every set
AHEAD_SHARE = 2 / 3  # ... and strictly ahead of it on at least this share of the sets
CPU_RATIO_MAX = 2.0  # training CPU seconds at most this x the best peer's, on every set
TRIVIAL_MARGIN_POINTS = 0.5  # "at the trivial P@1": not more than this above the most-frequent-labels ranking
QUICK_DATASETS: tuple[str, ...] = ("flags",)  # the smallest set (129 training rows)
SYSTEM_GROUPS: tuple[str, ...] = ("all", "default", "peers")
K = 5


# -- arguments -----------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=None, help=f"comma-separated from {', '.join(DATASETS)} (default: all)")
    parser.add_argument("--systems", default="all", choices=SYSTEM_GROUPS,
                        help="'all' (default): the peers and sparsexc-default; 'default': sparsexc-default only "
                             "(no peers venv needed); 'peers': the peers only")  # fmt: skip
    add_common_flags(parser, quick=f"{', '.join(QUICK_DATASETS)} only (unless --datasets), the peers' quick settings")
    add_run_flags(parser)
    add_common_flags(parser, out=True)
    parser.add_argument("--merge", action="store_true",
                        help="also merge this run's rows into <out>/peers.json and peers.md (the peers table)")  # fmt: skip
    parser.add_argument("--work-dir", type=Path, default=None, help="exported data and predictions (default: temp)")
    parser.add_argument("--holdout-seeds", default=None,
                        help="comma-separated seeds: instead of the test split, rank 20%% of each set's TRAINING "
                             "rows held out by each seed (the test split is never read) -> defaults_holdout.json "
                             "and .md, paired differences over the seeds")  # fmt: skip
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parsed and checked arguments: data sets of :data:`peers.DATASETS` (or generated ones) without an input
    suffix (the inputs are this script's choice)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    datasets = dataset_list(args.datasets, QUICK_DATASETS if args.quick else DATASETS)
    problem = check_datasets(datasets) or check_run_flags(args)
    if not problem and any(base_name(d) != d for d in datasets):
        problem = "--datasets: give plain names (the inputs of each set are peers.INPUTS)"
    if problem:
        parser.error(problem)
    args.datasets = datasets
    try:
        args.holdout_seeds = [int(v) for v in args.holdout_seeds.split(",")] if args.holdout_seeds else []
    except ValueError:
        parser.error(f"--holdout-seeds: comma-separated integers, not {args.holdout_seeds!r}")
    if args.holdout_seeds and args.merge:
        parser.error("--holdout-seeds ranks hold-outs of the training rows: nothing to merge into the peers table")
    return args


def plan(datasets: list[str], systems: str) -> list[tuple[str, str]]:
    """The ``(input, system)`` pairs of a run: each peer on each input of each set, then ``sparsexc-default``
    (which reads the features as loaded) once per set."""
    pairs: list[tuple[str, str]] = []
    for d in datasets:
        if systems in ("all", "peers"):
            pairs += [(name, peer) for name in inputs(d) for peer in PEERS]
        if systems in ("all", "default"):
            pairs.append((d, DEFAULT_SYSTEM))
    return pairs


# -- the targets ---------------------------------------------------------------------------------------------
def trivial_metrics(Y_train: sp.csr_matrix, Y_test: sp.csr_matrix) -> dict[str, float]:
    """P@1 and P@5 (fractions) of ranking, for every test row, the labels by their training frequency (most
    frequent first, ties to the lower id): what a model that learned nothing from the features reaches."""
    from sparsexc.metrics import evaluate

    counts = np.asarray(Y_train.sum(axis=0)).ravel()
    top = np.lexsort((np.arange(len(counts)), -counts))[: min(K, len(counts))]
    indices = np.tile(top.astype(np.int64), (Y_test.shape[0], 1))
    scores = np.tile(counts[top].astype(np.float32), (Y_test.shape[0], 1))
    values = evaluate(Y_test, (indices, scores), ks=(1, 5))
    return {"P@1": float(values["P@1"]), "P@5": float(values["P@5"])}


def _points(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


def set_summary(dataset: str, rows: list[dict[str, Any]], trivial: dict[str, float] | None) -> dict[str, Any]:
    """The comparison for one set from its rows (every input's) and its trivial metrics (fractions).

    Best peer = the finished peer row with the highest P@1, each peer on its better input
    (:func:`peers.best_input_rows`); of peers tied at that P@1, the one of least training CPU (the strictest
    CPU target: that P@1 is to be had at that cost). With ``d`` and ``p`` the P@1 of the default and of that peer
    in points: ``within`` = d >= p - :data:`P1_TOLERANCE_POINTS`; ``ahead`` = d > p; ``cpu_ok`` = CPU ratio (default's
    training CPU seconds / the best peer's) <= :data:`CPU_RATIO_MAX`; ``above_trivial`` = d > trivial P@1 +
    :data:`TRIVIAL_MARGIN_POINTS`. A target that cannot be judged (a row missing or failed) is None.
    """
    peers = [r for r in best_input_rows(rows, dataset, min_inputs=1) if r["family"] == "peer"]
    best = min(peers, key=lambda r: (-r["metrics"]["P@1"], r.get("train_cpu_seconds") or 0.0)) if peers else None
    default = next((r for r in rows if r["dataset"] == dataset and r["system"] == DEFAULT_SYSTEM), None)
    ok = default is not None and default.get("status") == "ok"
    m = default["metrics"] if ok else {}
    out: dict[str, Any] = {
        "dataset": dataset,
        "best_peer": best["system"] if best else None,
        "best_peer_input": best["dataset"] if best else None,
        "peer_P@1": _points(best["metrics"]["P@1"]) if best else None,
        "peer_cpu_s": best.get("train_cpu_seconds") if best else None,
        "default_status": default.get("status") if default else "not run",
        "default_error": default.get("error") if default and not ok else None,
        "default_P@1": _points(m.get("P@1")),
        "default_P@5": _points(m.get("P@5")),
        "default_PSP@5": _points(m.get("PSP@5")),
        "default_cpu_s": default.get("train_cpu_seconds") if ok else None,
        "default_chosen": default.get("chosen") if ok else None,
        "trivial_P@1": _points(trivial["P@1"]) if trivial else None,
        "trivial_P@5": _points(trivial["P@5"]) if trivial else None,
        "gap_points": None,
        "cpu_ratio": None,
        "within": None,
        "ahead": None,
        "cpu_ok": None,
        "above_trivial": None,
    }
    if ok and best:
        gap = round(100 * (m["P@1"] - best["metrics"]["P@1"]), 6)  # rounded: 0.595 - 0.6 is not -0.5000000004
        out.update(gap_points=round(gap, 2), within=gap >= -P1_TOLERANCE_POINTS, ahead=gap > 0)
        cpu, peer_cpu = default.get("train_cpu_seconds"), best.get("train_cpu_seconds")
        if cpu is not None and peer_cpu:
            out["cpu_ratio"] = round(cpu / peer_cpu, 2)
            out["cpu_ok"] = cpu <= CPU_RATIO_MAX * peer_cpu
    if ok and trivial:
        out["above_trivial"] = round(100 * (m["P@1"] - trivial["P@1"]), 6) > TRIVIAL_MARGIN_POINTS
    return out


def overall(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts over the sets and whether each target of issue 20 is met (a set that cannot be judged counts as
    missed: the targets hold on *every* set)."""
    n = len(summaries)

    def count(key: str) -> int:
        return sum(1 for s in summaries if s[key])

    ahead, within, cpu, above = count("ahead"), count("within"), count("cpu_ok"), count("above_trivial")
    return {"sets": n, "ahead": ahead, "within": within, "cpu_ok": cpu, "above_trivial": above,
            "p1_target_met": n > 0 and within == n and ahead >= AHEAD_SHARE * n,
            "cpu_target_met": n > 0 and cpu == n, "trivial_target_met": n > 0 and above == n}  # fmt: skip


# -- the page ------------------------------------------------------------------------------------------------
def _cell(value: Any, fmt: str = "{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def _seconds(value: float | None) -> str:
    return "–" if value is None else _format("train_cpu_seconds", value)


def _yes(value: bool | None) -> str:
    return "–" if value is None else ("yes" if value else "**no**")


def summary_lines(total: dict[str, Any]) -> list[str]:
    """The summary lines of the page (counts over the sets, targets met or missed)."""
    n = total["sets"]

    def met(ok: bool) -> str:
        return "met" if ok else "**missed**"

    return [
        f"- ahead of the best peer on {total['ahead']}/{n}, within {P1_TOLERANCE_POINTS:g} point of P@1 on "
        f"{total['within']}/{n} (target: within on every set and ahead on at least {AHEAD_SHARE:.0%}): "
        f"{met(total['p1_target_met'])}",
        f"- CPU <= {CPU_RATIO_MAX:g}x the best peer's on {total['cpu_ok']}/{n}: {met(total['cpu_target_met'])}",
        f"- above the trivial P@1 (by more than {TRIVIAL_MARGIN_POINTS:g} point) on {total['above_trivial']}/{n}: "
        f"{met(total['trivial_target_met'])}",
    ]


def set_table(dataset: str, rows: list[dict[str, Any]]) -> str:
    """Every row of one set (each peer on each input, the default) with P@1, P@5, PSP@5 and training CPU s."""
    lines = ["| system | input | P@1 | P@5 | PSP@5 | train CPU s | train s |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in (r for r in rows if base_name(r["dataset"]) == dataset):
        where = r.get("input") or r["dataset"]
        if r.get("status") != "ok":
            lines.append(f"| {r['system']} | {where} | {r.get('error', r.get('status'))} | | | | |")
            continue
        values = [_format(c, r["metrics"][c]) for c in ("P@1", "P@5", "PSP@5")]
        times = [_format(c, r[c]) if r.get(c) is not None else "–" for c in ("train_cpu_seconds", "train_seconds")]
        lines.append(f"| {r['system']} | {where} | " + " | ".join(values + times) + " |")
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    """The results page: how it was measured, the summary lines, the per-set summary table, a table per set."""
    sets, rows, total = report["sets"], report["rows"], report["summary"]
    head = page_header("sparsexc's defaults vs the peers' (issue 20)", report["machine"], report["date"],
                       report["command"])  # fmt: skip
    versions = ", ".join(f"{k} {v}" for k, v in report.get("peer_versions", {}).items() if v)
    peer_text = f" Peers: {versions}." if versions else ""
    lines = [
        head,
        "",
        f"`{DEFAULT_SYSTEM}` = `XCClassifier()` with no model setting (verbose=0 only), on the features as loaded "
        "(the library chooses its preprocessing; what it chose is in the last column and the JSON). Each peer "
        "runs with its own defaults on each input of the set (`benchmarks/peers.py`: `PEER_SETTINGS`, `INPUTS`) "
        "and is judged on its better input; best peer = the highest P@1 among them (ties: the one of least "
        "training CPU). Trivial = every test row "
        "ranked by the training label frequencies. Metrics in %; CPU s = training CPU seconds of all the "
        f"worker's threads ({report['threads']} threads each); ratio = default / best peer. Targets: P@1 >= best "
        f"peer - {P1_TOLERANCE_POINTS:g} on every set and ahead on at least {AHEAD_SHARE:.0%} of them; CPU <= "
        f"{CPU_RATIO_MAX:g}x on every set; above the trivial P@1 (by more than {TRIVIAL_MARGIN_POINTS:g}) on every "
        "set." + peer_text,
        "",
        "## Summary",
        "",
        *summary_lines(total),
        "",
        "| set | best peer (input) | peer P@1 | peer CPU s | default P@1 | P@5 | PSP@5 | CPU s | CPU ratio | "
        "trivial P@1 | within | ahead | CPU <= 2x | above trivial | default chose |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|---|",
    ]
    for s in sets:
        peer = f"{s['best_peer']} ({s['best_peer_input']})" if s["best_peer"] else "–"
        if s["default_error"]:
            peer += f"; default: {s['default_error']}"
        chosen = s.get("default_chosen") or {}
        model = chosen.get("model") or {}
        family = f"{model['family']} ({model.get('rule') or 'given'})" if model else None
        choice = "; ".join(str(v) for v in (family, chosen.get("preprocess")) if v is not None)
        lines.append(
            f"| {s['dataset']} | {peer} | {_cell(s['peer_P@1'])} | {_seconds(s['peer_cpu_s'])} | "
            f"{_cell(s['default_P@1'])} | {_cell(s['default_P@5'])} | {_cell(s['default_PSP@5'])} | "
            f"{_seconds(s['default_cpu_s'])} | {_cell(s['cpu_ratio'])} | {_cell(s['trivial_P@1'])} | "
            f"{_yes(s['within'])} | {_yes(s['ahead'])} | {_yes(s['cpu_ok'])} | {_yes(s['above_trivial'])} | "
            f"{choice or '–'} |"
        )
    if NOTES.is_file():  # the hand-written reading of the last run
        lines += ["", NOTES.read_text().strip()]
    info = report.get("datasets", {})
    for s in sets:
        d = s["dataset"]
        shape = info.get(d)
        extra = (f" — {shape['n_train']} train / {shape['n_test']} test rows, {shape['n_features']} features, "
                 f"{shape['n_labels']} labels") if shape else ""  # fmt: skip
        lines += ["", f"## {d}{extra}", "", set_table(d, rows)]
        if s["trivial_P@1"] is not None:
            lines += [
                "",
                f"Trivial (training label frequencies): P@1 {s['trivial_P@1']:.2f}, P@5 {s['trivial_P@5']:.2f}.",
            ]
    return "\n".join(lines) + "\n"


# -- running -------------------------------------------------------------------------------------------------
def build_report(
    args: argparse.Namespace, command: str, rows: list[dict[str, Any]], info: dict[str, Any],
    trivial: dict[str, dict[str, float]], versions: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The ``defaults.json`` record: the rows, the per-set summaries and the counts."""
    sets = [set_summary(d, rows, trivial.get(d)) for d in args.datasets]
    return {"benchmark": "defaults", "date": utc_now(), "command": command, "machine": environment(),
            "peer_versions": versions, "threads": args.threads, "timeout_s": args.timeout, "quick": args.quick,
            "targets": {"p1_tolerance_points": P1_TOLERANCE_POINTS, "ahead_share": AHEAD_SHARE,
                        "cpu_ratio_max": CPU_RATIO_MAX, "trivial_margin_points": TRIVIAL_MARGIN_POINTS},
            "datasets": {d: info[d] for d in args.datasets if d in info}, "trivial": trivial,
            "sets": sets, "summary": overall(sets), "rows": rows}  # fmt: skip


# -- hold-outs of the training rows (--holdout-seeds) ---------------------------------------------------------
def holdout_summary(dataset: str, rows: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """The comparison for one set over hold-out seeds: every peer (on each input) and the default with P@1 on
    every seed; best peer = the (peer, input) of highest mean P@1 over the seeds; the default's paired
    difference to it per seed, its mean and standard error (sd / sqrt(k), ddof 1), on how many seeds the default
    is ahead, and the mean training CPU s of both. None where a row of some seed is missing or failed."""

    def p1(system: str, name: str) -> list[float] | None:
        found = {r.get("holdout_seed"): r for r in rows if r["system"] == system and r["dataset"] == name}
        if any(s not in found or found[s].get("status") != "ok" for s in seeds):
            return None
        return [100 * found[s]["metrics"]["P@1"] for s in seeds]

    def cpu(system: str, name: str) -> float | None:
        values = [r.get("train_cpu_seconds") for r in rows if r["system"] == system and r["dataset"] == name]
        return float(np.mean(values)) if values and None not in values else None

    candidates = {(peer, name): p1(peer, name) for peer in PEERS for name in inputs(dataset)}
    scored = {key: v for key, v in candidates.items() if v is not None}
    default = p1(DEFAULT_SYSTEM, dataset)
    out: dict[str, Any] = {"dataset": dataset, "seeds": seeds, "default_P@1": default, "best_peer": None}
    if not scored or default is None:
        return out
    (peer, name), best = max(scored.items(), key=lambda kv: float(np.mean(kv[1])))
    diff = np.array(default) - np.array(best)
    se = float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None
    out.update({"best_peer": peer, "best_peer_input": name, "peer_P@1": best,
                "default_mean": round(float(np.mean(default)), 2), "peer_mean": round(float(np.mean(best)), 2),
                "difference": round(float(diff.mean()), 2), "difference_se": None if se is None else round(se, 2),
                "seeds_ahead": int((diff > 0).sum()), "default_cpu_s": cpu(DEFAULT_SYSTEM, dataset),
                "peer_cpu_s": cpu(peer, name)})  # fmt: skip
    return out


def holdout_markdown(report: dict[str, Any]) -> str:
    """The hold-out page: one row per set (:func:`holdout_summary`)."""
    lines = [
        page_header("sparsexc's defaults vs the peers' on hold-outs of the training rows (issue 20)",
                    report["machine"], report["date"], report["command"]), "",
        f"Seeds {', '.join(map(str, report['seeds']))}: per seed, 20% of each set's TRAINING rows held out "
        "(`peers.holdout_split`, the draw of `benchmarks/small_holdout.py`); every system fits the other 80% "
        "exactly as `benchmarks/defaults.py` runs it on the test split (same inputs, settings and workers) and "
        "ranks the held-out rows. The test splits are never read. Best peer = the peer and input of highest mean "
        "P@1 over the seeds; difference = default - best peer, paired by seed (mean +- standard error); CPU s = "
        "mean training CPU seconds over the seeds.", "",
        "| set | best peer (input) | peer P@1 | default P@1 | difference (SE) | seeds ahead | default CPU s | "
        "peer CPU s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for s in report["sets"]:
        if s["best_peer"] is None:
            lines.append(f"| {s['dataset']} | (a row missing or failed) | | | | | | |")
            continue
        se = "" if s["difference_se"] is None else f" ({s['difference_se']:.2f})"
        lines.append(
            f"| {s['dataset']} | {s['best_peer']} ({s['best_peer_input']}) | {s['peer_mean']:.2f} | "
            f"{s['default_mean']:.2f} | {s['difference']:+.2f}{se} | {s['seeds_ahead']}/{len(s['seeds'])} | "
            f"{_format('train_seconds', s['default_cpu_s']) if s['default_cpu_s'] is not None else ''} | "
            f"{_format('train_seconds', s['peer_cpu_s']) if s['peer_cpu_s'] is not None else ''} |"
        )
    return "\n".join(lines) + "\n"


def holdout_main(args: argparse.Namespace, command: str, work: Path, versions: dict[str, Any]) -> int:
    """``--holdout-seeds``: the plan of every seed, then ``defaults_holdout.json`` / ``.md`` (after every pair)."""
    info: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []

    def write(seed_rows: list[dict[str, Any]]) -> None:
        everything = rows + seed_rows
        report = {"benchmark": "defaults-holdout", "date": utc_now(), "command": command, "machine": environment(),
                  "peer_versions": versions, "threads": args.threads, "seeds": args.holdout_seeds,
                  "sets": [holdout_summary(d, everything, args.holdout_seeds) for d in args.datasets],
                  "rows": everything}  # fmt: skip
        args.out.mkdir(parents=True, exist_ok=True)
        write_json(args.out / "defaults_holdout.json", report)
        write_text(args.out / "defaults_holdout.md", holdout_markdown(report))

    for seed in args.holdout_seeds:
        args.holdout_seed = seed
        rows += run_pairs(plan(args.datasets, args.systems), args, work, info, write)
    write([])
    return 0 if all(r.get("status") == "ok" for r in rows) else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    use_shared_datasets()
    missing = missing_peers_python(args.peers_python) if args.systems != "default" else None
    if missing:
        build_parser().error(missing + " (or run --systems default)")
    command = command_line(__file__, argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="sparsexc-defaults-"))
    versions = peer_versions(args.peers_python) if args.systems != "default" else {}
    if args.holdout_seeds:
        code = holdout_main(args, command, work, versions)
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
        return code
    info: dict[str, Any] = {}
    trivial: dict[str, dict[str, float]] = {}
    for d in args.datasets:  # the trivial ranking needs only the labels, the same for every input
        folder = export_input(d, work, info)
        trivial[d] = trivial_metrics(load_csr(folder / "train_Y.npz"), load_csr(folder / "test_Y.npz"))

    def write(rows: list[dict[str, Any]]) -> dict[str, Any]:
        report = build_report(args, command, rows, info, trivial, versions)
        args.out.mkdir(parents=True, exist_ok=True)
        write_json(args.out / "defaults.json", report)
        write_text(args.out / "defaults.md", markdown(report))
        return report

    rows = run_pairs(plan(args.datasets, args.systems), args, work, info, write)
    report = write(rows)
    if args.merge:
        path = args.out / "peers.json"
        previous = read_json(path) if path.is_file() else {}
        write_outputs(make_report(previous, rows, args, command, {**previous.get("datasets", {}), **info}, versions),
                      args.out)  # fmt: skip
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(summary_lines(report["summary"])))
    return 0 if all(r.get("status") == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
