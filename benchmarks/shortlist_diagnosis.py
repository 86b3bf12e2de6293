"""Why a head trained over a label-tree shortlist falls behind the same head over every label (issue 19).

Everything here is measured on a hold-out of the TRAINING rows (``--val-share``, seeded by ``--seed``; the
test rows are never read): the models are fitted on the rest ("fit rows"), scored on the hold-out.

1. **The shortlist at training and at prediction.** A logistic label tree with the shortlist benchmark's
   settings (``shortlist.TREE_PARAMS``, seed 0) is fitted on the fit rows; each row's shortlist is its 100
   best labels. Reported: the share of the positives inside the shortlist for the fit rows (the training
   shortlists) and for the hold-out rows (prediction); and, per band of label frequency (training positives),
   the share of positives among a label's training candidates (shortlist plus the row's positives, as the
   loss sees them) against the share of positives among the hold-out rows' shortlistings of it, and how many
   labels of the band a row's shortlist holds. The same for training shortlists cross-fitted over
   ``--folds`` folds (each fold's rows shortlisted by a tree fitted on the other folds).
2. **The full head against the shortlist.** The sparsemax head over every label (``XCClassifier(head=
   "sparsemax")``, the library's defaults): P@k and example-F1 on the hold-out, the share of its top-1 inside
   the hold-out row's shortlist, its P@k with the ranking cut to the shortlist, and the example-F1 of its sets
   cut to the shortlist.
3. **The shortlist head, with and without uniform negatives.** ``XCClassifier(head=H, shortlist="tree",
   shortlist_size=100, tree_params=TREE_PARAMS, shortlist_negatives=R)`` for each head H of ``--heads``
   (default sparsemax) and each R of ``--negatives``: P@k, example-F1, epochs and training CPU seconds; and
   the median number of fit rows whose tree shortlist holds the label it ranks first, for right and for wrong
   top-1s (labels the tree seldom shortlists at training are the ones wrongly ranked first when their output
   rows met few negatives).
   ``--seeds`` repeats 2 and 3 with each ``random_state`` (the spread of training).

Usage::

    python benchmarks/shortlist_diagnosis.py --out /tmp/diag                     # delicious, R = 0, 30, 100, 300
    python benchmarks/shortlist_diagnosis.py --datasets bibtex --negatives 0,100 --out /tmp/diag
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
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
from shortlist import SHORTLIST_SIZE, TREE_PARAMS, TUNE_METRIC, load_data

STEM = "shortlist_diagnosis"
DATASETS: tuple[str, ...] = ("delicious",)
BANDS: tuple[int, ...] = (0, 50, 200, 500, 1000)  # lower edges of the label-frequency bands (training positives)
METRICS: tuple[str, ...] = ("P@1", "P@3", "P@5", "example-F1")


def split(X: sp.csr_matrix, Y: sp.csr_matrix, share: float, seed: int) -> tuple[sp.csr_matrix, ...]:
    """(X_fit, Y_fit, X_hold, Y_hold): a seeded ``share`` of the training rows held out."""
    order = np.random.default_rng(seed).permutation(X.shape[0])
    n_hold = max(1, round(share * X.shape[0]))
    hold, fit = np.sort(order[:n_hold]), np.sort(order[n_hold:])
    return X[fit], Y[fit], X[hold], Y[hold]


def indicator(short: np.ndarray, n_labels: int) -> sp.csr_matrix:
    """The (n, C) 0/1 matrix of each row's shortlisted labels."""
    n, m = short.shape
    return sp.csr_matrix((np.ones(n * m), short.ravel(), np.arange(0, n * m + 1, m)), shape=(n, n_labels))


def recall(short: np.ndarray, Y: sp.csr_matrix) -> float:
    """The share of all positives that lie inside their row's shortlist."""
    S = indicator(short, Y.shape[1])
    return float(S.multiply(Y).sum() / max(Y.sum(), 1))


def bands(
    short_fit: np.ndarray, Y_fit: sp.csr_matrix, short_hold: np.ndarray, Y_hold: sp.csr_matrix
) -> list[dict[str, Any]]:
    """Per band of label frequency: the positives' share among the training candidates (shortlist plus positives)
    and among the hold-out shortlistings, and the band's labels per shortlist."""
    C = Y_fit.shape[1]
    freq = np.asarray(Y_fit.sum(axis=0)).ravel()
    S_fit, S_hold = indicator(short_fit, C), indicator(short_hold, C)
    listed_fit, listed_hold = np.asarray(S_fit.sum(axis=0)).ravel(), np.asarray(S_hold.sum(axis=0)).ravel()
    hit_fit = np.asarray(S_fit.multiply(Y_fit).sum(axis=0)).ravel()
    hit_hold = np.asarray(S_hold.multiply(Y_hold).sum(axis=0)).ravel()
    out = []
    for low, high in zip(BANDS, (*BANDS[1:], np.inf), strict=True):
        sel = (freq >= low) & (freq < high)
        candidates = listed_fit[sel].sum() + freq[sel].sum() - hit_fit[sel].sum()  # the positives added
        out.append(
            {
                "band": f"{low}-{'' if high == np.inf else int(high) - 1}",
                "labels": int(sel.sum()),
                "positive_share_train_candidates": float(freq[sel].sum() / max(candidates, 1)),
                "positive_share_train_shortlist": float(hit_fit[sel].sum() / max(listed_fit[sel].sum(), 1)),
                "positive_share_holdout_shortlist": float(hit_hold[sel].sum() / max(listed_hold[sel].sum(), 1)),
                "per_row_train": float(listed_fit[sel].sum() / short_fit.shape[0]),
                "per_row_holdout": float(listed_hold[sel].sum() / short_hold.shape[0]),
            }
        )
    return out


def cross_fitted(X: sp.csr_matrix, Y: sp.csr_matrix, folds: int, m: int, seed: int) -> np.ndarray:
    """Each row's shortlist from a tree fitted on the other folds' rows."""
    from sparsexc.tree import LabelTreeModel, LabelTreeParams

    fold = np.random.default_rng(seed).permutation(X.shape[0]) % folds
    out = np.empty((X.shape[0], m), dtype=np.int64)
    for f in range(folds):
        tree = LabelTreeModel(LabelTreeParams(**TREE_PARAMS, seed=seed)).fit(X[fold != f], Y[fold != f])
        out[fold == f] = tree.predict_topk(X[fold == f], m)[0]
    return out


def scored(Y: sp.csr_matrix, topk: tuple[np.ndarray, np.ndarray], sets: Any = None) -> dict[str, float]:
    from sparsexc.metrics import evaluate

    metrics = evaluate(Y, topk, ks=(1, 3, 5), label_sets=sets)
    return {k: 100.0 * float(metrics[k]) for k in METRICS if k in metrics}


def classifier(head: str, seed: int, **extra: Any) -> Any:
    from sparsexc import XCClassifier

    return XCClassifier(head=head, tune_metric=TUNE_METRIC, verbose=0, device="cpu", random_state=seed, **extra)


def diagnose(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from sparsexc.tree import LabelTreeModel, LabelTreeParams

    data = load_data(name)
    X_fit, Y_fit, X_hold, Y_hold = split(data["X_train"], data["Y_train"], args.val_share, args.seed)
    C = Y_fit.shape[1]
    m = min(SHORTLIST_SIZE, C)
    tree = LabelTreeModel(LabelTreeParams(**TREE_PARAMS, seed=0)).fit(X_fit, Y_fit)
    short_fit, short_hold = tree.predict_topk(X_fit, m)[0], tree.predict_topk(X_hold, m)[0]
    crossed = cross_fitted(X_fit, Y_fit, args.folds, m, 0)
    report: dict[str, Any] = {
        "shape": {"n_fit": X_fit.shape[0], "n_holdout": X_hold.shape[0], "n_labels": C, "shortlist_size": m},
        "recall": {
            "train": recall(short_fit, Y_fit),
            "holdout": recall(short_hold, Y_hold),
            "train_cross_fitted": recall(crossed, Y_fit),
        },
        "bands": bands(short_fit, Y_fit, short_hold, Y_hold),
        "bands_cross_fitted": bands(crossed, Y_fit, short_hold, Y_hold),
        "systems": [],
    }
    listed_count = np.asarray(indicator(short_fit, C).sum(axis=0)).ravel()  # fit rows shortlisting each label

    def system(label: str, clf: Any, cpu: float) -> dict[str, Any]:
        topk = clf.predict_topk(X_hold, 5)
        row = {"system": label, **scored(Y_hold, topk, clf.predict(X_hold)), "epochs": len(clf.history_),
               "train_cpu_seconds": cpu, "random_state": clf.random_state}  # fmt: skip
        first = topk[0][:, 0]
        right = np.asarray(Y_hold[np.arange(len(first)), first]).ravel() > 0
        row["top1_listed_median_right"] = float(np.median(listed_count[first[right]])) if right.any() else None
        row["top1_listed_median_wrong"] = float(np.median(listed_count[first[~right]])) if (~right).any() else None
        print(f"{name} {label}: " + ", ".join(f"{k} {row[k]:.2f}" for k in METRICS)
              + f", epochs {row['epochs']}, train CPU {cpu:.1f} s", flush=True)  # fmt: skip
        report["systems"].append(row)
        return row

    for seed in args.seeds:
        tag = "" if len(args.seeds) == 1 else f" (seed {seed})"
        with timed() as t:
            full = classifier("sparsemax", seed).fit(X_fit, Y_fit)
        row = system("sparsemax, every label" + tag, full, t.cpu)
        if seed == args.seeds[0]:
            cut_full_head(row, full, X_hold, Y_hold, short_hold)
        for head in args.heads:
            for negatives in args.negatives:
                with timed() as t:
                    clf = classifier(head, seed, shortlist="tree", shortlist_size=SHORTLIST_SIZE,
                                     tree_params=dict(TREE_PARAMS), shortlist_negatives=negatives).fit(X_fit, Y_fit)  # fmt: skip
                system(f"{head} over the shortlist, {negatives} uniform negatives{tag}", clf, t.cpu)
    return report


def cut_full_head(
    row: dict[str, Any], full: Any, X_hold: sp.csr_matrix, Y_hold: sp.csr_matrix, short: np.ndarray
) -> None:
    """Into ``row``: the full head's ranking and sets cut to each hold-out row's shortlist (what the shortlist
    alone would cost the full head)."""
    C = Y_hold.shape[1]
    listed = indicator(short, C)
    # the full ranking (by logit: sparsemax's probabilities tie at 0 outside the support), cut to the shortlist
    ranking = full.predict_topk(X_hold, C)[0]
    inside = listed[np.arange(ranking.shape[0])[:, None], ranking].toarray() > 0
    top = np.stack([r[keep][:5] for r, keep in zip(ranking, inside, strict=True)])
    row["top1_in_holdout_shortlist"] = float(inside[:, 0].mean())
    rank_scores = np.broadcast_to(np.arange(top.shape[1], 0, -1, dtype=np.float32), top.shape)  # order as scores
    row["cut_to_shortlist"] = scored(Y_hold, (top, np.ascontiguousarray(rank_scores)))
    sets = sp.csr_matrix(full.predict(X_hold))
    cut = sp.csr_matrix(sets.multiply(listed))
    row["sets_cut_to_shortlist_example_F1"] = scored(Y_hold, (top, np.ascontiguousarray(rank_scores)), cut)[
        "example-F1"
    ]
    hits = float(sets.multiply(Y_hold).sum())
    row["set_true_positives_outside_shortlist"] = 1.0 - float(cut.multiply(Y_hold).sum()) / max(hits, 1.0)


def markdown(report: dict[str, Any]) -> str:
    lines = [page_header("Shortlist diagnosis (issue 19)", report["environment"], report["date"], report["command"])]
    lines += [
        "",
        f"Hold-out: {report['val_share']:.0%} of the training rows (seed {report['seed']}); test rows unread.",
    ]
    for name, block in report["datasets"].items():
        r = block["recall"]
        lines += [
            "",
            f"## {name} — {block['shape']['n_fit']} fit / {block['shape']['n_holdout']} hold-out rows, "
            f"{block['shape']['n_labels']} labels",
            "",
            f"Positives inside the {block['shape']['shortlist_size']}-label shortlist: training rows {100 * r['train']:.1f}%, hold-out rows "
            f"{100 * r['holdout']:.1f}% (training rows cross-fitted over {report['folds']} folds: "
            f"{100 * r['train_cross_fitted']:.1f}%).",
        ]
        for key, title in (("bands", "tree fitted on the fit rows"), ("bands_cross_fitted", "cross-fitted")):
            lines += [
                "",
                f"Positives' share per band of label frequency ({title}):",
                "",
                "| training positives | labels | among training candidates | among training shortlistings | "
                "among hold-out shortlistings | per training shortlist | per hold-out shortlist |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
            for b in block[key]:
                lines.append(
                    f"| {b['band']} | {b['labels']} | {b['positive_share_train_candidates']:.3f} | "
                    f"{b['positive_share_train_shortlist']:.3f} | {b['positive_share_holdout_shortlist']:.3f} | "
                    f"{b['per_row_train']:.2f} | {b['per_row_holdout']:.2f} |"
                )
        lines += [
            "",
            "| system | " + " | ".join(METRICS) + " | epochs | train CPU s | fit rows shortlisting the top-1: "
            "right / wrong (median) |",
            "|---|" + "---:|" * (len(METRICS) + 3),
        ]
        for s in block["systems"]:
            median = " / ".join(
                "-" if s[key] is None else f"{s[key]:.0f}"
                for key in ("top1_listed_median_right", "top1_listed_median_wrong")
            )
            cells = [f"{s[k]:.2f}" for k in METRICS] + [str(s["epochs"]), f"{s['train_cpu_seconds']:.1f}", median]
            lines.append(f"| {s['system']} | " + " | ".join(cells) + " |")
        for s in block["systems"]:
            if "cut_to_shortlist" in s:
                cut = s["cut_to_shortlist"]
                lines += [
                    "",
                    f"The full head's top-1 is inside the hold-out row's shortlist for "
                    f"{100 * s['top1_in_holdout_shortlist']:.1f}% of the rows; its ranking cut to the shortlist: "
                    + ", ".join(f"{k} {cut[k]:.2f}" for k in METRICS if k in cut)
                    + f". Its predicted sets cut to the shortlist: example-F1 {s['sets_cut_to_shortlist_example_F1']:.2f}"
                    f" ({s['example-F1']:.2f} uncut; {100 * s['set_true_positives_outside_shortlist']:.1f}% of their"
                    " true positives lie outside the shortlist).",
                ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_flags(parser, out=True, datasets=DATASETS)
    parser.add_argument("--negatives", default="0,30,100,300", help="shortlist_negatives values (default %(default)s)")
    parser.add_argument("--heads", default="sparsemax", help="shortlist heads (default %(default)s)")
    parser.add_argument("--seeds", default="0", help="random_state of every system, each in turn (default %(default)s)")
    parser.add_argument("--val-share", type=float, default=0.1, help="hold-out share of the training rows")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the hold-out split")
    parser.add_argument("--folds", type=int, default=2, help="folds of the cross-fitted training shortlists")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    args.negatives = [int(v) for v in args.negatives.split(",") if v]
    args.heads = [h for h in args.heads.split(",") if h]
    args.seeds = [int(v) for v in args.seeds.split(",") if v]
    return args


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    use_shared_datasets()
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"date": utc_now(), "command": command_line(__file__, argv), "environment": environment(),
                              "val_share": args.val_share, "seed": args.seed, "folds": args.folds, "datasets": {}}  # fmt: skip
    out: Path = args.out
    for name in dataset_list(args.datasets, DATASETS):
        report["datasets"][name] = diagnose(name, args)
        write_results(out, STEM, report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
