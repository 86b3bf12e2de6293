"""How long ``sparsexc quickstart`` takes: CPU seconds and wall seconds of the whole command, as a user runs it.

The docs (docs/cli.md, docs/getting-started.md) and ``sparsexc quickstart --help`` quote these numbers, and
tests/docs/test_doc_timings.py checks every quoted number against the result file, so rerun this script and
update the quoted numbers together. Each repeat runs the installed ``sparsexc quickstart --quiet`` in a fresh
process (torch import included) into a new temporary folder. CPU time is user + system time of the child
process (resource.RUSAGE_CHILDREN). Both grow with the load on a shared machine (torch's threads wait for each
other when one is descheduled), so the load average before and after each run is recorded, and the fastest run
is reported beside the medians.

Usage::

    python benchmarks/quickstart_time.py                 # 1 run, writes benchmarks/results/quickstart_time.{json,md}
    python benchmarks/quickstart_time.py --repeats 3     # 3 runs: their medians and the fastest
    python benchmarks/quickstart_time.py --rewrite       # re-render the stored runs (no measuring)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _harness import add_common_flags, environment, load_average, page_header, read_json, timed, utc_now, write_results

NAME = "quickstart_time"


def sparsexc_command() -> list[str]:
    """The ``sparsexc`` entry point beside the running interpreter (the installed command users run)."""
    beside = Path(sys.executable).with_name("sparsexc")
    return [str(beside)] if beside.exists() else [shutil.which("sparsexc") or "sparsexc"]


def time_one_run() -> dict:
    """Run ``sparsexc quickstart`` once; its CPU and wall seconds, the load around it and its test P@1."""
    with tempfile.TemporaryDirectory(prefix="sparsexc-quickstart-bench-") as tmp:
        out = Path(tmp) / "run"
        load_before = load_average()
        with timed(children=True) as watch:  # the command's own CPU time, in the child process
            subprocess.run(
                [*sparsexc_command(), "quickstart", "--quiet", "--out", str(out)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        load_after = load_average()
        metrics = json.loads((out / "metrics.json").read_text())
        epochs_run = json.loads((out / "run.json").read_text()).get("epochs_run")
    return {
        "wall_seconds": round(watch.wall, 2),
        "cpu_seconds": round(watch.cpu, 2),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "epochs_run": epochs_run,
        "P@1": round(float(metrics["P@1"]), 4),
    }


def load_note(result: dict) -> str:
    """How far the load on the machine may have slowed the runs down."""
    cores = result["environment"]["cpu_count"] or 1
    load = result["fastest_run"]["load_average_before"][0]
    if load <= cores:
        return (
            f"The load average was at most the {cores} cores' count before the fastest run: the machine was "
            "close to idle, and these times are what the command costs there."
        )
    return (
        f"The machine was shared: other jobs kept the load average above its {cores} cores, and both wall and "
        "CPU time grow with the load (torch's threads wait for each other when one is descheduled), so an "
        "idle machine is faster."
    )


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        page_header("`sparsexc quickstart`: time", env, result["created"], "python benchmarks/quickstart_time.py"),
        "",
        "The whole command as a user runs it (a fresh process: torch import, bundled Bibtex, training with the "
        "estimator's defaults, evaluation).",
        "",
        "| run | CPU s (user + sys) | wall s | load average before (1/5/15 min) | epochs run | test P@1 |",
        "|---|---|---|---|---|---|",
    ]
    for i, run in enumerate(result["runs"], 1):
        load = "/".join(f"{x:.2f}" for x in run["load_average_before"])
        lines.append(
            f"| {i} | {run['cpu_seconds']:.1f} | {run['wall_seconds']:.1f} | {load} | {run['epochs_run']} "
            f"| {run['P@1']:.4f} |"
        )
    fastest = result["fastest_run"]
    lines += [
        "",
        (
            f"Fastest run: **{fastest['wall_seconds']:.0f} s wall**, **{fastest['cpu_seconds']:.0f} s CPU** at load "
            f"average {fastest['load_average_before'][0]:.1f}; median of {len(result['runs'])}: "
            f"{result['wall_seconds']:.0f} s wall, {result['cpu_seconds']:.0f} s CPU."
        ),
        "",
        load_note(result),
        "",
    ]
    return "\n".join(lines)


def summarise(runs: list[dict], env: dict, created: str) -> dict:
    """The result file's content: the runs, their medians and the fastest run (least disturbed by other jobs)."""
    return {
        "benchmark": NAME,
        "command": "sparsexc quickstart --quiet --out TMP",
        "created": created,
        "environment": env,
        "cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in runs), 2),
        "wall_seconds": round(statistics.median(r["wall_seconds"] for r in runs), 2),
        "fastest_run": min(runs, key=lambda r: r["wall_seconds"]),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs to take the median of (default 1)")
    parser.add_argument(
        "--no-write",
        action="store_true",
        help="print only; do not write benchmarks/results/",
    )
    parser.add_argument(
        "--rewrite",
        action="store_true",
        help="measure nothing: rebuild the summary and the Markdown from the runs in the JSON file",
    )
    add_common_flags(parser, out=True)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats: expected at least 1, got {args.repeats}")
    if args.rewrite:
        stored = read_json(args.out / f"{NAME}.json")
        result = summarise(stored["runs"], stored["environment"], stored["created"])
    else:
        env = environment()
        runs = []
        for i in range(args.repeats):
            runs.append(time_one_run())
            print(f"run {i + 1}: {runs[-1]}", flush=True)
        result = summarise(runs, env, utc_now())
    text = markdown(result)
    print(text)
    if not args.no_write:
        write_results(args.out, NAME, result, text)


if __name__ == "__main__":
    main()
