"""Fitting cost of the tree sampler (issue 6): debian-deps and a synthetic set with 1,000,000 labels.

Each case runs in a fresh child process so that its peak resident memory (``ru_maxrss``) is its own. Reported:
fit seconds (PCA and tree separately), peak memory, the mean log p_n(y|x) of the test pairs against the
uniform and frequency samplers (how well the tree mimics the data), and the cost of drawing negatives and
of ``log_prob_all``. The PCA part is the part of the fit that does not depend on the labels, timed after the
fit as the same sampler's fit on a 2-label problem over the same rows (the whitened PCA, the projection and
a one-node tree: 4% more than the PCA alone on debian-deps); the tree part is the rest of the fit.
Writes ``benchmarks/results/tree_sampler_fit.json`` (``--quick``: a small synthetic set, nothing written);
cases of earlier runs that this run does not repeat are kept in the file.

``--select-reg`` (synthetic set): fit every ``--reg-candidates`` setting on 90% of the training rows, score the
other 10% (held-out *training* rows; the test set is not looked at), then fit the best one on all training
rows and report it like any other case.

    python benchmarks/tree_sampler_fit.py            # debian-deps (eq9 and median splits) + 1M synthetic labels
    python benchmarks/tree_sampler_fit.py --skip-debian --select-reg
    python benchmarks/tree_sampler_fit.py --quick
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
from typing import Any

from _harness import (
    add_common_flags,
    environment,
    load_average,
    page_header,
    peak_rss_mib,
    read_json,
    timed,
    use_shared_datasets,
    utc_now,
    write_results,
)


def _held_out_log_p(tree, X, Y) -> float:
    """Mean log p_n(y|x) over the (row, label) pairs of ``X``, ``Y``."""
    import numpy as np
    import torch

    coo = Y.tocoo()
    rows, labels = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
    return float(tree.log_prob(X, labels[:, None], rows=rows).double().mean())


def _select_params(X, Y, candidates: list[dict[str, Any]], split: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Fit each candidate on 90% of the training rows, score the other 10%; return the best and the table."""
    import numpy as np

    from sparsexc.samplers import TreeSampler

    order = np.random.default_rng(0).permutation(X.shape[0])
    cut = int(0.9 * X.shape[0])
    fit_rows, held_rows = np.sort(order[:cut]), np.sort(order[cut:])
    table = []
    for params in candidates:
        with timed() as watch:
            tree = TreeSampler(X.shape[1], Y.shape[1], {"split": split, **params}).fit(X[fit_rows], Y[fit_rows])
            held_out_log_p = _held_out_log_p(tree, X[held_rows], Y[held_rows])
        table.append(
            {
                **params,
                "held_out_train_log_p": round(held_out_log_p, 4),
                "fit_seconds": round(watch.wall, 1),
            }
        )
        print(
            f"  select: {params} held-out log p {table[-1]['held_out_train_log_p']:.3f} ({table[-1]['fit_seconds']} s)",
            flush=True,
        )
    best = max(table, key=lambda row: row["held_out_train_log_p"])
    return {k: best[k] for k in candidates[0]}, table


def _label_free_fit_seconds(X, params: dict[str, Any]) -> float:
    """Wall seconds of the part of ``TreeSampler.fit`` on ``X`` that does not depend on the labels (the
    whitened PCA and the projection): the fit of a sampler with the same settings on 2 labels (row i has label
    i mod 2), whose tree is one node (the "median" split: no reassignment rounds)."""
    import numpy as np
    import scipy.sparse as sp

    from sparsexc.samplers import TreeSampler

    n = X.shape[0]
    two_labels = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), np.arange(n) % 2)), shape=(n, 2))
    with timed() as watch:
        TreeSampler(X.shape[1], 2, {**params, "split": "median"}).fit(X, two_labels)
    return watch.wall


def _case(spec: dict[str, Any], queue: mp.Queue) -> None:
    import numpy as np
    import torch

    from sparsexc.datasets import load, synthetic
    from sparsexc.samplers import FrequencySampler, TreeSampler

    torch.set_num_threads(2)
    with timed() as load_time:
        if spec["data"] == "debian-deps":
            splits = load("debian-deps")
        else:
            splits = synthetic(spec["rows"], spec["features"], spec["labels"], seed=0)
    X, Y = splits.train.X, splits.train.Y
    params, selection = dict(spec.get("params", {})), None
    if spec.get("candidates"):
        params, selection = _select_params(X, Y, spec["candidates"], spec["split"])
    with timed() as fit_time:
        tree = TreeSampler(X.shape[1], Y.shape[1], {"split": spec["split"], **params}).fit(X, Y)
    fit_seconds = fit_time.wall
    pca_seconds = _label_free_fit_seconds(X, params)

    Xt, Yt = splits.test.X[:2000], splits.test.Y[:2000]
    tree_ll = _held_out_log_p(tree, Xt, Yt)
    freq_ll = _held_out_log_p(FrequencySampler(X.shape[1], Y.shape[1]).fit(X, Y), Xt, Yt)

    xs = splits.test.X[:1000]
    with timed() as sample_time:
        drawn, _ = tree.sample(xs, 10, generator=torch.Generator().manual_seed(0))
    with timed() as all_time:
        all_lp = tree.log_prob_all(splits.test.X[:16])
    sample_seconds, all_seconds = sample_time.wall, all_time.wall
    queue.put(
        {
            "data": spec["data"],
            "split": spec["split"],
            "tree_params": {"split": spec["split"], **params},
            "reg_selection_on_held_out_train_rows": selection,
            "n_train": X.shape[0],
            "n_features": X.shape[1],
            "n_labels": Y.shape[1],
            "label_pairs": int(Y.nnz),
            "depth": tree.depth,
            "load_seconds": round(load_time.wall, 2),
            "fit_seconds": round(fit_seconds, 2),
            "pca_seconds": round(pca_seconds, 2),
            "tree_seconds": round(fit_seconds - pca_seconds, 2),
            "peak_rss_mib": round(peak_rss_mib(), 1),
            "test_pairs": int(Yt.nnz),
            "mean_log_p_test_tree": round(tree_ll, 4),
            "mean_log_p_test_frequency": round(freq_ll, 4),
            "mean_log_p_test_uniform": round(-float(np.log(Y.shape[1])), 4),
            "sample_10_per_row_1000_rows_ms": round(1e3 * sample_seconds, 2),
            "padding_drawn": int((drawn < 0).sum()),
            "log_prob_all_16_rows_ms": round(1e3 * all_seconds, 2),
            "log_prob_all_sum_max_error": float((all_lp.double().exp().sum(1) - 1).abs().max()),
        }
    )


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_case, args=(spec, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def markdown(out: dict[str, Any]) -> str:
    """The results page: one table row per case, then the regulariser selections."""
    lines = [
        page_header(
            "Tree sampler fit (issue 6)", out["environment"], out["date"], "python benchmarks/tree_sampler_fit.py"
        ),
        "",
        f"Target: {out['target']}. Rows marked * come from an earlier run (their load average says under what load).",
        "",
        "| data | split | reg | C | train rows | pairs | fit s (PCA, tree) | peak MiB | test log p: tree / freq / uniform | "
        "sample 10 x 1000 rows ms | load before |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in out["results"]:
        tp = r.get("tree_params") or {}
        reg = f"{tp.get('reg_scaling', 'constant')} {tp.get('reg', 0.1)}"
        lines.append(
            f"| {r['data']}{' *' if r.get('measured_in_an_earlier_run') else ''} | {r['split']} | {reg} | {r['n_labels']:,} | "
            f"{r['n_train']:,} | {r['label_pairs']:,} | {r['fit_seconds']} ({r['pca_seconds']}, {r['tree_seconds']}) | "
            f"{r['peak_rss_mib']:.0f} | {r['mean_log_p_test_tree']:.2f} / {r['mean_log_p_test_frequency']:.2f} / "
            f"{r['mean_log_p_test_uniform']:.2f} | {r['sample_10_per_row_1000_rows_ms']:.0f} | {r['load_average_before'][0]:.1f} |"
        )
    for r in out["results"]:
        if r.get("reg_selection_on_held_out_train_rows"):
            lines += [
                "",
                f"Regulariser chosen on 10% held-out training rows ({r['data']}, C = {r['n_labels']:,}; fits on the other 90%):",
                "",
                "| reg_scaling | reg | held-out mean log p | fit s |",
                "| --- | --- | --- | --- |",
            ]
            lines += [
                f"| {c['reg_scaling']} | {c['reg']} | {c['held_out_train_log_p']:.3f} | {c['fit_seconds']} |"
                for c in r["reg_selection_on_held_out_train_rows"]
            ]
    return "\n".join(lines) + "\n"


def _key(row: dict[str, Any]) -> tuple:
    params = row.get("tree_params") or {}
    return row["data"], row["n_labels"], row["split"], params.get("reg_scaling", "constant"), params.get("reg", 0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_flags(parser, quick="a small synthetic set only; nothing written", out=True)
    parser.add_argument("--synthetic-rows", type=int, default=250_000, help="rows (train + test) of the 1M-label set")
    parser.add_argument("--synthetic-labels", type=int, default=1_000_000)
    parser.add_argument("--skip-debian", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--synthetic-split", default="eq9", help="split rule of the synthetic case (eq9 or median)")
    parser.add_argument(
        "--synthetic-reg", default="constant:0.1", help="reg_scaling:reg of the synthetic case without --select-reg"
    )
    parser.add_argument(
        "--select-reg", action="store_true", help="choose the synthetic case's regulariser on held-out training rows"
    )
    parser.add_argument(
        "--reg-candidates",
        default="constant:0.1,node_size:0.003,node_size:0.03",
        help="reg_scaling:reg settings tried by --select-reg",
    )
    args = parser.parse_args()
    candidates = [
        {"reg_scaling": c.split(":")[0], "reg": float(c.split(":")[1])} for c in args.reg_candidates.split(",")
    ]
    use_shared_datasets()  # the children inherit it

    if args.quick:
        specs = [
            {
                "data": "synthetic",
                "rows": 5000,
                "features": 2000,
                "labels": 3000,
                "split": "eq9",
                "candidates": candidates if args.select_reg else None,
            }
        ]
    else:
        specs = (
            []
            if args.skip_debian
            else [{"data": "debian-deps", "split": "eq9"}, {"data": "debian-deps", "split": "median"}]
        )
        if not args.skip_synthetic:
            specs.append(
                {
                    "data": "synthetic",
                    "rows": args.synthetic_rows,
                    "features": 100_000,
                    "labels": args.synthetic_labels,
                    "split": args.synthetic_split,
                    "candidates": candidates if args.select_reg else None,
                    "params": {
                        "reg_scaling": args.synthetic_reg.split(":")[0],
                        "reg": float(args.synthetic_reg.split(":")[1]),
                    },
                }
            )
    env = environment()
    results: list[dict[str, Any]] = []
    path = args.out / "tree_sampler_fit.json"
    earlier = read_json(path)["results"] if path.is_file() and not args.quick else []
    for spec in specs:
        load_before = load_average()
        row = run_case(spec)
        row["load_average_before"], row["load_average_after"] = load_before, load_average()
        results.append(row)
        print(
            f"{row['data']:<12} split={row['split']:<6} C={row['n_labels']:>9,} pairs={row['label_pairs']:>9,} "
            f"fit {row['fit_seconds']:8.1f} s (pca {row['pca_seconds']:.1f}, tree {row['tree_seconds']:.1f})  "
            f"peak {row['peak_rss_mib']:8.0f} MiB  test log p: tree {row['mean_log_p_test_tree']:.2f} "
            f"freq {row['mean_log_p_test_frequency']:.2f} unif {row['mean_log_p_test_uniform']:.2f}  "
            f"sample {row['sample_10_per_row_1000_rows_ms']:.0f} ms  load {row['load_average_before'][0]:.1f}",
            flush=True,
        )
        if not args.quick:  # rewritten after every case, so a long last case cannot lose the others
            keys = {_key(r) for r in results}
            kept = [dict(r, measured_in_an_earlier_run=True) for r in earlier if _key(r) not in keys]
            out = {
                "date": utc_now(),
                "environment": env,
                "torch_threads": 2,
                "target": "debian-deps fit < 120 s on 2 cores",
                "results": results + kept,
            }
            json_path, md_path = write_results(args.out, "tree_sampler_fit", out, markdown(out))
            print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
