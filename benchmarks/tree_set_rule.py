"""The label tree's set rule: the threshold alone, or the better on the tuning rows of the threshold and sparsemax
rules (issues 19 and 20).

For each data set (default: the 16 of the defaults table, :data:`peers.DATASETS`) and each tuning metric
(``--metrics``, default micro-F1, the estimator's default, and example-F1), ``XCClassifier(tune_metric=...)`` with
no other setting is fitted on the training rows as loaded (the library chooses the model and preprocessing, as in
the defaults table); where it is the label tree, its test rows' sets are scored twice, from the same tree:

* ``threshold``: the threshold rule at the threshold tuned for the metric (the tree model's only rule until this
  change: ``{j among the best 100 labels : path score >= t}``);
* ``chosen``: the rule tuning kept, the threshold or the support of ``sparsemax(a log path score)`` over the same
  labels (:func:`sparsexc.estimator._families.tune_tree_sets`: the scale a tuned on the same rows, the sparsemax
  rule kept where it scores strictly higher there).

Both are read from one fit, so the difference is the rule's alone. The tuning rows are the estimator's: out-of-fold
rankings of the training rows the 10% hold-out leaves on small data, the hold-out's rankings on large data (see
``docs/getting-started.md``); no test row chooses anything. ::

    SPARSEXC_DATA=<shared>/datasets python benchmarks/tree_set_rule.py [--datasets bibtex,medical]

writes ``--out/tree_set_rule.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
import scipy.sparse as sp
from _harness import (
    add_common_flags,
    command_line,
    dataset_list,
    environment,
    page_header,
    timed,
    use_shared_datasets,
    utc_now,
    write_results,
)
from peers import DATASETS

METRICS: tuple[str, ...] = ("micro-F1", "example-F1")
STEM = "tree_set_rule"
CANDIDATES = 100  # the tree's sets are chosen among each row's best 100 labels (TREE_CANDIDATES)
HOLDOUT = 0.2  # share of the training rows a --holdout-seeds run holds out
TITLE = "The label tree's set rule: threshold, or the better of threshold and sparsemax"


def threshold_sets(clf: Any, X: Any, threshold: float) -> sp.csr_matrix:
    """The threshold rule's sets of a fitted tree model: the labels among each row's best 100 (``predict_topk``,
    the default beam: the candidates ``predict`` chooses among) whose path score is >= ``threshold``."""
    idx, scores = clf.predict_topk(X, CANDIDATES)
    keep = scores >= threshold
    indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
    values = np.ones(int(indptr[-1]), dtype=np.float32)
    return sp.csr_matrix((values, idx[keep], indptr), shape=(X.shape[0], len(clf.classes_)))


def compare(X_fit: Any, Y_fit: Any, X_eval: Any, Y_eval: Any, metric: str) -> dict[str, Any]:
    """``XCClassifier(tune_metric=metric)`` fitted on (X_fit, Y_fit); where it is the tree model, both rules'
    scores (%) and mean set sizes on (X_eval, Y_eval)."""
    from sparsexc import XCClassifier
    from sparsexc.metrics import evaluate

    clf = XCClassifier(tune_metric=metric, verbose=0)
    with timed() as fit:
        clf.fit(X_fit, Y_fit)
    row: dict[str, Any] = {"tuned": dict(clf.tuned_), "fit_cpu_seconds": fit.cpu}
    if clf.resolved_model().family != "tree":
        return {**row, "model": clf.resolved_model().family}
    chosen = clf.predict(X_eval)
    threshold = threshold_sets(clf, X_eval, clf.tuned_["threshold"])
    for rule, sets in (("chosen", chosen), ("threshold", threshold)):
        found = evaluate(Y_eval, None, ks=(), label_sets=sets)
        row[rule] = {m: 100.0 * float(found[m]) for m in METRICS}
        row[rule]["mean_set_size"] = float(np.asarray(sets.sum(axis=1)).mean())
    return row


def run_set(name: str, metrics: tuple[str, ...], seeds: list[int]) -> dict[str, Any]:
    """Both rules' test scores per tuning metric on the set ``name`` (see the module docstring) and, for each of
    ``seeds``, on a seeded 20% hold-out of its training rows (fitted on the rest; the test rows unread)."""
    from sparsexc.datasets import load

    data = load(name)
    X, Y = data.train.X, data.train.Y
    out: dict[str, Any] = {"n_train": X.shape[0], "n_test": data.test.X.shape[0], "n_labels": Y.shape[1],
                           "metrics": {}, "holdout": {}}  # fmt: skip
    for metric in metrics:
        row = compare(X, Y, data.test.X, data.test.Y, metric)
        out["metrics"][metric] = row
        print(f"{name} {metric}: {row.get('chosen', row.get('model'))}", file=sys.stderr, flush=True)
        for seed in seeds:
            order = np.random.default_rng(seed).permutation(X.shape[0])
            held, rest = np.sort(order[: round(HOLDOUT * len(order))]), np.sort(order[round(HOLDOUT * len(order)) :])
            part = compare(X[rest], Y[rest], X[held], Y[held], metric)
            out["holdout"].setdefault(metric, []).append({"seed": seed, **part})
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [
        page_header(TITLE, result["environment"], result["date"], result["command"]),
        "",
        "Per tuning metric: the default model (`XCClassifier(tune_metric=M)`, nothing else set) fitted once; its "
        "test rows' sets by the threshold rule (the tuned threshold; the tree model's only rule before) and by the "
        "rule tuning kept (`sparsemax a` where the support of sparsemax(a log path score) scored strictly higher "
        "on the tuning rows, else the same threshold). Metrics in %, on the test rows; difference = chosen - "
        "threshold.",
    ]
    for metric in result["metrics"]:
        lines += ["", f"## Tuned for {metric}", "",
                  f"| set | rule kept | tuning {metric} | test {metric}: threshold | chosen | difference | "
                  "mean set size: threshold | chosen |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        diffs, kept = [], 0
        for name, part in result["datasets"].items():
            row = part["metrics"][metric]
            if "chosen" not in row:
                lines.append(f"| {name} | not the tree model ({row['model']}) | | | | | | |")
                continue
            scale = row["tuned"].get("sparsemax_scale")
            rule = f"sparsemax {scale:g}" if scale is not None else f"threshold {row['tuned']['threshold']:g}"
            a, b = row["threshold"][metric], row["chosen"][metric]
            diffs.append(b - a)
            kept += scale is not None
            lines.append(
                f"| {name} | {rule} | {100 * row['tuned'][metric]:.2f} | {a:.2f} | {b:.2f} | {b - a:+.2f} | "
                f"{row['threshold']['mean_set_size']:.2f} | {row['chosen']['mean_set_size']:.2f} |"
            )
        if diffs:
            lines += ["", f"Sparsemax kept on {kept}/{len(diffs)} sets; test {metric} higher on "
                      f"{sum(d > 0 for d in diffs)}, lower on {sum(d < 0 for d in diffs)}; mean difference "
                      f"{np.mean(diffs):+.2f} points over the {len(diffs)} sets."]  # fmt: skip
    return "\n".join(lines + holdout_lines(result)) + "\n"


def holdout_lines(result: dict[str, Any]) -> list[str]:
    """The page's section on the hold-outs of the training rows: per set and metric, on how many seeds the
    sparsemax rule was kept, and the paired difference chosen - threshold (mean +- standard error over seeds)."""
    sets = {n: p for n, p in result["datasets"].items() if p.get("holdout")}
    if not sets:
        return []
    lines = ["", "## Hold-outs of the training rows", "",
             f"Each seed: a seeded {HOLDOUT:.0%} of the training rows held out, the default fitted on the rest (its "
             "own tuning inside them), both rules scored on the held-out rows; the test split is not read. "
             "Difference = chosen - threshold, mean +- standard error over the seeds.", "",
             "| set | tuned for | sparsemax kept | difference | per seed |", "|---|---|---:|---:|---|"]  # fmt: skip
    for name, part in sets.items():
        for metric, runs in part["holdout"].items():
            runs = [r for r in runs if "chosen" in r]
            if not runs:
                continue
            diffs = [r["chosen"][metric] - r["threshold"][metric] for r in runs]
            kept = sum("sparsemax_scale" in r["tuned"] for r in runs)
            se = float(np.std(diffs, ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else float("nan")
            each = ", ".join(f"{d:+.2f}" for d in diffs)
            lines.append(f"| {name} | {metric} | {kept}/{len(runs)} | {np.mean(diffs):+.2f} +- {se:.2f} | {each} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_flags(parser, out=True, datasets=DATASETS)
    parser.add_argument("--metrics", default=",".join(METRICS), help="comma-separated tuning metrics")
    parser.add_argument("--holdout-seeds", type=int, default=0,
                        help="also compare the rules on this many seeded 20%% hold-outs of the training rows "
                        "(seeds 123, 124, ...)")  # fmt: skip
    args = parser.parse_args(argv)
    use_shared_datasets()
    metrics = tuple(args.metrics.split(","))
    result: dict[str, Any] = {"benchmark": STEM, "command": command_line(__file__, argv), "date": utc_now(),
                              "metrics": list(metrics), "datasets": {}}  # fmt: skip
    for name in dataset_list(args.datasets, DATASETS):
        result["datasets"][name] = run_set(name, metrics, list(range(123, 123 + args.holdout_seeds)))
    result["environment"] = environment()
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(args.out, STEM, result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
