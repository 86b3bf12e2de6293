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
import functools
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from _harness import add_common_flags, environment, repeat, utc_now, write_results

from sparsexc.heads import SigmoidHead, SoftmaxHead, SparsemaxHead, tune_grid, tune_masks, tune_threshold
from sparsexc.ops import sparsemax


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
    out, watches = repeat(fn, repeats)
    return out, {
        "wall_s": statistics.median(w.wall for w in watches),
        "cpu_s": statistics.median(w.cpu for w in watches),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_flags(parser, quick="200 x 2,000, nothing written", out=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    n, C = (200, 2000) if args.quick else (1000, 19005)
    logits, Y = problem(n, C)
    sigmoid = torch.sigmoid(logits)
    softmax_sets = torch.softmax(logits, dim=1) * C  # SoftmaxHead's set scores: C p, thresholded at t
    to_csr = lambda mask: sp.csr_matrix(mask.numpy(), dtype=np.float32)  # noqa: E731
    cases = {
        "softmax (61 thresholds)": (softmax_sets, SoftmaxHead.tuning_grid, None),
        "sigmoid (49 thresholds)": (sigmoid, SigmoidHead.tuning_grid, None),
        "sparsemax (9 scales)": (logits, SparsemaxHead.tuning_grid, lambda v: sparsemax(logits * v, dim=1) > 0),
    }
    rows = []
    for name, (S, grid, rule) in cases.items():
        mask_of = rule if rule is not None else (lambda t, S=S: t < S)
        sets_of = functools.partial(lambda v, m: to_csr(m(v)), m=mask_of)
        old, t_old = timed(functools.partial(tune_grid, sets_of, Y, grid), args.repeats)
        fast = functools.partial(tune_masks, rule, Y, grid) if rule else functools.partial(tune_threshold, S, Y, grid)
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
    env = environment()
    report = {
        "benchmark": "tuning_speed",
        "date": utc_now(),
        "shape": [n, C],
        "threads": 2,
        "repeats": args.repeats,
        "load_average": env["load_average"],
        "machine": env,
        "rows": rows,
    }
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
    write_results(args.out, "tuning_speed", report, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
