"""Speed of the set-rule tuning after training: one pass over all thresholds against one set matrix per value.

A debian-deps-sized validation problem (1,000 rows x 19,005 labels, about 3 true labels per row, seeded):
the heads' set scores and grids, tuned for micro-F1 by

* ``per-value CSR``: the search as it was (``tune_grid``: for every grid value, the dense mask turned into a
  scipy CSR matrix and scored by ``sparsexc.metrics``);
* ``one pass``: what ``ScalarTunedHead.tune`` now does (``tune_threshold`` for ``{j : s_j > t}`` rules,
  ``tune_masks`` for other rules such as sparsemax's support).

Both must choose the same value with the same metric value (checked). Wall and CPU seconds, 2 torch threads,
median of ``--repeats``. Writes ``benchmarks/results/tuning_speed.json`` and ``.md``.

    python benchmarks/tuning_speed.py            # 1,000 x 19,005
    python benchmarks/tuning_speed.py --quick    # 200 x 2,000, nothing written
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from sparsexc._environment import environment_info
from sparsexc.heads.base import tune_grid, tune_masks, tune_threshold
from sparsexc.heads.sigmoid import THRESHOLD_GRID
from sparsexc.heads.softmax import T_GRID
from sparsexc.heads.sparsemax import PAPER_SCALE_GRID
from sparsexc.ops import sparsemax

RESULTS = Path(__file__).resolve().parent / "results"


def problem(n: int, C: int, seed: int = 0) -> tuple[torch.Tensor, sp.csr_matrix]:
    """Logits (n, C) where each row's ~3 true labels score higher than the rest, and those labels."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, size=(n, C)).astype(np.float32)
    rows = np.repeat(np.arange(n), 3)
    cols = rng.integers(0, C, size=rows.size)
    logits[rows, cols] += rng.normal(4.0, 1.5, size=rows.size).astype(np.float32)
    Y = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(n, C))
    Y.data[:] = 1.0  # repeated draws of a label count once
    return torch.from_numpy(logits), Y


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, dict[str, float]]:
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return out, {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 x 2,000, nothing written")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    n, C = (200, 2000) if args.quick else (1000, 19005)
    logits, Y = problem(n, C)
    sigmoid = torch.sigmoid(logits)
    softmax_sets = torch.softmax(logits, dim=1) * C  # SoftmaxHead's set scores: C p, thresholded at t
    to_csr = lambda mask: sp.csr_matrix(mask.numpy(), dtype=np.float32)  # noqa: E731
    cases = {
        "softmax (61 thresholds)": (softmax_sets, T_GRID, None),
        "sigmoid (49 thresholds)": (sigmoid, THRESHOLD_GRID, None),
        "sparsemax (9 scales)": (logits, PAPER_SCALE_GRID, lambda v: sparsemax(logits * v, dim=1) > 0),
    }
    rows = []
    for name, (S, grid, rule) in cases.items():
        mask_of = rule if rule is not None else (lambda t, S=S: t < S)
        old, t_old = timed(lambda: tune_grid(lambda v: to_csr(mask_of(v)), Y, grid), args.repeats)
        fast = (lambda: tune_masks(rule, Y, grid)) if rule is not None else (lambda: tune_threshold(S, Y, grid))
        new, t_new = timed(fast, args.repeats)
        if old != new:
            raise AssertionError(f"{name}: per-value search chose {old}, one pass {new}")
        rows.append(
            {
                "case": name,
                "chosen": old[0],
                "micro-F1": old[1],
                "per_value_csr": t_old,
                "one_pass": t_new,
                "speedup_wall": t_old["wall_s"] / t_new["wall_s"],
            }
        )
        print(
            f"{name:26s} chose {old[0]:g} (micro-F1 {old[1]:.4f}) | per-value CSR {t_old['wall_s']:.2f} s wall "
            f"{t_old['cpu_s']:.2f} s CPU | one pass {t_new['wall_s']:.3f} s wall {t_new['cpu_s']:.3f} s CPU | "
            f"x{rows[-1]['speedup_wall']:.1f}",
            flush=True,
        )
    if args.quick:
        return 0
    report = {
        "benchmark": "tuning_speed",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "shape": [n, C],
        "threads": 2,
        "repeats": args.repeats,
        "load_average": list(os.getloadavg()),
        "machine": environment_info(),
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tuning_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# Set tuning after training: {n} x {C}, micro-F1, 2 threads, median of {args.repeats}",
        "",
        f"{report['date']}, load average {[round(x, 2) for x in report['load_average']]}.",
        "",
        "| rule | chosen | per-value CSR wall s | CPU s | one pass wall s | CPU s | speed-up (wall) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['case']} | {r['chosen']:g} | {r['per_value_csr']['wall_s']:.2f} | {r['per_value_csr']['cpu_s']:.2f} "
        f"| {r['one_pass']['wall_s']:.3f} | {r['one_pass']['cpu_s']:.3f} | {r['speedup_wall']:.1f}x |"
        for r in rows
    ]
    (RESULTS / "tuning_speed.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
