"""sparsexc against its peers, side by side: napkinXC, omikuji, PECOS and LibMultiLabel vs every sparsexc head.

One run, the same splits and the same feature matrices for every system, one metric implementation
(``sparsexc.metrics``) for all. The peers pin numpy<2 / scipy<1.14 (libpecos), so they live in their own
virtual environment, created from a fresh clone by ONE command::

    python -m venv .venv-peers && .venv-peers/bin/pip install torch==2.13.0 -r benchmarks/requirements-peers.txt

(``torch==2.13.0`` is pinned because libpecos pulls torch and pip would otherwise fetch a multi-GB CUDA build.)

Design: this script (the parent) runs in the library's environment. For each data set it loads the splits
with ``sparsexc.datasets.load``, applies one feature transform for everyone (below), and exports them as
plain CSR arrays plus an XC-format training file (omikuji trains only from files). Each (system, data set)
pair then runs in its own subprocess, ``benchmarks/peers_worker.py``: under the peers' interpreter
(``--peers-python``, default ``.venv-peers/bin/python``) for a peer, under this interpreter for a sparsexc
head. The worker writes the top-k predictions (indices, scores; and predicted label sets where the system
has a set rule) as ``.npz`` plus its timings, model size and peak RSS; the parent computes every metric.
Each worker gets ``--threads`` (default 2) threads (the systems' own thread options, OMP/MKL/OpenBLAS
variables and ``torch.set_num_threads``), ``OMP_WAIT_POLICY=PASSIVE`` (on a shared machine spinning OpenMP
threads multiplied sparsexc's CPU seconds about 6x, and PECOS / LibMultiLabel use OpenMP too), a wall-clock
``--timeout`` and a resident-memory cap ``--max-rss-mib`` (default 4 GiB; LibMultiLabel's dense
one-vs-rest weights are checked before it starts); a timeout, crash or cap is recorded as such in the
table, never dropped. Training time excludes importing the system's package (reported apart).

Every row runs with settings a user would type (issue 20; peers.md lists them as "typed settings"). The
peers: their own defaults (:data:`PEER_SETTINGS`). ``sparsexc-default``: ``XCClassifier()`` with no model
setting, on the features as loaded whatever the input (the library chooses its own preprocessing, and the row
records what it chose); ``benchmarks/defaults.py`` compares it with the peers. The per-head rows
``sparsexc-<head>``: one typed setting for every data set (:data:`SPARSEXC_SETTINGS`, chosen on the validation
split of bibtex and delicious): (512,) ReLU encoder, dropout 0.6, 3x the estimator's default learning rate of
the head, at most 12 epochs with early stopping (patience 2) on validation P@1 over 10% of the training rows,
row-sparse feature-table gradients; the sampled heads use the frequency sampler. The label-tree rows:
:data:`peers_worker.SPARSEXC_MODELS`.

Features (:data:`FEATURE_KINDS`, :data:`INPUTS`): the binary bag-of-words sets (``bibtex``, ``delicious``,
``tmc2007-500``, ``medical``, ``enron``, ``imdb``, ``rcv1-subset1``) get TF-IDF weights fitted on the
training rows and L2-normalised rows (scikit-learn ``TfidfTransformer``), the standard input of linear XMC
methods. The built text tasks (``debtags``, ``debian-deps``, ``wordnet-hypernyms``) are already TF-IDF with
L2-normalised rows and the dense sets (``yeast``, ``birds``, ``cal500``, ``flags``, ``emotions``, ``scene``)
real-valued columns; both are used as loaded. ``NAME:raw`` (e.g. ``bibtex:raw``) runs the same split with
the features as loaded, ``NAME:std`` (dense sets) with standardised columns, for every system alike; where a
set ran on several inputs, peers.md adds the goal check with each system on its better input. Sets without a
shipped test split (``cal500``, ``imdb``) use ``sparsexc.datasets.load``'s seeded split.

Measured per pair: P@1/3/5, nDCG@5, PSP@1/3/5 (inverse propensities from the training labels, A=0.55,
B=1.5, normalised as pyxclib), micro-F1 of the predicted label sets (systems with a set rule only),
training seconds, prediction ms per 1,000 test rows (top-5 over the whole test set), model size on disk
and peak RSS of the worker process.

Writes ``benchmarks/results/peers.json``, ``peers.md`` (a table per data set, best value in bold, and the
goal check: best sparsexc head vs best peer on P@1 and training time, the time judged on CPU seconds where
measured) and ``peers_p1_vs_time.png``; ``peers.md`` includes the hand-written analysis in
``results/peers_notes.md`` (where sparsexc is behind and what would close it).
Results are written after every pair; ``--append`` keeps earlier rows (a pair measured again replaces its
row), so partial runs accumulate.

Usage::

    python benchmarks/peers.py --quick                                   # bibtex, tiny settings
    python benchmarks/peers.py --datasets bibtex,delicious,tmc2007-500 --append
    # what benchmarks/results/peers.md holds: one invocation per data set (peers, then sparsexc), merged
    python benchmarks/peers.py --datasets debian-deps --systems peers --out /tmp/p-dd
    python benchmarks/peers.py --datasets debian-deps --systems sparsexc --timeout 600 --out /tmp/s-dd
    python benchmarks/peers.py --merge /tmp/p-*/peers.json /tmp/s-*/peers.json --out benchmarks/results
    python benchmarks/peers.py --datasets debtags --systems peers,sparsexc-sigmoid --timeout 1800 --append
    # 1,000,000 labels (generated, seeded; see SYNTHETIC_DATASETS), with the 16 GB cap of issue 19
    python benchmarks/peers.py --datasets synthetic-1m --systems peers,sparsexc-tree --max-rss-mib 16384 --timeout 3600
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from _harness import (
    BENCHMARKS,
    RESULTS,
    Stopwatch,
    add_common_flags,
    command_line,
    dataset_list,
    environment,
    load_average,
    read_json,
    use_shared_datasets,
    utc_now,
    write_json,
    write_text,
)
from peers_worker import (
    DEFAULT_SYSTEM,
    PREDICTIONS,
    RESULT,
    SPARSEXC_MODELS,
    SPARSEXC_PREFIX,
    SYSTEMS,
    load_csr,
    proc_status_mib,
    save_csr,
)  # fmt: skip

REPO = BENCHMARKS.parent
WORKER = BENCHMARKS / "peers_worker.py"
NOTES = RESULTS / "peers_notes.md"  # hand-written analysis of the last run, included in peers.md
# The data sets and what their features are as loaded, which decides each one's inputs (:data:`INPUTS`):
# "binary": a binary bag of words as shipped; "built": the text tasks sparsexc.datasets builds, already TF-IDF
# with L2-normalised rows; "dense": real-valued or integer-coded columns, mostly non-zero (audio, image, gene
# expression and tabular features of the Mulan sets).
FEATURE_KINDS: dict[str, str] = {
    "bibtex": "binary", "delicious": "binary", "tmc2007-500": "binary",
    "debtags": "built", "debian-deps": "built", "wordnet-hypernyms": "built",
    "medical": "binary", "enron": "binary", "yeast": "dense", "birds": "dense", "cal500": "dense", "imdb": "binary",
    "flags": "dense", "emotions": "dense", "scene": "dense", "rcv1-subset1": "binary",
}  # fmt: skip
DATASETS: tuple[str, ...] = tuple(FEATURE_KINDS)
TFIDF_DATASETS = frozenset(d for d, kind in FEATURE_KINDS.items() if kind == "binary")  # NAME = TF-IDF + L2 rows
# Generated sets (``sparsexc.datasets.synthetic``, seeded: the same arrays on every machine), run only when named
# in --datasets. synthetic-1m: 1,000,000 labels, 150,000 rows (120,000 train / 30,000 test), 100,000 features,
# 32 feature draws and 4 label draws per row, Zipf exponent 0.8 on the label frequencies. Sized for 2 cores
# (the label tree: 288 training CPU s, 1.9 GB peak RSS on 2026-12-03): 235,255 labels have a training row (10,523 have 5
# or more; the rest only enlarge the label space, as the tail of a real XMC set), about 4 labels and 23 stored
# features per row, and 100,000 features keep X and PIFA small.
SYNTHETIC_DATASETS: dict[str, dict[str, Any]] = {
    "synthetic-1m": {"n_samples": 150_000, "n_features": 100_000, "n_labels": 1_000_000, "labels_per_sample": 4.0,
                     "nnz_per_sample": 32, "prototype_size": 8, "noise": 0.2, "power": 0.8, "seed": 0},
}  # fmt: skip
RAW_SUFFIX = ":raw"  # "bibtex:raw": the same split with the features as loaded (no TF-IDF transform)
STD_SUFFIX = ":std"  # "emotions:std": the same split with standardised columns (mean and std of the training rows)
INPUT_SUFFIXES: tuple[str, ...] = (RAW_SUFFIX, STD_SUFFIX)
# The inputs every peer runs on, per kind of features; a peer is judged on the better of them (best_input_rows).
# NAME is the harness's standard input (TF-IDF + L2 rows for a binary bag of words, the usual input of linear
# XMC methods; the features as loaded otherwise). A binary bag of words also runs as shipped (NAME:raw: some
# peers do better on it, e.g. bibtex). The built text tasks are TF-IDF already, so they have one input. Dense
# real-valued columns on very different scales (flags: populations next to 0/1 colours) also run standardised
# (NAME:std), the usual input of linear models there.
INPUTS: dict[str, tuple[str, ...]] = {"binary": ("", RAW_SUFFIX), "built": ("",), "dense": ("", STD_SUFFIX)}
K = 5
PEERS: tuple[str, ...] = tuple(SYSTEMS)

# Each peer's documented defaults, with the settings the brief names (peers.md section 3 and the READMEs):
# omikuji's defaults are its Parabel-like setting (balanced 2-means trees; 3 trees as in its README table);
# the Bonsai-like one is its README's "unbalanced, k=100, depth 3"; LibMultiLabel needs -B 1 for a bias.
PEER_SETTINGS: dict[str, dict[str, Any]] = {
    "napkinxc-plt": {"seed": 0, "set_threshold": 0.5},
    "omikuji-parabel": {"n_trees": 3},
    "omikuji-bonsai": {"n_trees": 3, "cluster_k": 100, "cluster_balanced": False, "max_depth": 3},
    "pecos-xrlinear": {"nr_splits": 16, "max_leaf_size": 100, "beam_size": 10},
    "libmultilabel-ovr": {"options": "-s 2 -B 1"},
}
QUICK_PEER_SETTINGS: dict[str, dict[str, Any]] = {
    **PEER_SETTINGS,
    "omikuji-parabel": {"n_trees": 1},
    "omikuji-bonsai": {"n_trees": 1, "cluster_k": 100, "cluster_balanced": False, "max_depth": 3},
}
# sparsexc heads: one typed setting for every head and data set (the keyword arguments of XCClassifier a user
# would type), chosen on the validation split (the estimator's 10% hold-out of the training rows; no test row) of
# bibtex and delicious for training cost as well as P@1: a (512,) ReLU encoder with dropout 0.6; row-sparse
# gradients for its feature table (lazy Adam there, so a step touches only the features of its batch: the
# XMC inputs are wide); 3x the estimator's default learning rate of the head (its optimiser's default times its
# default_lr_scale: L2-normalised TF-IDF rows have small norms, and early stopping ends the run anyway); at most
# 12 epochs, stopping after 2 without a better validation P@1. The estimator's defaults ((1024,) encoder, lr 1e-3,
# 20 epochs, patience 5) reach about the same validation P@1 on bibtex in 3-6x the CPU time; they are the
# `sparsexc-default` row (XCClassifier() with no setting, on the features as loaded).
# Before issue 20 the harness also applied data-dependent rules no user can type (dense gradients under 10,000
# features; the sigmoid head as a plain-SGD linear model on debtags-like inputs, SPARSE_LINEAR_SIGMOID): the rows
# measured then record them in their settings; what such rules gain belongs in the library's "auto" choices.
# The evidence for the sigmoid rule (held-out training rows of debtags, benchmarks/peers_validation.py,
# results/peers_validation_debtags.json): the linear model by plain SGD (lr 10, up to 40 epochs, patience 4)
# reached P@1 82.75 against 81.12 for the setting below and 81.54 for the linear model with lazy Adam.
SPARSEXC_SETTINGS: dict[str, Any] = {
    "random_state": 0,
    "hidden_sizes": [512],
    "dropout": 0.6,
    "epochs": 12,
    "patience": 2,
    "sparse_gradients": True,
}
SPARSEXC_LR_FACTOR = 3.0
# the sampled heads' default tree sampler conditions on the raw features (linear model only); behind a hidden
# layer their documented choice is the label-frequency sampler
SPARSEXC_HEAD_SETTINGS: dict[str, dict[str, Any]] = {
    "negative-sampling": {"head_params": {"sampler": "frequency"}},
    "sampled-softmax": {"head_params": {"sampler": "frequency"}},
}
QUICK_SPARSEXC_SETTINGS: dict[str, Any] = {"random_state": 0, "epochs": 2, "hidden_sizes": [64]}

METRIC_COLUMNS: tuple[str, ...] = ("P@1", "P@3", "P@5", "nDCG@5", "PSP@1", "PSP@3", "PSP@5", "micro-F1")
COST_COLUMNS: tuple[str, ...] = (
    "train_seconds",
    "train_cpu_seconds",
    "predict_ms_per_1000",
    "predict_cpu_ms_per_1000",
    "model_mib",
    "peak_rss_mib",
)
COST_HEADERS = {"train_seconds": "train s", "train_cpu_seconds": "train CPU s", "predict_ms_per_1000": "predict ms / 1k rows",
                "predict_cpu_ms_per_1000": "predict CPU ms / 1k rows", "model_mib": "model MiB", "peak_rss_mib": "peak RSS MiB"}  # fmt: skip
GOAL_P1_POINTS = 1.0
GOAL_TIME_RATIO = 3.0


# -- arguments and systems ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=None,
                        help=f"comma-separated from {', '.join(DATASETS)} (default: all); NAME{RAW_SUFFIX} = the "
                             f"features as loaded, without the TF-IDF transform; NAME{STD_SUFFIX} = standardised "
                             "columns (the dense sets); generated sets, only when named: "
                             f"{', '.join(SYNTHETIC_DATASETS)}")  # fmt: skip
    parser.add_argument("--systems", default="all",
                        help="comma-separated: peer names (" + ", ".join(PEERS) + "), sparsexc-<head>, or the "
                             "groups 'peers', 'sparsexc' (every registered head), 'all' (default)")  # fmt: skip
    add_common_flags(parser, quick="bibtex only (unless --datasets), tiny settings")
    add_run_flags(parser)
    add_common_flags(parser, out=True, append="keep the rows already in peers.json")
    parser.add_argument("--work-dir", type=Path, default=None, help="exported data and predictions (default: temp)")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        metavar="JSON",
        help="run nothing: merge the rows of these peers.json files (later files win) into --out",
    )
    return parser


def add_run_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The flags of running the workers (--timeout, --threads, --max-rss-mib, --peers-python), shared with
    ``benchmarks/defaults.py``; :func:`check_run_flags` checks them."""
    add_common_flags(parser, timeout=900.0, timeout_per="(system, data set)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every system (default 2)")
    parser.add_argument(
        "--max-rss-mib",
        type=float,
        default=4096.0,
        help="stop a worker whose resident memory exceeds this (default 4096 MiB); recorded as failed",
    )
    parser.add_argument(
        "--peers-python",
        type=Path,
        default=REPO / ".venv-peers" / "bin" / "python",
        help="interpreter of the peers' venv (default .venv-peers/bin/python)",
    )
    return parser


def check_run_flags(args: argparse.Namespace) -> str | None:
    """What is wrong with the flags of :func:`add_run_flags`, or None."""
    if args.threads < 1 or args.timeout <= 0 or args.max_rss_mib <= 0:
        return "--threads must be >= 1, --timeout > 0 and --max-rss-mib > 0"
    return None


def missing_peers_python(python: Path) -> str | None:
    """Why the peers cannot run with the interpreter ``python`` (and how to create it), or None."""
    if python.exists():
        return None
    return (f"--peers-python {python} does not exist; create the venv with: python -m venv .venv-peers && "
            ".venv-peers/bin/pip install torch==2.13.0 -r benchmarks/requirements-peers.txt")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parsed and checked arguments (unknown data set names are reported by the parser)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    datasets = dataset_list(args.datasets, ["bibtex"] if args.quick else DATASETS)
    problem = check_datasets(datasets) or check_run_flags(args)
    if problem:
        parser.error(problem)
    args.datasets = datasets
    return args


def check_datasets(datasets: list[str]) -> str | None:
    """Why ``datasets`` cannot be run (an unknown name, an input the set does not have), or None."""
    for d in datasets:
        if base_name(d) not in DATASETS and d not in SYNTHETIC_DATASETS:
            return f"unknown data set {d!r}; choose from {', '.join([*DATASETS, *SYNTHETIC_DATASETS])}"
        if d.endswith(STD_SUFFIX) and FEATURE_KINDS.get(base_name(d)) != "dense":
            return f"{d!r}: {STD_SUFFIX} (standardised columns) is for the dense sets only"
    return None


def resolve_systems(spec: str, heads: list[str]) -> list[str]:
    """System names from a comma-separated ``spec`` of names and groups ('peers', 'sparsexc', 'all')."""
    out: list[str] = []
    sparsexc = [*SPARSEXC_MODELS, *(SPARSEXC_PREFIX + h for h in heads)]
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        if item == "all":
            out += [*PEERS, *sparsexc]
        elif item == "peers":
            out += list(PEERS)
        elif item == "sparsexc":
            out += sparsexc
        elif item in PEERS or item in sparsexc:
            out.append(item)
        else:
            raise ValueError(
                f"--systems: {item!r} is unknown; choose from {', '.join([*PEERS, *sparsexc])}, "
                f"'peers', 'sparsexc' or 'all'"
            )
    if not out:
        raise ValueError("--systems names no system")
    return list(dict.fromkeys(out))


def system_settings(system: str, quick: bool) -> dict[str, Any]:
    """The settings a system runs with (``quick``: the smoke-test ones)."""
    if system in SPARSEXC_MODELS:
        return dict(SPARSEXC_MODELS[system][1])
    if system.startswith(SPARSEXC_PREFIX):
        head = system[len(SPARSEXC_PREFIX) :]
        if quick:  # the head's own settings still apply (the sampled heads' sampler must suit a hidden layer)
            return {**QUICK_SPARSEXC_SETTINGS, **SPARSEXC_HEAD_SETTINGS.get(head, {})}
        return {**SPARSEXC_SETTINGS, "lr": sparsexc_lr(head), **SPARSEXC_HEAD_SETTINGS.get(head, {})}
    return dict((QUICK_PEER_SETTINGS if quick else PEER_SETTINGS)[system])


def sparsexc_lr(head: str) -> float:
    """:data:`SPARSEXC_LR_FACTOR` x the learning rate ``XCClassifier(lr=None)`` gives ``head``: the default of
    the head's optimiser (``DEFAULT_LR``) times the head's ``default_lr_scale``."""
    from sparsexc.estimator import DEFAULT_LR
    from sparsexc.heads import get_head

    cls = get_head(head)
    return round(SPARSEXC_LR_FACTOR * DEFAULT_LR[cls.default_optimizer] * cls.default_lr_scale, 6)


# -- data ------------------------------------------------------------------------------------------------
def base_name(dataset: str) -> str:
    """The registered data set behind a name that may carry one of :data:`INPUT_SUFFIXES`."""
    for suffix in INPUT_SUFFIXES:
        if dataset.endswith(suffix):
            return dataset[: -len(suffix)]
    return dataset


def inputs(dataset: str) -> list[str]:
    """The inputs the peers run on for ``dataset`` (:data:`INPUTS`): ``NAME`` and its variants."""
    return [dataset + suffix for suffix in INPUTS.get(FEATURE_KINDS.get(dataset, "built"), ("",))]


def as_loaded(dataset: str) -> str:
    """The name whose export holds ``dataset``'s features as loaded: ``NAME:raw`` where ``NAME`` transforms them."""
    base = base_name(dataset)
    return base + RAW_SUFFIX if base in TFIDF_DATASETS else base


def system_input(system: str, dataset: str) -> str:
    """The input (export) ``system`` reads on ``dataset``: the features as loaded for ``sparsexc-default`` (the
    library chooses its own preprocessing), ``dataset`` itself for every other system."""
    return as_loaded(dataset) if system == DEFAULT_SYSTEM else dataset


def prepare_features(name: str, X_train: sp.csr_matrix, X_test: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The feature transform every system gets for the input ``name``: TF-IDF (idf from the training rows)
    with L2-normalised rows for the binary-feature sets; ``(x - mean) / std`` per column (statistics of the
    training rows; a constant column is only centred) for ``NAME:std``; the matrices as loaded for the built
    TF-IDF text tasks, the dense sets and ``NAME:raw``."""
    if name.endswith(STD_SUFFIX):
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(X_train.toarray())
        return (sp.csr_matrix(scaler.transform(X_train.toarray()), dtype=np.float32),
                sp.csr_matrix(scaler.transform(X_test.toarray()), dtype=np.float32))  # fmt: skip
    if name not in TFIDF_DATASETS:
        return X_train, X_test
    from sklearn.feature_extraction.text import TfidfTransformer

    tfidf = TfidfTransformer(norm="l2", use_idf=True, smooth_idf=True).fit(X_train)
    return (sp.csr_matrix(tfidf.transform(X_train), dtype=np.float32),
            sp.csr_matrix(tfidf.transform(X_test), dtype=np.float32))  # fmt: skip


HOLDOUT_SHARE = 0.2  # --holdout-seeds: the share of a set's TRAINING rows held out to rank


def holdout_split(X: sp.csr_matrix, Y: sp.csr_matrix, seed: int) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """((X, Y) fitted, (X, Y) held out): :data:`HOLDOUT_SHARE` of the rows, drawn by ``seed`` (the draw of
    ``benchmarks/small_holdout.py``: ``default_rng(seed).permutation``, the first 20% held out), in row order."""
    order = np.random.default_rng(seed).permutation(X.shape[0])
    n_held = round(HOLDOUT_SHARE * len(order))
    held, fit = np.sort(order[:n_held]), np.sort(order[n_held:])
    return (X[fit], Y[fit]), (X[held], Y[held])


def export_dataset(name: str, folder: Path, holdout_seed: int | None = None) -> dict[str, Any]:
    """Load ``name``, transform its features, and write ``{train,test}_{X,Y}.npz`` and ``train.txt`` (XC
    format) into ``folder``; return its shape summary. With ``holdout_seed`` the test split is never read: the
    "train" and "test" files are a seeded split of the training rows (:func:`holdout_split`)."""
    from sparsexc.datasets import load, synthetic
    from sparsexc.io import write_xc

    data = synthetic(**SYNTHETIC_DATASETS[name]) if name in SYNTHETIC_DATASETS else load(base_name(name))
    (X_fit, Y_fit), (X_eval, Y_eval) = (
        ((data.train.X, data.train.Y), (data.test.X, data.test.Y))
        if holdout_seed is None
        else holdout_split(sp.csr_matrix(data.train.X), sp.csr_matrix(data.train.Y), holdout_seed)
    )
    X_train, X_test = prepare_features(name, X_fit, X_eval)
    folder.mkdir(parents=True, exist_ok=True)
    for part, X, Y in (("train", X_train, Y_fit), ("test", X_test, Y_eval)):
        save_csr(folder / f"{part}_X.npz", X)
        save_csr(folder / f"{part}_Y.npz", Y)
    write_xc(folder / "train.txt", X_train, Y_fit)
    omikuji_compatible(folder / "train.txt")
    return {"n_train": X_train.shape[0], "n_test": X_test.shape[0], "n_features": X_train.shape[1],
            "n_labels": Y_fit.shape[1], "features": features_label(name)}  # fmt: skip


def features_label(name: str) -> str:
    """What the systems get as features for the data set ``name`` (see :func:`prepare_features`)."""
    if name in TFIDF_DATASETS:
        return "TF-IDF (idf from train) + L2 rows"
    if name in SYNTHETIC_DATASETS:
        return "sparsexc.datasets.synthetic(" + ", ".join(f"{k}={v}" for k, v in SYNTHETIC_DATASETS[name].items()) + ")"
    if name.endswith(STD_SUFFIX):
        return "standardised columns (mean and std of the training rows)"
    kind = FEATURE_KINDS.get(base_name(name))
    if kind == "built":
        return "TF-IDF + L2 rows, as built by sparsexc.datasets"
    return "as loaded (binary)" if kind == "binary" else "as loaded (real-valued)"


def omikuji_compatible(path: Path) -> None:
    """Give rows without labels the leading space of the XC format's empty label list: ``write_xc`` starts
    them with their first feature pair, which omikuji's reader rejects ("Failed to load data")."""
    lines = path.read_text().split("\n")
    for i in range(1, len(lines)):
        if ":" in lines[i].split(" ", 1)[0]:
            lines[i] = " " + lines[i]
    path.write_text("\n".join(lines))


# -- metrics ---------------------------------------------------------------------------------------------
def metrics_from_predictions(path: Path, Y_test: sp.csr_matrix, Y_train: sp.csr_matrix) -> dict[str, float]:
    """Every metric of the table from a worker's ``predictions.npz`` (indices/scores (n, k), -1 = none;
    optional ``set_indptr``/``set_indices``), with ``sparsexc.metrics``."""
    from sparsexc.metrics import evaluate, inverse_propensity

    n_labels = Y_train.shape[1]
    with np.load(path) as f:
        topk = (np.asarray(f["indices"]), np.asarray(f["scores"]))
        sets = None
        if "set_indptr" in f:
            ind = np.asarray(f["set_indices"])
            sets = sp.csr_matrix((np.ones(len(ind), dtype=np.float32), ind, np.asarray(f["set_indptr"])),
                                 shape=(Y_test.shape[0], n_labels))  # fmt: skip
    if topk[0].shape[0] != Y_test.shape[0]:
        raise ValueError(f"{path}: predictions for {topk[0].shape[0]} rows, but the test set has {Y_test.shape[0]}")
    values = evaluate(Y_test, topk, ks=(1, 3, 5), inv_propensity=inverse_propensity(Y_train, n_labels=n_labels),
                      label_sets=sets)  # fmt: skip
    return {c: float(values[c]) for c in METRIC_COLUMNS if c in values}


# -- running ---------------------------------------------------------------------------------------------
def _thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "RAYON_NUM_THREADS",
    ):
        env[var] = str(threads)
    # idle OpenMP threads sleep instead of spinning: on a shared, oversubscribed machine spinning threads burn
    # CPU seconds and hold the cores that the other threads of the same team wait for (same for every system)
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCHMARKS), env.get("PYTHONPATH", "")]))
    return env


def memory_preflight(system: str, data_dir: Path, max_rss_mib: float) -> str | None:
    """Why ``system`` cannot fit in ``max_rss_mib`` on this data set, or None. Only LibMultiLabel's
    one-vs-rest has a size known in advance: dense float64 weights of (n_features + 1) x n_labels."""
    if system != "libmultilabel-ovr":
        return None
    with np.load(data_dir / "train_X.npz") as fx, np.load(data_dir / "train_Y.npz") as fy:
        n_features, n_labels = int(fx["shape"][1]), int(fy["shape"][1])
    need = (n_features + 1) * n_labels * 8 / 2**20
    if need <= max_rss_mib:
        return None
    return (
        f"not run: its dense float64 weights ({n_features + 1} x {n_labels}) need {need / 1024:.1f} GiB, "
        f"over the {max_rss_mib / 1024:.1f} GiB memory cap"
    )


def _run_worker(
    cmd: list[str], env: dict[str, str], out_dir: Path, timeout: float, max_rss_mib: float
) -> tuple[int | None, str]:
    """Run the worker; stop it past ``timeout`` seconds or ``max_rss_mib`` of resident memory.
    Returns (exit code or None when stopped, the reason it was stopped or its last stderr line)."""
    with open(out_dir / "stdout.log", "w") as out, open(out_dir / "stderr.log", "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        watch, peak = Stopwatch(), 0.0
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                peak = max(peak, proc_status_mib("VmRSS", proc.pid) or 0.0)  # 0 off Linux: no cap
                why = (f"timed out after {timeout:g} s" if watch.wall > timeout else
                       f"stopped: resident memory {peak:.0f} MiB over the {max_rss_mib:.0f} MiB cap"
                       if peak > max_rss_mib else None)  # fmt: skip
                if why:
                    proc.kill()
                    proc.wait()
                    return None, why
    lines = [ln for ln in (out_dir / "stderr.log").read_text(errors="replace").splitlines() if ln.strip()]
    return code, (lines[-1][:300] if lines else "(no message)")


def export_input(name: str, work: Path, info: dict[str, Any], holdout_seed: int | None = None) -> Path:
    """The folder of the input ``name`` under ``work``, exported (:func:`export_dataset`) on first use; its shape
    summary goes into ``info[name]``. With ``holdout_seed``: that hold-out split of the training rows, in a
    folder of its own."""
    suffix = "" if holdout_seed is None else f"-holdout{holdout_seed}"
    folder = work / "data" / (name.replace(":", "-") + suffix)
    if name not in info or not (folder / "train.txt").is_file():
        info[name] = export_dataset(name, folder, holdout_seed)
    return folder


def run_pairs(
    pairs: list[tuple[str, str]],
    args: argparse.Namespace,
    work: Path,
    info: dict[str, Any],
    on_row: Callable[[list[dict[str, Any]]], None],
) -> list[dict[str, Any]]:
    """Run each ``(data set, system)`` of ``pairs`` (:func:`run_pair`), each system on its input
    (:func:`system_input`, exported on first use into ``work``, shapes into ``info``); after every pair, print a
    line and call ``on_row`` with the rows so far (so a stopped run keeps what it measured)."""
    rows: list[dict[str, Any]] = []
    seed = getattr(args, "holdout_seed", None)  # defaults.py --holdout-seeds: a split of the training rows
    for dataset, system in pairs:
        export_input(dataset, work, info, seed)  # the data set's own shape heads its table
        data_dir = export_input(system_input(system, dataset), work, info, seed)
        row = run_pair(system, dataset, data_dir, work, args)
        if seed is not None:
            row["holdout_seed"] = seed
        rows.append(row)
        summary = row.get("error") or (f"P@1 {100 * row['metrics']['P@1']:.2f}  train {row['train_seconds']:.1f} s  "
                                       f"predict {row['predict_ms_per_1000']:.1f} ms/1k  RSS {row['peak_rss_mib']:.0f} MiB")  # fmt: skip
        print(f"{dataset:18s} {system:26s} {summary}", file=sys.stderr, flush=True)
        on_row(rows)
    return rows


def run_pair(system: str, dataset: str, data_dir: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one (system, data set) in a subprocess; return its row (metrics or the failure)."""
    out_dir = work / "runs" / dataset.replace(":", "-") / system
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    settings = system_settings(system, args.quick)
    spec = {"system": system, "data_dir": str(data_dir), "out_dir": str(out_dir), "k": K,
            "threads": args.threads, "settings": settings}  # fmt: skip
    (out_dir / "spec.json").write_text(json.dumps(spec))
    python = sys.executable if system.startswith(SPARSEXC_PREFIX) else str(args.peers_python)
    row: dict[str, Any] = {"dataset": dataset, "system": system, "settings": settings,
                           "family": "sparsexc" if system.startswith(SPARSEXC_PREFIX) else "peer",
                           "input": features_label(system_input(system, dataset)),
                           "load_average_before": load_average()}  # fmt: skip
    skip = memory_preflight(system, data_dir, args.max_rss_mib)
    if skip:
        return {**row, "status": "skipped", "error": skip}
    started = Stopwatch()
    try:
        code, message = _run_worker([python, str(WORKER), str(out_dir / "spec.json")], _thread_env(args.threads),
                                    out_dir, args.timeout, args.max_rss_mib)  # fmt: skip
    except OSError as exc:
        return {**row, "status": "error", "error": f"cannot start {python}: {exc}"}
    if code is None:
        return {**row, "status": "timeout" if message.startswith("timed out") else "error", "error": message}
    row["wall_seconds"] = round(started.wall, 1)
    row["load_average_after"] = load_average()
    if code != 0:
        return {**row, "status": "error", "error": f"exit {code}: {message}"}
    result = read_json(out_dir / RESULT)
    Y_test, Y_train = load_csr(data_dir / "test_Y.npz"), load_csr(data_dir / "train_Y.npz")
    row.update(status="ok", metrics=metrics_from_predictions(out_dir / PREDICTIONS, Y_test, Y_train),
               train_seconds=result["train_seconds"], train_cpu_seconds=result.get("train_cpu_seconds"),
               import_seconds=result.get("import_seconds"), predict_ms_per_1000=result["predict_ms_per_1000"],
               predict_cpu_ms_per_1000=result.get("predict_cpu_ms_per_1000"), model_mib=round(result["model_bytes"] / 2**20, 2), peak_rss_mib=result["peak_rss_mib"],
               rss_before_fit_mib=result["rss_before_fit_mib"], numpy=result["numpy"])  # fmt: skip
    if result.get("chosen"):
        row["chosen"] = result["chosen"]  # what the system chose from the data (sparsexc-default)
    return row


def peer_versions(python: Path) -> dict[str, str | None]:
    """Versions of the peer packages in the peers' venv (empty when it cannot be run)."""
    code = ("import json\nfrom importlib import metadata as m\nout={}\n"
            "for p in ('napkinxc','omikuji','libpecos','libmultilabel','numpy','scipy','scikit-learn'):\n"
            "    try: out[p]=m.version(p)\n    except Exception: out[p]=None\nprint(json.dumps(out))")  # fmt: skip
    try:
        proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
        return json.loads(proc.stdout) if proc.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {}


# -- report ----------------------------------------------------------------------------------------------
def _value(row: dict[str, Any], column: str) -> float | None:
    if row.get("status") != "ok":
        return None
    value = row["metrics"].get(column) if column in METRIC_COLUMNS else row.get(column)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _format(column: str, value: float) -> str:
    if column in METRIC_COLUMNS:
        return f"{100 * value:.2f}"
    if column in ("train_seconds", "train_cpu_seconds"):
        return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return f"{value:.1f}" if value >= 1 else f"{value:.3f}"


def dataset_table(rows: list[dict[str, Any]]) -> str:
    """One data set's rows as a Markdown table; metrics in %, the best of each column in bold (highest
    metric, lowest cost); a failed row shows why in place of its values."""
    columns = [*METRIC_COLUMNS, *COST_COLUMNS]
    head = ["system", *METRIC_COLUMNS, *(COST_HEADERS[c] for c in COST_COLUMNS)]
    best: dict[str, float] = {}
    for c in columns:
        values = [v for v in (_value(r, c) for r in rows) if v is not None]
        if values:
            best[c] = max(values) if c in METRIC_COLUMNS else min(values)
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(columns)]
    for row in rows:
        if row.get("status") != "ok":
            lines.append(f"| {row['system']} | {row.get('error', row.get('status'))} |" + " |" * (len(columns) - 1))
            continue
        cells = []
        for c in columns:
            v = _value(row, c)
            text = "–" if v is None else _format(c, v)
            # bold the best as displayed, so equal rounded values are bolded alike
            cells.append(f"**{text}**" if v is not None and text == _format(c, best[c]) else text)
        lines.append(f"| {row['system']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def goal_check(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Best sparsexc head vs best peer on P@1 (points) and training time (ratio) for one data set."""
    ok = [r for r in rows if r.get("status") == "ok"]
    ours = [r for r in ok if r["family"] == "sparsexc"]
    peers = [r for r in ok if r["family"] == "peer"]
    if not ours or not peers:
        return None
    a = max(ours, key=lambda r: r["metrics"]["P@1"])
    b = max(peers, key=lambda r: r["metrics"]["P@1"])
    gap = 100 * (a["metrics"]["P@1"] - b["metrics"]["P@1"])
    ratio = a["train_seconds"] / max(b["train_seconds"], 1e-9)
    cpu_ratio = _ratio(a.get("train_cpu_seconds"), b.get("train_cpu_seconds"))
    return {"best_sparsexc": a["system"], "best_peer": b["system"],
            "P@1_sparsexc": round(100 * a["metrics"]["P@1"], 2), "P@1_peer": round(100 * b["metrics"]["P@1"], 2),
            "P@1_gap_points": round(gap, 2), "train_s_sparsexc": a["train_seconds"], "train_s_peer": b["train_seconds"],
            "train_cpu_s_sparsexc": a.get("train_cpu_seconds"), "train_cpu_s_peer": b.get("train_cpu_seconds"),
            "time_ratio": round(ratio, 2), "cpu_time_ratio": cpu_ratio,
            # judged on CPU seconds when measured: on a shared machine the wall clock mostly counts other jobs
            "time_goal_on": "CPU" if cpu_ratio is not None else "wall",
            "p1_goal_met": gap >= -GOAL_P1_POINTS,
            "time_goal_met": (cpu_ratio if cpu_ratio is not None else ratio) <= GOAL_TIME_RATIO}  # fmt: skip


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 2)


def goal_line(dataset: str, g: dict[str, Any] | None, rows: list[dict[str, Any]] | None = None) -> str:
    """One Markdown line stating the goal check for a data set (the time goal on CPU seconds when measured);
    ``rows`` (the data set's rows) explain a missing comparison."""
    if g is None:
        ours = [r for r in rows or [] if r["family"] == "sparsexc"]
        if ours and not any(r.get("status") == "ok" for r in ours):
            why = "; ".join(sorted({f"{r['system']}: {r.get('error', r.get('status'))}" for r in ours}))
            return f"- **{dataset}**: **not met**: no sparsexc head finished ({why})."
        return f"- **{dataset}**: not comparable yet (needs at least one finished sparsexc head and one finished peer)."
    on_cpu = g.get("time_goal_on") == "CPU"
    judged = g["cpu_time_ratio"] if on_cpu else g["time_ratio"]
    p1 = "met" if g["p1_goal_met"] else f"**behind by {-g['P@1_gap_points']:.2f} points**"
    t = "met" if g["time_goal_met"] else f"**{judged:.1f}x the peer's {'CPU ' if on_cpu else ''}time**"
    cpu = (
        f", {g['train_cpu_s_sparsexc']:.1f} vs {g['train_cpu_s_peer']:.1f} CPU s (x{g['cpu_time_ratio']:.2f})"
        if on_cpu
        else ""
    )
    return (
        f"- **{dataset}**: best sparsexc `{g['best_sparsexc']}` P@1 {g['P@1_sparsexc']:.2f} vs best peer "
        f"`{g['best_peer']}` P@1 {g['P@1_peer']:.2f}: {g['P@1_gap_points']:+.2f} points (goal within "
        f"{GOAL_P1_POINTS:g}: {p1}); training {g['train_s_sparsexc']:.1f} vs {g['train_s_peer']:.1f} wall s "
        f"(x{g['time_ratio']:.2f}){cpu} (goal within {GOAL_TIME_RATIO:g}x{' CPU time' if on_cpu else ''}: {t})."
    )


def order_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = [*DATASETS, *SYNTHETIC_DATASETS]
    suffixes = ("", *INPUT_SUFFIXES)
    ds = {d + s: len(suffixes) * i + j for i, d in enumerate(names) for j, s in enumerate(suffixes)}
    sy = {s: i for i, s in enumerate(PEERS)}
    return sorted(rows, key=lambda r: (ds.get(r["dataset"], len(ds)), r["dataset"],
                                       sy.get(r["system"], len(sy)), r["system"]))  # fmt: skip


def best_input_rows(rows: list[dict[str, Any]], dataset: str, min_inputs: int = 2) -> list[dict[str, Any]]:
    """Each system's finished row with the highest P@1 over the inputs of ``dataset`` that were run (``NAME``,
    ``NAME:raw``, ``NAME:std``), i.e. every system on the input that suits it best (a tie keeps the earlier
    input, ``NAME`` first); empty when fewer than ``min_inputs`` of them have a finished row."""
    variants = [
        [r for r in rows if r["dataset"] == d and r.get("status") == "ok"]
        for d in (dataset + suffix for suffix in ("", *INPUT_SUFFIXES))
    ]
    if sum(1 for v in variants if v) < min_inputs:
        return []
    best: dict[str, dict[str, Any]] = {}
    for r in (r for v in variants for r in v):
        if r["system"] not in best or r["metrics"]["P@1"] > best[r["system"]]["metrics"]["P@1"]:
            best[r["system"]] = r
    return list(best.values())


def markdown_report(report: dict[str, Any]) -> str:
    """The whole results page: header, goal check, one table per data set, settings."""
    rows = order_rows(report["rows"])
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    m = report.get("machine", {})
    lines = [
        "# sparsexc vs the peers",
        "",
        f"{report.get('date', '')}, last command `{report.get('command', '')}`"
        + (
            "; merged from runs " + ", ".join(f"`{c}`" for c in report["merged_from"])
            if report.get("merged_from")
            else ""
        )
        + ".",
        "",
        "One run per (system, data set), each in its own process with 2 threads; the same splits and feature "
        "matrices for all (TF-IDF + L2 rows for the binary bag-of-words sets; `NAME:raw` = the same split "
        "with the binary features as shipped; `NAME:std` = standardised columns for the dense sets; the built "
        "text tasks and the dense sets as loaded; `sparsexc-default` always gets the features as loaded and "
        "chooses its own preprocessing); every metric computed by `sparsexc.metrics` from the systems' top-5 "
        "predictions. Metrics in %: "
        "P@k, nDCG@5; PSP@k with inverse propensities of the training labels (A=0.55, B=1.5), normalised by the "
        "best achievable; micro-F1 of the predicted label sets where the system has a set rule (napkinXC: "
        "probability >= 0.5; LibMultiLabel: decision value > 0; sparsexc: the head's tuned rule; '–' = no set rule). "
        "Training time = wall clock of the fit call (PECOS: indexing included; omikuji: reading its XC file included; "
        "sparsexc: its 10% validation split, early stopping and set tuning included), with the system's package "
        "imported before (import seconds in the JSON); 'train CPU s' = the CPU time of all the worker's threads "
        "during it, the fairer figure on a loaded machine and the one the time goal is judged on. Every worker "
        "runs with `OMP_WAIT_POLICY=PASSIVE` (idle OpenMP threads sleep instead of spinning) and is stopped above "
        "the resident-memory cap (`--max-rss-mib`, recorded as failed with the reason); "
        "prediction = top-5 over the test set (omikuji's Python API predicts one row per call). Model size = the "
        "saved model on disk (LibMultiLabel: its pickled model). Peak RSS = the worker process's high-water mark "
        "(loading + training + prediction). Best value of each column in bold. The machine is shared: timings "
        "carry its load (load average before each run in the JSON).",
        "",
        f"Machine: {m.get('processor', '?')}, {m.get('cpu_count', '?')} CPUs, load average at the end "
        f"{m.get('load_average')}; versions {json.dumps(m.get('versions', {}))}; peers "
        f"{json.dumps(report.get('peer_versions', {}))}.",
        "",
        "Reproduce: `python -m venv .venv-peers && .venv-peers/bin/pip install torch==2.13.0 -r "
        "benchmarks/requirements-peers.txt`, then `python benchmarks/peers.py` (see its docstring).",
        "",
        f"## Goal: best sparsexc head within {GOAL_P1_POINTS:g} point of P@1 of the best peer, in at most "
        f"{GOAL_TIME_RATIO:g}x its training time",
        "",
        *(
            goal_line(d, goal_check([r for r in rows if r["dataset"] == d]), [r for r in rows if r["dataset"] == d])
            for d in datasets
        ),
        *(
            goal_line(f"{d}, each system on its better input", goal_check(best_input_rows(rows, d)))
            for d in datasets
            if best_input_rows(rows, d)
        ),
        "",
        "![P@1 against training CPU seconds](peers_p1_vs_time.png)",
        "",
    ]
    if NOTES.is_file():
        lines += [NOTES.read_text().strip(), ""]
    info = report.get("datasets", {})
    for d in datasets:
        shape = info.get(d)
        extra = (f" — {shape['n_train']} train / {shape['n_test']} test rows, {shape['n_features']} features, "
                 f"{shape['n_labels']} labels; features: {features_label(d)}") if shape else ""  # fmt: skip
        lines += [f"## {d}{extra}", "", dataset_table([r for r in rows if r["dataset"] == d]), ""]
    lines += [
        "## Typed settings",
        "",
        "What each row ran with, as typed (sparsexc: the call; a peer: its keyword settings, see PEER_SETTINGS). "
        "Rows measured before issue 20 record the harness's former data-dependent rules (`sparse_gradients: "
        '"auto"`, `sparse_linear`), which no user can type; they are kept as measured.',
        "",
    ]
    seen: dict[str, set[str]] = {}
    for r in rows:
        seen.setdefault(r["system"], set()).add(typed_settings(r["system"], r.get("settings", {})))
    for system, settings in seen.items():
        lines.append(f"- `{system}`: {'; '.join(f'`{s}`' for s in sorted(settings))}")
    return "\n".join(lines) + "\n"


def typed_settings(system: str, settings: dict[str, Any]) -> str:
    """The settings of a row as a user types them: ``XCClassifier(head='softmax', ...)`` for a sparsexc head
    (``XCClassifier()`` for ``sparsexc-default``), ``LabelTreeModel(LabelTreeParams(...))`` for the tree rows,
    the keyword settings (JSON) for a peer."""

    def call(name: str, kwargs: dict[str, Any]) -> str:
        # JSON stores tuples as lists: hidden_sizes is typed as a tuple
        shown = {k: tuple(v) if k == "hidden_sizes" and isinstance(v, list) else v for k, v in kwargs.items()}
        return f"{name}(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    if system == DEFAULT_SYSTEM:
        return call("XCClassifier", {k: v for k, v in settings.items() if k != "verbose"})
    if system in SPARSEXC_MODELS:  # the label-tree rows (the worker adds n_jobs = its threads)
        beam = {"beam": settings["beam"]} if "beam" in settings else {}
        tree = call("LabelTreeParams", {k: v for k, v in settings.items() if k != "beam"})
        return f"LabelTreeModel({tree})" + (f", predict_topk(..., {call('', beam)[1:-1]})" if beam else "")
    if system.startswith(SPARSEXC_PREFIX):
        return call("XCClassifier", {"head": system[len(SPARSEXC_PREFIX) :], "device": "cpu", **settings})
    return json.dumps(settings, sort_keys=True)


def plot(rows: list[dict[str, Any]], path: Path) -> bool:
    """P@1 against training CPU seconds (wall seconds if a row lacks them; log scale), one panel per data
    set; False when matplotlib is missing or nothing finished."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in order_rows(rows) if r.get("status") == "ok"]
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    if not datasets:
        return False
    cols = min(3, len(datasets))
    n_rows = math.ceil(len(datasets) / cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(5.2 * cols, 4.2 * n_rows), squeeze=False)
    # CPU seconds (all threads) when measured: on a shared, overloaded machine the wall clock mostly measures
    # how many other jobs ran at the same time; the tables give both
    cpu = all(r.get("train_cpu_seconds") is not None for r in rows)
    for ax, d in zip(axes.flat, datasets):
        for r in (r for r in rows if r["dataset"] == d):
            ours = r["family"] == "sparsexc"
            x = r["train_cpu_seconds"] if cpu else r["train_seconds"]
            ax.scatter(x, 100 * r["metrics"]["P@1"], marker="o" if ours else "s",
                       color="tab:blue" if ours else "tab:orange")  # fmt: skip
            ax.annotate(r["system"].replace(SPARSEXC_PREFIX, "sx-"), (x, 100 * r["metrics"]["P@1"]),
                        fontsize=7, xytext=(3, 3), textcoords="offset points")  # fmt: skip
        ax.set_xscale("log")
        ax.set_title(d)
        ax.set_xlabel(f"training {'CPU ' if cpu else ''}seconds (log)")
        ax.set_ylabel("P@1 (%)")
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(datasets) :]:
        ax.axis("off")
    fig.suptitle("P@1 vs training time (circles: sparsexc heads, squares: peers)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def merge_rows(previous: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` replace rows of the same (data set, system) in ``previous``."""
    merged = {(r["dataset"], r["system"]): r for r in previous}
    merged.update({(r["dataset"], r["system"]): r for r in rows})
    return order_rows(list(merged.values()))


def write_outputs(report: dict[str, Any], out: Path) -> None:
    write_json(out / "peers.json", report)
    write_text(out / "peers.md", markdown_report(report))
    plot(report["rows"], out / "peers_p1_vs_time.png")


def merge_reports(paths: list[Path], out: Path, command: str) -> dict[str, Any]:
    """One report from several ``peers.json`` files (runs done in parallel into separate folders)."""
    reports = [read_json(p) for p in paths]
    rows: list[dict[str, Any]] = []
    datasets: dict[str, Any] = {}
    versions: dict[str, Any] = {}
    for rep in reports:
        rows = merge_rows(rows, rep.get("rows", []))
        datasets.update(rep.get("datasets", {}))
        versions = rep.get("peer_versions") or versions
    report = {**reports[-1], "date": utc_now(),
              "command": command, "merged_from": [r.get("command") for r in reports], "machine": environment(),
              "peer_versions": versions, "datasets": datasets, "rows": rows,
              "goals": {d: goal_check([r for r in rows if r["dataset"] == d]) for d in datasets}}  # fmt: skip
    write_outputs(report, out)
    return report


def make_report(
    previous: dict[str, Any],
    rows: list[dict[str, Any]],
    args: argparse.Namespace,
    command: str,
    info: dict[str, Any],
    versions: dict[str, Any],
) -> dict[str, Any]:
    """The ``peers.json`` record of a run: ``rows`` merged over the ``previous`` report's rows."""
    merged = merge_rows(previous.get("rows", []), rows)
    return {"benchmark": "peers", "date": utc_now(),
            "command": command, "machine": environment(), "peer_versions": versions or previous.get("peer_versions", {}),
            "threads": args.threads, "timeout_s": args.timeout, "quick": args.quick, "datasets": info,
            "goals": {d: goal_check([r for r in merged if r["dataset"] == d]) for d in info},
            "rows": merged}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.merge:
        merge_reports(args.merge, args.out, command_line(__file__, argv))
        return 0
    use_shared_datasets()
    from sparsexc.heads import list_heads

    try:
        systems = resolve_systems(args.systems, sorted(list_heads()))
    except ValueError as exc:
        build_parser().error(str(exc))
    needs_peers = any(not s.startswith(SPARSEXC_PREFIX) for s in systems)
    missing = missing_peers_python(args.peers_python) if needs_peers else None
    if missing:
        build_parser().error(missing)
    json_path = args.out / "peers.json"
    previous = read_json(json_path) if args.append and json_path.is_file() else {}
    dataset_info: dict[str, Any] = dict(previous.get("datasets", {}))
    command = command_line(__file__, argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="sparsexc-peers-"))
    versions = peer_versions(args.peers_python) if needs_peers else previous.get("peer_versions", {})
    # sparsexc-default reads the features as loaded whatever the input: one row per data set, under NAME
    pairs = [(d, s) for d in args.datasets for s in systems if s != DEFAULT_SYSTEM or d == base_name(d)]

    def write(rows: list[dict[str, Any]]) -> None:
        write_outputs(make_report(previous, rows, args, command, dataset_info, versions), args.out)

    rows = run_pairs(pairs, args, work, dataset_info, write)
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    print(markdown_report(make_report(previous, rows, args, command, dataset_info, versions)))
    return 0 if all(r.get("status") == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
