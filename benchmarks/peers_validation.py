"""Choosing sparsexc settings for the peers benchmark on a validation split, never on test (issue 8).

Holds out ``--dev-fraction`` of a data set's *training* rows (seeded), fits ``XCClassifier`` with each
candidate setting on the rest (the estimator's own 10% early-stopping split comes out of those), and
reports P@1 / P@5 on the held-out rows with the fit's CPU seconds (``--threads`` torch threads, 1 by
default), the best epoch and the validation curve. The candidates below are those behind the sigmoid head's
debtags rule that ``benchmarks/peers.py`` applied before issue 20 (``SPARSE_LINEAR_SIGMOID``; gone: a user
cannot type a data-dependent rule, so such choices belong in the library's "auto" settings)::

    OMP_NUM_THREADS=1 python benchmarks/peers_validation.py --dataset debtags

writes ``benchmarks/results/peers_validation_<dataset>.json`` (and prints a table). ``--configs`` takes a JSON
list of ``XCClassifier`` keyword dicts instead of the built-in list; ``--quick`` runs two tiny configs on bibtex
and writes nothing.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from _harness import add_common_flags, load_average, timed, use_shared_datasets, write_json
from peers import SPARSEXC_SETTINGS, sparsexc_lr

# the peers benchmark's common setting, for the sigmoid head, with row-sparse gradients (for these wide inputs)
BASE: dict[str, Any] = {**SPARSEXC_SETTINGS, "head": "sigmoid", "lr": sparsexc_lr("sigmoid"), "sparse_gradients": True}
LINEAR_LONG: dict[str, Any] = {"hidden_sizes": [], "epochs": 40, "patience": 4}
CANDIDATES: list[dict[str, Any]] = [
    {},  # the common setting
    {"weight_decay": 1e-5},
    {"weight_decay": 1e-4},  # lazy L2 on the feature table
    {"optimizer": "adamw", "weight_decay": 0.1},
    {**LINEAR_LONG, "lr": 0.03},
    {**LINEAR_LONG, "lr": 0.1},  # linear, lazy Adam
    {**LINEAR_LONG, "optimizer": "adagrad", "lr": 0.3},
    {**LINEAR_LONG, "optimizer": "sgd", "lr": 3.0},
    {**LINEAR_LONG, "optimizer": "sgd", "lr": 10.0},
    {**LINEAR_LONG, "optimizer": "sgd", "lr": 30.0},  # linear, plain SGD
    {**LINEAR_LONG, "head": "softmax", "optimizer": "sgd", "lr": 10.0},
    {**LINEAR_LONG, "head": "sparsemax", "optimizer": "sgd", "lr": 10.0},
    {"epochs": 40, "patience": 4, "optimizer": "sgd", "lr": 1.0},  # (512,) encoder, plain SGD
]
QUICK: list[dict[str, Any]] = [
    {"hidden_sizes": [16], "epochs": 2, "sparse_gradients": False},
    {"hidden_sizes": [], "epochs": 2, "optimizer": "sgd", "lr": 10.0},
]


def evaluate_setting(splits: Any, dev: np.ndarray, train: np.ndarray, setting: dict[str, Any]) -> dict[str, Any]:
    """Fit on ``train`` rows with ``BASE`` updated by ``setting``; P@1/P@5 on the ``dev`` rows."""
    from sparsexc import XCClassifier
    from sparsexc.metrics import evaluate

    kw = {**BASE, **setting}
    kw["hidden_sizes"] = tuple(kw["hidden_sizes"])
    X, Y = splits.train.X, splits.train.Y
    with timed() as fit_time:
        model = XCClassifier(device="cpu", **kw).fit(X[train], Y[train])
    scores = evaluate(Y[dev], model.predict_topk(X[dev], k=5), ks=(1, 5))
    return {
        "setting": setting,
        "P@1": round(100 * float(scores["P@1"]), 2),
        "P@5": round(100 * float(scores["P@5"]), 2),
        "cpu_seconds": round(fit_time.cpu, 1),
        "wall_seconds": round(fit_time.wall, 1),
        "best_epoch": model.best_epoch_,
        "epochs_run": len(model.history_),
        "val_P@1": [round(float(h["val_P@1"]), 4) for h in model.history_ if "val_P@1" in h],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="debtags")
    parser.add_argument("--configs", default=None, help="JSON list of XCClassifier keyword dicts (over the base)")
    parser.add_argument("--dev-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=123, help="seed of the held-out rows")
    parser.add_argument("--threads", type=int, default=1)
    add_common_flags(parser, quick="bibtex (for the default debtags), two tiny settings; nothing written", out=True)
    args = parser.parse_args()
    if not 0 < args.dev_fraction < 1:
        parser.error(f"--dev-fraction={args.dev_fraction} must lie in (0, 1)")
    import torch

    from sparsexc.datasets import load

    torch.set_num_threads(args.threads)
    use_shared_datasets()
    name = "bibtex" if args.quick and args.dataset == "debtags" else args.dataset
    configs = QUICK if args.quick else (json.loads(args.configs) if args.configs else CANDIDATES)
    splits = load(name)
    order = np.random.default_rng(args.seed).permutation(splits.train.X.shape[0])
    n_dev = round(args.dev_fraction * len(order))
    dev, train = np.sort(order[:n_dev]), np.sort(order[n_dev:])
    rows = []
    print(f"{name}: {len(train)} training rows, {len(dev)} held out (seed {args.seed}); base {json.dumps(BASE)}")
    print(f"{'P@1':>6} {'P@5':>6} {'CPU s':>7} {'best/run':>8}  setting")
    for setting in configs:
        row = evaluate_setting(splits, dev, train, setting)
        rows.append(row)
        print(
            f"{row['P@1']:6.2f} {row['P@5']:6.2f} {row['cpu_seconds']:7.1f} {row['best_epoch']:>4}/{row['epochs_run']:<3}  "
            f"{json.dumps(setting)}",
            flush=True,
        )
    if not args.quick:
        path = args.out / f"peers_validation_{name}.json"
        payload = {
            "dataset": name,
            "dev_rows": len(dev),
            "train_rows": len(train),
            "seed": args.seed,
            "threads": args.threads,
            "base": BASE,
            "rows": rows,
            "load_average": load_average(),
            "command": "python benchmarks/peers_validation.py --dataset " + name,
        }
        write_json(path, payload, indent=1)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
