"""Training throughput and peak memory against the number of labels C, on 1 and 2 data-parallel processes.

For each head (the full softmax and the registered sampled heads) and each process count, one fresh group
of processes (``sparsexc.distributed.spawn``, gloo on CPU) trains an MLP encoder (64 hidden units) on
synthetic data (``sparsexc.datasets.synthetic``) for C = 1e3 .. 1e6 in increasing order, with
``sparsexc.train.Trainer`` (DDP when 2 processes) for 2 epochs; the second (warm) epoch's examples/s of
the global batch is reported. Peak memory is each process's RSS high-water mark (``ru_maxrss``) after that
C; since C grows within a process, it is the peak of the largest C so far, i.e. of this C. RSS includes the
torch runtime (about 400 MiB), so the memory a label shard saves is read more plainly in the head's parameter
MiB per rank (the output layer; Adam adds two moments of the same size). Each process
uses one torch thread, so 2 processes use 2 cores. The rows "<head> (label-sharded)" (2 processes only; in
one process the head is the plain one) train with ``shard_labels=True``: each process holds half the output
layer and runs the whole batch (model parallel over the labels, docs/distributed.md), so their speed-up is
against the plain head on 1 process and their point is the memory per rank.

Usage::

    python benchmarks/scale.py --quick   # C = 1e3, 1e4, 1e5 (512 rows); a couple of minutes on 2 cores
    python benchmarks/scale.py           # C = 1e3 .. 1e6 (1024 rows); about 7 minutes on 2 quiet cores
    python benchmarks/scale.py --sizes 1e6 --heads "softmax,softmax (label-sharded)" --name scale_1e6
Writes benchmarks/results/scale{_quick}.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
HIDDEN = 64
N_FEATURES = 2000


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _parameter_mib(module) -> float:
    return sum(p.numel() * p.element_size() for p in module.parameters()) / 2**20


SHARDED = " (label-sharded)"


def _worker(head: str, sizes: list[int], n_rows: int, batch_size: int) -> list[dict]:
    import torch

    from sparsexc.datasets.synthetic import synthetic
    from sparsexc.distributed import world_size
    from sparsexc.heads import get_head
    from sparsexc.models import SparseEncoder, XCModel
    from sparsexc.train import Trainer

    torch.set_num_threads(1)
    name = head.removesuffix(SHARDED)
    head_params = {"sampler": "uniform", "num_negatives": 64} if name != "softmax" else {}
    if head.endswith(SHARDED):
        head_params["shard_labels"] = True
    out = []
    for n_labels in sizes:
        split = synthetic(
            n_rows + 1,
            N_FEATURES,
            n_labels,
            labels_per_sample=2.0,
            nnz_per_sample=20,
            seed=0,
            test_size=1.0 / (n_rows + 1),
        )
        torch.manual_seed(0)
        encoder = SparseEncoder(N_FEATURES, {"hidden_sizes": (HIDDEN,)})
        model = XCModel(encoder, get_head(name)(HIDDEN, n_labels, head_params))
        trainer = Trainer(model, dict(epochs=2, batch_size=batch_size, device="cpu", seed=0))
        started = time.perf_counter()
        trainer.fit(split.train.X, split.train.Y)
        out.append(
            {
                "head": head,
                "n_labels": n_labels,
                "processes": world_size(),
                "examples_per_second": trainer.history[-1]["examples_per_second"],
                "epoch_seconds": trainer.history[-1]["seconds"],
                "total_seconds": time.perf_counter() - started,
                "train_loss": trainer.history[-1]["train_loss"],
                "peak_rss_mib": round(_rss_mib(), 1),
                "head_parameter_mib": round(_parameter_mib(model.head), 2),
                "n_train": split.train.X.shape[0],
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="C up to 1e5, fewer rows (a few minutes)")
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(float(x)) for x in text.split(",")],
        help="comma-separated C values, e.g. 1e6 (overrides the default list)",
    )
    parser.add_argument("--rows", type=int, help="training rows (default 512 quick, 1024 full)")
    parser.add_argument("--batch-size", type=int, default=256, help="global batch size (default 256)")
    parser.add_argument("--name", help="results file stem (default scale or scale_quick)")
    parser.add_argument(
        "--heads", help="comma-separated subset of the rows' heads, e.g. 'softmax,softmax (label-sharded)'"
    )
    args = parser.parse_args()
    from sparsexc._environment import environment_info
    from sparsexc.distributed import spawn
    from sparsexc.heads import list_heads

    sizes = args.sizes or ([1000, 10_000, 100_000] if args.quick else [1000, 10_000, 100_000, 1_000_000])
    n_rows, batch_size = args.rows or (512 if args.quick else 1024), args.batch_size
    plain = ["softmax"] + [h for h in ("sampled-softmax", "negative-sampling") if h in list_heads()]
    heads = plain + [h + SHARDED for h in plain]
    if args.heads:
        heads = [h for h in heads if h in args.heads.split(",")]
    load_before = os.getloadavg()
    rows = []
    for head in heads:
        for nproc in (2,) if head.endswith(SHARDED) else (1, 2):
            for rank_rows in zip(*spawn(_worker, nproc, (head, sizes, n_rows, batch_size))):
                first = dict(rank_rows[0])
                first["peak_rss_mib_per_rank"] = [r["peak_rss_mib"] for r in rank_rows]
                first["head_parameter_mib_per_rank"] = [r["head_parameter_mib"] for r in rank_rows]
                rows.append(first)
                print(
                    f"{head:18s} C={first['n_labels']:>8d} procs={nproc}  "
                    f"{first['examples_per_second']:9.0f} ex/s  peak RSS/rank {first['peak_rss_mib_per_rank']} MiB  "
                    f"head/rank {first['head_parameter_mib_per_rank']} MiB",
                    flush=True,
                )
    speed = {(r["head"], r["n_labels"], r["processes"]): r["examples_per_second"] for r in rows}
    for r in rows:
        one = speed.get((r["head"].removesuffix(SHARDED), r["n_labels"], 1))
        r["speedup_vs_1_process"] = round(r["examples_per_second"] / one, 3) if one else None
    result = {
        "benchmark": "scale",
        "quick": args.quick,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(),
        "settings": {
            "hidden": HIDDEN,
            "n_features": N_FEATURES,
            "n_train_rows": n_rows,
            "batch_size_global": batch_size,
            "epochs": 2,
            "timed": "second epoch",
            "torch_threads_per_process": 1,
            "backend": "gloo (CPU)",
            "sampled_heads": {"sampler": "uniform", "num_negatives": 64},
        },
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "environment": environment_info(),
        "rows": rows,
    }
    name = args.name or ("scale_quick" if args.quick else "scale")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Scaling: examples/s and peak RSS against C ({', '.join(f'{c:,}' for c in sizes)})",
        "",
        f"MLP encoder ({HIDDEN} hidden), {n_rows} synthetic rows, {N_FEATURES} features, global batch "
        f"{batch_size}, second epoch timed, 1 torch thread per process, gloo DDP. Load average "
        f"{result['load_average_before']} before, {result['load_average_after']} after "
        "(shared 2-core machine: timings are noisy).",
        "",
        "| head | C | processes | examples/s | x vs 1 proc | peak RSS MiB per rank | head parameters MiB per rank |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['head']} | {r['n_labels']:,} | {r['processes']} | {r['examples_per_second']:.0f} | "
            f"{r['speedup_vs_1_process'] if r['speedup_vs_1_process'] is not None else '-'} | {', '.join(f'{m:.0f}' for m in r['peak_rss_mib_per_rank'])} | "
            f"{', '.join(f'{m:.2f}' for m in r['head_parameter_mib_per_rank'])} |"
        )
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
