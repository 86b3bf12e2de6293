"""Slow, obvious per-row Python implementations of the metrics, written straight from their definitions.

Predictions are given as one dict per row, ``{label id: score}`` of the *predicted* labels (every label for
dense scores). The ranking of a row is the predicted labels by decreasing score, ties by lower id; for the
full-ranking metrics the unpredicted labels follow in increasing id order.
"""

from __future__ import annotations

import math


def predicted_ranking(pred: dict[int, float]) -> list[int]:
    return sorted(pred, key=lambda label: (-pred[label], label))


def full_ranking(pred: dict[int, float], n_labels: int) -> list[int]:
    return predicted_ranking(pred) + sorted(set(range(n_labels)) - set(pred))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _average(per_row: list[float], Y: list[set[int]], empty_rows: str) -> float:
    if empty_rows == "exclude":
        per_row = [v for v, y in zip(per_row, Y) if y]
    return _mean(per_row)


def precision_at_k(Y, preds, k, empty_rows="zero"):
    rows = [sum(label in y for label in predicted_ranking(p)[:k]) / k for y, p in zip(Y, preds)]
    return _average(rows, Y, empty_rows)


def recall_at_k(Y, preds, k, empty_rows="zero"):
    rows = [sum(label in y for label in predicted_ranking(p)[:k]) / len(y) if y else 0.0 for y, p in zip(Y, preds)]
    return _average(rows, Y, empty_rows)


def _dcg(gains: list[float]) -> float:
    return sum(g / math.log2(j + 2) for j, g in enumerate(gains))


def ndcg_at_k(Y, preds, k, empty_rows="zero"):
    rows = []
    for y, p in zip(Y, preds):
        dcg = _dcg([float(label in y) for label in predicted_ranking(p)[:k]])
        ideal = _dcg([1.0] * min(k, len(y)))
        rows.append(dcg / ideal if ideal else 0.0)
    return _average(rows, Y, empty_rows)


def psp_at_k(Y, preds, w, k, normalize=True):
    value = _mean([sum(w[label] for label in predicted_ranking(p)[:k] if label in y) / k for y, p in zip(Y, preds)])
    best = _mean([sum(sorted((w[label] for label in y), reverse=True)[:k]) / k for y in Y])
    if not normalize:
        return value
    return value / best if best > 0 else 0.0


def psndcg_at_k(Y, preds, w, k, normalize=True):
    value, best = [], []
    for y, p in zip(Y, preds):
        ideal = _dcg([1.0] * min(k, len(y)))
        gains = [w[label] if label in y else 0.0 for label in predicted_ranking(p)[:k]]
        best_gains = sorted((w[label] for label in y), reverse=True)[:k]
        value.append(_dcg(gains) / ideal if ideal else 0.0)
        best.append(_dcg(best_gains) / ideal if ideal else 0.0)
    if not normalize:
        return _mean(value)
    return _mean(value) / _mean(best) if _mean(best) > 0 else 0.0


def _average_precision(positives: set[int], ranking: list[int]) -> float:
    rank = {item: r + 1 for r, item in enumerate(ranking)}
    return _mean([sum(rank[o] <= rank[i] for o in positives) / rank[i] for i in positives])


def lrap(Y, preds, n_labels):
    rows = []
    for y, p in zip(Y, preds):
        rows.append(1.0 if len(y) in (0, n_labels) else _average_precision(y, full_ranking(p, n_labels)))
    return _mean(rows)


def coverage(Y, preds, n_labels):
    rows = []
    for y, p in zip(Y, preds):
        ranking = full_ranking(p, n_labels)
        rows.append(max((ranking.index(label) + 1 for label in y), default=0))
    return _mean(rows)


def mean_average_precision(Y, preds, n_labels):
    per_label = []
    for label in range(n_labels):
        positives = {i for i, y in enumerate(Y) if label in y}
        if not positives:
            continue
        by_example = {i: p[label] for i, p in enumerate(preds) if label in p}
        ranking = full_ranking(by_example, len(Y))  # examples ranked by this label's score, ties by lower row
        per_label.append(_average_precision(positives, ranking))
    return _mean(per_label)


def set_metrics(Y, P, n_labels):
    """Every set metric with the library's default zero-division conventions."""
    tp = [len(y & p) for y, p in zip(Y, P)]
    micro_den = sum(len(y) + len(p) for y, p in zip(Y, P))
    f1_labels, prec_labels, rec_labels = [], [], []
    for label in range(n_labels):
        tp_l = sum(label in y and label in p for y, p in zip(Y, P))
        true_l = sum(label in y for y in Y)
        pred_l = sum(label in p for p in P)
        f1_labels.append(2 * tp_l / (true_l + pred_l) if true_l + pred_l else 0.0)
        prec_labels.append(tp_l / pred_l if pred_l else 0.0)
        rec_labels.append(tp_l / true_l if true_l else 0.0)
    prec, rec = _mean(prec_labels), _mean(rec_labels)
    return {
        "micro-F1": 2 * sum(tp) / micro_den if micro_den else 0.0,
        "macro-F1": _mean(f1_labels),
        "macro-F1 (paper)": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
        "example-F1": _mean([2 * t / (len(y) + len(p)) if y or p else 1.0 for t, y, p in zip(tp, Y, P)]),
        "Jaccard": _mean([t / len(y | p) if y or p else 1.0 for t, y, p in zip(tp, Y, P)]),
        "Hamming": sum(len(y ^ p) for y, p in zip(Y, P)) / (len(Y) * n_labels) if Y and n_labels else 0.0,
    }
