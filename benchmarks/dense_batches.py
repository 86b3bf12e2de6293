"""The linear model's product with a batch: torch's CSR product against a dense GEMM, by the batch's density.

The linear model (``hidden_sizes=()``) multiplies each batch by its (C, d) output layer, forward and backward
(``F.linear`` and the weight's gradient). ``sparsexc.models.encoder.dense_pays`` multiplies a batch dense when
at least ``DENSE_BATCH_DENSITY`` of its cells are stored; this measures where that pays. Per (d, C, density):
a (256, d) batch with that share of its cells stored (seeded), the same product as CSR and as a dense tensor,
side by side in one loop (alternating which goes first), one torch thread; CPU ms per forward + backward
(median of the steps after the first), the ratio, which of the two the rule picks, and whether the two
products agree (logits and weight gradient, ``torch.allclose`` at float32's tolerance).

    python benchmarks/dense_batches.py           # d in 512, 5000; C in 2000, 19005; densities 1% ... 100%
    python benchmarks/dense_batches.py --quick   # one size, three densities, nothing written
Writes benchmarks/results/dense_batches.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import warnings

import scipy.sparse as sp
import torch
from _harness import add_common_flags, environment, timed, utc_now, write_results

from sparsexc.models import DENSE_BATCH_DENSITY, DENSE_BATCH_MAX_CELLS, FeatureBatch, dense_pays

BATCH = 256


def _batch(d: int, density: float, generator: torch.Generator) -> FeatureBatch:
    """A (BATCH, d) batch with about ``density`` of its cells stored (Gaussian values), as the trainer cuts it."""
    dense = torch.randn(BATCH, d, generator=generator) * (torch.rand(BATCH, d, generator=generator) < density)
    return FeatureBatch.from_csr(sp.csr_matrix(dense.numpy()))


def _side_by_side(d: int, n_labels: int, density: float, steps: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    batch = _batch(d, density, generator)
    weight = torch.nn.Parameter(0.01 * torch.randn(n_labels, d, generator=generator))
    bias = torch.nn.Parameter(torch.zeros(n_labels))
    with warnings.catch_warnings():  # torch's "sparse CSR is beta" note
        warnings.simplefilter("ignore", UserWarning)
        inputs = {"csr": batch.to_sparse_csr(), "dense": batch.to_dense()}
    times: dict[str, list[float]] = {"csr": [], "dense": []}
    results = {}
    for step in range(steps):
        for name in ("csr", "dense") if step % 2 == 0 else ("dense", "csr"):
            with timed() as watch:
                logits = torch.nn.functional.linear(inputs[name], weight, bias)
                (grad,) = torch.autograd.grad(logits.sum(), weight)
            times[name].append(watch.cpu)
            results[name] = (logits.detach(), grad)
    csr_ms = 1e3 * statistics.median(times["csr"][1:])
    dense_ms = 1e3 * statistics.median(times["dense"][1:])
    agree = all(
        torch.allclose(a, b, rtol=1e-4, atol=1e-4) for a, b in zip(results["csr"], results["dense"], strict=True)
    )
    return {
        "n_features": d,
        "n_labels": n_labels,
        "density": round(batch.density, 4),
        "csr_ms": round(csr_ms, 2),
        "dense_ms": round(dense_ms, 2),
        "csr_over_dense": round(csr_ms / dense_ms, 2),
        "rule_picks": "dense" if dense_pays(batch) else "csr",
        "agree": agree,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_flags(parser, quick="d = 512, C = 2000, three densities; nothing written", out=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.quick:
        sizes, densities, steps = [(512, 2000)], [0.02, 0.1, 1.0], 3
    else:
        sizes = [(512, 2000), (512, 19005), (5000, 2000)]
        densities, steps = [0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 1.0], 7
    rows = []
    for d, n_labels in sizes:
        for density in densities:
            row = _side_by_side(d, n_labels, density, steps)
            rows.append(row)
            print(json.dumps(row), flush=True)
    lines = [
        "# The linear model's batch product: CSR against dense",
        "",
        f"A ({BATCH}, d) batch times the (C, d) output layer, forward and the weight's gradient, one torch thread; "
        f"CPU ms, median of {steps - 1} steps after the first, CSR and dense alternating in one loop. The rule "
        f"(`sparsexc.models.encoder.dense_pays`): dense from {DENSE_BATCH_DENSITY:.0%} of the cells stored, at "
        f"most {DENSE_BATCH_MAX_CELLS:,} cells.",
        "",
        "| d | C | density | CSR ms | dense ms | CSR / dense | rule picks | same result |",
        "|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n_features']:,} | {r['n_labels']:,} | {r['density']:.1%} | {r['csr_ms']:.1f} | "
            f"{r['dense_ms']:.1f} | {r['csr_over_dense']:.2f}x | {r['rule_picks']} | {'yes' if r['agree'] else 'NO'} |"
        )
    print("\n".join(lines))
    if args.quick:
        return
    result = {"benchmark": "dense_batches", "date": utc_now(), "environment": environment(), "rows": rows}
    write_results(args.out, "dense_batches", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
