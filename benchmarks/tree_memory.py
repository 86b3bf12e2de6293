"""Where the label tree's memory goes: peak RSS after each step of a train-predict-save run (issue 19).

Each case runs in a fresh process (``--child``), as a ``benchmarks/peers.py`` worker does: load the exported
data set (``peers.export_dataset``: the same features and splits as the peers table), fit
``LabelTreeModel(LabelTreeParams(n_trees=T, n_jobs=2))`` with its defaults, predict the top 5 of every test row
(beam 10), save the model. After each step it records the process's RSS and its high-water mark (``VmHWM``,
the peers table's "peak RSS") and the step's CPU seconds. Cases: ``--trees`` (default 1 and 3), each once as
the process starts and once with ``MALLOC_MMAP_THRESHOLD_=131072`` in its environment (glibc's mmap threshold
fixed at its initial 128 KiB instead of rising after large blocks are freed: what the allocator retains, not
what the model holds, is then the difference).

    SPARSEXC_DATA=../shared/datasets python benchmarks/tree_memory.py                 # debian-deps
    SPARSEXC_DATA=../shared/datasets python benchmarks/tree_memory.py --datasets wordnet-hypernyms --trees 1
    python benchmarks/tree_memory.py --quick                     # a small synthetic set, nothing written
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import (
    add_common_flags,
    dataset_list,
    environment,
    git_commit,
    page_header,
    use_shared_datasets,
    utc_now,
    write_results,
)

STEPS = ("load", "fit", "predict", "save")
MALLOC = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def child(data_dir: Path, n_trees: int) -> dict[str, Any]:
    """One case in this process: RSS / high-water mark / CPU seconds after each step."""
    from peers_worker import load_csr, proc_status_mib

    from sparsexc.tree import LabelTreeModel, LabelTreeParams

    steps: dict[str, dict[str, float | None]] = {}
    clock = time.process_time()

    def mark(step: str) -> None:
        nonlocal clock
        now = time.process_time()
        steps[step] = {"rss_mib": proc_status_mib("VmRSS"), "hwm_mib": proc_status_mib("VmHWM"), "cpu_s": now - clock}
        clock = now

    X, Y, X_test = (load_csr(data_dir / f"{name}.npz") for name in ("train_X", "train_Y", "test_X"))
    mark("load")
    model = LabelTreeModel(LabelTreeParams(n_trees=n_trees, n_jobs=2)).fit(X, Y)
    mark("fit")
    model.predict_topk(X_test, 5, beam=10)
    mark("predict")
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "model")
        mark("save")
    return {"steps": steps, "n_test": X_test.shape[0], "peak_rss_mib": steps["save"]["hwm_mib"]}


def run_case(data_dir: Path, n_trees: int, malloc: bool) -> dict[str, Any]:
    env = {**os.environ, **(MALLOC if malloc else {})}
    cmd = [sys.executable, __file__, "--child", str(data_dir), "--trees", str(n_trees)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"case n_trees={n_trees} malloc={malloc} failed:\n{out.stderr[-3000:]}")
    return {"n_trees": n_trees, "malloc_mmap_threshold": malloc, **json.loads(out.stdout.strip().splitlines()[-1])}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        page_header("Label tree: peak RSS per step (issue 19)", result["machine"], result["date"], result["command"])
    ]
    lines += [
        "",
        f"Commit {result['commit']}. Each case is one fresh process: RSS high-water mark (`VmHWM`, MiB) after each "
        "step, the CPU seconds of the step in brackets; the last column is the run's peak (the peers table's "
        "'peak RSS'). `MALLOC_MMAP_THRESHOLD_=131072`: glibc's mmap threshold fixed (see the script's docstring).",
    ]
    for name, cases in result["datasets"].items():
        lines += [
            "",
            f"## {name}",
            "",
            "| trees | allocator | " + " | ".join(STEPS) + " | peak |",
            "|---|---|" + "---:|" * 5,
        ]
        for c in cases:
            cells = [f"{c['steps'][s]['hwm_mib']:.0f} ({c['steps'][s]['cpu_s']:.1f} s)" for s in STEPS]
            alloc = "MALLOC_MMAP_THRESHOLD_=131072" if c["malloc_mmap_threshold"] else "as started"
            lines.append(f"| {c['n_trees']} | {alloc} | " + " | ".join(cells) + f" | {c['peak_rss_mib']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trees", default="1,3", help="comma-separated ensemble sizes (default 1,3)")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    add_common_flags(parser, out=True, quick="a small synthetic set; print only", datasets=["debian-deps"])
    args = parser.parse_args(argv)
    trees = [int(t) for t in args.trees.split(",")]
    if args.child is not None:
        print(json.dumps(child(args.child, trees[0])))
        return
    use_shared_datasets()
    from peers import SYNTHETIC_DATASETS, export_dataset

    names = ["synthetic-quick"] if args.quick else dataset_list(args.datasets, ["debian-deps"])
    if args.quick:
        SYNTHETIC_DATASETS["synthetic-quick"] = {"n_samples": 1000, "n_features": 500, "n_labels": 300, "seed": 0}
    result: dict[str, Any] = {"machine": environment(), "date": utc_now(), "commit": git_commit(), "datasets": {}}
    result["command"] = "python benchmarks/tree_memory.py " + " ".join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="tree-memory-") as tmp:
        for name in names:
            data_dir = Path(tmp) / name
            export_dataset(name, data_dir)
            cases = []
            for n_trees in trees:
                for malloc in (False, True):
                    cases.append(run_case(data_dir, n_trees, malloc))
                    print(name, cases[-1], flush=True)
            result["datasets"][name] = cases
    text = markdown(result)
    print(text)
    if not args.quick:
        json_path, md_path = write_results(args.out, "tree_memory", result, text)
        print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
