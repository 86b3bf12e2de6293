"""Time and peak memory of ``sparsexc.embeddings.pmi_embeddings`` on a real label space (debian-deps), and
the label-embedding head's approximate top-k (hnswlib) against its exact top-k on those embeddings.

For each embedding dimension: wall time with 1 and with 2 BLAS threads (``threadpoolctl``; OpenBLAS threads
spin on a loaded shared machine, so both are shown), and the peak of Python-visible allocations during the
call (``tracemalloc``, which counts NumPy/SciPy arrays) in a separate, untimed call. The process's RSS
high-water mark is recorded too.

Top-k: a ``LabelEmbeddingHead`` with the d = 128 PMI embeddings and an identity output layer is queried with
the noiseless targets (normalised sums of label embeddings) of up to 2000 test rows; recall@k of
``ann="hnsw"`` against the exact top-k, index build and query seconds. Writes ``benchmarks/results/pmi_embeddings_speed.json`` and ``.md``.

Usage::

    python benchmarks/pmi_embeddings_speed.py            # debian-deps, d = 64, 128, 256 (about 2 minutes)
    python benchmarks/pmi_embeddings_speed.py --quick    # bibtex, d = 64
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from typing import Any

import numpy as np
from _harness import (
    add_common_flags,
    command_line,
    environment,
    load_average,
    page_header,
    peak_rss_mib,
    timed,
    use_shared_datasets,
    utc_now,
    write_results,
)


def measure(Y: Any, dim: int, threads: tuple[int, ...]) -> dict[str, Any]:
    """One dimension: seconds per BLAS thread count, tracemalloc peak (MiB), fallback count."""
    from threadpoolctl import threadpool_limits

    from sparsexc.embeddings import pmi_embeddings

    row: dict[str, Any] = {"dim": dim, "seconds": {}}
    for n in threads:
        with threadpool_limits(limits=n, user_api="blas"):
            with timed() as watch:
                _, fallback = pmi_embeddings(Y, dim, return_fallback=True)
            row["seconds"][str(n)] = round(watch.wall, 2)
    with threadpool_limits(limits=1, user_api="blas"):
        tracemalloc.start()
        pmi_embeddings(Y, dim)
        row["tracemalloc_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    row["fallback_labels"] = int(fallback.sum())
    return row


def ann_recall(Y_train: Any, Y_queries: Any, dim: int, ks: tuple[int, ...]) -> list[dict[str, Any]]:
    """Recall@k and seconds of the head's hnswlib top-k against its exact top-k (queries: noiseless targets)."""
    import torch
    from threadpoolctl import threadpool_limits

    from sparsexc.embeddings import pmi_embeddings
    from sparsexc.heads import LabelBatch, LabelEmbeddingHead, topk_recall

    with threadpool_limits(limits=1, user_api="blas"):
        E = pmi_embeddings(Y_train, dim)
    head = LabelEmbeddingHead(dim, E.shape[0], {"embedding_dim": dim, "ann": "hnsw"}, embeddings=E)
    with torch.no_grad():
        head.output.weight.copy_(torch.eye(dim))
        head.output.bias.zero_()
        labels = LabelBatch.from_csr(Y_queries[np.diff(Y_queries.indptr) > 0])
        queries = head.targets(labels)
        with timed() as build:
            head.hnsw_index()  # build once, timed apart from the queries
        rows = []
        for k in ks:
            with timed() as query_time:
                approx = head.topk(queries, k)[0]
            with timed() as exact_time:
                exact = head.topk_exact(queries, k)[0]
            rows.append(
                {
                    "k": k,
                    "recall": round(topk_recall(approx.numpy(), exact.numpy()), 4),
                    "hnsw_query_seconds": round(query_time.wall, 3),
                    "exact_seconds": round(exact_time.wall, 3),
                    "n_queries": int(queries.shape[0]),
                    "index_build_seconds": round(build.wall, 2),
                    "dim": dim,
                    "hnsw": {k2: v for k2, v in head.params.to_dict().items() if k2.startswith("hnsw")},
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_flags(parser, quick="bibtex, d = 64 only", out=True)
    args = parser.parse_args(argv)
    use_shared_datasets()
    import scipy.sparse as sp

    from sparsexc.datasets import load

    name, dims = ("bibtex", (64,)) if args.quick else ("debian-deps", (64, 128, 256))
    Y = load(name).train.Y
    co = sp.csr_matrix(Y.T @ Y)
    rows = [measure(Y, d, (1, 2)) for d in dims]
    Y_test = load(name).test.Y
    Y_test = sp.csr_matrix(
        (Y_test.data, Y_test.indices, Y_test.indptr), shape=(Y_test.shape[0], max(Y.shape[1], Y_test.shape[1]))
    )
    ann = ann_recall(Y, Y_test[:2000, : Y.shape[1]], 32 if args.quick else 128, (5, 10))
    maxrss = peak_rss_mib()
    result = {
        "benchmark": "pmi_embeddings_speed",
        "date": utc_now(),
        "command": command_line(__file__, argv),
        "dataset": name, "n_rows": Y.shape[0], "n_labels": Y.shape[1], "label_nnz": int(Y.nnz),
        "cooccurrence_nnz": int(co.nnz), "settings": "defaults (diagonal='pmi', alpha=1, n_iter=7, seed 0)",
        "rows": rows, "ann": ann, "process_max_rss_mib": round(maxrss, 1), "loadavg": load_average(),
        "machine": environment(extra_packages=("threadpoolctl",)),
    }  # fmt: skip
    stem = "pmi_embeddings_speed_quick" if args.quick else "pmi_embeddings_speed"
    title = f"PMI label embeddings: time and memory ({name})"
    lines = [page_header(title, result["machine"], result["date"], result["command"]), "",
             f"{Y.shape[0]} rows, {Y.shape[1]} labels, Y^T Y has {co.nnz:,} non-zeros; load average at the end "
             f"{', '.join(f'{x:.1f}' for x in result['loadavg'])}.", "",
             "| d | seconds, 1 BLAS thread | seconds, 2 BLAS threads | tracemalloc peak MiB | fallback labels |",
             "|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['dim']} | {r['seconds']['1']} | {r['seconds']['2']} | {r['tracemalloc_peak_mib']} | "
            f"{r['fallback_labels']} |"
        )
    lines += [
        "",
        f"Top-k of the label-embedding head, hnswlib (ann='hnsw', {ann[0]['hnsw']}) against exact, d = "
        f"{ann[0]['dim']}, {ann[0]['n_queries']} noiseless test targets as queries; index built in "
        f"{ann[0]['index_build_seconds']} s:",
        "",
        "| k | recall@k | hnsw query s | exact s |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {a['k']} | {a['recall']} | {a['hnsw_query_seconds']} | {a['exact_seconds']} |" for a in ann]
    lines += ["", f"Process RSS high-water mark: {result['process_max_rss_mib']} MiB (includes the loaded data set)."]
    write_results(args.out, stem, result, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
