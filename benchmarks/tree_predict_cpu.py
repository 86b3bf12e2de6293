"""Prediction CPU of saved label-tree models, one fresh process per prediction, two states of the code side by side.

For each set (exported as ``benchmarks/peers.py`` exports it: the same features and splits as the peers table)
and ensemble size (``--trees``), a model is trained once with its defaults (``LabelTreeModel(LabelTreeParams(
n_trees=T))``, by the first ``--run``'s code) and saved. Then, per repeat, each run (``--run LABEL=SRC``: the
``src`` folder a child process imports) predicts the top ``--k`` of every test row in a fresh process, as a user
who loads the model does: ``LabelTreeModel.load``, then ``predict_topk(X_test, k)`` on ``--n-jobs`` threads
(default 1, so that CPU seconds compare code, not cores), timed with ``time.process_time()`` around the call
(the search's layout of the weights and numba's start, where the search uses its kernels, are inside). The runs
are interleaved (set by set, repeat by repeat, one run after the other), so a busy machine slows them alike.
Each child also hashes its (indices, scores): the page says whether every run returned the same top k. ::

    SPARSEXC_DATA=<shared>/datasets python benchmarks/tree_predict_cpu.py --run before=/tmp/base/src --run after=src

writes ``--out/tree_predict_cpu.json`` and ``.md`` (``--name`` another base name).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _harness import (
    BENCHMARKS,
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

SETS = ("debian-deps", "wordnet-hypernyms")
# the children: the data and the model read before the clock; each prints one JSON line
TRAIN = """
import sys
sys.path.insert(0, BENCHMARKS)
from peers_worker import load_csr
from sparsexc.tree import LabelTreeModel, LabelTreeParams
folder, n_trees, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
X, Y = load_csr(folder + "/train_X.npz"), load_csr(folder + "/train_Y.npz")
LabelTreeModel(LabelTreeParams(n_trees=n_trees)).fit(X, Y).save(out)
"""
PREDICT = """
import dataclasses, hashlib, json, sys
sys.path.insert(0, BENCHMARKS)
from _harness import timed
from peers_worker import load_csr
from sparsexc.tree import LabelTreeModel
folder, model_dir, k, n_jobs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
X = load_csr(folder + "/test_X.npz")
model = LabelTreeModel.load(model_dir)
model.params = dataclasses.replace(model.params, n_jobs=n_jobs)
with timed() as clock:
    indices, scores = model.predict_topk(X, k=k)
digest = hashlib.sha256(indices.tobytes() + scores.tobytes()).hexdigest()
print(json.dumps({"cpu": clock.cpu, "wall": clock.wall, "rows": X.shape[0], "sha256": digest}))
"""


def child(code: str, src: Path, *args: str) -> dict[str, Any]:
    """Run ``code`` in a fresh Python that imports sparsexc from ``src``; its last line of output, parsed."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    program = code.replace("BENCHMARKS", repr(str(BENCHMARKS)))
    done = subprocess.run([sys.executable, "-c", program, *args], env=env, capture_output=True, text=True,
                          check=True, timeout=3600)  # fmt: skip
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def measure(
    datasets: list[str], trees: list[int], repeats: int, runs: dict[str, Path], k: int, n_jobs: int, work: Path
) -> dict[str, Any]:
    """Per (set, trees) and run: every repeat's CPU and wall seconds and output hash, the runs interleaved."""
    from peers import export_dataset

    found: dict[str, Any] = {}
    first = next(iter(runs.values()))
    for dataset in datasets:
        folder = work / dataset
        export_dataset(dataset, folder)
        for n_trees in trees:
            model_dir = work / f"{dataset}-{n_trees}"
            child(TRAIN, first, str(folder), str(n_trees), str(model_dir))
            case: dict[str, list[dict[str, Any]]] = {label: [] for label in runs}
            for _ in range(repeats):
                for label, src in runs.items():
                    case[label].append(child(PREDICT, src, str(folder), str(model_dir), str(k), str(n_jobs)))
            found[f"{dataset}, {n_trees} tree{'s' if n_trees > 1 else ''}"] = case
            medians = {label: statistics.median(r["cpu"] for r in rs) for label, rs in case.items()}
            print(f"{dataset} {n_trees} trees: median CPU s {medians}", flush=True)
    return found


def report(result: dict[str, Any]) -> str:
    """The page: median CPU ms per 1,000 rows per run, the last run / the first, and whether the outputs agree."""
    labels = list(result["runs"])
    first, last = labels[0], labels[-1]
    lines = [
        page_header(
            "Prediction CPU of saved label-tree models", result["environment"], result["date"], result["command"]
        ),
        "",
        f"CPU ms per 1,000 test rows of `LabelTreeModel.load(...).predict_topk(X_test, k={result['k']})` on "
        f"{result['n_jobs']} thread(s), one fresh process per prediction (the weights' layout and numba's start "
        f"inside), median of {result['repeats']} repeats (wall ms beside), the runs interleaved. Models trained "
        f"once with their defaults by `{first}`'s code. Runs: "
        + "; ".join(f"`{label}` imports `{result['runs'][label]}`" for label in labels)
        + ". Same output: every run's and repeat's (indices, scores) hash the same.",
        "",
        "| model | rows | "
        + " | ".join(f"{label} CPU ms / 1k (wall)" for label in labels)
        + f" | {last} / {first} | same output |",
        "|---|---:" + "|---:" * (len(labels) + 1) + "|---|",
    ]
    for name, case in result["cases"].items():
        rows = case[first][0]["rows"]
        cpu = [1e6 * statistics.median(r["cpu"] for r in case[label]) / rows for label in labels]
        wall = [1e6 * statistics.median(r["wall"] for r in case[label]) / rows for label in labels]
        same = len({r["sha256"] for label in labels for r in case[label]}) == 1
        cells = " | ".join(f"{c:.1f} ({w:.1f})" for c, w in zip(cpu, wall, strict=True))
        lines.append(f"| {name} | {rows} | {cells} | {cpu[-1] / cpu[0]:.2f} | {'yes' if same else 'NO'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_flags(parser, out=True, datasets=SETS)
    add_src_runs(parser)
    parser.add_argument("--trees", default="1,3", help="comma-separated ensemble sizes (default 1,3)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh-process predictions per model and run")
    parser.add_argument("--k", type=int, default=5, help="labels per row (default 5)")
    parser.add_argument("--n-jobs", type=int, default=1, help="prediction threads (default 1)")
    parser.add_argument("--name", default="tree_predict_cpu", help="base name of the results files")
    args = parser.parse_args(argv)
    runs = src_runs(parser, args.run)
    use_shared_datasets()
    trees = [int(t) for t in args.trees.split(",")]
    with tempfile.TemporaryDirectory(prefix="tree-predict-") as tmp:
        cases = measure(dataset_list(args.datasets, SETS), trees, args.repeats, runs, args.k, args.n_jobs, Path(tmp))
    result = {
        "command": command_line(__file__, argv),
        "repeats": args.repeats,
        "k": args.k,
        "n_jobs": args.n_jobs,
        "runs": {label: str(src) for label, src in runs.items()},
        "cases": cases,
        "environment": environment(),
        "date": utc_now(),
    }
    write_results(args.out, args.name, result, report(result))


if __name__ == "__main__":
    main()
