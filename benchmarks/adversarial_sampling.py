"""The paper's claim, measured (issue 6): adversarial negative sampling against full softmax and the baselines.

Setting (Bamler & Mandt 2020): a linear model over fixed dense features (a truncated SVD of the TF-IDF matrix,
``--dim`` columns), so that the output layer dominates the cost. Methods, all on the same features, batches
and seed: full softmax (Adam), negative sampling with uniform / frequency / tree proposals (Adagrad, the
paper's optimiser; predictions bias-corrected) and sampled softmax with the tree proposal. Each run is timed
on the wall clock *including* ``prepare`` (the tree fit) and evaluated every ``--eval-every`` steps on
``--eval-rows`` test rows: hits@1 on the first label (smallest id), predictive log-likelihood of that label
(log-softmax of the scores), and P@1/3/5 on the multi-label rows. A second part times one training step
against C for each head on random features.

    python benchmarks/adversarial_sampling.py --quick      # a small synthetic set, 2 epochs; nothing written
    python benchmarks/adversarial_sampling.py              # debian-deps, wordnet-hypernyms (not run yet)

Writes ``benchmarks/results/adversarial_sampling.json`` (full mode only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

METHODS: dict[str, tuple[str, dict[str, Any], str, float]] = {
    # name: (head, head_params, optimizer, lr)
    "softmax (full)": ("softmax", {}, "adam", 1e-3),
    "neg. sampling, uniform": ("negative-sampling", {"sampler": "uniform"}, "adagrad", 1e-2),
    "neg. sampling, frequency": ("negative-sampling", {"sampler": "frequency"}, "adagrad", 1e-2),
    "neg. sampling, tree (adversarial)": ("negative-sampling", {"sampler": "tree"}, "adagrad", 1e-2),
    "sampled softmax, tree": ("sampled-softmax", {"sampler": "tree"}, "adam", 1e-3),
}


def dense_features(X_train: sp.csr_matrix, X_test: sp.csr_matrix, dim: int, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Truncated SVD of the TF-IDF rows to ``dim`` columns, standardised; returned as CSR for the linear model."""
    from sklearn.decomposition import TruncatedSVD

    svd = TruncatedSVD(n_components=dim, random_state=seed).fit(X_train)
    A, B = svd.transform(X_train), svd.transform(X_test)
    mean, std = A.mean(0), A.std(0) + 1e-12
    return sp.csr_matrix(((A - mean) / std).astype(np.float32)), sp.csr_matrix(((B - mean) / std).astype(np.float32))


def first_label(Y: sp.csr_matrix) -> np.ndarray:
    """The smallest label id of every row (-1 for rows without a label): the paper's single-label protocol."""
    Y = sp.csr_matrix(Y)
    Y.sort_indices()
    out = np.full(Y.shape[0], -1, dtype=np.int64)
    has = np.diff(Y.indptr) > 0
    out[has] = Y.indices[Y.indptr[:-1][has]]
    return out


def evaluate_model(model, X: sp.csr_matrix, Y: sp.csr_matrix) -> dict[str, float]:
    from sparsexc.metrics import evaluate

    scores = torch.from_numpy(model.predict_scores(X, batch_size=256)).double()
    first = torch.from_numpy(first_label(Y))
    keep = first >= 0
    log_p = torch.log_softmax(scores[keep], dim=1)
    target = scores[keep, first[keep]]
    rank = (scores[keep] > target[:, None]).sum(1)  # ties do not count against the model here
    topk = model.predict_topk(X, 5, batch_size=256)
    metrics = evaluate(Y, topk, ks=(1, 3, 5))
    return {"hits@1_first_label": float((rank == 0).double().mean()),
            "log_likelihood_first_label": float(log_p[torch.arange(int(keep.sum())), first[keep]].mean()),
            "P@1": float(metrics["P@1"]), "P@3": float(metrics["P@3"]), "P@5": float(metrics["P@5"])}


def train_curve(method: str, X, Y, X_eval, Y_eval, epochs: int, batch_size: int, eval_every: int,
                seed: int) -> dict[str, Any]:
    from sparsexc.heads import get_head
    from sparsexc.heads.labels import LabelBatch
    from sparsexc.models import SparseEncoder, XCModel
    from sparsexc.models.batch import FeatureBatch
    from sparsexc.train import build_optimizer
    from sparsexc._params import TrainParams

    head_name, head_params, optimizer_name, lr = METHODS[method]
    torch.manual_seed(seed)
    model = XCModel(SparseEncoder(X.shape[1], {"hidden_sizes": ()}), get_head(head_name)(X.shape[1], Y.shape[1], head_params))
    started = time.perf_counter()
    model.head.prepare(X, Y)
    prepare_seconds = time.perf_counter() - started
    optimizer = build_optimizer(model.parameters(), TrainParams(optimizer=optimizer_name, lr=lr))
    curve, step, train_seconds = [], 0, prepare_seconds
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(X.shape[0])
        for start in range(0, X.shape[0], batch_size):
            rows = order[start : start + batch_size]
            t = time.perf_counter()
            model.train()
            optimizer.zero_grad(set_to_none=True)
            loss = model.head.loss(model.hidden(FeatureBatch.from_csr(X[rows])), LabelBatch.from_csr(Y[rows]))
            loss.backward()
            optimizer.step()
            train_seconds += time.perf_counter() - t
            step += 1
            if step % eval_every == 0:
                curve.append({"step": step, "train_seconds": round(train_seconds, 3), **evaluate_model(model, X_eval, Y_eval)})
    if not curve or curve[-1]["step"] != step:
        curve.append({"step": step, "train_seconds": round(train_seconds, 3), **evaluate_model(model, X_eval, Y_eval)})
    return {"method": method, "prepare_seconds": round(prepare_seconds, 3), "curve": curve, "final": curve[-1]}


def step_time(head_name: str, head_params: dict, n_labels: int, dim: int, batch_size: int, repeats: int) -> float:
    """Median seconds of one training step (loss, backward, Adagrad/Adam step) on random features, C labels."""
    from sparsexc.heads import get_head
    from sparsexc.heads.labels import LabelBatch

    rng = np.random.default_rng(0)
    n = 4 * batch_size
    X = sp.csr_matrix(rng.normal(size=(n, dim)).astype(np.float32))
    Y = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), rng.integers(0, n_labels, n))), shape=(n, n_labels))
    torch.manual_seed(0)
    head = get_head(head_name)(dim, n_labels, head_params)
    head.prepare(X, Y)
    optimizer = torch.optim.Adagrad(head.parameters(), lr=1e-2)
    hidden = torch.from_numpy(X[:batch_size].toarray())
    labels = LabelBatch.from_csr(Y[:batch_size])
    times = []
    for _ in range(repeats + 1):
        t = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        head.loss(hidden, labels).backward()
        optimizer.step()
        times.append(time.perf_counter() - t)
    return float(np.median(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small synthetic set, 2 epochs, C up to 1e4; nothing written")
    parser.add_argument("--datasets", default="debian-deps,wordnet-hypernyms")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--eval-rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if "SPARSEXC_DATA" not in os.environ and SHARED_DATASETS.is_dir():
        os.environ["SPARSEXC_DATA"] = str(SHARED_DATASETS)
    from sparsexc._environment import environment_info
    from sparsexc.datasets import load, synthetic

    env = environment_info()
    if args.quick:
        sets = {"synthetic-2k": synthetic(6000, 3000, 2000, seed=args.seed)}
        dim, epochs, eval_every, sizes = 64, 2, 40, (1_000, 10_000)
    else:
        sets = {name: load(name) for name in args.datasets.split(",")}
        dim, epochs, eval_every, sizes = args.dim, args.epochs, args.eval_every, (1_000, 10_000, 100_000, 1_000_000)
    runs = []
    for name, splits in sets.items():
        X, X_test = dense_features(splits.train.X, splits.test.X, dim, args.seed)
        Y, Y_test = splits.train.Y, splits.test.Y
        X_eval, Y_eval = X_test[: args.eval_rows], Y_test[: args.eval_rows]
        for method in METHODS:
            run = train_curve(method, X, Y, X_eval, Y_eval, epochs, args.batch_size, eval_every, args.seed)
            run["dataset"] = name
            runs.append(run)
            f = run["final"]
            print(f"{name:<16} {method:<34} time {f['train_seconds']:8.1f} s (prepare {run['prepare_seconds']:.1f}) "
                  f"hits@1 {f['hits@1_first_label']:.3f} loglik {f['log_likelihood_first_label']:7.2f} "
                  f"P@1 {f['P@1']:.3f} P@3 {f['P@3']:.3f} P@5 {f['P@5']:.3f}", flush=True)
    steps = []
    for C in sizes:
        for method, (head_name, head_params, _, _) in METHODS.items():
            seconds = step_time(head_name, head_params, C, dim, args.batch_size, repeats=5)
            steps.append({"method": method, "n_labels": C, "step_seconds": seconds})
            print(f"step time C={C:>9,} {method:<34} {1e3 * seconds:9.2f} ms", flush=True)
    if args.quick:
        return
    RESULTS.mkdir(exist_ok=True)
    out = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "environment": env,
           "settings": vars(args), "runs": runs, "step_times": steps}
    (RESULTS / "adversarial_sampling.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
