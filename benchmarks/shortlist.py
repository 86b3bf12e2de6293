"""The label tree as a shortlist for the neural heads, against the tree model itself (issue 19).

Systems, each an ``XCClassifier`` trained on the same training rows and scored on the same test rows:

* ``tree-logistic``: the label-tree linear model (``model="tree"``, ``tree_params={"loss": "logistic"}``), its
  set rule tuned on the estimator's 10% validation hold-out of the training rows, as the family does (the
  threshold, or sparsemax's support over the best 100 labels where that scored higher: then the threshold rule's
  example-F1 and micro-F1 are recorded beside, ``threshold_rule``);
* ``sparsemax-shortlist``: the sparsemax head trained and scored over each row's shortlist (``shortlist="tree"``,
  the ``shortlist_size`` = 100 best labels of a logistic label tree, the same ``tree_params``; its positives
  added at training), its set scale tuned on the same hold-out;
* ``sigmoid-shortlist``: the sigmoid head over the same shortlist;
* ``sparsemax`` (not run unless named in ``--systems``): the sparsemax head over every label, for reference.

Every set rule is tuned for example-F1 (``tune_metric="example-F1"``), the metric the issue's target names
("a sparsemax-over-shortlist row that beats the tree model's logistic ranker on example-F1 of the predicted
sets"). The neural rows use the library's defaults (issue 20: a row's settings are what a user would type):
``XCClassifier(head=..., shortlist="tree", shortlist_size=100, tree_params={"loss": "logistic"})``, plus
``sparse_gradients=True`` from 10,000 features on (a speed setting: the library does not choose it). Until stop 32
they were the peers benchmark's hand-chosen ones ((512,) encoder, dropout 0.6, 3x learning rates, patience 2),
which on delicious' validation rows gave the sparsemax shortlist P@1 0.46 against 0.61 with the defaults. The
splits and features are the peers benchmark's (TF-IDF + L2 rows for bibtex and delicious; debian-deps as loaded).
No setting was chosen on a test row.

Measured: example-F1 and micro-F1 of the predicted sets, P@1/3/5 of the top 5, training CPU and wall seconds
(validation hold-out, early stopping and tuning included; the tree shortlist's fitting included), prediction
ms per 1,000 test rows (top-5 over the whole test set, and the sets) in CPU and wall time. All systems run in
this one process, one after another, with ``--threads`` torch threads (default 1).

Usage::

    python benchmarks/shortlist.py --quick                 # bibtex, 2 epochs, writes into --out only if given
    python benchmarks/shortlist.py --datasets bibtex,delicious
    python benchmarks/shortlist.py --datasets debian-deps --append
    python benchmarks/shortlist.py --merge results/shortlist.json /tmp/dd/shortlist.json   # join runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _harness import (
    RESULTS,
    add_common_flags,
    command_line,
    dataset_list,
    environment,
    load_average,
    page_header,
    read_json,
    timed,
    use_shared_datasets,
    utc_now,
    write_results,
)
from peers import prepare_features
from tree_set_rule import threshold_sets

DATASETS: tuple[str, ...] = ("bibtex", "delicious", "debian-deps")
SYSTEMS: tuple[str, ...] = ("tree-logistic", "sparsemax-shortlist", "sigmoid-shortlist")
OPTIONAL_SYSTEMS: tuple[str, ...] = ("sparsemax", "softmax-shortlist")
TREE_PARAMS: dict[str, Any] = {"loss": "logistic"}
SHORTLIST_SIZE = 100
TUNE_METRIC = "example-F1"
K = 5
STEM = "shortlist"
# this benchmark's neural rows take row-sparse feature-table gradients from this width on (a speed setting a user
# types for wide inputs: the library's default is dense gradients)
SPARSE_GRADIENT_MIN_FEATURES = 10_000
QUICK_NEURAL: dict[str, Any] = {"random_state": 0, "epochs": 2, "hidden_sizes": [64]}
COLUMNS: tuple[str, ...] = ("example-F1", "micro-F1", "P@1", "P@3", "P@5")
COSTS: tuple[str, ...] = ("train_cpu_seconds", "train_seconds", "predict_ms_per_1000", "predict_cpu_ms_per_1000")
HEADERS = {"train_cpu_seconds": "train CPU s", "train_seconds": "train s", "predict_ms_per_1000": "predict ms / 1k",
           "predict_cpu_ms_per_1000": "predict CPU ms / 1k"}  # fmt: skip


def settings(system: str, n_features: int, quick: bool) -> dict[str, Any]:
    """The ``XCClassifier`` arguments of ``system``."""
    common = {"tune_metric": TUNE_METRIC, "verbose": 0, "device": "cpu", "random_state": 0}
    if system == "tree-logistic":
        return {**common, "model": "tree", "tree_params": dict(TREE_PARAMS)}
    head, _, shortlist = system.partition("-")
    neural: dict[str, Any] = {**QUICK_NEURAL, "hidden_sizes": tuple(QUICK_NEURAL["hidden_sizes"])} if quick else {}
    if not quick and n_features >= SPARSE_GRADIENT_MIN_FEATURES:
        neural["sparse_gradients"] = True
    out = {**common, **neural, "head": head}
    if shortlist:
        out.update(shortlist="tree", shortlist_size=SHORTLIST_SIZE, tree_params=dict(TREE_PARAMS))
    return out


def run_system(system: str, data: dict[str, Any], quick: bool) -> dict[str, Any]:
    """Train ``system`` on the training rows, predict the test rows; its row of the table."""
    import torch

    from sparsexc import XCClassifier
    from sparsexc.metrics import evaluate

    X_train, Y_train, X_test, Y_test = data["X_train"], data["Y_train"], data["X_test"], data["Y_test"]
    args = settings(system, X_train.shape[1], quick)
    clf = XCClassifier(**args)
    load = load_average()
    with timed() as train:
        clf.fit(X_train, Y_train)
    with timed() as predict:
        topk = clf.predict_topk(X_test, K)
    with timed() as sets_time:
        sets = clf.predict(X_test)
    metrics = evaluate(Y_test, topk, ks=(1, 3, 5), label_sets=sets)
    n = X_test.shape[0]
    extra: dict[str, Any] = {}
    if "sparsemax_scale" in clf.tuned_:  # a tree whose tuning kept sparsemax's support: its threshold rule beside
        by_threshold = threshold_sets(clf, X_test, clf.tuned_["threshold"])
        found = evaluate(Y_test, None, ks=(), label_sets=by_threshold)
        extra["threshold_rule"] = {c: 100.0 * float(found[c]) for c in ("example-F1", "micro-F1")}
    return {
        "system": system,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in args.items()},
        **{c: 100.0 * float(metrics[c]) for c in COLUMNS},
        "train_cpu_seconds": train.cpu,
        "train_seconds": train.wall,
        "predict_ms_per_1000": 1000.0 * predict.wall / n * 1000.0,
        "predict_cpu_ms_per_1000": 1000.0 * predict.cpu / n * 1000.0,
        "sets_ms_per_1000": 1000.0 * sets_time.wall / n * 1000.0,
        "mean_set_size": float(np.asarray(sets.sum(axis=1)).mean()),
        "tuned": {k: float(v) for k, v in clf.tuned_.items()},
        "epochs_run": len(clf.history_),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": load,
        **extra,
    }


def load_data(name: str) -> dict[str, Any]:
    from sparsexc.datasets import load

    data = load(name)
    X_train, X_test = prepare_features(name, data.train.X, data.test.X)
    return {"X_train": X_train, "Y_train": data.train.Y, "X_test": X_test, "Y_test": data.test.Y}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        page_header(
            "Label-tree shortlist for the neural heads", report["environment"], report["date"], report["command"]
        ),
        "",
        "Each system trained on the training rows (its set rule tuned for example-F1 on the estimator's 10% "
        "hold-out of them) and scored on the test rows; metrics in %. Shortlist: the 100 best labels of a "
        "logistic label tree (the same `tree_params` as `tree-logistic`), beam 10; a shortlisted label's logit is "
        "the head's plus w x its log path score in that tree, w (`path w`) tuned with the set rule on the same "
        "hold-out since stop 56 (`shortlist_path_weight=None`, the default; '–': a row without it). Neural settings: the "
        "library's defaults, plus `sparse_gradients=True` from 10,000 features on (each row's `settings` in the "
        "JSON). Training time includes the hold-out, early stopping, tuning and fitting the shortlist's "
        "tree; prediction = top-5 of every test row.",
    ]
    if report.get("merged_from"):
        lines += ["", "Merged from the runs " + ", ".join(f"`{c}`" for c in report["merged_from"]) + "."]
    for dataset, block in report["datasets"].items():
        shape = block["shape"]
        lines += [
            "",
            f"## {dataset} — {shape['n_train']} train / {shape['n_test']} test rows, {shape['n_features']} "
            f"features, {shape['n_labels']} labels",
            "",
            "| system | "
            + " | ".join([*COLUMNS, *(HEADERS[c] for c in COSTS)])
            + " | mean set size | epochs | path w |",
            "|---|" + "---:|" * (len(COLUMNS) + len(COSTS) + 3),
        ]
        for row in block["rows"]:
            cells = [f"{row[c]:.2f}" for c in COLUMNS] + [f"{row[c]:.3g}" for c in COSTS]
            weight = row.get("tuned", {}).get("path_weight")
            cells += [f"{row['mean_set_size']:.2f}", str(row["epochs_run"]), "–" if weight is None else f"{weight:g}"]
            lines.append(f"| {row['system']} | " + " | ".join(cells) + " |")
        target = target_check(block["rows"])
        if target is not None:
            lines += ["", target]
    return "\n".join(lines) + "\n"


def target_check(rows: list[dict[str, Any]]) -> str | None:
    """The issue's target on one data set: sparsemax over the shortlist vs the tree's logistic ranker."""
    by = {r["system"]: r for r in rows}
    if "tree-logistic" not in by or "sparsemax-shortlist" not in by:
        return None
    tree = by["tree-logistic"]
    a, b = tree["example-F1"], by["sparsemax-shortlist"]["example-F1"]
    verdict = "met" if b > a else "missed"
    line = f"Target (sparsemax-shortlist example-F1 > tree-logistic's): {b:.2f} vs {a:.2f}: {verdict}."
    if "threshold_rule" in tree:
        line += (
            f" The tree's sets are the support of sparsemax({tree['tuned']['sparsemax_scale']:g} x log path "
            "score) over its best 100 labels, the rule its tuning kept; by its threshold rule (the tree's only rule "
            f"until stop 52) its example-F1 is {tree['threshold_rule']['example-F1']:.2f}, "
            f"{'below' if b > tree['threshold_rule']['example-F1'] else 'not below'} the sparsemax-shortlist row."
        )
    return line


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report of several runs' (``--merge``): the data sets of all, a later run's row of a system replacing an
    earlier one's; the date and environment of the last run, the runs' commands listed."""
    out: dict[str, Any] = {**reports[-1], "datasets": {}, "merged_from": [r["command"] for r in reports]}
    for report in reports:
        for dataset, block in report["datasets"].items():
            mine = out["datasets"].setdefault(dataset, {"shape": block["shape"], "rows": []})
            systems = {row["system"] for row in block["rows"]}
            mine["rows"] = [r for r in mine["rows"] if r["system"] not in systems] + list(block["rows"])
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_flags(parser, out=True, quick="bibtex only, 2 epochs of a (64,) encoder", datasets=DATASETS,
                     append="keep the rows of other data sets / systems already in the results file")  # fmt: skip
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help=f"comma-separated from {', '.join(SYSTEMS + OPTIONAL_SYSTEMS)}")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--merge", nargs="+", type=Path, default=None, metavar="JSON",
                        help="no training: join these runs' results (later files' rows replace earlier ones) "
                        "into --out")  # fmt: skip
    args = parser.parse_args(argv)
    args.systems = [s for s in args.systems.split(",") if s]
    unknown = [s for s in args.systems if s not in SYSTEMS + OPTIONAL_SYSTEMS]
    if unknown:
        parser.error(f"unknown system {unknown[0]!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    if args.merge:
        report = merge([read_json(path) for path in args.merge])
        report["command"] = command_line(__file__, argv)
        write_results(args.out, STEM, report, markdown(report))
        return 0
    use_shared_datasets()
    torch.set_num_threads(args.threads)
    datasets = dataset_list(args.datasets, ["bibtex"] if args.quick else DATASETS)
    out: Path = args.out
    path = out / f"{STEM}.json"
    report: dict[str, Any] = {"datasets": {}}
    if args.append and path.exists():
        report = read_json(path)
    report.update(date=utc_now(), command=command_line(__file__, argv), environment=environment())
    for dataset in datasets:
        data = load_data(dataset)
        shape = {"n_train": data["X_train"].shape[0], "n_test": data["X_test"].shape[0],
                 "n_features": data["X_train"].shape[1], "n_labels": data["Y_train"].shape[1]}  # fmt: skip
        block = report["datasets"].setdefault(dataset, {"shape": shape, "rows": []})
        block["shape"] = shape
        for system in args.systems:
            row = run_system(system, data, args.quick)
            print(f"{dataset} {system}: " + ", ".join(f"{c} {row[c]:.2f}" for c in COLUMNS)
                  + f", train CPU {row['train_cpu_seconds']:.1f} s", flush=True)  # fmt: skip
            block["rows"] = [r for r in block["rows"] if r["system"] != system] + [row]
            if not args.quick or args.out != RESULTS:
                write_results(out, STEM, report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
