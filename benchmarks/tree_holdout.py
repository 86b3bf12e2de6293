"""The label tree on a hold-out of a data set's TRAINING rows: ensemble size, threads, the beam's order.

Issue 19/20 measurements (docs/tree.md): each (data set, ``n_trees``, ``n_jobs``) is fitted in its own process
(so the peak RSS is that run's: loading + training + prediction), on 80% of the training rows (seed ``--seed``;
the test split is never read for choosing), and ranks the other 20%. Reported: P@1/3/5, PSP@5 (propensities
of the fitted rows), training CPU seconds (all threads), training wall seconds, peak RSS.

    SPARSEXC_DATA=<datasets> python benchmarks/tree_holdout.py --datasets debian-deps --n-trees 1,3 --out DIR

``--beams 10,20`` ranks the hold-out at each prediction beam (CPU ms per 1,000 rows beside); ``--powers 2,3``
at each exponent of the squared hinge's node score (``LabelTreeParams.hinge_power``, a prediction-time rule:
the weights are the same).
``--member-topks 100,50,30`` at each number of labels an ensemble member contributes to the mean
(``predict_topk``'s ``member_topk``, also a prediction-time rule).
``--variant branching=64 --variant representation=pifa+pmi,pmi_dim=128`` fits one model per variant: those
``LabelTreeParams`` settings (VALUE read as JSON when it parses, else a string) over the defaults; folders
``<set>-t<n>-j<jobs>-<variant>``; without the flag, the defaults and the plain folder names.
``--matcher-negatives 3,10`` also retrains the last level's rankers with matcher-aware negatives (PECOS's
``tfn+man``; :func:`with_matcher_negatives`) for each number B of leaf clusters and ranks the hold-out with them
(the weights above the last level unchanged; the retraining's CPU seconds beside).
``--eval-only`` re-ranks saved models (``DIR/<set>-t<n>-j<jobs>/model``) with the code on ``PYTHONPATH``, so
two versions of the search can be compared on the same fitted weights.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
from _harness import timed


def split(name: str, seed: int):
    from sparsexc.datasets import load

    data = load(name)
    return cut(data.train.X.tocsr(), data.train.Y.tocsr(), seed)


def cut(X, Y, seed: int):
    """(fit X, fit Y, held X, held Y): a seeded 80% / 20% cut of the rows of (X, Y), each part in row order."""
    order = np.random.default_rng(seed).permutation(X.shape[0])
    size = round(0.8 * X.shape[0])
    fit, held = np.sort(order[:size]), np.sort(order[size:])
    return X[fit], Y[fit], X[held], Y[held]


def scores(model, Yf, Xh, Yh, beam: int = 10, **predict: int) -> dict[str, float]:
    """P@1/3/5 and PSP@5 (%) of the hold-out at this beam, and the prediction's CPU ms per 1,000 rows."""
    from sparsexc.metrics import evaluate, inverse_propensity

    ks = (1, 3, 5)
    with timed() as watch:
        pred = model.predict_topk(Xh, 5, beam=beam, **predict)
    out = evaluate(Yh, pred, ks=ks, inv_propensity=inverse_propensity(Yf, n_labels=Yf.shape[1]))
    return {
        **{key: round(100 * float(out[key]), 2) for key in ("P@1", "P@3", "P@5", "PSP@5")},
        "predict_cpu_ms_per_1000": round(1e6 * watch.cpu / Xh.shape[0], 1),
    }


# the node probability each loss's margin implies, as the model's search reads it (docs/tree.md, "Scores")
TRANSFORM = {"squared_hinge": "squared_hinge", "logistic": "sigmoid"}


def prepared_rows(model, X):
    """X as the model's nodes see it: float32 CSR, rows L2-normalised where the model normalises them."""
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize

    X = sp.csr_matrix(X, dtype=np.float32)
    X = normalize(X, norm="l2") if model.params.normalize_rows else X.copy()
    X.sum_duplicates()
    return X


def matcher_clusters(model, member: int, Xp, B: int, beam: int | None = None):
    """(n, leaf clusters) 0/1 CSR: each row's B best leaf clusters (the nodes whose children are labels), found by
    the beam search (beam B, or ``beam`` if wider) over member ``member``'s trained levels above the last: the
    matcher's own prediction on the rows ``Xp`` (prepared as :func:`prepared_rows`)."""
    import scipy.sparse as sp

    from sparsexc.tree import LabelTree, beam_search

    tree, p = model.trees_[member], model.params
    last = tree.depth - 1
    clusters = tree.n_nodes(last)
    upper = LabelTree(tuple(tree.offsets[:last]), np.arange(clusters, dtype=np.int64))  # clusters as its labels
    k = min(B, clusters)
    width = min(max(k, beam or k), clusters)
    idx, _ = beam_search(
        Xp,
        upper,
        model.weights_[member][:last],
        beam=width,
        k=k,
        transform=TRANSFORM[p.loss],
        bias=p.bias,
        power=p.hinge_power,
    )
    n = Xp.shape[0]
    return sp.csr_matrix(
        (np.ones(idx.size, dtype=np.float32), idx.ravel(), np.arange(0, idx.size + 1, k)), (n, clusters)
    )


def with_matcher_negatives(model, X, Y, B: int) -> dict[str, int]:
    """Retrain ``model``'s last level in place: each leaf cluster's rankers on the rows positive for it (teacher
    forcing, the default) and the rows whose B best clusters under the trained matcher hold it (PECOS's
    matcher-aware negatives), by :func:`~sparsexc.tree.fit_linear` with the model's settings, pruned at its
    threshold. A ranker positive on every one of those rows keeps its fitted (certain) row. Returns the (cluster,
    row) pairs the last level trains on, with teacher forcing and with the matcher's rows added: its work. A
    diagnostic (issue 19): the library trains with teacher forcing only."""
    import scipy.sparse as sp

    from sparsexc.tree import fit_linear, prune

    p = model.params
    Xp = prepared_rows(model, X)
    Y = sp.csr_matrix(Y)
    weights = model.weights_
    pairs = {"teacher_forcing": 0, "with_matcher": 0}
    for m, tree in enumerate(model.trees_):
        last = tree.depth - 1
        if last < 1:  # a flat tree: the root's rankers already see every row
            continue
        positive = (Y @ tree.membership(last)) > 0
        reach = (positive + matcher_clusters(model, m, Xp, B)).tocsc()
        pairs["teacher_forcing"] += int(positive.nnz)
        pairs["with_matcher"] += int(reach.nnz)
        old = weights[m][last].tolil()
        blocks = []
        for v in range(tree.n_nodes(last)):
            kids = tree.children(last, v)
            rows = np.sort(reach.indices[reach.indptr[v] : reach.indptr[v + 1]])
            block = sp.lil_matrix((len(kids), Xp.shape[1] + 1), dtype=np.float32)
            if rows.size:
                Z = Y[rows][:, tree.label_order[kids.start : kids.stop]].toarray() > 0
                fitted = prune(
                    fit_linear(Xp[rows], Z, loss=p.loss, C=p.C, tol=p.tol, max_iter=p.max_iter, bias=p.bias,
                               solver=p.solver, seed=p.seed),
                    p.threshold,
                ).tolil()  # fmt: skip
                for j, position in enumerate(kids):
                    block[j] = old[position] if Z[:, j].all() else fitted[j]
            blocks.append(block.tocsr())
        weights[m][last] = sp.vstack(blocks, format="csr", dtype=np.float32)
    model.weights_ = weights
    return pairs


def worker(
    name: str,
    n_trees: int,
    n_jobs: int,
    seed: int,
    folder: Path,
    eval_only: bool,
    beams: tuple[int, ...] = (10,),
    powers: tuple[float, ...] = (),
    member_topks: tuple[int, ...] = (),
    variant: dict[str, object] | None = None,
    matcher_negatives: tuple[int, ...] = (),
) -> None:
    from sparsexc.tree import LabelTreeModel, LabelTreeParams

    Xf, Yf, Xh, Yh = split(name, seed)
    result: dict[str, object] = {"dataset": name, "n_trees": n_trees, "n_jobs": n_jobs, "rows": Xf.shape[0]}
    variant = variant or {}
    if variant:
        result["params"] = variant
    if eval_only:
        model = LabelTreeModel.load(folder / "model")
    else:
        with timed() as watch:  # CPU seconds of all the process's threads, and wall seconds
            model = LabelTreeModel(LabelTreeParams(n_trees=n_trees, n_jobs=n_jobs, **variant)).fit(Xf, Yf)
        result["train_cpu_s"] = round(watch.cpu, 2)
        result["train_wall_s"] = round(watch.wall, 2)
        result["C"] = model.params.C
    result.update(scores(model, Yf, Xh, Yh, beams[0]))
    if len(beams) > 1:  # the first beam's scores stay at the top level (as before), every beam's under "beams"
        result["beams"] = {str(b): scores(model, Yf, Xh, Yh, b) for b in beams}
    if powers:
        fitted = model.params
        result["powers"] = {}
        for q in powers:
            model.params = fitted.replace(hinge_power=q)
            result["powers"][f"{q:g}"] = scores(model, Yf, Xh, Yh, beams[0])
        model.params = fitted
    if member_topks:
        result["member_topks"] = {str(kk): scores(model, Yf, Xh, Yh, beams[0], member_topk=kk) for kk in member_topks}
    if matcher_negatives:
        fitted_weights = model.weights_
        result["matcher_negatives"] = {}
        for B in matcher_negatives:
            with timed() as watch:
                pairs = with_matcher_negatives(model, Xf, Yf, B)
            result["matcher_negatives"][str(B)] = {
                **scores(model, Yf, Xh, Yh, beams[0]),
                "retrain_cpu_s": round(watch.cpu, 2),
                "ranker_rows": pairs,
            }
            model.weights_ = fitted_weights
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if not eval_only:
        model.save(folder / "model")
    print(json.dumps(result), flush=True)


def parse_variant(text: str) -> dict[str, object]:
    """``"branching=64,representation=pmi"`` -> ``{"branching": 64, "representation": "pmi"}`` (JSON values
    where they parse)."""
    out: dict[str, object] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", required=True)
    ap.add_argument("--n-trees", default="1,3")
    ap.add_argument("--n-jobs", default="1")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--beams", default="10", help="comma-separated prediction beams (default 10)")
    ap.add_argument("--powers", default="", help="comma-separated squared-hinge score exponents to rank with")
    ap.add_argument("--member-topks", default="", help="comma-separated labels per ensemble member to rank with")
    ap.add_argument("--matcher-negatives", default="", help="comma-separated leaf clusters B per row to retrain with")
    ap.add_argument(
        "--variant", action="append", default=[], help="KEY=VALUE[,KEY=VALUE...] of LabelTreeParams (repeatable)"
    )
    ap.add_argument("--worker", nargs=3, metavar=("SET", "TREES", "JOBS"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        name, trees, jobs = a.worker
        text = a.variant[0] if a.variant else ""  # the parent passes one variant to each worker
        folder = a.out / (f"{name}-t{trees}-j{jobs}" + (f"-{text.replace('=', '').replace(',', '-')}" if text else ""))
        folder.mkdir(parents=True, exist_ok=True)
        beams = tuple(int(b) for b in a.beams.split(","))
        powers = tuple(float(q) for q in a.powers.split(",") if q)
        member_topks = tuple(int(kk) for kk in a.member_topks.split(",") if kk)
        man = tuple(int(b) for b in a.matcher_negatives.split(",") if b)
        worker(
            name,
            int(trees),
            int(jobs),
            a.seed,
            folder,
            a.eval_only,
            beams,
            powers,
            member_topks,
            parse_variant(text),
            man,
        )
        return
    for name in a.datasets.split(","):
        for trees in a.n_trees.split(","):
            for jobs in a.n_jobs.split(","):
                for text in a.variant or [""]:
                    cmd = [sys.executable, __file__, "--worker", name, trees, jobs, "--seed", str(a.seed)]
                    cmd += ["--out", str(a.out), "--datasets", name, "--beams", a.beams, "--powers", a.powers]
                    cmd += ["--member-topks", a.member_topks, "--matcher-negatives", a.matcher_negatives]
                    cmd += ["--variant", text] if text else []
                    cmd += ["--eval-only"] if a.eval_only else []
                    subprocess.run(cmd, check=True, env=os.environ)


if __name__ == "__main__":
    main()
