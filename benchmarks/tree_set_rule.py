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
TITLE = "The label tree's set rule: threshold, or the better of threshold and sparsemax"


def threshold_sets(clf: Any, X: Any, threshold: float) -> sp.csr_matrix:
    """The threshold rule's sets of a fitted tree model: the labels among each row's best 100 (``predict_topk``,
    the default beam: the candidates ``predict`` chooses among) whose path score is >= ``threshold``."""
    idx, scores = clf.predict_topk(X, CANDIDATES)
    keep = scores >= threshold
    indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
    values = np.ones(int(indptr[-1]), dtype=np.float32)
    return sp.csr_matrix((values, idx[keep], indptr), shape=(X.shape[0], len(clf.classes_)))


def run_set(name: str, metrics: tuple[str, ...]) -> dict[str, Any]:
    """Both rules' test scores per tuning metric on the set ``name`` (see the module docstring)."""
    from sparsexc import XCClassifier
    from sparsexc.datasets import load
    from sparsexc.metrics import evaluate

    data = load(name)
    out: dict[str, Any] = {"n_train": data.train.X.shape[0], "n_test": data.test.X.shape[0],
                           "n_labels": data.train.Y.shape[1], "metrics": {}}  # fmt: skip
    for metric in metrics:
        clf = XCClassifier(tune_metric=metric, verbose=0)
        with timed() as fit:
            clf.fit(data.train.X, data.train.Y)
        row: dict[str, Any] = {"tuned": dict(clf.tuned_), "fit_cpu_seconds": fit.cpu}
        if clf.resolved_model().family == "tree":
            chosen = clf.predict(data.test.X)
            threshold = threshold_sets(clf, data.test.X, clf.tuned_["threshold"])
            for rule, sets in (("chosen", chosen), ("threshold", threshold)):
                found = evaluate(data.test.Y, None, ks=(), label_sets=sets)
                row[rule] = {m: 100.0 * float(found[m]) for m in METRICS}
                row[rule]["mean_set_size"] = float(np.asarray(sets.sum(axis=1)).mean())
        else:
            row["model"] = clf.resolved_model().family
        out["metrics"][metric] = row
        print(f"{name} {metric}: {row.get('chosen', row.get('model'))}", file=sys.stderr, flush=True)
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
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_flags(parser, out=True, datasets=DATASETS)
    parser.add_argument("--metrics", default=",".join(METRICS), help="comma-separated tuning metrics")
    args = parser.parse_args(argv)
    use_shared_datasets()
    metrics = tuple(args.metrics.split(","))
    result: dict[str, Any] = {"benchmark": STEM, "command": command_line(__file__, argv), "date": utc_now(),
                              "metrics": list(metrics), "datasets": {}}  # fmt: skip
    for name in dataset_list(args.datasets, DATASETS):
        result["datasets"][name] = run_set(name, metrics)
    result["environment"] = environment()
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(args.out, STEM, result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
