"""Fitting cost of the tree sampler (issue 6): debian-deps and a synthetic set with 1,000,000 labels.

Each case runs in a fresh child process so that its peak resident memory (``ru_maxrss``) is its own. Reported:
fit seconds (PCA and tree separately), peak memory, the mean log p_n(y|x) of the test pairs against the
uniform and frequency samplers (how well the tree mimics the data), and the cost of drawing negatives and
of ``log_prob_all``. Writes ``benchmarks/results/tree_sampler_fit.json`` (``--quick``: a small synthetic
set, nothing written).

    python benchmarks/tree_sampler_fit.py            # debian-deps (eq9 and median splits) + 1M synthetic labels
    python benchmarks/tree_sampler_fit.py --quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import resource
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _case(spec: dict[str, Any], queue: mp.Queue) -> None:
    import numpy as np
    import torch

    from sparsexc.datasets import load, synthetic
    from sparsexc.samplers import FrequencySampler, TreeSampler
    from sparsexc.samplers import _pca

    torch.set_num_threads(2)
    started = time.perf_counter()
    if spec["data"] == "debian-deps":
        splits = load("debian-deps")
    else:
        splits = synthetic(spec["rows"], spec["features"], spec["labels"], seed=0)
    X, Y = splits.train.X, splits.train.Y
    load_seconds = time.perf_counter() - started
    pca_calls: list[float] = []
    pca = _pca.whitened_pca

    def timed_pca(*args, **kwargs):  # time the PCA part of the fit separately
        t = time.perf_counter()
        out = pca(*args, **kwargs)
        pca_calls.append(time.perf_counter() - t)
        return out

    import sparsexc.samplers.tree as tree_module

    tree_module.whitened_pca = timed_pca
    t = time.perf_counter()
    tree = TreeSampler(X.shape[1], Y.shape[1], {"split": spec["split"]}).fit(X, Y)
    fit_seconds = time.perf_counter() - t

    Xt, Yt = splits.test.X[:2000], splits.test.Y[:2000]
    coo = Yt.tocoo()
    rows, labels = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
    tree_ll = float(tree.log_prob(Xt, labels[:, None], rows=rows).double().mean())
    freq = FrequencySampler(X.shape[1], Y.shape[1]).fit(X, Y)
    freq_ll = float(freq.log_prob(Xt, labels[:, None], rows=rows).double().mean())

    xs = splits.test.X[:1000]
    t = time.perf_counter()
    drawn, _ = tree.sample(xs, 10, generator=torch.Generator().manual_seed(0))
    sample_seconds = time.perf_counter() - t
    t = time.perf_counter()
    all_lp = tree.log_prob_all(splits.test.X[:16])
    all_seconds = time.perf_counter() - t
    queue.put({
        "data": spec["data"], "split": spec["split"], "n_train": X.shape[0], "n_features": X.shape[1],
        "n_labels": Y.shape[1], "label_pairs": int(Y.nnz), "depth": tree.depth,
        "load_seconds": round(load_seconds, 2), "fit_seconds": round(fit_seconds, 2),
        "pca_seconds": round(sum(pca_calls), 2), "tree_seconds": round(fit_seconds - sum(pca_calls), 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "test_pairs": int(coo.nnz), "mean_log_p_test_tree": round(tree_ll, 4),
        "mean_log_p_test_frequency": round(freq_ll, 4), "mean_log_p_test_uniform": round(-float(np.log(Y.shape[1])), 4),
        "sample_10_per_row_1000_rows_ms": round(1e3 * sample_seconds, 2),
        "padding_drawn": int((drawn < 0).sum()),
        "log_prob_all_16_rows_ms": round(1e3 * all_seconds, 2),
        "log_prob_all_sum_max_error": float((all_lp.double().exp().sum(1) - 1).abs().max()),
    })


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_case, args=(spec, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small synthetic set only; nothing written")
    parser.add_argument("--synthetic-rows", type=int, default=250_000, help="rows (train + test) of the 1M-label set")
    parser.add_argument("--synthetic-labels", type=int, default=1_000_000)
    parser.add_argument("--skip-debian", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args()
    if "SPARSEXC_DATA" not in os.environ and SHARED_DATASETS.is_dir():
        os.environ["SPARSEXC_DATA"] = str(SHARED_DATASETS)  # the children inherit it
    from sparsexc._environment import environment_info

    if args.quick:
        specs = [{"data": "synthetic", "rows": 5000, "features": 2000, "labels": 3000, "split": "eq9"}]
    else:
        specs = [] if args.skip_debian else [{"data": "debian-deps", "split": "eq9"}, {"data": "debian-deps", "split": "median"}]
        if not args.skip_synthetic:
            specs.append({"data": "synthetic", "rows": args.synthetic_rows, "features": 100_000,
                          "labels": args.synthetic_labels, "split": "eq9"})
    env = environment_info()
    results: list[dict[str, Any]] = []
    path = RESULTS / "tree_sampler_fit.json"
    for spec in specs:
        load_before = list(os.getloadavg())
        row = run_case(spec)
        row["load_average_before"], row["load_average_after"] = load_before, list(os.getloadavg())
        results.append(row)
        print(f"{row['data']:<12} split={row['split']:<6} C={row['n_labels']:>9,} pairs={row['label_pairs']:>9,} "
              f"fit {row['fit_seconds']:8.1f} s (pca {row['pca_seconds']:.1f}, tree {row['tree_seconds']:.1f})  "
              f"peak {row['peak_rss_mib']:8.0f} MiB  test log p: tree {row['mean_log_p_test_tree']:.2f} "
              f"freq {row['mean_log_p_test_frequency']:.2f} unif {row['mean_log_p_test_uniform']:.2f}  "
              f"sample {row['sample_10_per_row_1000_rows_ms']:.0f} ms  load {row['load_average_before'][0]:.1f}",
              flush=True)
        if not args.quick:  # rewritten after every case, so a long last case cannot lose the others
            RESULTS.mkdir(exist_ok=True)
            out = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "environment": env,
                   "torch_threads": 2, "target": "debian-deps fit < 120 s on 2 cores", "results": results}
            path.write_text(json.dumps(out, indent=2) + "\n")
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
