"""Speed of ``sparsexc.io.read_xc`` against scikit-learn's ``load_svmlight_file(multilabel=True)``.

Generates a seeded XC-format file of about ``--size-mb`` MB in a temporary folder (deleted afterwards), reads it
with both (best of ``--repeats`` each, same process, alternating), checks that both give the same matrices,
prints a table and writes ``benchmarks/results/io_speed.json`` and ``.md`` (machine, versions, date).

    python benchmarks/io_speed.py                 # ~200 MB, the reported numbers
    python benchmarks/io_speed.py --size-mb 2 --no-save   # a quick check
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile

import numpy as np
import scipy.sparse as sp
from _harness import add_common_flags, environment, page_header, repeat, timed, utc_now, write_results
from sklearn.datasets import load_svmlight_file

from sparsexc.io import read_xc, write_xc


def make_data(size_mb: float, seed: int):
    """Rows like a bag-of-words XC set: ~60 features per row, 0-6 labels, tf-idf-like 4-6 digit values."""
    rng = np.random.default_rng(seed)
    n_features, n_labels = 100_000, 10_000
    bytes_per_row = 500  # measured average of the text below
    n_rows = max(10, int(size_mb * 1e6 / bytes_per_row))
    nnz_row = rng.integers(1, 120, n_rows)
    indptr = np.r_[0, np.cumsum(nnz_row)]
    # feature ids: Zipf-like popularity, unique within a row
    rows = np.repeat(np.arange(n_rows), nnz_row)
    cols = np.minimum((rng.pareto(1.2, indptr[-1]) * 50).astype(np.int64), n_features - 1)
    scale = 10.0 ** rng.integers(2, 7, indptr[-1])
    vals = (np.round(rng.random(indptr[-1]) * scale) / scale).astype(np.float32)
    vals[vals == 0] = 1
    X = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, n_features))
    X.sum_duplicates()  # repeated ids merged (their values add up, still valid data)
    n_lab = rng.integers(0, 7, n_rows)
    lab_rows = np.repeat(np.arange(n_rows), n_lab)
    lab_cols = rng.integers(0, n_labels, n_lab.sum())
    Y = sp.csr_matrix((np.ones(lab_rows.size, np.float32), (lab_rows, lab_cols)), shape=(n_rows, n_labels))
    Y.data[:] = 1
    return X, Y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=float, default=200.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-save", action="store_true", help="print only; write no results files")
    add_common_flags(ap, out=True)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="sparsexc-io-speed-")
    try:
        X, Y = make_data(args.size_mb, args.seed)
        path = os.path.join(tmp, "bench.txt")
        with timed() as write_time:
            write_xc(path, X, Y)
        write_s = write_time.wall
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            header_newline = len(fh.readline()) - 1
        n_features = X.shape[1]

        def ours():
            return read_xc(path)

        def theirs():
            # offset at the header's newline: sklearn skips the rest of that line, i.e. the header
            return load_svmlight_file(
                path, multilabel=True, zero_based=True, offset=header_newline, n_features=n_features, dtype=np.float32
            )

        t_ours, t_sk = [], []
        res_ours = res_sk = None
        for _ in range(args.repeats):  # alternate, so that machine noise hits both alike
            res_ours, (watch,) = repeat(ours, 1)
            t_ours.append(watch.wall)
            res_sk, (watch,) = repeat(theirs, 1)
            t_sk.append(watch.wall)
        Xo, Yo = res_ours
        Xs, ys = res_sk
        Xs.eliminate_zeros()
        same_x = Xo.shape == Xs.shape and (Xo != Xs).nnz == 0
        same_y = all(
            tuple(Yo.indices[Yo.indptr[i] : Yo.indptr[i + 1]]) == tuple(int(v) for v in ys[i])
            for i in range(Yo.shape[0])
        )
        if not (same_x and same_y):
            raise SystemExit("read_xc and load_svmlight_file disagree on the benchmark file")
        best_ours, best_sk = min(t_ours), min(t_sk)
        mb = size / 1e6
        env = environment()
        result = {
            "benchmark": "read_xc vs sklearn.datasets.load_svmlight_file(multilabel=True)",
            "file": {
                "bytes": size,
                "rows": int(X.shape[0]),
                "n_features": int(X.shape[1]),
                "n_labels": int(Y.shape[1]),
                "nnz_X": int(X.nnz),
                "nnz_Y": int(Y.nnz),
                "seed": args.seed,
            },
            "repeats": args.repeats,
            "read_xc_s": best_ours,
            "sklearn_s": best_sk,
            "read_xc_MB_per_s": mb / best_ours,
            "sklearn_MB_per_s": mb / best_sk,
            "speedup_vs_sklearn": best_sk / best_ours,
            "all_times_s": {"read_xc": t_ours, "sklearn": t_sk},
            "write_xc_s": write_s,
            "results_identical": True,
            "machine": env,
            "versions": {"python": env["python"], **env["versions"]},
            "date": utc_now(),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows = [("read_xc (sparsexc)", best_ours, mb / best_ours), ("load_svmlight_file (sklearn)", best_sk, mb / best_sk)]
    table = [
        f"file: {mb:.1f} MB, {result['file']['rows']} rows, nnz(X)={result['file']['nnz_X']}, best of {args.repeats}",
        "",
        "| reader | best time (s) | MB/s |",
        "|---|---:|---:|",
    ]
    table += [f"| {name} | {t:.2f} | {r:.1f} |" for name, t, r in rows]
    table += ["", f"read_xc is {best_sk / best_ours:.2f}x the speed of load_svmlight_file (same matrices)."]
    print("\n".join(table))
    if not args.no_save:
        header = page_header(
            "read_xc speed", env, result["date"], f"python benchmarks/io_speed.py --size-mb {args.size_mb:g}"
        )
        write_results(args.out, "io_speed", result, header + "\n\n" + "\n".join(table))


if __name__ == "__main__":
    main()
