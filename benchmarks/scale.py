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

from _harness import (
    add_common_flags,
    command_line,
    environment,
    load_average,
    page_header,
    peak_rss_mib,
    timed,
    utc_now,
    write_results,
)

HIDDEN = 64
N_FEATURES = 2000


def _parameter_mib(module) -> float:
    return sum(p.numel() * p.element_size() for p in module.parameters()) / 2**20


SHARDED = " (label-sharded)"


def _worker(head: str, sizes: list[int], n_rows: int, batch_size: int) -> list[dict]:
    import torch

    from sparsexc.datasets import synthetic
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
        with timed() as fit_time:
            trainer.fit(split.train.X, split.train.Y)
        out.append(
            {
                "head": head,
                "n_labels": n_labels,
                "processes": world_size(),
                "examples_per_second": trainer.history[-1]["examples_per_second"],
                "epoch_seconds": trainer.history[-1]["seconds"],
                "total_seconds": fit_time.wall,
                "train_loss": trainer.history[-1]["train_loss"],
                "peak_rss_mib": round(peak_rss_mib(), 1),
                "head_parameter_mib": round(_parameter_mib(model.head), 2),
                "n_train": split.train.X.shape[0],
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_flags(parser, quick="C up to 1e5, fewer rows (a few minutes)", out=True)
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
    from sparsexc.distributed import spawn
    from sparsexc.heads import list_heads

    sizes = args.sizes or ([1000, 10_000, 100_000] if args.quick else [1000, 10_000, 100_000, 1_000_000])
    n_rows, batch_size = args.rows or (512 if args.quick else 1024), args.batch_size
    plain = ["softmax"] + [h for h in ("sampled-softmax", "negative-sampling") if h in list_heads()]
    heads = plain + [h + SHARDED for h in plain]
    if args.heads:
        heads = [h for h in heads if h in args.heads.split(",")]
    load_before = load_average() or []
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
        "date": utc_now(),
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
        "load_average_after": [round(x, 2) for x in load_average() or []],
        "environment": environment(),
        "rows": rows,
    }
    name = args.name or ("scale_quick" if args.quick else "scale")
    title = f"Scaling: examples/s and peak RSS against C ({', '.join(f'{c:,}' for c in sizes)})"
    lines = [
        page_header(title, result["environment"], result["date"], command_line(__file__)),
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
    write_results(args.out, name, result, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
