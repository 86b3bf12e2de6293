"""Training CPU of ``XCClassifier()`` (the default) per set (the small sets unless ``--datasets``), one fresh process
per fit (issue 20).

For each set and repeat a child process loads the set's training split, imports the estimator and the label tree
(``sparsexc.tree``: numba; the package imports its modules lazily, so naming them is what imports them), then times
``XCClassifier(verbose=0).fit(X, Y)`` with ``time.process_time()`` (all threads), as ``benchmarks/defaults.py``
does: numba's first call in the process, the cross-validation of C, the fit, the threshold's tuning and the
refit are all inside. The child also reports the C the tree chose. ``--run LABEL=SRC`` (repeatable) names a
``src`` folder to import (default: this checkout's, labelled ``this``); several runs are measured interleaved
(set by set, repeat by repeat, one run after the other), so a busy machine slows them alike. The page shows each
run's median CPU s per set and the ratio of the last run to the first::

    SPARSEXC_DATA=<shared>/datasets python benchmarks/default_fit_cpu.py --run before=/tmp/base/src --run after=src

writes ``--out/default_fit_cpu.json`` and ``.md`` (``--name`` another base name).

``--holdout-seeds S`` adds, per set and run, S fits on a seeded 80% of the training rows (seeds 123, 124, ...:
the hold-outs of ``benchmarks/small_holdout.py``), each in a fresh process, that rank the other 20%: hold-out
P@1 and P@5 (``sparsexc.metrics.evaluate``), micro- and example-F1 of ``predict``'s sets and the set threshold
tuned, beside the fit's CPU s, the C chosen and the cross-validation's scores of every C tried. The test splits are never read. The page adds per set the runs' mean hold-out fit CPU,
mean P@1 and P@5 over the seeds, and on how many seeds the last run chose another C than the first::

    SPARSEXC_DATA=<shared>/datasets python benchmarks/default_fit_cpu.py --run before=/tmp/base/src \
        --run after=src --repeats 2 --holdout-seeds 5 --name default_fit_cpu_cp32
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from _harness import (
    add_common_flags,
    add_src_runs,
    command_line,
    dataset_list,
    environment,
    page_header,
    src_runs,
    use_shared_datasets,
    utc_now,
    write_results,
)

SETS = ("flags", "emotions", "birds", "cal500", "yeast", "scene", "medical", "enron", "rcv1-subset1", "bibtex")
# the child: everything but the fit before the clock (as defaults.py's worker); prints one JSON line
# with a seed (argv[2]) the fit sees a seeded 80% of the training rows and ranks the rest (small_holdout.py's split)
CHILD = """
import json, sys, time
import numpy as np
import sparsexc.estimator.classifier, sparsexc.tree  # the estimator and the tree's modules (numba): imports, not training
from sparsexc.datasets import load
from sparsexc.estimator import XCClassifier
from sparsexc.metrics import evaluate
split = load(sys.argv[1]).train
X, Y = split.X, split.Y
if len(sys.argv) > 2:
    order = np.random.default_rng(int(sys.argv[2])).permutation(X.shape[0])
    n_held = round(HOLDOUT * len(order))
    held, train = np.sort(order[:n_held]), np.sort(order[n_held:])
    X, Y, X_held, Y_held = X[train], Y[train], X[held], Y[held]
start = time.process_time()
model = XCClassifier(verbose=0).fit(X, Y)
cpu = time.process_time() - start
tree = getattr(model.model_, "tree", None)
out = {"cpu": cpu, "C": None if tree is None else tree.params.C}
out["cv"] = {str(c): v for c, v in getattr(tree, "cv_scores_", {}).items()}
if len(sys.argv) > 2:
    ks = tuple(k for k in (1, 5) if k <= Y.shape[1])
    found = evaluate(Y_held, model.predict_topk(X_held, k=ks[-1]), ks=ks, label_sets=model.predict(X_held))
    out.update({m: 100 * float(found[m]) for m in [f"P@{k}" for k in ks] + ["micro-F1", "example-F1"]})
    out["threshold"] = float(model.tuned_["threshold"])
print(json.dumps(out))
"""
HOLDOUT = 0.2  # share of the training rows held out
# a hold-out fit's record: CPU s, P@k (%), micro- and example-F1 of predict's sets (%), in the page's order
HOLDOUT_METRICS = ("cpu", "P@1", "P@5", "micro-F1", "example-F1")
FIRST_SEED = 123


def fit_once(dataset: str, src: Path, seed: int | None = None) -> dict[str, Any]:
    """One fresh process's fit: ``{"cpu": seconds, "C": the tree's C, "cv": {C: score}}``, with ``seed`` on
    the seed's 80% of the training rows, plus the hold-out's ``"P@1"`` and ``"P@5"`` (%)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    argv = [sys.executable, "-c", CHILD.replace("HOLDOUT", repr(HOLDOUT)), dataset]
    argv += [] if seed is None else [str(seed)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=1800)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(
    datasets: list[str], repeats: int, runs: dict[str, Path], holdout_seeds: int = 0
) -> dict[str, dict[str, Any]]:
    """Per run and set the CPU seconds of every repeat, their median and the C chosen each time, and with
    ``holdout_seeds`` the hold-out fits (``"holdout"``: one :func:`fit_once` result per seed); the runs
    interleaved."""
    found: dict[str, dict[str, list[dict[str, Any]]]] = {label: {} for label in runs}
    held: dict[str, dict[str, list[dict[str, Any]]]] = {label: {} for label in runs}
    for dataset in datasets:
        for _ in range(repeats):
            for label, src in runs.items():
                found[label].setdefault(dataset, []).append(fit_once(dataset, src))
        for seed in range(FIRST_SEED, FIRST_SEED + holdout_seeds):
            for label, src in runs.items():
                held[label].setdefault(dataset, []).append({"seed": seed, **fit_once(dataset, src, seed)})
        medians = {label: statistics.median(r["cpu"] for r in found[label][dataset]) for label in runs}
        print(f"{dataset}: median CPU s {medians}", flush=True)
    return {
        label: {
            dataset: {
                "cpu": [r["cpu"] for r in rs],
                "median_cpu": statistics.median(r["cpu"] for r in rs),
                "C": [r["C"] for r in rs],
                **({"holdout": held[label][dataset]} if held[label].get(dataset) else {}),
            }
            for dataset, rs in by_set.items()
        }
        for label, by_set in found.items()
    }


def report(result: dict[str, Any]) -> str:
    """The page: one column of median CPU s per run, the last run / the first, the C each chose."""
    runs = result["runs"]
    labels = list(runs)
    first, last = labels[0], labels[-1]
    lines = [
        page_header("Training CPU of XCClassifier()", result["environment"], result["date"], result["command"]),
        "",
        f"CPU seconds of `XCClassifier(verbose=0).fit(X, Y)` on the training split, one fresh process per fit "
        f"(numba's first call included), median of {result['repeats']} repeats, the runs interleaved. Runs: "
        + "; ".join(f"`{label}` imports `{runs[label]['src']}`" for label in labels)
        + "."
        + (f" {result['note']}" if result.get("note") else ""),
        "",
        "| set | " + " | ".join(f"{label} CPU s" for label in labels) + f" | {last} / {first} | C chosen |",
        "|---" + "|---:" * (len(labels) + 1) + "|---|",
    ]
    for s in runs[first]["sets"]:
        medians = [runs[label]["sets"][s]["median_cpu"] for label in labels]
        Cs = " / ".join(",".join(f"{c:g}" for c in sorted(set(runs[label]["sets"][s]["C"]))) for label in labels)
        cells = " | ".join(f"{m:.2f}" for m in medians)
        lines.append(f"| {s} | {cells} | {medians[-1] / medians[0]:.2f} | {Cs} |")
    held = [s for s in runs[first]["sets"] if "holdout" in runs[first]["sets"][s]]
    if held:
        seeds = len(runs[first]["sets"][held[0]]["holdout"])
        lines += [
            "",
            f"Hold-outs: {seeds} seeds per set, each fit on a seeded {1 - HOLDOUT:.0%} of the training rows in a "
            f"fresh process, ranking the other {HOLDOUT:.0%}; means over the seeds (P@k and the F1s of `predict`'s "
            f"sets in %). C differs: seeds where `{last}` chose another C than `{first}`.",
            "",
        ]
        records = [r for s in held for label in labels for r in runs[label]["sets"][s]["holdout"]]
        # the F1s of predict's sets where every record has them (runs measured before they were recorded have not)
        metrics = [m for m in HOLDOUT_METRICS if all(m in r for r in records)]
        lines += [
            "| set | "
            + " | ".join(f"{label} {'CPU s' if m == 'cpu' else m}" for m in metrics for label in labels)
            + " | C differs |",
            "|---" + "|---:" * (len(metrics) * len(labels) + 1) + "|",
        ]
        for s in held:
            by = {label: runs[label]["sets"][s]["holdout"] for label in labels}
            means = [f"{statistics.fmean(r[m] for r in by[label]):.2f}" for m in metrics for label in labels]
            flips = sum(a["C"] != b["C"] for a, b in zip(by[first], by[last], strict=True))
            lines.append(f"| {s} | " + " | ".join(means) + f" | {flips}/{len(by[first])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_flags(parser, out=True, datasets=SETS)
    parser.add_argument("--repeats", type=int, default=3, help="fresh-process fits per set and run (default 3)")
    parser.add_argument("--holdout-seeds", type=int, default=0, help="hold-out fits per set and run (default 0)")
    parser.add_argument("--name", default="default_fit_cpu", help="base name of the results files")
    parser.add_argument("--note", default="", help="what the runs' code is, for the page (e.g. a variant's diff)")
    add_src_runs(parser)
    args = parser.parse_args(argv)
    runs = src_runs(parser, args.run)
    use_shared_datasets()
    sets = measure(dataset_list(args.datasets, SETS), args.repeats, runs, args.holdout_seeds)
    result = {
        "command": command_line(__file__, argv),
        "repeats": args.repeats,
        "holdout_seeds": args.holdout_seeds,
        "runs": {label: {"src": str(src), "sets": sets[label]} for label, src in runs.items()},
        "note": args.note,
        "environment": environment(),
        "date": utc_now(),
    }
    write_results(args.out, args.name, result, report(result))


if __name__ == "__main__":
    main()
