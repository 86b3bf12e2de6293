"""Speed of ``sparsexc.ops.sparsemax`` against ``torch.softmax`` and ``entmax.sparsemax`` (CPU, float32).

Rows of seeded standard-normal scores (support of a few dozen entries, like a trained XC model), batch 256 at
K = 100 ... 1e5 and batch 32 at K = 1e6, plus "flat" rows (0.01 x standard normal, as from an untrained model;
supports of several hundred entries). Forward alone and forward + backward (a fixed random upstream gradient),
median of ``--repeats`` runs, all methods alternating in the same process so machine noise hits them alike.
Prints a table and writes ``benchmarks/results/sparsemax_speed.json`` and ``.md`` (machine, threads, versions,
date, load average).

    python benchmarks/sparsemax_speed.py                    # the full table (several minutes on 2 cores)
    python benchmarks/sparsemax_speed.py --quick            # small sizes, 3 repeats, nothing written
    python benchmarks/sparsemax_speed.py --rows 1e5         # re-run one row; added to the saved results
    python benchmarks/sparsemax_speed.py --thresholds       # sort vs topk vs bisect by K (auto's thresholds)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import sparsexc
from sparsexc._environment import cpu_model
from sparsexc.ops import sparsemax

try:
    import entmax
except ImportError:  # the comparison needs the test extra
    raise SystemExit("this benchmark compares against the entmax package: pip install 'entmax>=1.3'") from None

RESULTS = Path(__file__).resolve().parent / "results"
# (name, batch, K, score scale)
FULL_ROWS = [
    ("K=100", 256, 100, 1.0),
    ("K=1e3", 256, 1_000, 1.0),
    ("K=1e4", 256, 10_000, 1.0),
    ("K=1e5", 256, 100_000, 1.0),
    ("K=1e5 flat", 256, 100_000, 0.01),
    ("K=1e6", 32, 1_000_000, 1.0),
]
QUICK_ROWS = [("K=100", 256, 100, 1.0), ("K=1e3", 256, 1_000, 1.0), ("K=1e4", 256, 10_000, 1.0)]
THRESHOLD_KS = [16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536]
THRESHOLD_SORT_MAX_K = 4096  # the full sort is far behind above this; not timed there
DEVICE = torch.device("cpu")  # --device; results of a CUDA run go to sparsemax_speed_cuda.{json,md}


def methods(include_entmax_sort: bool) -> dict:
    out = {
        "softmax": lambda x: torch.softmax(x, dim=-1),
        "sparsemax (ours, auto)": lambda x: sparsemax(x, dim=-1),
        "entmax k=64": lambda x: entmax.sparsemax(x, dim=-1, k=64),
    }
    if include_entmax_sort:
        out["entmax full sort"] = lambda x: entmax.sparsemax(x, dim=-1)
    return out


def median_times(fns: dict, z: torch.Tensor, grad: torch.Tensor, repeats: int) -> dict:
    """Median seconds of forward and forward+backward per method; methods alternate within each repeat."""

    def forward(fn):
        with torch.no_grad():
            fn(z)
        _sync()

    def forward_backward(fn):
        x = z.detach().requires_grad_()
        fn(x).backward(grad)
        _sync()

    times = {name: {"forward": [], "forward_backward": []} for name in fns}
    for name, fn in fns.items():  # warm-up
        forward(fn)
        forward_backward(fn)
    for _ in range(repeats):
        for name, fn in fns.items():
            for kind, run in (("forward", forward), ("forward_backward", forward_backward)):
                start = time.perf_counter()
                run(fn)
                times[name][kind].append(time.perf_counter() - start)
    return {name: {kind: statistics.median(ts) for kind, ts in kinds.items()} for name, kinds in times.items()}


def _sync() -> None:
    # CUDA kernels run asynchronously: wait for them before reading the clock
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def _stem() -> str:
    return "sparsemax_speed" if DEVICE.type == "cpu" else f"sparsemax_speed_{DEVICE.type}"


def scores(batch: int, n_cols: int, scale: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)  # drawn on the CPU, so every device times the same scores
    z, grad = torch.randn(batch, n_cols, generator=gen) * scale, torch.randn(batch, n_cols, generator=gen)
    return z.to(DEVICE), grad.to(DEVICE)


def run_rows(rows, repeats: int, seed: int) -> list[dict]:
    out = []
    for name, batch, n_cols, scale in rows:
        z, grad = scores(batch, n_cols, scale, seed)
        # entmax's full sort at K = 1e6 takes seconds per call; fewer repeats there
        reps = max(3, repeats // 2) if n_cols >= 1_000_000 else repeats
        timing = median_times(methods(include_entmax_sort=True), z, grad, reps)
        support = (sparsemax(z) > 0).sum(dim=1).float()
        ours, soft, esort, ek = (
            timing[m] for m in ("sparsemax (ours, auto)", "softmax", "entmax full sort", "entmax k=64")
        )
        row = {
            "row": name,
            "batch": batch,
            "K": n_cols,
            "score_scale": scale,
            "repeats": reps,
            "mean_support": float(support.mean()),
            "max_support": int(support.max()),
            "seconds": timing,
            "ratios": {
                kind: {
                    "ours_over_softmax": ours[kind] / soft[kind],
                    "entmax_sort_over_ours": esort[kind] / ours[kind],
                    "entmax_k64_over_ours": ek[kind] / ours[kind],
                }
                for kind in ("forward", "forward_backward")
            },
        }
        out.append(row)
        print(format_row(row), flush=True)
    return out


def run_thresholds(repeats: int, seed: int) -> list[dict]:
    out = []
    for scale in (1.0, 0.01):
        for n_cols in THRESHOLD_KS:
            names = ("sort", "topk", "bisect", "auto") if n_cols <= THRESHOLD_SORT_MAX_K else ("topk", "bisect", "auto")
            algos = {a: (lambda a: lambda x: sparsemax(x, dim=-1, algorithm=a))(a) for a in names}
            z, grad = scores(256, n_cols, scale, seed)
            timing = median_times(algos, z, grad, repeats)
            entry = {
                "K": n_cols,
                "batch": 256,
                "score_scale": scale,
                "mean_support": float((sparsemax(z) > 0).sum(dim=1).float().mean()),
                "seconds_forward_backward": {a: t["forward_backward"] for a, t in timing.items()},
                "seconds_forward": {a: t["forward"] for a, t in timing.items()},
            }
            out.append(entry)
            print(
                f"scale {scale:<5} K={n_cols:>6} support {entry['mean_support']:7.1f}  fwd+bwd ms: "
                + "  ".join(f"{a} {1e3 * t:8.2f}" for a, t in entry["seconds_forward_backward"].items()),
                flush=True,
            )
    return out


def format_row(row: dict) -> str:
    s, r = row["seconds"], row["ratios"]
    ms = lambda name, kind: f"{1e3 * s[name][kind]:9.1f}"  # noqa: E731
    return (
        f"{row['row']:<11} fwd+bwd ms: softmax {ms('softmax', 'forward_backward')} | ours {ms('sparsemax (ours, auto)', 'forward_backward')}"
        f" | entmax sort {ms('entmax full sort', 'forward_backward')} | entmax k64 {ms('entmax k=64', 'forward_backward')}"
        f" || ours/softmax {r['forward_backward']['ours_over_softmax']:.2f}"
        f"  entmax-sort/ours {r['forward_backward']['entmax_sort_over_ours']:.1f}"
    )


def environment() -> dict:
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_model(),
            "logical_cpus": os.cpu_count(),
            "platform": platform.platform(),
            "device": str(DEVICE),
            "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else None,
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "entmax": getattr(entmax, "__version__", "unknown"),
            "sparsexc": sparsexc.__version__,
        },
        "load_average_at_start": list(os.getloadavg()),
    }


def table_md(rows: list[dict], kind: str) -> list[str]:
    lines = [
        "| row | batch | K | mean support | softmax ms | ours ms | entmax sort ms | entmax k=64 ms "
        "| ours / softmax | entmax sort / ours | entmax k=64 / ours |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s, r = row["seconds"], row["ratios"][kind]
        lines.append(
            f"| {row['row']} | {row['batch']} | {row['K']:,} | {row['mean_support']:.0f} "
            f"| {1e3 * s['softmax'][kind]:.1f} | {1e3 * s['sparsemax (ours, auto)'][kind]:.1f} "
            f"| {1e3 * s['entmax full sort'][kind]:.1f} | {1e3 * s['entmax k=64'][kind]:.1f} "
            f"| {r['ours_over_softmax']:.2f} | {r['entmax_sort_over_ours']:.1f} | {r['entmax_k64_over_ours']:.1f} |"
        )
    return lines


def write_results(result: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    env = result["environment"]
    lines = [
        "# sparsemax speed (CPU, float32)",
        "",
        f"Date {env['date']}; {env['machine']['cpu']}, {env['machine']['logical_cpus']} logical CPUs, "
        f"torch threads {env['machine']['torch_threads']} (main table); torch {env['versions']['torch']}, "
        f"entmax {env['versions']['entmax']}, sparsexc {env['versions']['sparsexc']}. "
        f"Load average at start {env['load_average_at_start']} (the machine is shared: timings are noisy).",
        "",
        'Scores: seeded standard normal rows ("flat": 0.01 x standard normal). Median of the repeats; '
        "all methods alternate in one process. Reproduce: `python benchmarks/sparsemax_speed.py`.",
        "",
    ]
    if env["load_average_at_start"][0] >= env["machine"]["logical_cpus"]:
        lines += [
            "The load average was at least the CPU count: each parallel torch op then waits for a busy core,",
            "which inflates multi-thread times of small rows and of many-op paths; the 1-thread re-run "
            "(if present) is the steadier comparison.",
            "",
        ]
    if result.get("rows"):
        for kind, title in (("forward_backward", "Forward + backward"), ("forward", "Forward only")):
            lines += [f"## {title}", ""] + table_md(result["rows"], kind) + [""]
    for rerun in result.get("reruns", []):
        renv = rerun["environment"]
        lines += [
            f"## Re-run of {', '.join(r['row'] for r in rerun['rows'])} ({renv['date']}, "
            f"{renv['machine']['torch_threads']} torch thread(s), load average {renv['load_average_at_start']})",
            "",
        ]
        lines += ["Forward + backward:", ""] + table_md(rerun["rows"], "forward_backward") + [""]
        lines += ["Forward only:", ""] + table_md(rerun["rows"], "forward") + [""]
    if result.get("thresholds"):
        th = result["thresholds"]
        algos = ("sort", "topk", "bisect", "auto")
        lines += [
            f'## algorithm="auto" thresholds: forward + backward ms by K (batch 256, '
            f"{th['environment']['machine']['torch_threads']} torch thread(s); {th['environment']['date']})",
            "",
            "Reproduce: `python benchmarks/sparsemax_speed.py --thresholds --threads 1`.",
            "",
            "| score scale | K | mean support | " + " | ".join(algos) + " |",
            "|---|---|---|" + "---|" * len(algos),
        ]
        for e in th["by_K"]:
            cells = [
                f"{1e3 * e['seconds_forward_backward'][a]:.2f}" if a in e["seconds_forward_backward"] else "-"
                for a in algos
            ]
            lines.append(f"| {e['score_scale']} | {e['K']} | {e['mean_support']:.0f} | " + " | ".join(cells) + " |")
        lines.append("")
    for name, text in ((f"{_stem()}.json", json.dumps(result, indent=2)), (f"{_stem()}.md", "\n".join(lines))):
        tmp = RESULTS / (name + ".tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, RESULTS / name)  # atomic


def load_saved() -> dict:
    path = RESULTS / f"{_stem()}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 repeats, print only")
    parser.add_argument("--rows", nargs="+", help="re-run only these K (e.g. 1e5); appended to the saved results")
    parser.add_argument("--flat", action="store_true", help="with --rows: include the flat-score rows of those K")
    parser.add_argument("--thresholds", action="store_true", help="time each algorithm by K (auto's thresholds)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per method (default 7; quick 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the saved .json")
    parser.add_argument(
        "--device",
        default="cpu",
        help="cpu (default) or cuda[:N]; CUDA results are written to sparsemax_speed_cuda.json / .md",
    )
    parser.add_argument("--out", default=None, help="write the JSON/MD into this folder instead of benchmarks/results")
    args = parser.parse_args()
    global DEVICE, RESULTS
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available on this machine")
    if args.out:
        RESULTS = Path(args.out)
        RESULTS.mkdir(parents=True, exist_ok=True)
    if args.render:
        write_results(load_saved())
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 7)
    save = not (args.no_save or args.quick)
    env = environment()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {env['load_average_at_start']}")

    result = load_saved() if (args.rows or args.thresholds) else {}
    if args.thresholds:
        result["thresholds"] = {"environment": env, "by_K": run_thresholds(repeats, args.seed)}
    elif args.rows:
        wanted = {float(k) for k in args.rows}
        rows = [r for r in FULL_ROWS if float(r[2]) in wanted and (r[3] == 1.0 or args.flat)]
        if not rows:
            raise SystemExit(f"--rows must name K values among {sorted({r[2] for r in FULL_ROWS})}")
        result.setdefault("reruns", []).append({"environment": env, "rows": run_rows(rows, repeats, args.seed)})
    else:
        result = {"environment": env, "rows": run_rows(QUICK_ROWS if args.quick else FULL_ROWS, repeats, args.seed)}
        result["environment"]["load_average_at_end"] = list(os.getloadavg())
    if save:
        write_results(result)
        print(f"wrote {RESULTS / (_stem() + '.json')} and .md")


if __name__ == "__main__":
    main()
