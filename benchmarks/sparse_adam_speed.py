"""Lazy Adam on sparse gradients: ``torch.optim.SparseAdam`` against ``sparsexc.train.RowSparseAdam`` (same update).

The optimiser step of a sampled head over C labels: a (C, 64) output layer whose gradient holds the rows of
the positive and sampled labels of one batch (33,000 rows, about 256 rows x 2 labels x 64 negatives), moments
allocated lazily as ``build_optimizer`` does (``lazy_zeros_like``). Both optimisers run the same 60 steps
on the same gradients, side by side in one loop (alternating which steps first); reported per C: CPU
milliseconds per step (median of steps 30-60, after the first touches of the lazily allocated moments; and
the mean of the first 5), the ratio, and whether the final weights are bit-identical. One torch thread.

    python benchmarks/sparse_adam_speed.py           # C = 1e4, 1e5, 1e6
    python benchmarks/sparse_adam_speed.py --quick   # C = 1e4, 10 steps, nothing written
Writes benchmarks/results/sparse_adam_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
from _harness import add_common_flags, environment, timed, utc_now, write_results

from sparsexc.train import RowSparseAdam, lazy_zeros_like

WIDTH, TOUCHED = 64, 33_000


def _side_by_side(n_labels: int, n_steps: int) -> tuple[bool, list[float], list[float]]:
    """Both optimisers on their own copy of the weights, stepped in the same loop on the same gradients
    (alternating which goes first), so drift of the shared machine hits both alike."""
    generator = torch.Generator().manual_seed(0)
    init = 0.01 * torch.randn(n_labels, WIDTH, generator=generator)
    weights, optimizers = [], []
    for cls in (torch.optim.SparseAdam, RowSparseAdam):
        weight = torch.nn.Parameter(init.clone())
        optimizer = cls([weight], lr=1e-3)
        optimizer.state[weight] = {"step": 0, "exp_avg": lazy_zeros_like(weight), "exp_avg_sq": lazy_zeros_like(weight)}
        weights.append(weight)
        optimizers.append(optimizer)
    times: list[list[float]] = [[], []]
    for step in range(n_steps):
        rows = torch.randint(0, n_labels, (TOUCHED,), generator=generator)
        grad = torch.sparse_coo_tensor(
            rows[None], torch.randn(TOUCHED, WIDTH, generator=generator), (n_labels, WIDTH), check_invariants=True
        )
        for i in (0, 1) if step % 2 == 0 else (1, 0):
            weights[i].grad = grad.clone()
            with timed() as watch:
                optimizers[i].step()
            times[i].append(watch.cpu)
    return bool(torch.equal(weights[0].detach(), weights[1].detach())), times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_flags(parser, quick="C = 1e4 and 10 steps; nothing written", out=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes, n_steps = ([10_000], 10) if args.quick else ([10_000, 100_000, 1_000_000], 60)
    warm = n_steps // 2
    rows = []
    for n_labels in sizes:
        identical, torch_times, ours_times = _side_by_side(n_labels, n_steps)
        row = {
            "n_labels": n_labels,
            "touched_rows": TOUCHED,
            "width": WIDTH,
            "steps": n_steps,
            "sparse_adam_ms": 1e3 * statistics.median(torch_times[warm:]),
            "row_sparse_adam_ms": 1e3 * statistics.median(ours_times[warm:]),
            "sparse_adam_first5_ms": 1e3 * statistics.mean(torch_times[:5]),
            "row_sparse_adam_first5_ms": 1e3 * statistics.mean(ours_times[:5]),
            "bit_identical": identical,
        }
        row["speedup"] = row["sparse_adam_ms"] / row["row_sparse_adam_ms"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    lines = [
        "# Lazy Adam step: torch.optim.SparseAdam vs RowSparseAdam",
        "",
        f"(C, {WIDTH}) weights, {TOUCHED:,} touched rows a step, lazily allocated moments, one thread; CPU ms per "
        f"step, median of steps {warm}-{n_steps} (first 5 steps: mean). Same seed, same steps, one process.",
        "",
        "| C | SparseAdam ms | RowSparseAdam ms | speed-up | first 5 steps (ms) | bit-identical |",
        "|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n_labels']:,} | {r['sparse_adam_ms']:.1f} | {r['row_sparse_adam_ms']:.1f} | "
            f"{r['speedup']:.2f}x | {r['sparse_adam_first5_ms']:.0f} vs {r['row_sparse_adam_first5_ms']:.0f} | "
            f"{'yes' if r['bit_identical'] else 'NO'} |"
        )
    print("\n".join(lines))
    if args.quick:
        return
    result = {
        "benchmark": "sparse_adam_speed",
        "date": utc_now(),
        "environment": environment(),
        "rows": rows,
    }
    write_results(args.out, "sparse_adam_speed", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
