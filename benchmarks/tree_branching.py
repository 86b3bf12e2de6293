"""The label tree's branching against how well the labels cluster (issue 19): the rule of ``branching=None``.

``LabelTreeParams(branching=None)`` builds the first tree 16-ary, measures how well the labels cluster (the mean
cosine of each label's representation to its leaf cluster's centroid, :func:`sparsexc.tree.leaf_coherence`)
and keeps 16 children per node, or takes 64 where that coherence is below ``COHERENCE_WIDE``. This script measures
what the rule rests on: for each data set and hold-out seed, the model with ``branching=None`` (its coherence and
choice recorded) and the explicit other branching, both fitted on 80% of the TRAINING rows (seed ``--seeds``; the
test split is never read) and scored on the other 20%: P@1/3/5, PSP@5 (propensities of the fitted rows), training
CPU seconds (all threads; run with ``OMP_NUM_THREADS=1`` and the model's ``n_jobs`` 1 as below).

Data sets: the real ones by name (``benchmarks/tree_holdout.py``'s split), and ``synthetic-groups-<s>``
(:func:`label_groups`): 9,000 labels placed at random in nested groups of 8 (1,125, 141, 18, 3 groups), each label
and each group with a prototype of 8 of 20,000 features; a row draws one or more labels (Zipf popularity) and 40
features, 40% of them noise, the others from its labels' prototypes, a share ``s`` of those from one of their groups'
(a level drawn at random). ``s`` sets how alike the labels of a group look, so how well the labels cluster: the
knob the rule reads. Labels are the leaves only (1.5 per row).

    SPARSEXC_DATA=<datasets> OMP_NUM_THREADS=1 python benchmarks/tree_branching.py \\
        --datasets synthetic-groups-0.2,synthetic-groups-0.45,synthetic-groups-0.7,synthetic-groups-0.9 --seeds 123,124,125
    ... --datasets wordnet-hypernyms,debian-deps --seeds 123,124,125 --append   # rows of other sets kept

Writes ``<out>/tree_branching.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
from _harness import (
    add_common_flags,
    command_line,
    dataset_list,
    environment,
    page_header,
    read_json,
    timed,
    use_shared_datasets,
    utc_now,
    write_results,
)

SYNTHETIC = "synthetic-groups-"
DEFAULT_SETS = (f"{SYNTHETIC}0.2", "wordnet-hypernyms", "debian-deps")
# the synthetic sets' size (label_groups' n, D, C); the tests shrink it
SYNTHETIC_SIZE = {"n": 60_000, "D": 20_000, "C": 9_000}
METRICS = ("P@1", "P@3", "P@5", "PSP@5")


def label_groups(share: float, *, n: int = 60_000, D: int = 20_000, C: int = 9_000, group: int = 8, seed: int = 0):
    """(X, Y): ``n`` rows of TF-like features (log counts, unit rows) and 0/1 labels of the model in the module
    docstring, ``share`` of the label features drawn from the labels' groups. Seeded: the same arguments give the
    same matrices."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    proto, nnz, noise, per_row = 8, 40, 0.4, 1.5
    ancestors = [np.arange(C)]  # ancestors[l][label]: the label's group on level l (0: the label itself)
    size = C
    while size > group:
        up = -(-size // group)
        parent = rng.permutation(size) % up
        ancestors.append(parent[ancestors[-1]])
        size = up
    protos = [rng.integers(0, D, size=(int(a.max()) + 1, proto)) for a in ancestors]
    popularity = 1.0 / (rng.permutation(C) + 1.0)
    k = 1 + rng.poisson(per_row - 1, size=n)
    start = np.concatenate([[0], np.cumsum(k)])
    labels = rng.choice(C, size=int(start[-1]), p=popularity / popularity.sum())
    row = np.repeat(np.arange(n), nnz)
    pick = labels[start[row] + (rng.random(row.size) * k[row]).astype(np.int64)]  # one of the row's labels per draw
    level = np.where(rng.random(row.size) < share, rng.integers(1, len(ancestors), size=row.size), 0)
    feature = np.empty(row.size, dtype=np.int64)
    for lv in range(len(ancestors)):
        at = level == lv
        feature[at] = protos[lv][ancestors[lv][pick[at]], rng.integers(0, proto, size=int(at.sum()))]
    is_noise = rng.random(row.size) < noise
    feature[is_noise] = rng.integers(0, D, size=int(is_noise.sum()))
    X = sp.csr_matrix((np.ones(row.size, dtype=np.float32), (row, feature)), shape=(n, D))
    X.sum_duplicates()
    X.data = np.log1p(X.data)
    X = sp.diags(1.0 / np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())).astype(np.float32) @ X
    Y = sp.csr_matrix((np.ones(labels.size, dtype=np.float32), (np.repeat(np.arange(n), k), labels)), shape=(n, C))
    Y.sum_duplicates()
    Y.data[:] = 1.0
    return X.tocsr().astype(np.float32), Y


def holdout(name: str, seed: int):
    """(fit X, fit Y, held X, held Y): 80% / 20% of the training rows of a named set or of a
    ``synthetic-groups-<s>`` draw, cut by ``seed`` (``tree_holdout.split`` / ``tree_holdout.cut``)."""
    from tree_holdout import cut, split

    if not name.startswith(SYNTHETIC):
        return split(name, seed)
    return cut(*label_groups(float(name[len(SYNTHETIC) :]), **SYNTHETIC_SIZE), seed)


def fit_and_score(Xf, Yf, Xh, Yh, n_trees: int, branching: int | None) -> tuple[Any, dict[str, float]]:
    """The model fitted on the fit rows (one thread) and its hold-out scores (``tree_holdout.scores``, beam 10)
    with its training CPU seconds."""
    from tree_holdout import scores

    from sparsexc.tree import LabelTreeModel, LabelTreeParams

    with timed() as watch:
        model = LabelTreeModel(LabelTreeParams(n_trees=n_trees, n_jobs=1, branching=branching)).fit(Xf, Yf)
    return model, {**scores(model, Yf, Xh, Yh), "train_cpu_s": round(watch.cpu, 2)}


def run(name: str, seed: int, n_trees: int) -> dict[str, Any]:
    """One (set, seed): the rule's model and the other branching's, on the same rows."""
    from sparsexc.tree import DEFAULT_BRANCHING, WIDE_BRANCHING

    Xf, Yf, Xh, Yh = holdout(name, seed)
    auto, scores = fit_and_score(Xf, Yf, Xh, Yh, n_trees, None)
    chosen = auto.params.branching
    other = WIDE_BRANCHING if chosen == DEFAULT_BRANCHING else DEFAULT_BRANCHING
    _, other_scores = fit_and_score(Xf, Yf, Xh, Yh, n_trees, other)
    row = {
        "dataset": name,
        "seed": seed,
        "n_trees": n_trees,
        "rows": Xf.shape[0],
        "labels": Yf.shape[1],
        "coherence": round(float(getattr(auto, "coherence_", float("nan"))), 4),
        "chosen": chosen,
        "branching": {str(chosen): scores, str(other): other_scores},
    }
    print(row, flush=True)
    return row


def markdown(result: dict[str, Any]) -> str:
    from sparsexc.tree import COHERENCE_WIDE

    lines = [
        page_header(
            "The label tree's branching and the labels' coherence (issue 19)", result["environment"], result["date"]
        ),
        "",
        "Commands (each row's in the JSON):",
        "",
        *[f"- `{c}`" for c in dict.fromkeys(r["command"] for r in result["rows"])],
        "",
        f"Each row: one data set, hold-out seeds as listed (80% of the training rows fitted, 20% scored), three "
        f"trees, one thread. Coherence = the first 16-ary tree's mean cosine of the labels to their leaf "
        f"cluster's centroid (`leaf_coherence`, mean over the seeds); the rule takes 64 below {COHERENCE_WIDE}. "
        "Differences 64-ary minus 16-ary in points, mean over the seeds (min..max); CPU = the 64-ary model's "
        "training CPU seconds over the 16-ary one's (range); where the rule chose 64, the 64-ary model is the "
        "rule's own fit, which built and measured a 16-ary tree first.",
        "",
        "| data set | labels | seeds | coherence | rule | P@1 | P@3 | P@5 | PSP@5 | train CPU 64 / 16 |",
        "|---|---:|---|---:|---|---|---|---|---|---|",
    ]
    by_set: dict[str, list[dict[str, Any]]] = {}
    for row in result["rows"]:
        by_set.setdefault(row["dataset"], []).append(row)
    for name, rows in by_set.items():
        rows = sorted(rows, key=lambda r: r["seed"])
        diffs = {m: [r["branching"]["64"][m] - r["branching"]["16"][m] for r in rows] for m in METRICS}
        cpu = [r["branching"]["64"]["train_cpu_s"] / r["branching"]["16"]["train_cpu_s"] for r in rows]
        cells = [f"{np.mean(d):+.2f} ({min(d):+.2f}..{max(d):+.2f})" for d in diffs.values()]
        chosen = sorted({r["chosen"] for r in rows})
        lines.append(
            f"| {name} | {rows[0]['labels']:,} | {', '.join(str(r['seed']) for r in rows)} | "
            f"{np.mean([r['coherence'] for r in rows]):.3f} | {' / '.join(map(str, chosen))} | "
            + " | ".join(cells)
            + f" | {min(cpu):.2f}-{max(cpu):.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_flags(ap, out=True, append="keep the rows of data sets and seeds not run now", datasets=DEFAULT_SETS)
    ap.add_argument("--seeds", default="123,124,125", help="comma-separated hold-out seeds")
    ap.add_argument("--n-trees", type=int, default=3)
    a = ap.parse_args(argv)
    use_shared_datasets()
    seeds = [int(s) for s in a.seeds.split(",") if s]
    command = command_line("tree_branching.py", argv if argv is not None else sys.argv[1:])
    rows = [
        {**run(name, seed, a.n_trees), "command": command}
        for name in dataset_list(a.datasets, DEFAULT_SETS)
        for seed in seeds
    ]
    done = {(r["dataset"], r["seed"]) for r in rows}
    path = a.out / "tree_branching.json"
    if a.append and path.exists():
        rows = [r for r in read_json(path)["rows"] if (r["dataset"], r["seed"]) not in done] + rows
    result = {"date": utc_now(), "command": command, "environment": environment(), "rows": rows}
    write_results(a.out, "tree_branching", result, markdown(result))


if __name__ == "__main__":
    main()
