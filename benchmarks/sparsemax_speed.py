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
import functools
import statistics
from pathlib import Path

import torch
from _harness import RESULTS, add_common_flags, environment, load_average, read_json, timed, utc_now, write_results

from sparsexc.ops import sparsemax

try:
    import entmax
except ImportError:  # the comparison needs the test extra
    raise SystemExit("this benchmark compares against the entmax package: pip install 'entmax>=1.3'") from None

OUT = RESULTS  # --out
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
    for fn in fns.values():  # warm-up
        forward(fn)
        forward_backward(fn)
    for _ in range(repeats):
        for name, fn in fns.items():
            for kind, run in (("forward", forward), ("forward_backward", forward_backward)):
                with timed() as watch:
                    run(fn)
                times[name][kind].append(watch.wall)
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
            algos = {a: functools.partial(sparsemax, dim=-1, algorithm=a) for a in names}
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


def run_environment() -> dict:
    """The harness's environment record, grouped as this script's saved results have it (``--render`` and
    ``--rows`` read them back): date, machine (with the device), versions (with entmax), load average."""
    env = environment(extra_packages=("entmax",))
    return {
        "date": utc_now(),
        "machine": {
            "cpu": env["processor"],
            "logical_cpus": env["cpu_count"],
            "platform": env["platform"],
            "device": str(DEVICE),
            "torch_threads": env["torch_threads"],
            "gpu": torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else None,
        },
        "versions": {"python": env["python"], **env["versions"]},
        "load_average_at_start": env["load_average"],
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


def write_report(result: dict) -> None:
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
    write_results(OUT, _stem(), result, "\n".join(lines) + "\n")


def load_saved() -> dict:
    path = OUT / f"{_stem()}.json"
    return read_json(path) if path.exists() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_flags(parser, quick="small sizes, 3 repeats, print only", out=True)
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
    args = parser.parse_args()
    global DEVICE, OUT
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available on this machine")
    OUT = Path(args.out)
    if args.render:
        write_report(load_saved())
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 7)
    save = not (args.no_save or args.quick)
    env = run_environment()
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
        result["environment"]["load_average_at_end"] = load_average()
    if save:
        write_report(result)
        print(f"wrote {OUT / (_stem() + '.json')} and .md")


if __name__ == "__main__":
    main()
