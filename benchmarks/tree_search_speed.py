"""How fast beam search over a label tree with sparse node weights predicts (sparsexc.tree.beam_search).

A synthetic model shaped like debian-deps (issue 19): d = 40,000 features, rows of ~60 non-zeros (L2-normalised),
C = 19,000 labels on a tree of depth 2 (190 nodes of 100 labels each) or 3 (12 x 16 x 100), node weights of a
given density (each weight kept with that probability, values N(0, 1)), beam 10, top 5, squared hinge. It
reports, per case, the CPU time of laying the weights out for the search (once per model), predict ms per 1,000
rows (CPU seconds of the process, one thread), where that time goes (cProfile), and the two ways of scoring the
children of a beam: ``pair_scores`` on every (row, child) pair against one sparse product per batch over the
layout (``LevelIndex.children_scores``), on the same pairs. Run it with ``OMP_NUM_THREADS=1``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/tree_search_speed.py          # writes results/tree_search_speed.{json,md}
    OMP_NUM_THREADS=1 python benchmarks/tree_search_speed.py --quick  # a 10x smaller model, prints only
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

import numpy as np
import scipy.sparse as sp
import torch
from _harness import add_common_flags, environment, page_header, peak_rss_mib, repeat, timed, utc_now, write_results

from sparsexc.tree import LabelTree, TreeSearcher, pair_scores

CASES = ((2, 0.01), (2, 0.1), (3, 0.1), (2, 0.2))  # (depth, weight density)


def random_weights(rng: np.random.Generator, n: int, d: int, density: float, chunk: int = 500) -> sp.csr_matrix:
    """(n, d + 1) CSR float32: each weight (bias column included) non-zero with probability ``density``."""
    parts = []
    for start in range(0, n, chunk):
        rows, cols = np.nonzero(rng.random((min(chunk, n - start), d + 1), dtype=np.float32) < density)
        values = rng.standard_normal(rows.shape[0], dtype=np.float32)
        parts.append(sp.csr_matrix((values, (rows, cols)), shape=(min(chunk, n - start), d + 1)))
    return sp.csr_matrix(sp.vstack(parts, format="csr"))


def random_rows(rng: np.random.Generator, n: int, d: int, nnz: int) -> sp.csr_matrix:
    """(n, d) CSR float32 with ``nnz`` features per row (fewer where a draw repeats), L2-normalised."""
    cols = np.sort(rng.choice(d, size=(n, nnz)), axis=1).ravel()
    X = sp.csr_matrix((rng.random(n * nnz, dtype=np.float32), (np.repeat(np.arange(n), nnz), cols)), shape=(n, d))
    X.sum_duplicates()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / norms) @ X, dtype=np.float32)


def debian_like_tree(rng: np.random.Generator, depth: int, n_labels: int, leaf: int) -> LabelTree:
    """Depth 2: root -> C / leaf nodes -> leaf labels each; depth 3: root -> 12 -> 16 each -> leaf labels."""
    n_leaves = -(-n_labels // leaf)
    last = np.minimum(np.arange(n_leaves + 1, dtype=np.int64) * leaf, n_labels)
    if depth == 2:
        offsets = (np.array([0, n_leaves], dtype=np.int64), last)
    else:
        top = -(-n_leaves // 16)
        middle = np.linspace(0, n_leaves, top + 1).round().astype(np.int64)
        offsets = (np.array([0, top], dtype=np.int64), middle, last)
    return LabelTree(offsets, rng.permutation(n_labels).astype(np.int64))


def profile_shares(fn) -> dict[str, float]:
    """Seconds of one call of ``fn`` spent in its main parts (cProfile, so a little slower than unprofiled)."""
    profile = cProfile.Profile()
    profile.runcall(fn)
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    by_name: dict[str, float] = {}
    for (_, _, name), (_, _, own, cumulative, _) in stats.items():
        by_name[f"own:{name}"] = by_name.get(f"own:{name}", 0.0) + own
        by_name[f"cum:{name}"] = by_name.get(f"cum:{name}", 0.0) + cumulative
    total = by_name.get("cum:search", 0.0)
    scoring = by_name.get("cum:children_scores", 0.0)
    final = by_name.get("cum:_top_labels", 0.0)
    return {
        "total_s": total,
        "children_scores_s": scoring,
        "sparse_product_s": sum(v for k, v in by_name.items() if k.startswith("own:") and "csr_matmat" in k),
        "final_top_k_s": final,
        "rest_s": total - scoring - final,  # beam selection at inner levels, log-probabilities, gathers
    }


def run_case(depth: int, density: float, *, d: int, n_labels: int, n_rows: int, beam: int, k: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    tree = debian_like_tree(rng, depth, n_labels, leaf=100)
    weights = [random_weights(rng, tree.n_nodes(t + 1), d, density) for t in range(depth)]
    X = random_rows(rng, n_rows, d, 60)
    with timed() as build:
        searcher = TreeSearcher.build(tree, weights)
    search = lambda: searcher.search(X, beam=beam, k=k, batch_size=1000)  # noqa: E731
    search()  # warm-up
    _, watches = repeat(search, 2)
    cpu = min(w.cpu for w in watches)
    shares = profile_shares(search)

    # the last level's children of `beam` parents per row, scored both ways on the same pairs
    level = searcher.levels[-1]
    n_pairs_rows = min(n_rows, 200)
    rows = np.repeat(np.arange(n_pairs_rows), beam)
    parents = rng.integers(0, tree.n_nodes(depth - 1), size=rows.shape[0])
    with timed() as grouped:
        by_parent = level.children_scores(X, rows, parents)
    arity = level.max_arity
    pair_rows = np.repeat(rows, arity)
    pair_cols = (tree.offsets[-1][parents][:, None] + np.arange(arity)[None, :]).ravel()
    with timed() as pairs:
        one_by_one = pair_scores(X, weights[-1], pair_rows, pair_cols)
    agree = float(np.abs(by_parent.ravel().astype(np.float64) - one_by_one).max())
    per_1k = 1000.0 / n_pairs_rows * 1000.0
    return {
        "depth": depth,
        "density": density,
        "n_nodes": [tree.n_nodes(t) for t in range(depth + 1)],
        "weights_nnz": int(sum(W.nnz for W in weights)),
        "model_mib": sum(W.data.nbytes + W.indices.nbytes + W.indptr.nbytes for W in weights) / 2**20,
        "layout_mib": sum(lv.nbytes for lv in searcher.levels) / 2**20,
        "layout_cpu_s": build.cpu,
        "predict_ms_per_1k_rows": cpu / n_rows * 1e6,
        "profile_s": shares,
        "last_level_children_ms_per_1k_rows": {
            "grouped_by_parent": grouped.cpu * per_1k,
            "pair_scores": pairs.cpu * per_1k,
        },
        "grouped_vs_pairs_max_abs_difference": agree,
    }


def markdown(result: dict) -> str:
    p = result["problem"]
    lines = [
        page_header(
            "Beam search over a label tree: predict speed", result["machine"], result["date"], result["command"]
        ),
        "",
        f"Synthetic model shaped like debian-deps: d = {p['d']:,} features, {p['nnz_per_row']} non-zeros per row, "
        f"C = {p['n_labels']:,} labels, leaves of 100 labels, beam {p['beam']}, top {p['k']}, squared hinge, "
        f"{p['n_rows']:,} rows in batches of 1,000, one thread (CPU seconds of the process).",
        "",
        "| depth | nodes per level | weight density | model MiB | layout MiB | layout CPU s | predict ms / 1k rows "
        "| in children_scores | of which sparse product | last level, grouped ms / 1k | last level, pair_scores ms / 1k |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in result["cases"]:
        s = c["profile_s"]
        share = s["children_scores_s"] / s["total_s"] if s["total_s"] else 0.0
        product = s["sparse_product_s"] / s["total_s"] if s["total_s"] else 0.0
        last = c["last_level_children_ms_per_1k_rows"]
        lines.append(
            f"| {c['depth']} | {' / '.join(map(str, c['n_nodes']))} | {c['density']:g} | {c['model_mib']:.0f} "
            f"| {c['layout_mib']:.0f} | {c['layout_cpu_s']:.1f} | **{c['predict_ms_per_1k_rows']:.0f}** "
            f"| {share:.0%} | {product:.0%} | {last['grouped_by_parent']:.0f} | {last['pair_scores']:.0f} |"
        )
    lines += [
        "",
        "The grouped scorer looks each (row, parent, feature) up once and multiplies by the weights of all the "
        "parent's children that use the feature (one sparse x sparse product per batch); `pair_scores` looks each "
        "(row, child, feature) up, so it repeats every lookup once per sibling. Shares come from one cProfile run.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=2000, help="rows predicted per case (default 2000)")
    add_common_flags(parser, out=True, quick="a 10x smaller model (4,000 features, 1,900 labels); print only")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the top-k sorts; scipy's sparse kernels are single-threaded anyway
    d, n_labels = (4_000, 1_900) if args.quick else (40_000, 19_000)
    problem = {"d": d, "nnz_per_row": 60, "n_labels": n_labels, "n_rows": args.rows, "beam": 10, "k": 5}
    machine = environment()
    cases = []
    for depth, density in CASES:
        cases.append(run_case(depth, density, d=d, n_labels=n_labels, n_rows=args.rows, beam=10, k=5, seed=args.seed))
        print(cases[-1], flush=True)
    result = {"problem": problem, "cases": cases, "peak_rss_mib": peak_rss_mib(), "machine": machine, "date": utc_now()}
    result["command"] = "OMP_NUM_THREADS=1 python benchmarks/tree_search_speed.py" + (" --quick" if args.quick else "")
    text = markdown(result)
    print(text)
    if not args.quick:
        json_path, md_path = write_results(args.out, "tree_search_speed", result, text)
        print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
