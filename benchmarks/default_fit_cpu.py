"""Training CPU of ``XCClassifier()`` (the default) on the small sets, one fresh process per fit (issue 20).

For each set and repeat a child process loads the set's training split, imports the package, then times
``XCClassifier(verbose=0).fit(X, Y)`` with ``time.process_time()`` (all threads), as ``benchmarks/defaults.py``
does: numba's first call in the process, the cross-validation of C, the fit, the threshold's tuning and the
refit are all inside. The child also reports the C the tree chose. ``--run LABEL=SRC`` (repeatable) names a
``src`` folder to import (default: this checkout's, labelled ``this``); several runs are measured interleaved
(set by set, repeat by repeat, one run after the other), so a busy machine slows them alike. The page shows each
run's median CPU s per set and the ratio of the last run to the first::

    SPARSEXC_DATA=<shared>/datasets python benchmarks/default_fit_cpu.py --run before=/tmp/base/src --run after=src

writes ``--out/default_fit_cpu.json`` and ``.md``.
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
    BENCHMARKS,
    add_common_flags,
    command_line,
    dataset_list,
    environment,
    page_header,
    use_shared_datasets,
    utc_now,
    write_results,
)

SETS = ("flags", "emotions", "birds", "cal500", "yeast", "scene", "medical", "enron", "rcv1-subset1", "bibtex")
SRC = BENCHMARKS.parent / "src"
# the child: everything but the fit before the clock (as defaults.py's worker); prints one JSON line
CHILD = """
import json, sys, time
import sparsexc.estimator
from sparsexc.datasets import load
from sparsexc.estimator import XCClassifier
split = load(sys.argv[1]).train
start = time.process_time()
model = XCClassifier(verbose=0).fit(split.X, split.Y)
cpu = time.process_time() - start
tree = getattr(model.model_, "tree", None)
print(json.dumps({"cpu": cpu, "C": None if tree is None else tree.params.C}))
"""


def fit_once(dataset: str, src: Path) -> dict[str, Any]:
    """One fresh process's fit: ``{"cpu": seconds, "C": the tree's C}``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, dataset], env=env, capture_output=True, text=True, check=True, timeout=1800
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(datasets: list[str], repeats: int, runs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Per run and set the CPU seconds of every repeat, their median and the C chosen each time; the runs
    interleaved."""
    found: dict[str, dict[str, list[dict[str, Any]]]] = {label: {} for label in runs}
    for dataset in datasets:
        for _ in range(repeats):
            for label, src in runs.items():
                found[label].setdefault(dataset, []).append(fit_once(dataset, src))
        medians = {label: statistics.median(r["cpu"] for r in found[label][dataset]) for label in runs}
        print(f"{dataset}: median CPU s {medians}", flush=True)
    return {
        label: {
            dataset: {
                "cpu": [r["cpu"] for r in rs],
                "median_cpu": statistics.median(r["cpu"] for r in rs),
                "C": [r["C"] for r in rs],
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
        page_header(
            "Training CPU of XCClassifier() on the small sets", result["environment"], result["date"], result["command"]
        ),
        "",
        f"CPU seconds of `XCClassifier(verbose=0).fit(X, Y)` on the training split, one fresh process per fit "
        f"(numba's first call included), median of {result['repeats']} repeats, the runs interleaved. Runs: "
        + "; ".join(f"`{label}` imports `{runs[label]['src']}`" for label in labels)
        + ".",
        "",
        "| set | " + " | ".join(f"{label} CPU s" for label in labels) + f" | {last} / {first} | C chosen |",
        "|---" + "|---:" * (len(labels) + 1) + "|---|",
    ]
    for s in runs[first]["sets"]:
        medians = [runs[label]["sets"][s]["median_cpu"] for label in labels]
        Cs = " / ".join(",".join(f"{c:g}" for c in sorted(set(runs[label]["sets"][s]["C"]))) for label in labels)
        cells = " | ".join(f"{m:.2f}" for m in medians)
        lines.append(f"| {s} | {cells} | {medians[-1] / medians[0]:.2f} | {Cs} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_flags(parser, out=True, datasets=SETS)
    parser.add_argument("--repeats", type=int, default=3, help="fresh-process fits per set and run (default 3)")
    parser.add_argument("--run", action="append", default=None, metavar="LABEL=SRC",
                        help="a src folder to measure under a label (repeatable; default: this=<this src>)")  # fmt: skip
    args = parser.parse_args(argv)
    runs = {"this": SRC}
    if args.run:
        pairs = [r.partition("=") for r in args.run]
        if any(not label or not src for label, _, src in pairs):
            parser.error("--run: give LABEL=SRC")
        runs = {label: Path(src).resolve() for label, _, src in pairs}
    use_shared_datasets()
    sets = measure(dataset_list(args.datasets, SETS), args.repeats, runs)
    result = {
        "command": command_line(__file__, argv),
        "repeats": args.repeats,
        "runs": {label: {"src": str(src), "sets": sets[label]} for label, src in runs.items()},
        "environment": environment(),
        "date": utc_now(),
    }
    write_results(args.out, "default_fit_cpu", result, report(result))


if __name__ == "__main__":
    main()
