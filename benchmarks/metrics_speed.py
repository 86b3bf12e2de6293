"""How long sparsexc.metrics.evaluate takes on an extreme-scale problem.

The target: scoring 100,000 rows against 1,000,000 labels from top-5 predictions takes seconds, not minutes.
Y_true is synthetic (seeded): 1 to 5 labels per row drawn from a Zipf-like label distribution, as in XMC data.
The predictions put each true label in the top 5 with probability 1/2 and fill the rest with random labels
(duplicates become -1 padding); the predicted label sets are the top-5 entries scoring above 0.5.
The propensities come from an independent "training" draw of the same distribution.

Usage::

    python benchmarks/metrics_speed.py            # full size, writes benchmarks/results/metrics_speed.{json,md}
    python benchmarks/metrics_speed.py --quick    # 10x smaller, prints only
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import scipy.sparse as sp
from _harness import add_common_flags, environment, page_header, repeat, utc_now, write_results

from sparsexc.metrics import evaluate, inverse_propensity, precision_at_k


def synthetic_labels(rng: np.random.Generator, n_samples: int, n_labels: int, label_order: np.ndarray) -> sp.csr_matrix:
    """1-5 labels per row; label popularity follows a Zipf law over a fixed random order of the labels."""
    counts = rng.integers(1, 6, size=n_samples)
    popularity_rank = np.minimum(rng.zipf(1.3, size=int(counts.sum())), n_labels) - 1
    indptr = np.concatenate(([0], np.cumsum(counts)))
    Y = sp.csr_matrix(
        (np.ones(popularity_rank.size, np.float32), label_order[popularity_rank], indptr), shape=(n_samples, n_labels)
    )
    Y.sum_duplicates()  # a row that drew a label twice keeps it once
    Y.data[:] = 1.0
    return Y


def synthetic_topk(rng: np.random.Generator, Y: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    n_samples, n_labels = Y.shape
    n_true = np.diff(Y.indptr)
    slot = np.arange(k)[None, :]
    # The j-th true label of the row (if any), else a random label.
    true_at_slot = Y.indices[np.minimum(Y.indptr[:-1, None] + slot, Y.indptr[1:, None] - 1)]
    use_true = (slot < n_true[:, None]) & (rng.random((n_samples, k)) < 0.5)
    indices = np.where(use_true, true_at_slot, rng.integers(0, n_labels, size=(n_samples, k)))
    # Repeated ids within a row become -1 padding.
    order = np.argsort(indices, axis=1, kind="stable")
    sorted_ids = np.take_along_axis(indices, order, axis=1)
    repeated = np.zeros_like(indices, dtype=bool)
    np.put_along_axis(repeated, order[:, 1:], sorted_ids[:, 1:] == sorted_ids[:, :-1], axis=1)
    indices[repeated] = -1
    return indices.astype(np.int64), rng.random((n_samples, k))


def topk_to_sets(indices: np.ndarray, scores: np.ndarray, n_labels: int, threshold: float) -> sp.csr_matrix:
    keep = (indices >= 0) & (scores > threshold)
    rows = np.nonzero(keep)[0]
    return sp.csr_matrix((np.ones(rows.size, np.float32), (rows, indices[keep])), shape=(indices.shape[0], n_labels))


def topk_to_csr(indices: np.ndarray, scores: np.ndarray, n_labels: int) -> sp.csr_matrix:
    keep = indices >= 0
    rows = np.nonzero(keep)[0]
    return sp.csr_matrix((scores[keep], (rows, indices[keep])), shape=(indices.shape[0], n_labels))


def timed(fn, repeats: int) -> dict:
    _, watches = repeat(fn, repeats)
    seconds = [w.wall for w in watches]
    return {"best_s": min(seconds), "median_s": statistics.median(seconds), "repeats": repeats}


def run(n_samples: int, n_labels: int, k: int, repeats: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    label_order = rng.permutation(n_labels)
    Y_train = synthetic_labels(rng, n_samples, n_labels, label_order)
    Y_true = synthetic_labels(rng, n_samples, n_labels, label_order)
    indices, scores = synthetic_topk(rng, Y_true, k)
    label_sets = topk_to_sets(indices, scores, n_labels, threshold=0.5)
    w = inverse_propensity(Y_train)
    csr_scores = topk_to_csr(indices, scores, n_labels)
    cases = {
        "evaluate, top-k (indices, scores), ks=1,3,5 + PSP/PSnDCG + set metrics": lambda: evaluate(
            Y_true, (indices, scores), ks=(1, 3, 5), inv_propensity=w, label_sets=label_sets
        ),
        "evaluate, top-k (indices, scores), ks=1,3,5 only": lambda: evaluate(Y_true, (indices, scores), ks=(1, 3, 5)),
        "evaluate, CSR scores, ks=1,3,5 + PSP/PSnDCG + set metrics": lambda: evaluate(
            Y_true, csr_scores, ks=(1, 3, 5), inv_propensity=w, label_sets=label_sets
        ),
        "precision_at_k(k=5), top-k": lambda: precision_at_k(Y_true, (indices, scores), 5),
        "inverse_propensity(Y_train)": lambda: inverse_propensity(Y_train),
    }
    timings = {name: timed(fn, repeats) for name, fn in cases.items()}
    table = evaluate(Y_true, (indices, scores), ks=(1, 3, 5), inv_propensity=w, label_sets=label_sets)
    return {
        "problem": {
            "n_samples": n_samples,
            "n_labels": n_labels,
            "k": k,
            "seed": seed,
            "true_labels": int(Y_true.nnz),
            "predicted_entries": int((indices >= 0).sum()),
            "label_set_entries": int(label_sets.nnz),
        },
        "timings": timings,
        "metrics_of_the_synthetic_run": table,
    }


def markdown(result: dict) -> str:
    p = result["problem"]
    lines = [
        page_header("sparsexc.metrics speed", result["machine"], result["date"], result["command"]),
        "",
        f"{p['n_samples']:,} rows x {p['n_labels']:,} labels, top-{p['k']} predictions "
        f"({p['true_labels']:,} true labels, {p['predicted_entries']:,} predicted entries, seed {p['seed']}).",
        "",
        "| case | best (s) | median (s) |",
        "|---|---:|---:|",
    ]
    for name, t in result["timings"].items():
        lines.append(f"| {name} | {t['best_s']:.3f} | {t['median_s']:.3f} |")
    lines += [
        "",
        "Metric values of the synthetic run (a sanity check, not a model result):",
        "",
        "| metric | value |",
        "|---|---:|",
    ]
    lines += [f"| {key} | {value:.6g} |" for key, value in result["metrics_of_the_synthetic_run"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller problem; print only, write nothing")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    add_common_flags(parser, out=True)
    args = parser.parse_args()
    n_samples, n_labels = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    machine = environment()  # before the run: the load average says how much to trust the timings
    result = run(n_samples, n_labels, k=5, repeats=args.repeats, seed=args.seed)
    result["machine"] = machine
    result["date"] = utc_now()
    result["command"] = (
        "python benchmarks/metrics_speed.py"
        + (" --quick" if args.quick else "")
        + ("" if args.repeats == 5 else f" --repeats {args.repeats}")
        + ("" if args.seed == 0 else f" --seed {args.seed}")
    )
    text = markdown(result)
    print(text)
    if not args.quick:
        json_path, md_path = write_results(args.out, "metrics_speed", result, text)
        print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
