"""Chollet (2016)'s claim, tested to the end (issues 5, 21): label-embedding cosine regression against tuned,
converged sigmoid and softmax heads.

The claim (the paper's abstract): regressing onto PMI label embeddings instead of a sigmoid cross-entropy layer
gives **+7% MAP** (relative) on 300M images x 17,000 labels, **with faster convergence**. Here the same
encoders (``linear``: the full-rank linear model; ``mlp``: one hidden layer of 256) are trained with the sigmoid
head (the paper's baseline), the softmax head and the label-embedding head at d = 64, 128, 256, all under one
protocol:

* **Tuning.** The learning rate of every (data set, encoder, head) is chosen from ``LR_GRID`` (Adam, nothing
  else tuned) by the best validation MAP, at seed 0; where the best rate is at an end of the rates tried, the
  next rate of ``LR_LADDER`` outward is tried too, until the best is inside. The validation rows are a held-out 10% of the TRAINING rows
  (at most 1000); the test split is never used for a choice. The embedding width d is chosen the same way.
* **Convergence.** Every run trains until its validation MAP has not improved for ``PATIENCE`` epochs
  ("converged": stopped by patience), or until the ``MAX_EPOCHS`` cap ("not converged": the verdict is then
  "undecided"). The test metrics are those of the weights of the best validation epoch.
* **Seeds.** The chosen learning rate of sigmoid, softmax and the chosen label embedding is re-run at seeds
  1 and 2 (the seed sets the initialisation, dropout and the row order; the validation split stays fixed).

Metrics on the test rows: ``MAP`` (mean over LABELS of the average precision of ranking the examples,
``sparsexc.metrics.mean_average_precision``), ``MAP@5`` (mean over EXAMPLES of the top-5 average precision,
``sparsexc.metrics.map_at_k``), ``LRAP`` (label-ranking average precision), P@1/3/5, nDCG@5 and PSP@5.

Data sets: bibtex and delicious (all training rows, both encoders); debian-deps (19,005 labels, the closest
analogue of the paper's 17k) with the linear encoder (and, given ``--encoders mlp``, the MLP one) on
TruncatedSVD-512 features of the TF-IDF, as
``benchmarks/adversarial_sampling.py`` prepares them (its ``dense_features``; a linear model on the raw 40,497
features would have 770M output weights); debtags if time allows; full wordnet-hypernyms (15,931 labels) as
debian-deps, on its SVD-512 features with the linear encoder. Until its runs exist the page gives its size and a
cost estimate scaled from debian-deps' measured epochs.

Each data set's runs go to ``label_embeddings/<data set>.json`` (rewritten after every run, so a crash keeps
what finished; a re-run replaces the run with the same encoder, head, learning rate and seed; each run records
the commit of the code its process imported, ``commit``; runs made before that carry ``results_commit``, the
commit that first held them); the report (``label_embeddings.json`` and ``.md``) merges the files present and
opens with the verdict table. ``--heads`` runs a subset: the verdict rows then name the widths tried, and the
best-baseline row stays untested while a baseline has no run.

Usage::

    python benchmarks/label_embeddings.py --datasets bibtex --stage tune     # seed 0, every head x LR_GRID
    python benchmarks/label_embeddings.py --datasets bibtex --stage seeds    # seeds 1, 2 at the chosen rates
    python benchmarks/label_embeddings.py --datasets wordnet-hypernyms --stage tune --heads sigmoid --lrs 0.01
                                                # part of the grid in one process (a re-run skips the runs done)
    python benchmarks/label_embeddings.py --report-only                      # re-render from the part files
    python benchmarks/label_embeddings.py --quick                            # bibtex, 1500 rows: a smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _harness import (
    Stopwatch,
    add_common_flags,
    command_line,
    dataset_list,
    environment,
    git_commit,
    load_average,
    page_header,
    peak_rss_mib,
    read_json,
    seed_list,
    timed,
    use_shared_datasets,
    utc_now,
    write_json,
    write_results,
)

DATASETS = ("bibtex", "delicious", "debian-deps", "debtags", "wordnet-hypernyms")
ENCODERS: dict[str, tuple[int, ...]] = {"linear": (), "mlp": (256,)}
# head label -> (registered head, head_params)
HEADS: dict[str, tuple[str, dict[str, Any]]] = {
    "sigmoid": ("sigmoid", {}),
    "softmax": ("softmax", {}),
    "emb-64": ("label-embedding", {"embedding_dim": 64}),
    "emb-128": ("label-embedding", {"embedding_dim": 128}),
    "emb-256": ("label-embedding", {"embedding_dim": 256}),
}
BASELINES = ("sigmoid", "softmax")
LR_GRID: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
# where a head's best rate is at an end of the rates tried, the next rate of this ladder outward is tried too
LR_LADDER: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
PATIENCE = 5  # epochs without a better validation MAP before a run counts as converged and stops
MAX_EPOCHS = 100  # the cap; a run that reaches it is "not converged"
SEEDS = (0, 1, 2)  # seed 0 tunes; the others repeat the chosen settings
PROBE_EPOCHS = 2  # --stage probe: this many epochs at the grid's middle rate, to price a set that is not run
CLAIM_GAIN = 1.07  # the paper's +7% MAP, as a ratio
# per data set: batch size, encoders, evaluation rows (a seeded subsample of the test split; None = all) and,
# for svd_dim, dense TruncatedSVD features of the TF-IDF instead of the raw sparse features
SETS: dict[str, dict[str, Any]] = {
    "bibtex": {"batch_size": 128, "encoders": ("linear", "mlp"), "eval_rows": None, "svd_dim": None},
    "delicious": {"batch_size": 128, "encoders": ("linear", "mlp"), "eval_rows": None, "svd_dim": None},
    "debian-deps": {"batch_size": 256, "encoders": ("linear",), "eval_rows": 3000, "svd_dim": 512},
    "debtags": {"batch_size": 128, "encoders": ("linear", "mlp"), "eval_rows": None, "svd_dim": None},
    # all training rows (the "full" set of issue 21), as debian-deps: a linear layer on 50,000 raw features would
    # have 797M output weights
    "wordnet-hypernyms": {"batch_size": 256, "encoders": ("linear",), "eval_rows": 3000, "svd_dim": 512},
}
QUICK = {"batch_size": 128, "encoders": ("linear", "mlp"), "eval_rows": 500, "svd_dim": None, "train_rows": 1500}
# wordnet-hypernyms' size (the registry's), for the cost estimate on the page while it has no runs
WORDNET = {"n_train": 65691, "n_features": 50000, "n_labels": 15931}
# The linear encoder on raw features trains with row-sparse gradients (lazy Adam on the feature weights) where
# n_features x n_labels exceeds this (debtags: 14M), as the estimator allows.
SPARSE_GRADIENTS_ABOVE = 10_000_000
SPLIT_SEED = 0  # the validation split and the test subsample are the same for every seed
COLUMNS = ("MAP", "MAP@5", "LRAP", "P@1", "P@3", "P@5", "nDCG@5", "PSP@5")


def _subsample(n: int, keep: int | None, seed: int) -> np.ndarray:
    if keep is None or keep >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=keep, replace=False))


def ranking_metrics(Y: Any, scores: np.ndarray, inv_propensity: np.ndarray) -> dict[str, float]:
    """MAP over labels, MAP@5 and LRAP over examples and the top-k metrics of dense ``scores``."""
    from sparsexc.metrics import evaluate, label_ranking_average_precision, map_at_k, mean_average_precision

    out = {
        "MAP": mean_average_precision(Y, scores),
        "MAP@5": map_at_k(Y, scores, 5),
        "LRAP": label_ranking_average_precision(Y, scores),
    }
    top = evaluate(Y, scores, ks=(1, 3, 5), inv_propensity=inv_propensity)
    out.update({k: top[k] for k in COLUMNS if k in top})
    return {k: float(v) for k, v in out.items()}


class ValidationStop:
    """A ``Trainer`` ``on_epoch_end`` callback: validation MAP at every epoch end, the best weights kept, and the
    run stopped after ``patience`` epochs without improvement (the Trainer's own early stopping knows only the
    top-k metrics). Records the training time so far, the validation's excluded."""

    def __init__(self, X_val: Any, Y_val: Any, patience: int) -> None:
        self.X_val, self.Y_val, self.patience = X_val, Y_val, patience
        self.points: list[dict[str, Any]] = []
        self.best_state: dict[str, Any] | None = None
        self.best_value, self.best_epoch, self.bad_epochs, self.converged = -math.inf, 0, 0, False
        self.clock = Stopwatch()
        self.excluded, self.cpu_excluded = 0.0, 0.0

    def start(self) -> None:
        """Start the clock just before ``Trainer.fit`` (which runs the head's ``prepare``: PMI embeddings)."""
        self.clock.restart()

    def __call__(self, trainer: Any, record: dict[str, Any]) -> None:
        from sparsexc.metrics import mean_average_precision

        with timed() as evaluation:
            seconds, cpu_seconds = self.clock.wall - self.excluded, self.clock.cpu - self.cpu_excluded
            value = mean_average_precision(self.Y_val, trainer.model.predict_scores(self.X_val, batch_size=512))
            self.points.append({"epoch": record["epoch"], "train_seconds": round(seconds, 3),
                                "train_cpu_seconds": round(cpu_seconds, 3), "train_loss": record.get("train_loss"),
                                "val_MAP": value})  # fmt: skip
            if value > self.best_value:
                self.best_value, self.best_epoch, self.bad_epochs = value, record["epoch"], 0
                self.best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            else:
                self.bad_epochs += 1
                if self.bad_epochs >= self.patience:
                    self.converged = True
                    trainer.state.finished = True  # the Trainer's loop ends after this epoch
        self.excluded += evaluation.wall
        self.cpu_excluded += evaluation.cpu


def run_one(
    dataset: str, encoder: str, head_label: str, lr: float, seed: int, data: dict[str, Any], protocol: dict[str, Any]
) -> dict[str, Any]:
    """Train one (data set, encoder, head, learning rate, seed) to convergence; its curve and test metrics."""
    import torch

    from sparsexc import XCClassifier
    from sparsexc.models import SparseEncoder, XCModel
    from sparsexc.train import Trainer

    head_name, head_params = HEADS[head_label]
    X, Y = data["X"], data["Y"]
    linear = not ENCODERS[encoder]
    sparse = linear and X.shape[1] * Y.shape[1] > SPARSE_GRADIENTS_ABOVE
    clf = XCClassifier(
        head=head_name,
        head_params=head_params,
        hidden_sizes=ENCODERS[encoder],
        optimizer="adam",
        lr=lr,
        epochs=protocol["max_epochs"],
        batch_size=protocol["batch_size"],
        patience=None,
        random_state=seed,
        device="cpu",
        sparse_gradients=sparse,
    )
    head_cls, params, encoder_params, train_params = clf.resolved_params()
    # the stopping rule is ValidationStop's (on MAP); the estimator's own budget would add a P@1 patience
    train_params = dataclasses.replace(train_params, patience=None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        enc = SparseEncoder(X.shape[1], encoder_params)
        model = XCModel(enc, head_cls(enc.out_dim, Y.shape[1], params))
        stop = ValidationStop(data["X_val"], data["Y_val"], protocol["patience"])
        trainer = Trainer(model, train_params, on_epoch_end=stop)
        stop.start()
        trainer.fit(X, Y)
    assert stop.best_state is not None
    model.load_state_dict(stop.best_state)
    model.eval()
    test = ranking_metrics(data["Y_eval"], model.predict_scores(data["X_eval"], batch_size=512), data["inv_propensity"])
    curve = stop.points
    return {"dataset": dataset, "encoder": encoder, "head": head_label, "lr": lr, "seed": seed,
            "head_name": head_name, "head_params": head_params, "hidden_sizes": list(ENCODERS[encoder]),
            "sparse_gradients": sparse, "epochs_run": len(curve), "best_epoch": stop.best_epoch,
            "best_val_MAP": stop.best_value, "converged": stop.converged,
            "stop": "patience" if stop.converged else "cap",
            "train_seconds": curve[-1]["train_seconds"], "train_cpu_seconds": curve[-1]["train_cpu_seconds"],
            "peak_rss_gb": round(peak_rss_mib() * 2**20 / 1e9, 2), "test": test, "curve": curve}  # fmt: skip


def load_data(dataset: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Training rows split into train / validation (seeded, the same for every seed), evaluation rows,
    propensities; dense SVD features where ``cfg["svd_dim"]`` says so."""
    import scipy.sparse as sp

    from sparsexc.datasets import load
    from sparsexc.metrics import inverse_propensity

    splits = load(dataset)
    X, Y, X_test, Y_test = splits.train.X, splits.train.Y, splits.test.X, splits.test.Y
    features = "raw (the data set's TF-IDF or counts)"
    svd_cpu = None
    if cfg.get("svd_dim"):
        from adversarial_sampling import dense_features  # the same features as that benchmark, one code path

        with timed() as svd:
            A, B = dense_features(X, X_test, cfg["svd_dim"], SPLIT_SEED)
        X, X_test = sp.csr_matrix(A), sp.csr_matrix(B)
        features = f"TruncatedSVD {cfg['svd_dim']}-d of the TF-IDF, standardised (adversarial_sampling.dense_features)"
        svd_cpu = round(svd.cpu, 1)
    rows = _subsample(X.shape[0], cfg.get("train_rows"), SPLIT_SEED)
    X, Y = X[rows], Y[rows]
    order = np.random.default_rng(SPLIT_SEED).permutation(X.shape[0])
    n_val = min(1000, max(1, round(0.1 * X.shape[0])))
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    ev = _subsample(X_test.shape[0], cfg["eval_rows"], SPLIT_SEED + 1)
    Y_eval = Y_test[ev]
    if Y_eval.shape[1] < Y.shape[1]:
        Y_eval = sp.csr_matrix((Y_eval.data, Y_eval.indices, Y_eval.indptr), shape=(len(ev), Y.shape[1]))
    return {
        "X": X[train],
        "Y": Y[train],
        "X_val": X[val],
        "Y_val": Y[val],
        "X_eval": X_test[ev],
        "Y_eval": Y_eval,
        "inv_propensity": inverse_propensity(Y[train], n_labels=Y.shape[1]),
        "sizes": {
            "n_train": len(train),
            "n_val": len(val),
            "n_eval": len(ev),
            "n_train_available": splits.train.X.shape[0],
            "n_test_available": X_test.shape[0],
            "n_features": X.shape[1],
            "n_raw_features": splits.train.X.shape[1],
            "n_labels": Y.shape[1],
            "features": features,
            "svd_cpu_seconds": svd_cpu,
        },
    }


# -- choices, comparisons and verdicts (from the runs' validation numbers only) ----------------------------------
def _runs_of(runs: list[dict[str, Any]], dataset: str, encoder: str, head: str) -> list[dict[str, Any]]:
    return [r for r in runs if (r["dataset"], r["encoder"], r["head"]) == (dataset, encoder, head)]


def chosen_lr(runs: list[dict[str, Any]], dataset: str, encoder: str, head: str) -> float | None:
    """The learning rate of the seed-0 run with the best validation MAP (the first of the grid on a tie)."""
    tuned = [r for r in _runs_of(runs, dataset, encoder, head) if r["seed"] == 0]
    return max(sorted(tuned, key=lambda r: r["lr"]), key=lambda r: r["best_val_MAP"])["lr"] if tuned else None


def _best_seed0(runs: list[dict[str, Any]], dataset: str, encoder: str, heads: tuple[str, ...]) -> str | None:
    """Of ``heads``, the one whose seed-0 run at its chosen rate has the best validation MAP."""
    best: tuple[float, str] | None = None
    for head in heads:
        lr = chosen_lr(runs, dataset, encoder, head)
        for r in _runs_of(runs, dataset, encoder, head):
            if r["seed"] == 0 and r["lr"] == lr and (best is None or r["best_val_MAP"] > best[0]):
                best = (r["best_val_MAP"], head)
    return None if best is None else best[1]


def chosen_embedding(runs: list[dict[str, Any]], dataset: str, encoder: str) -> str | None:
    """The label-embedding width (head label) with the best validation MAP at seed 0."""
    return _best_seed0(runs, dataset, encoder, tuple(h for h in HEADS if h not in BASELINES))


def best_baseline(runs: list[dict[str, Any]], dataset: str, encoder: str) -> str | None:
    """sigmoid or softmax, whichever has the better validation MAP at seed 0."""
    return _best_seed0(runs, dataset, encoder, BASELINES)


def widths_tried(runs: list[dict[str, Any]], dataset: str, encoder: str) -> list[str]:
    """The label-embedding widths (head labels) with a seed-0 run for this data set and encoder, narrowest first."""
    return [h for h in HEADS if h not in BASELINES and any(r["seed"] == 0 for r in _runs_of(runs, dataset, encoder, h))]


def baselines_missing(runs: list[dict[str, Any]], dataset: str, encoder: str) -> list[str]:
    """The baselines without a seed-0 run: while any is missing, the best baseline cannot be chosen."""
    return [b for b in BASELINES if not any(r["seed"] == 0 for r in _runs_of(runs, dataset, encoder, b))]


def provenance(runs: list[dict[str, Any]], dataset: str, encoder: str) -> str:
    """Where a (data set, encoder)'s runs come from: the code commit each run recorded when it started
    (``commit``), or for runs made before runs recorded it, the commit that first held their results
    (``results_commit``, read from the part file's git history)."""
    groups: dict[str, int] = {}
    for r in (r for r in runs if (r["dataset"], r["encoder"]) == (dataset, encoder)):
        if r.get("commit"):
            key = f"at code commit {r['commit']}"
        elif r.get("results_commit"):
            key = f"first committed with their results in {r['results_commit']} (made before runs recorded their code commit)"
        else:
            key = "of unrecorded origin"
        groups[key] = groups.get(key, 0) + 1
    return "; ".join(f"{n} run{'s' if n > 1 else ''} {key}" for key, n in groups.items())


def seeds_measured(runs: list[dict[str, Any]], dataset: str, encoder: str) -> str:
    """The seeds run at the chosen settings (each baseline's chosen rate, the chosen width at its rate): one list
    where every head has the same seeds, else one list per head, so a seed run for one head only is not credited
    to the others."""
    heads = [h for h in (*BASELINES, chosen_embedding(runs, dataset, encoder)) if h is not None]
    per_head = {h: sorted(final_runs(runs, dataset, encoder, h)) for h in heads}
    per_head = {h: s for h, s in per_head.items() if s}
    if len({tuple(s) for s in per_head.values()}) <= 1:
        return ", ".join(map(str, next(iter(per_head.values()), [])))
    return ", ".join(f"{h} {' '.join(map(str, s))}" for h, s in per_head.items())


def off_rate_seeds(runs: list[dict[str, Any]]) -> list[str]:
    """One sentence per (data set, encoder, head) with runs at seeds other than 0 away from the head's chosen rate
    (seeds runs started before a later tuning run moved the choice): kept in the JSON, left out of the comparisons,
    named here with their test MAP beside the seed-0 run at the same rate."""
    out = []
    for d, e, h in dict.fromkeys((r["dataset"], r["encoder"], r["head"]) for r in runs):
        chosen = chosen_lr(runs, d, e, h)
        if chosen is None:  # no seed-0 run: no rate chosen, so nothing is away from it
            continue
        off = sorted((r for r in _runs_of(runs, d, e, h) if r["seed"] != 0 and r["lr"] != chosen),
                     key=lambda r: (r["lr"], r["seed"]))  # fmt: skip
        for lr in dict.fromkeys(r["lr"] for r in off):
            at = [r for r in _runs_of(runs, d, e, h) if r["lr"] == lr]
            maps = ", ".join(f"{r['test']['MAP']:.4f}" for r in sorted(at, key=lambda r: r["seed"]))
            seeds = ", ".join(str(r["seed"]) for r in sorted(at, key=lambda r: r["seed"]))
            out.append(f"{d} {e} {h} at {lr:g} (the chosen rate is {chosen:g}): seeds {seeds}, test MAP {maps}")
    return out


def final_runs(runs: list[dict[str, Any]], dataset: str, encoder: str, head: str) -> dict[int, dict[str, Any]]:
    """The runs at the head's chosen learning rate, by seed."""
    lr = chosen_lr(runs, dataset, encoder, head)
    return {r["seed"]: r for r in _runs_of(runs, dataset, encoder, head) if r["lr"] == lr}


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (0 for one value) of ``values``."""
    x = np.asarray(values, dtype=float)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0


def ratio_verdict(ratios: list[float], converged: bool, gain: float = CLAIM_GAIN) -> dict[str, Any]:
    """The verdict on "the label embedding's MAP is ``gain`` x the baseline's" from per-seed ratios.

    Interval = mean +- 2 standard errors of the per-seed ratios (the point itself for one seed):
    untested = no ratio; undecided = a run of the pair stopped at the epoch cap, not by patience;
    reproduced = the interval's low end >= ``gain``; partially = low end > 1 (better beyond the spread, the full
    gain not shown); contradicted = high end < 1 (worse beyond the spread); not reproduced = the interval holds 1.
    """
    if not ratios:
        return {"verdict": "untested", "n": 0}
    mean, se = mean_se(ratios)
    lo, hi = mean - 2 * se, mean + 2 * se
    if not converged:
        verdict = "undecided"
    elif lo >= gain:
        verdict = "reproduced"
    elif lo > 1:
        verdict = "partially"
    elif hi < 1:
        verdict = "contradicted"
    else:
        verdict = "not reproduced"
    return {"verdict": verdict, "n": len(ratios), "mean": mean, "se": se, "low": lo, "high": hi}


def seconds_to(run: dict[str, Any], target: float) -> float | None:
    """Training CPU seconds until the run's validation MAP first reaches ``target`` (None: never)."""
    return next((p["train_cpu_seconds"] for p in run["curve"] if p["val_MAP"] >= target), None)


def speed_verdict(pairs: list[tuple[float | None, float | None]]) -> str:
    """Faster convergence, per seed (label embedding's seconds, baseline's seconds; None = never): reproduced if
    the label embedding is faster at every seed, contradicted if slower at every seed, else not reproduced."""
    if not pairs:
        return "untested"
    faster = [e is not None and (b is None or e < b) for e, b in pairs]
    slower = [e is None or (b is not None and e > b) for e, b in pairs]
    return "reproduced" if all(faster) else "contradicted" if all(slower) else "not reproduced"


def comparisons(runs: list[dict[str, Any]], datasets: list[str]) -> list[dict[str, Any]]:
    """Per (data set, encoder): the chosen label embedding against sigmoid and against the best baseline (none
    while a baseline has no seed-0 run: the comparison is then empty, its verdict untested)."""
    out = []
    for ds in datasets:
        for enc in ENCODERS:
            emb = chosen_embedding(runs, ds, enc)
            if emb is None:
                continue
            emb_runs = final_runs(runs, ds, enc, emb)
            missing = baselines_missing(runs, ds, enc)
            best = None if missing else best_baseline(runs, ds, enc)
            for ref_name, ref in (("sigmoid", "sigmoid"), ("best baseline", best)):
                ref_runs = final_runs(runs, ds, enc, ref) if ref else {}
                seeds = sorted(set(emb_runs) & set(ref_runs))
                pairs = [(emb_runs[s], ref_runs[s]) for s in seeds]
                ratio = {m: [e["test"][m] / b["test"][m] for e, b in pairs if b["test"][m] > 0] for m in COLUMNS}
                converged = all(e["converged"] and b["converged"] for e, b in pairs)
                capped = [f"{r['head']} at {r['lr']:g}, seed {s}" for s, pair in zip(seeds, pairs, strict=True)
                          for r in pair if not r["converged"]]  # fmt: skip
                speed = [(seconds_to(e, 0.9 * b["best_val_MAP"]), seconds_to(b, 0.9 * b["best_val_MAP"]))
                         for e, b in pairs]  # fmt: skip
                # a chosen rate at an end of those tried whose next rate outward was not run: not tuned to the end
                unextended = [
                    (h, lr) for _, h, lr, _ in edge_extensions(runs, ds, (enc,), [emb, *([ref] if ref else [])])
                ]
                # a baseline whose seed-0 runs miss rates of the grid (its tuning stopped): no verdict against it,
                # nor against the best baseline, which is chosen between both
                untuned = grid_missing(runs, ds, enc, ["sigmoid"] if ref_name == "sigmoid" else list(BASELINES))
                out.append({"dataset": ds, "encoder": enc, "reference": ref_name, "baseline": ref, "embedding": emb,
                            "widths": widths_tried(runs, ds, enc), "baselines_missing": missing, "seeds": seeds,
                            "unextended": unextended, "MAP": [e["test"]["MAP"] for e, _ in pairs],
                            "MAP_baseline": [b["test"]["MAP"] for _, b in pairs],
                            "ratios": ratio, "converged": converged, "capped": capped,
                            "untuned": untuned,
                            "verdict": ratio_verdict([] if untuned else ratio["MAP"], converged),
                            "seconds_to_target": [] if untuned else speed,
                            "speed_verdict": speed_verdict([] if untuned else speed)})  # fmt: skip
    return out


def grid_missing(runs: list[dict[str, Any]], dataset: str, encoder: str, heads: list[str]) -> dict[str, list[float]]:
    """Per head of ``heads``, the rates of the grid it has no seed-0 run at (heads with every rate left out): its
    rate is then chosen on part of the grid only, not by the protocol. The grid: the rates of ``LR_GRID`` that any
    head of (``dataset``, ``encoder``) ran at seed 0 (``--quick`` runs two of them)."""
    ran = {r["lr"] for r in runs if (r["dataset"], r["encoder"], r["seed"]) == (dataset, encoder, 0)}
    grid = [lr for lr in LR_GRID if lr in ran]
    out = {}
    for head in heads:
        tried = {r["lr"] for r in _runs_of(runs, dataset, encoder, head) if r["seed"] == 0}
        if missing := [lr for lr in grid if lr not in tried]:
            out[head] = missing
    return out


# -- the page ----------------------------------------------------------------------------------------------------
def _pm(values: list[float], fmt: str = ".4f") -> str:
    mean, se = mean_se(values)
    return f"{mean:{fmt}} ± {se:{fmt}}" if len(values) > 1 else f"{mean:{fmt}}"


def cost_estimates(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The CPU cost of the protocol's baseline runs (sigmoid, softmax: linear encoder on SVD-512 features) on
    debian-deps and full wordnet-hypernyms, from debian-deps' measured linear sigmoid/softmax epochs (its runs,
    else its probes): CPU seconds per epoch per (training row x label), times the median number of epochs
    the converged sigmoid/softmax runs measured here needed, times the runs (rates + extra seeds)."""
    measured = [r for r in result["runs"] + result["probes"] if r["dataset"] == "debian-deps"
                and r["head"] in BASELINES and r["encoder"] == "linear"]  # fmt: skip
    converged = [r["epochs_run"] for r in result["runs"] if r["head"] in BASELINES and r["converged"]]
    if not measured or not converged:
        return {}
    sizes = result["datasets"]["debian-deps"]["sizes"]
    rate = sum(r["train_cpu_seconds"] for r in measured) / sum(r["epochs_run"] for r in measured)
    rate /= sizes["n_train"] * sizes["n_labels"]
    epochs = float(np.median(converged))
    runs_needed = len(BASELINES) * (len(LR_GRID) + len(SEEDS) - 1)
    out = {}
    for name, n_rows, n_labels in (("debian-deps", sizes["n_train"], sizes["n_labels"]),
                                   ("wordnet-hypernyms", WORDNET["n_train"] - 1000, WORDNET["n_labels"])):  # fmt: skip
        epoch = rate * n_rows * n_labels
        out[name] = {"cpu_seconds_per_epoch": epoch, "epochs_per_run": epochs, "baseline_runs": runs_needed,
                     "cpu_hours": epoch * epochs * runs_needed / 3600}  # fmt: skip
    return out


def _debian_encoders(runs: list[dict[str, Any]]) -> str:
    """Which encoders debian-deps' runs used, in words (all on the SVD-512 features)."""
    used = [e for e in ENCODERS if any(r["dataset"] == "debian-deps" and r["encoder"] == e for r in runs)]
    if used == ["linear"]:
        return "the linear encoder on SVD-512 features only (the MLP encoder was not run: budget)"
    return f"the {' and '.join(used)} encoders, both on SVD-512 features" if len(used) > 1 else "no run yet"


def _verdict_rows(result: dict[str, Any]) -> list[str]:
    rows = []
    for c in result["comparisons"]:
        v, ref, missing = c["verdict"], c["reference"], c.get("baselines_missing", [])
        base = (c["baseline"] if ref == "sigmoid" else f"{c['baseline']}, the better on validation" if c["baseline"]
                else f"the better of {' and '.join(BASELINES)} on validation")  # fmt: skip
        widths = c.get("widths", [])
        if len(widths) < len(HEADS) - len(BASELINES):  # d was not chosen among all the widths: say so
            base += f"; widths tried: {', '.join(widths)} only, so d is not chosen on validation"
        claim = f"+7% MAP over {'sigmoid cross-entropy' if ref == 'sigmoid' else 'the best baseline'}: {c['dataset']}, {c['encoder']} ({c['embedding']} vs {base})"
        if ref != "sigmoid" and missing:
            ours = f"{', '.join(missing)} not run (budget), so the best baseline is not chosen"
        elif c.get("untuned"):
            ours = "; ".join(f"{h}'s rates {', '.join(f'{lr:g}' for lr in lrs)} of the grid not run yet (budget)"
                             for h, lrs in c["untuned"].items()) + ", so its rate is not chosen on validation"  # fmt: skip
        elif v["n"]:
            spread = f"{v['n']} seeds; interval {v['low']:.3f}-{v['high']:.3f}" if v["n"] > 1 else "1 seed"
            ours = f"MAP ratio {_pm(c['ratios']['MAP'], '.3f')} ({spread}); MAP {_pm(c['MAP'])} vs {_pm(c['MAP_baseline'])}"
            if not c["converged"]:
                ours += f"; stopped at the epoch cap: {', '.join(c.get('capped') or ['a run'])}"
            for head, nxt in c.get("unextended", []):
                lr = chosen_lr(result["runs"], c["dataset"], c["encoder"], head)
                ours += f"; {head}'s rate {lr:g} is at an end of those tried and {nxt:g} was not run (budget)"
        else:
            ours = "no run at the chosen settings"
        rows.append(f"| {claim} | +7% (300M images, 17k labels, CNN) | {ours} | {v['verdict']} |")
    for c in result["comparisons"]:
        if c["reference"] != "sigmoid" or not c["seconds_to_target"]:
            continue
        fmt = lambda x: "never" if x is None else f"{x:.1f}"  # noqa: E731
        per_seed = "; ".join(f"{fmt(e)} vs {fmt(b)}" for e, b in c["seconds_to_target"])
        rows.append(
            f"| faster convergence than sigmoid: {c['dataset']}, {c['encoder']} ({c['embedding']}) | faster (no "
            f"number) | CPU s to 90% of sigmoid's best validation MAP, per seed: {per_seed} | {c['speed_verdict']} |"
        )
    done = {(c["dataset"], c["encoder"]) for c in result["comparisons"]}
    for ds in DATASETS:
        for enc in ENCODERS:
            if (ds, enc) in done:
                continue
            planned = enc in SETS[ds]["encoders"]
            if not planned and not any(r["dataset"] == ds for r in result["runs"]):
                continue  # an encoder the set is not planned with, and the set not begun: its planned row says it
            why = ("not run in this budget" if planned else
                   f"not run (budget): {ds} is measured with the linear encoder on SVD-512 features only")  # fmt: skip
            dd = result["cost_estimates"].get(ds) if enc == "linear" else None
            begun = [r for r in result["runs"] if r["dataset"] == ds and r["encoder"] == enc]
            if begun:  # the tuning stage was started and stopped before any comparison could be made
                why = (f"not run to the end (budget): its tuning was stopped after {len(begun)} run(s), "
                       f"{np.mean([r['train_cpu_seconds'] for r in begun]):.0f} CPU s each on average")  # fmt: skip
            elif ds == "wordnet-hypernyms" and planned:
                why = _wordnet_cost(dd)
            elif dd:
                why = (f"not run: one sigmoid/softmax epoch costs {dd['cpu_seconds_per_epoch']:.0f} CPU s "
                       f"(measured, `--stage probe`); {dd['baseline_runs']} baseline runs of ~{dd['epochs_per_run']:.0f} "
                       f"epochs need about {dd['cpu_hours']:.1f} CPU hours, beyond this budget")  # fmt: skip
            rows.append(f"| +7% MAP over sigmoid: {ds}, {enc} | +7% | {why} | untested |")
    return rows


def _wordnet_cost(est: dict[str, Any] | None) -> str:
    """Why full wordnet-hypernyms has no verdict before its runs: its size and the baselines' estimated cost."""
    size = (f"not run: {WORDNET['n_train']:,} training rows, {WORDNET['n_features']:,} features, "
            f"{WORDNET['n_labels']:,} labels; ")  # fmt: skip
    if est is None:
        return size + "no cost estimate (no debian-deps baseline runs to scale from)"
    return (size + f"the baselines alone (SVD-512 linear, {est['baseline_runs']} runs of ~{est['epochs_per_run']:.0f} "
            f"epochs at {est['cpu_seconds_per_epoch']:.0f} CPU s each, scaled from debian-deps' measured epochs) "
            f"need about {est['cpu_hours']:.1f} CPU hours")  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    title = f"Label embeddings (Chollet 2016) against tuned, converged sigmoid and softmax heads{' (quick)' if result['quick'] else ''}"
    p = result["protocol"]
    verdicts = [c["verdict"]["verdict"] for c in result["comparisons"]]
    count = ", ".join(f"{verdicts.count(v)} {v}" for v in dict.fromkeys(verdicts)) or "none"
    lines = [
        page_header(title, result["machine"], result["date"], result["command"]),
        "",
        f"Report rendered {result['rendered']}. The runs: {result['n_runs']} trainings, "
        f"{result['cpu_seconds_total'] / 60:.1f} CPU minutes of training (evaluation excluded), torch threads 1, "
        f"most runs under `nice -n 5` (a priority: it moves wall time, not CPU seconds), on a machine shared with "
        "other jobs (load average after each data set: "
        + "; ".join(f"{d} {', '.join(f'{x:.1f}' for x in v)}" for d, v in result["loadavg_per_dataset"].items())
        + "). Wall seconds are noisy; the JSON has CPU seconds too.",
        "",
        "## Verdicts (issue 21)",
        "",
        "The claim (abstract of arXiv 1607.05691): regressing onto PMI label embeddings instead of a sigmoid "
        "cross-entropy layer gives +7% MAP (relative) and faster convergence. Every number below is in "
        "`benchmarks/results/label_embeddings.json` (`comparisons`), made by the commands above. "
        "The label embedding's width d is the one with the best validation MAP; each head's learning rate too. "
        f"**Rule**: per seed, ratio = the label embedding's test MAP / the baseline's; interval = mean ± 2 "
        f"standard errors over the seeds (the point itself for one seed). **reproduced**: interval above "
        f"{CLAIM_GAIN} (the +7%); **partially**: above 1 but not all above {CLAIM_GAIN}; **not reproduced**: "
        "the interval holds 1; **contradicted**: below 1; **undecided**: a run of the pair stopped at the "
        "epoch cap instead of by patience (not converged); **untested**: not run. Faster convergence: CPU "
        "seconds of training until the validation MAP first reaches 90% of the sigmoid run's best; reproduced "
        "if the label embedding gets there first at every seed, contradicted if later (or never) at every seed.",
        "",
        "| claim | paper's number | ours | verdict |",
        "|---|---|---|---|",
        *_verdict_rows(result),
        "",
        f"**In short** ({count}, MAP rows): " + " ".join(result["summary"]),
        "",
        "**To settle the untested rows**: the same two stages (`--stage tune`, then `--stage seeds`) with "
        "`--datasets` naming the set (and `--encoders mlp` for the MLP rows); the CPU hours, where given above, are what the "
        "baselines alone would cost on one core. The paper's own setting (a CNN on 300M images) is out of reach "
        "here whatever the budget.",
        "",
        "## Protocol",
        "",
        f"Same for every head: Adam, learning rate chosen from {', '.join(f'{x:g}' for x in p['lr_grid'])} by "
        f"the best validation MAP at seed 0 (nothing else tuned; where the best is at an end of the rates tried, the "
        f"next of {', '.join(f'{x:g}' for x in LR_LADDER)} outward is tried too); training until the validation MAP has not "
        f"improved for {p['patience']} epochs (converged) or {p['max_epochs']} epochs (the cap: not converged); "
        "test metrics at the best validation epoch's weights. Validation = a seeded 10% of the training rows (at "
        "most 1000), the same for every seed; the test split is used only for the reported metrics. Seeds "
        f"{', '.join(map(str, SEEDS[1:]))} repeat the chosen rate for sigmoid, softmax and the chosen label "
        "embedding. Encoders: `linear` (the full-rank linear model) and `mlp` (one hidden layer of 256, ReLU, "
        "dropout 0.6: the estimator's defaults). Where n_features x n_labels > "
        f"{SPARSE_GRADIENTS_ABOVE:,} (debtags) the linear runs use row-sparse gradients (lazy Adam on the "
        "feature weights). MAP = mean over labels of the average precision of ranking the test examples (the "
        "paper's variant is unknown); MAP@5 = mean over examples of the top-5 average precision; LRAP = "
        "label-ranking average precision.",
        "",
        "| data set | features | train + val rows (of) | test rows used (of) | labels | batch | encoders run |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for ds, info in result["datasets"].items():
        s, cfg = info["sizes"], info["config"]
        lines.append(f"| {ds} | {s['n_features']}: {s['features']} | {s['n_train']} + {s['n_val']} "
                     f"({s['n_train_available']}) | {s['n_eval']} ({s['n_test_available']}) | {s['n_labels']} | "
                     f"{cfg['batch_size']} | {', '.join(e for e in ENCODERS if any((r['dataset'], r['encoder']) == (ds, e) for r in result['runs'])) or 'none (probes only)'} |")  # fmt: skip
    lines += ["", *result["cuts"], "", "## Tuning (seed 0, validation MAP)", "",
              "`*` = chosen; `edge` = the chosen rate is the smallest or largest tried (at the ends of the ladder, "
              f"{LR_LADDER[0]:g} and {LR_LADDER[-1]:g}, no further rate is tried; elsewhere `edge, x not run` names "
              "the next rate outward that the budget left out).", "",
              "| data set | encoder | head | lr | best val MAP | best epoch / epochs run | stopped by | train CPU s |",
              "|---|---|---|---:|---:|---:|---|---:|"]  # fmt: skip
    for r in sorted((r for r in result["runs"] if r["seed"] == 0),
                    key=lambda r: (DATASETS.index(r["dataset"]) if r["dataset"] in DATASETS else 99,
                                   list(ENCODERS).index(r["encoder"]), list(HEADS).index(r["head"]), r["lr"])):  # fmt: skip
        lr = chosen_lr(result["runs"], r["dataset"], r["encoder"], r["head"])
        mark = ""
        if r["lr"] == lr:
            tried = [t["lr"] for t in _runs_of(result["runs"], r["dataset"], r["encoder"], r["head"]) if t["seed"] == 0]
            mark = " *" + (" edge" if lr in (min(tried), max(tried)) else "")
            nxt = [x for _, _, x, _ in edge_extensions(result["runs"], r["dataset"], (r["encoder"],), [r["head"]])]
            mark += f", {nxt[0]:g} not run" if nxt else ""
        lines.append(f"| {r['dataset']} | {r['encoder']} | {r['head']} | {r['lr']:g}{mark} | {r['best_val_MAP']:.4f} | "
                     f"{r['best_epoch']} / {r['epochs_run']} | {r['stop']} | {r['train_cpu_seconds']:.1f} |")  # fmt: skip
    lines += ["", "## Test metrics at the chosen rates (mean ± standard error over the seeds)", "",
              "| data set | encoder | head | lr | seeds | " + " | ".join(COLUMNS) + " | converged |",
              "|---|---|---|---:|---:|" + "---:|" * len(COLUMNS) + "---:|"]  # fmt: skip
    for ds in result["datasets"]:
        for enc in ENCODERS:
            for head in HEADS:
                fr = final_runs(result["runs"], ds, enc, head)
                if not fr:
                    continue
                rs = [fr[s] for s in sorted(fr)]
                lines.append(f"| {ds} | {enc} | {head} | {rs[0]['lr']:g} | {len(rs)} | "
                             + " | ".join(_pm([r["test"][m] for r in rs]) for m in COLUMNS)
                             + f" | {sum(r['converged'] for r in rs)}/{len(rs)} |")  # fmt: skip
    lines += ["", "## Ratios: the chosen label embedding / the baseline (test, mean ± SE over paired seeds)", "",
              "| data set | encoder | embedding | baseline | MAP | MAP@5 | LRAP | P@1 |", "|---|---|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for c in result["comparisons"]:
        if c["seeds"]:
            lines.append(f"| {c['dataset']} | {c['encoder']} | {c['embedding']} | {c['baseline']} | "
                         + " | ".join(_pm(c["ratios"][m], ".3f") for m in ("MAP", "MAP@5", "LRAP", "P@1")) + " |")  # fmt: skip
    if result["probes"]:
        lines += ["", f"## Cost probes ({PROBE_EPOCHS} epochs each, not compared)", "",
                  "| data set | encoder | head | lr | epochs | train CPU s per epoch | val MAP after the last |",
                  "|---|---|---|---:|---:|---:|---:|"]  # fmt: skip
        for r in result["probes"]:
            lines.append(f"| {r['dataset']} | {r['encoder']} | {r['head']} | {r['lr']:g} | {r['epochs_run']} | "
                         f"{r['train_cpu_seconds'] / r['epochs_run']:.1f} | {r['curve'][-1]['val_MAP']:.4f} |")  # fmt: skip
    lines += [
        "",
        "## Caveats",
        "",
        "* The paper's setting (300M images, 17k labels, a CNN, its MAP variant) is not reproduced: this compares "
        "the losses on public multi-label text data with the same encoders. debian-deps (19,005 labels) is the "
        "closest in label count; it is a text set with few labels per row.",
        "* The earlier version of this page (fixed learning rates, fixed epoch budgets, test metrics at every "
        "epoch, the best label embedding picked by its test MAP; commit 4cbddcf) is superseded by this one.",
        "* CPU seconds were measured on a machine shared with other jobs; compare heads within a data set.",
    ]
    off = off_rate_seeds(result["runs"])
    if off:
        lines.append("* Runs at more seeds away from the chosen rate (seeds runs started before a later tuning run "
                     "moved the choice; not in the comparisons): " + "; ".join(off) + ".")  # fmt: skip
    return "\n".join(lines) + "\n"


def summary(comps: list[dict[str, Any]]) -> list[str]:
    """One sentence per (data set, encoder), from the MAP verdicts."""
    out = []
    for c in comps:
        v = c["verdict"]
        if c["reference"] != "sigmoid" or not v["n"]:
            continue
        best = next((d for d in comps if (d["dataset"], d["encoder"], d["reference"]) ==
                     (c["dataset"], c["encoder"], "best baseline")), None)  # fmt: skip
        other = (f"; against the best baseline ({best['baseline'] or 'not chosen'}) {best['verdict']['verdict']}"
                 if best else "")  # fmt: skip
        out.append(f"{c['dataset']} {c['encoder']}: {c['embedding']} / sigmoid MAP x{v['mean']:.3f}, "
                   f"{v['verdict']}{other}.")  # fmt: skip
    return out


def _measured_when(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The date, machine and load of the last run the report merges, never of the merge itself."""
    last = max(parts, key=lambda part: part["date"])
    return {"date": last["date"], "machine": last["machine"], "loadavg": last["loadavg"]}


def write_report(out: Path, stem: str, quick: bool) -> dict[str, Any]:
    """Merge the per-data-set files ``<stem>/<data set>.json`` into ``<stem>.json`` and ``<stem>.md``."""
    parts = [read_json(p) for p in sorted((out / stem).glob("*.json"))]
    if not parts:
        raise SystemExit(f"no runs in {out / stem}: run a stage first")
    order = {d: i for i, d in enumerate(DATASETS)}
    parts.sort(key=lambda part: order.get(part["dataset"], len(order)))
    runs = [r for part in parts for r in part["runs"]]
    probes = [r for part in parts for r in part.get("probes", [])]
    datasets = [p["dataset"] for p in parts]
    comps = comparisons(runs, datasets)
    pairs = [(d, e) for d in datasets for e in ENCODERS if any((r["dataset"], r["encoder"]) == (d, e) for r in runs)]
    cuts = ["* Seeds measured: " + "; ".join(f"{d} {e} {seeds_measured(runs, d, e)}" for d, e in pairs)
            + f" (planned: {', '.join(map(str, SEEDS))}).",
            "* debian-deps: " + _debian_encoders(runs) + "; a linear layer on its raw features "
            "(40,497 x 19,005 = 770M weights, 9.2 GB with Adam's moments) does not fit this shared machine. "
            "The linear model takes the dense SVD features as CSR rows of "
            "512 non-zeros (the estimator's input type); since cad455e it multiplies such batches dense "
            "(`sparsexc.models.encoder.dense_pays`): the same probe took 288 CPU s per sigmoid epoch with the CSR "
            "product (9f6325b) and gave the same validation and test MAP to four digits."]  # fmt: skip
    probed = any(r["dataset"] == "debian-deps" for r in probes)
    cuts[-1] += (" The cost probe below measures this path." if probed else " A 2-epoch cost probe of its linear "
                 "sigmoid (`--stage probe --heads sigmoid,emb-256`) did not finish within this session's budget "
                 "and was stopped, so no cost is given for debian-deps or wordnet-hypernyms.")  # fmt: skip
    cuts.append("* Label-embedding widths tried (d chosen among them on validation): "
                + "; ".join(f"{d} {e} {', '.join(widths_tried(runs, d, e)) or 'none'}" for d, e in pairs) + ".")  # fmt: skip
    cuts.append("* Where the runs come from: "
                + "; ".join(f"{d} {e}: {provenance(runs, d, e)}" for d, e in pairs) + ".")  # fmt: skip
    if "debtags" not in datasets:
        cuts.append("* debtags: not run in this budget (~70 CPU minutes for the whole measurement).")
    for ds in datasets:
        done = {r["encoder"] for r in runs if r["dataset"] == ds and r["seed"] != 0}
        for enc in sorted({r["encoder"] for r in runs if r["dataset"] == ds} - done):
            begun = [r for r in runs if r["dataset"] == ds and r["encoder"] == enc]
            each = ", ".join(
                f"{r['head']} lr {r['lr']:g}: {r['train_cpu_seconds']:.0f} CPU s, {r['epochs_run']} epochs"
                for r in begun
            )
            compared = any((c["dataset"], c["encoder"]) == (ds, enc) and c["seeds"] for c in comps)
            cuts.append(
                f"* {ds}, {enc} encoder: seed 0 only ({len(begun)} run(s): {each}), to keep the session's budget; "
                + ("its verdicts rest on that one seed." if compared else "its rows are untested.")
            )
    result = {"benchmark": "label_embeddings", "quick": quick,
              "command": "; ".join(dict.fromkeys(c for part in parts for c in part["commands"])),
              **_measured_when(parts), "rendered": utc_now(),
              "cpu_seconds_total": sum(r["train_cpu_seconds"] for r in runs), "n_runs": len(runs),
              "loadavg_per_dataset": {p["dataset"]: p["loadavg"] for p in parts},
              "protocol": {"lr_grid": list(LR_GRID), "patience": PATIENCE, "max_epochs": MAX_EPOCHS,
                           "seeds": list(SEEDS), "claim_gain": CLAIM_GAIN, "optimizer": "adam"},
              "encoders": {k: list(v) for k, v in ENCODERS.items()}, "heads": HEADS,
              "datasets": {p["dataset"]: p["info"] for p in parts}, "runs": runs, "probes": probes, "comparisons": comps,
              "summary": summary(comps), "cuts": cuts}  # fmt: skip
    result["cost_estimates"] = cost_estimates(result)
    write_results(out, stem, result, markdown(result), indent=1)
    return result


def _key(run: dict[str, Any]) -> tuple[str, str, float, int]:
    return run["encoder"], run["head"], run["lr"], run["seed"]


def edge_extensions(
    runs: list[dict[str, Any]], dataset: str, encoders: tuple[str, ...], heads: list[str]
) -> list[tuple[str, str, float, int]]:
    """Seed-0 runs to add where a head's chosen rate is the smallest or largest tried: the next rate of
    ``LR_LADDER`` outward (none past the ladder's ends)."""
    out = []
    for enc in encoders:
        for head in heads:
            tried = sorted({r["lr"] for r in _runs_of(runs, dataset, enc, head) if r["seed"] == 0})
            lr = chosen_lr(runs, dataset, enc, head)
            if lr is None or len(tried) < 2 or lr not in LR_LADDER:
                continue
            i = LR_LADDER.index(lr)
            step = 1 if lr == tried[-1] else -1 if lr == tried[0] else 0
            if step and 0 <= i + step < len(LR_LADDER) and LR_LADDER[i + step] not in tried:
                out.append((enc, head, LR_LADDER[i + step], 0))
    return out


def plan(stage: str, runs: list[dict[str, Any]], dataset: str, encoders: tuple[str, ...], heads: list[str],
         lrs: list[float], seeds: list[int]) -> list[tuple[str, str, float, int]]:  # fmt: skip
    """The (encoder, head, lr, seed) runs of a stage: ``tune`` = every head x rate at seed 0; ``seeds`` = the
    baselines and the chosen label embedding at their chosen rates, at ``seeds``; ``probe`` = every head at the
    grid's middle rate for ``PROBE_EPOCHS`` epochs (a cost measurement, kept apart from the runs)."""
    if stage == "tune":
        return [(enc, head, lr, 0) for enc in encoders for head in heads for lr in lrs]
    if stage == "probe":
        return [(enc, head, lrs[len(lrs) // 2], 0) for enc in encoders for head in heads]
    out = []
    for enc in encoders:
        emb = chosen_embedding(runs, dataset, enc)
        for head in [h for h in (*BASELINES, emb) if h is not None and h in heads]:
            lr = chosen_lr(runs, dataset, enc, head)
            if lr is None:
                raise SystemExit(f"{dataset} {enc} {head}: no seed-0 runs to choose a learning rate; run --stage tune")
            out += [(enc, head, lr, seed) for seed in seeds]
    return out


def next_extensions(stage: str, runs: list[dict[str, Any]], dataset: str, encoders: tuple[str, ...],
                    heads: list[str], quick: bool, part_of_grid: bool) -> list[tuple[str, str, float, int]]:  # fmt: skip
    """The edge extensions a tune process runs once its rates are done; none for ``--lrs`` (part of the grid): such a
    process sees only its own file, so its "edge" may be another process's rate (run twice) or not an edge at all.
    The extensions then follow in one process over the merged file."""
    if stage != "tune" or quick or part_of_grid:
        return []
    return edge_extensions(runs, dataset, encoders, heads)


def _positive_rate(text: str) -> bool:
    try:
        return math.isfinite(float(text)) and float(text) > 0
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_flags(parser, datasets=DATASETS, quick="bibtex only, 1500 training rows, 2 rates, cap 4 epochs",
                     out=True)  # fmt: skip
    parser.add_argument("--stage", choices=("tune", "seeds", "probe"), default="tune",
                        help="tune: seed 0, every head x rate; seeds: the chosen settings at --seeds; probe: "
                        f"{PROBE_EPOCHS} epochs per head, to measure the cost")  # fmt: skip
    parser.add_argument("--heads", default=",".join(HEADS), help=f"comma-separated from {', '.join(HEADS)}")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS[1:])), help="seeds of --stage seeds")
    parser.add_argument("--encoders", default=None, help="comma-separated (default: the data set's)")
    parser.add_argument("--lrs", default=None, help="comma-separated rates of --stage tune, a part of the grid for "
                        f"one process, without the edge extensions (default: {','.join(map(str, LR_GRID))}, then the edge "
                        "extensions that follow the rates tried so far)")  # fmt: skip
    parser.add_argument("--report-only", action="store_true", help="only merge the per-data-set files into the report")
    args = parser.parse_args(argv)
    use_shared_datasets()
    import torch

    torch.set_num_threads(1)  # one core: other jobs share the machine
    datasets = dataset_list(args.datasets, ["bibtex"] if args.quick else DATASETS)
    heads = args.heads.split(",")
    unknown = [h for h in heads if h not in HEADS] + [d for d in datasets if d not in SETS]
    if unknown:
        parser.error(
            f"unknown head or data set {unknown[0]!r}; heads: {', '.join(HEADS)}; data sets: {', '.join(SETS)}"
        )
    stem = "label_embeddings_quick" if args.quick else "label_embeddings"
    (args.out / stem).mkdir(parents=True, exist_ok=True)
    command = command_line(__file__, argv)
    commit = git_commit()  # read once, when the run starts: the code this process imported
    lrs = list(LR_GRID[:2] if args.quick else LR_GRID)
    if args.lrs is not None:
        if not all(_positive_rate(x) for x in args.lrs.split(",")):
            parser.error(f"--lrs {args.lrs!r}: give comma-separated positive learning rates, e.g. 0.001,0.003")
        lrs = [float(x) for x in args.lrs.split(",")]
    try:
        seeds = seed_list(args.seeds)
    except ValueError as exc:
        parser.error(str(exc))
    protocol_caps = {"max_epochs": 4 if args.quick else MAX_EPOCHS, "patience": 2 if args.quick else PATIENCE}
    for ds in [] if args.report_only else datasets:
        cfg = QUICK if args.quick else SETS[ds]
        path = args.out / stem / f"{ds}.json"
        part = read_json(path) if path.exists() else {"dataset": ds, "commands": [], "runs": []}
        store = "probes" if args.stage == "probe" else "runs"  # probes never enter the comparisons
        part.setdefault(store, [])
        encoders = tuple(args.encoders.split(",")) if args.encoders else cfg["encoders"]
        todo = plan(args.stage, part["runs"], ds, encoders, heads, lrs, seeds)
        data = load_data(ds, cfg)
        part["commands"] = [*dict.fromkeys([*part["commands"], command])]
        part["info"] = {"config": cfg, "sizes": data["sizes"]}
        done = {_key(r) for r in part[store]}
        todo = [t for t in todo if (t[0], t[1], t[2], t[3]) not in done]  # a re-run resumes
        while True:
            if not todo:
                todo = next_extensions(args.stage, part["runs"], ds, encoders, heads, args.quick, args.lrs is not None)
            if not todo:
                break
            enc, head, lr, seed = todo.pop(0)
            with timed() as run_time:
                caps = {**protocol_caps, "batch_size": cfg["batch_size"]}
                if args.stage == "probe":
                    caps["max_epochs"] = PROBE_EPOCHS
                run = run_one(ds, enc, head, lr, seed, data, caps)
            run["commit"] = commit
            part[store] = [r for r in part[store] if _key(r) != _key(run)] + [run]
            part.update({"date": utc_now(), "loadavg": load_average(), "machine": environment()})
            write_json(path, part, indent=1)
            print(f"{ds:12s} {enc:6s} {head:8s} lr {lr:g} seed {seed}: val MAP {run['best_val_MAP']:.4f} at epoch "
                  f"{run['best_epoch']}/{run['epochs_run']} ({run['stop']}), test MAP {run['test']['MAP']:.4f}, "
                  f"{run['train_cpu_seconds']:.1f} CPU s training, {run_time.cpu:.1f} CPU s in all",
                  file=sys.stderr, flush=True)  # fmt: skip
    result = write_report(args.out, stem, args.quick)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
