"""The label-tree linear model: a tree of labels, one sparse linear classifier per node, beam search.

This is the model family of Parabel, Bonsai, omikuji, PECOS XR-Linear and napkinXC's PLT (see
``docs/tree.md``): a probabilistic label tree.

Training (teacher-forced, as Parabel and PECOS's default ``tfn``):

1. Rows of X are L2-normalised (``normalize_rows``). Each label is represented by PIFA, the normalised sum of
   its positive rows (:func:`~sparsexc.tree.cluster.pifa`; or by its PMI label embedding, or both:
   ``representation``, :func:`~sparsexc.tree.cluster.label_representation`), and the labels are clustered into
   a balanced tree (:func:`~sparsexc.tree.cluster.build_tree`: ``branching`` children per node, leaves of at
   most ``max_leaf_size`` labels).
2. Node v of level t+1 is *positive* for row i when i has a positive label under v:
   ``z_iv = [(Y M_{t+1})_iv > 0]`` with M the label-to-node membership. For each node p of level t, its
   children's classifiers are trained on the rows where p is positive (every row for the root) to predict
   their own z; the last level's "children" are the labels themselves, so the rankers of a leaf are trained on
   the rows of that leaf's labels (the shortlist's hard negatives). Each classifier is L2-regularised
   (``C``) squared hinge or logistic, solved by :func:`~sparsexc.tree.solver.fit_linear` on the columns the
   node's rows use (dual coordinate descent for the squared hinge, Newton-CG for the logistic loss). A child
   positive on every row its parent is trained on is certain: it gets the constant margin :data:`CERTAIN_MARGIN`
   (a bias weight) instead of a fit.
   ``C=None`` is chosen here: on at most ``cv_max_rows`` training rows, by :func:`cv_folds`-fold
   cross-validation over ``C_0 x`` :data:`C_FACTORS` (``C_0`` the loss's :data:`DEFAULT_C`), the value of best
   mean (P@1 + P@3 + P@5) / 3 over the held-out folds, ties to ``C_0`` then to the smaller C
   (:func:`choose_C`, :func:`cross_validate_C`; a fold's models are one warm-started C path, :func:`fit_C_path`, which stops once
   the score falls, :data:`CV_PATIENCE`; a flat tree solved by Newton fits a fold's Cs in one solve, one C per
   column; where dual coordinate descent solves the nodes, :data:`CV_DCD_FOLDS` folds whose fits stop at
   :data:`CV_TOL_FACTOR` x its tolerance); on more rows,
   ``C_0``. With ``solver="auto"`` the squared hinge is
   solved by Newton instead of dual coordinate descent on training sets of at most :data:`NEWTON_MAX_WORK`
   stored entries x labels, where numba's start costs more than the fit, and of at most
   :data:`NEWTON_MAX_NARROW_WORK` on at most :data:`NEWTON_MAX_FEATURES` features (:meth:`LabelTreeParams.for_data`). Small dense data need a much stronger penalty than the
   peers' C = 1: on a hold-out of cal500's training rows (68 dense features, a label in 93% of the rows) C = 1
   overfits to P@1 80 against 93 for "always the most frequent label", and C = 0.03 reaches 93
   (``docs/tree.md``, "C on small training sets").
3. Weights with ``|w| < threshold`` are dropped (the bias weight is kept), so every level's weights are one
   sparse matrix (nodes x (features + 1), CSR).

Prediction: a label's score is the product of the node probabilities on its path from the root, with
sigma(s) for logistic and exp(-max(0, 1 - s)^2) x sigma(s - 1)^0.01 for squared-hinge classifiers (the tail keeps
the score increasing past margin 1, :mod:`sparsexc.tree.search`; otherwise the probability each loss's
margin implies; Parabel, omikuji and napkinXC combine them the same way); beam search keeps the ``beam`` best
nodes per level (:func:`~sparsexc.tree.search.beam_search`), so a row costs O(beam x branching x depth), not
O(labels).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from sparsexc._blas import one_blas_thread
from sparsexc._memory import release_free_memory
from sparsexc._params import NON_NEGATIVE, POSITIVE, POSITIVE_INT, Params, Range, setting
from sparsexc._safetensors_write import DeferredArray
from sparsexc._sparse import as_features, as_label_matrix
from sparsexc._topk import topk_rows
from sparsexc.errors import ConfigurationError, ModelFormatError
from sparsexc.tree._search_kernel import ensemble_mean_kernel
from sparsexc.tree.cluster import (
    REPRESENTATIONS,
    _normalise_rows,
    build_tree,
    frequent_labels,
    label_representation,
    leaf_coherence,
    level_arities,
)
from sparsexc.tree.parallel import check_part, fill_level, node_owners
from sparsexc.tree.search import BATCH_SIZE, HINGE_POWER, TreeSearcher, kernel_pays, search_candidates
from sparsexc.tree.solver import SOLVERS, _solver, fit_rows, prune
from sparsexc.tree.structure import LabelTree

__all__ = ["CrossValidation", "LabelTreeModel", "LabelTreeParams", "choose_C", "cross_validate_C", "fit_C_path"]

LOSSES = ("squared_hinge", "logistic")
# the node probability each loss's margin implies (the beam search's `transform`)
TRANSFORMS = {"squared_hinge": "squared_hinge", "logistic": "sigmoid"}
FORMAT = "sparsexc.label-tree"
# 2: the weights' column ids stored as int32 where the features fit (a third smaller file); 1: int64, still read
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
# C=None: each loss's own C. LIBLINEAR's 1 for the squared hinge (Parabel, omikuji, PECOS); 10 for the logistic
# loss (napkinXC's PLT), which at C=1 loses 1-6 P@1 on validation splits (docs/tree.md, "Choosing C")
DEFAULT_C = {"squared_hinge": 1.0, "logistic": 10.0}
# C=None on at most `cv_max_rows` rows: C_0 x each factor is cross-validated over CV_FOLDS folds (cross_validate_C);
# the best factors of the small sets measured lie in 0.03..1 (docs/tree.md, "C on small training sets")
C_FACTORS = (0.03, 0.1, 0.3, 1.0, 3.0)
CV_FOLDS = 3
# ... but CV_DCD_FOLDS where dual coordinate descent trains the nodes (the sets of most work, LabelTreeParams.for_data):
# two paths on half the rows each instead of three on two thirds. Measured on 20% hold-outs (5 seeds) of bibtex,
# rcv1-subset1 and enron: the same C on all 15, the fit's CPU 0.68-0.83x; on the Newton sets 2 folds changed C on
# 17 of 35 seeds (P@1 -0.60..+1.54 by set), so they keep 3 (docs/tree.md, "Two folds where dual coordinate descent
# solves the nodes")
CV_DCD_FOLDS = 2
# the cross-validation's C path stops once the mean held-out score has fallen at this many consecutive Cs
# (the held-out scores measured rose to one best C and fell after it: with 1, the same C as the full path on 30
# of 30 hold-out cross-validations of 10 small sets, 114 of their 150 Cs tried; benchmarks/results/
# default_fit_cpu_cp32.md, docs/tree.md, "Small sets without numba, and the C path's early stop")
CV_PATIENCE = 1
# the cross-validation only ranks the Cs (a factor 3 apart), so its dual coordinate descent fits stop at this
# multiple of the tolerance (1.0 by default); the final fit keeps the solver's own, and so do Newton's fits. Measured
# on 20% hold-outs of the small sets (docs/tree.md, "The cross-validation's looser tolerance"): 21-27% less CPU on
# the sets solved by dcd, the same C on every seed; on the Newton sets 10x its tolerance swapped nearly tied Cs on
# 10 of their 35 seeds (4 of the 7 sets) for 5-20% less CPU, so Newton keeps its own
CV_TOL_FACTOR = 10.0
# the tree's dual coordinate descent stops at this tolerance (LabelTreeParams.tol=None), not at LIBLINEAR's 0.1 (the
# peers' eps, fit_linear's default): on 20% hold-outs of the training rows of eight sets, 3 seeds each (bibtex,
# enron, rcv1-subset1, delicious, debtags, imdb with one tree, debian-deps and wordnet-hypernyms with three),
# 0.73-0.94x the training CPU with P@1/3/5 and PSP@5 within the hold-outs' spread (mean change per set -0.32..+0.31
# P@1, -0.11..+0.17 PSP@5); benchmarks/results/tree_holdout_tol.json, docs/tree.md "The solver's tolerance". A looser
# 1.0 lowered mean P@5 and PSP@5 on all eight (tree_holdout_tol_loose.json)
DCD_TOL = 0.4
# solver="auto" with the squared hinge: a training set of at most NEWTON_MAX_WORK stored entries x labels is solved
# by the numpy/scipy Newton solver, not numba's dual coordinate descent, whose first call in a process costs
# 0.35-0.45 CPU s (numba sets up its compilation target when it loads the first cached kernel). Measured, the work
# of XCClassifier()'s tree fit (90% of the rows) and its fresh-process CPU s with Newton on every set / before:
# flags 6.5e3, 0.12 / 0.44; emotions 1.5e5, 0.27 / 0.48; medical 1.8e5, 0.47 / 0.47; birds 1.49e6, 0.63 / 0.79;
# scene 1.9e6, 1.42 / 0.92; enron 4.5e6, 3.54 / 1.51; yeast (1.9e6) and cal500 (3.7e6) were faster with Newton,
# but scene lies between them (benchmarks/results/default_fit_cpu_newton_all.md; docs/tree.md, "Small sets
# without numba")
NEWTON_MAX_WORK = 1_500_000
# ... and so is one of at most NEWTON_MAX_FEATURES features and NEWTON_MAX_NARROW_WORK entries x labels: there Newton's
# iterations cost about what dual coordinate descent's do once numba is loaded (hold-out fits, s, Newton / dcd: yeast
# 0.30 / 0.28, cal500 0.31 / 0.28, tmc2007-500 0.45 / 0.47, scene 0.44 / 0.27), so the process saves numba's start
# (fresh-process fit CPU s, Newton / dcd: yeast 0.43 / 0.60, cal500 0.35 / 0.74, tmc2007-500 0.65 / 0.96, scene 0.59 /
# 0.59); on the wider sparse sets Newton costs more (enron, 1,001 features, 1.35 / 1.02; rcv1-subset1, 944, 3.53 /
# 2.45; bibtex, 1,836, 8.8 / 4.8), and on delicious (500 features, work 2.4e8) too (5.65 / 4.62); the bound sits
# between tmc2007-500's work (1.1e7, Newton faster) and delicious's (docs/tree.md, "Small sets without numba")
NEWTON_MAX_FEATURES = 512
NEWTON_MAX_NARROW_WORK = 50_000_000
# labels positive on at least this share of the training rows get a leaf and a branch of their own
# (LabelTreeParams.frequent_share, cluster.frequent_labels): in a leaf of other labels each would make at least half
# of all rows training rows of its leaf-mates' rankers. Measured on 20% hold-outs of the training rows, 3-5 seeds, three
# trees (benchmarks/results/tree_holdout_frequent.json, docs/tree.md "Labels on half the rows"): wordnet-hypernyms
# (two such labels, one on every row) 0.52-0.80x the training CPU at the same P@k (5 seeds); no label reaches it on
# debian-deps, debtags or delicious (unchanged), where lower shares cost P@1 (means -0.16 to -0.48 at 0.05-0.3)
FREQUENT_SHARE = 0.5
# branching=None: DEFAULT_BRANCHING (16, PECOS's), or WIDE_BRANCHING where the labels cluster poorly: the mean cosine
# of the labels' representation to their leaf cluster's centroid in the first 16-ary tree (cluster.leaf_coherence)
# below COHERENCE_WIDE. Measured on 20% hold-outs of the training rows, three trees, 3 seeds (benchmarks/results/
# tree_branching.md, docs/tree.md "Branching from the labels' coherence"), 64-ary minus 16-ary: synthetic sets whose
# coherence is set by how alike the labels of a group look, P@5 +0.50 / +0.30 / +0.13 / +0.10 and PSP@5 +3.3 / +1.9
# / +0.5 / +0.3 at coherence 0.20 / 0.26 / 0.37 / 0.45 (at 1.3-1.8x the training CPU); wordnet-hypernyms (0.26)
# P@5 +0.08; debian-deps (0.40) P@3 and P@5 lower on every seed. Only sets of more than 16 x max_leaf_size labels
# get a different tree
DEFAULT_BRANCHING = 16
WIDE_BRANCHING = 64
COHERENCE_WIDE = 0.3
# an ensemble member contributes its best max(k, MEMBER_TOPK) labels per row to the mean (Parabel keeps 100)
MEMBER_TOPK = 100
# most rows ranked at once (an ensemble merges its members block by block); a multiple of the search's own batch
ENSEMBLE_BLOCK = 4096
# the margin of a child positive on every row its parent reaches (a certain node, see LabelTreeModel._fit_node):
# node score 1 for both losses (to float32), above any trained node's (docs/tree.md, "Certain nodes")
CERTAIN_MARGIN = 30.0


@dataclasses.dataclass
class LabelTreeParams(Params):
    """Settings of :class:`LabelTreeModel` (training; the beam is a prediction setting)."""

    branching: int | None = setting(
        None,
        "Children per internal node of the label tree; None: 16, or 64 where the labels cluster poorly (mean cosine "
        "of the labels to their leaf cluster's centroid in the first 16-ary tree below 0.3).",
        range=Range(2),
    )
    max_leaf_size: int = setting(100, "Most labels per leaf cluster.", range=POSITIVE_INT)
    representation: str = setting(
        "pifa",
        "Label vectors the tree clusters: pifa (normalised sum of each label's positive rows), pmi (PMI label "
        "embeddings of the label co-occurrences, pmi_dim wide), pifa+pmi (both, concatenated with equal weight).",
        choices=REPRESENTATIONS,
    )
    imbalance: float = setting(
        0.0,
        "How far a split of the label clustering may leave balance: 0 balanced halves (Parabel, PECOS); up to 1 "
        "each label on the side of its nearer centroid (Bonsai's unbalanced clusters), leaf clusters then vary "
        "in size.",
        range=Range(0, 1),
    )
    frequent_share: float = setting(
        FREQUENT_SHARE,
        "Labels positive on at least this share of the training rows (the most frequent max_leaf_size of them) get "
        "a leaf cluster and a branch of their own, so their rows do not train every ranker of a leaf of rarer "
        "labels; 0: none.",
        range=Range(0, 1),
    )
    pmi_dim: int = setting(
        64, "Dimension of the PMI label embeddings (representation pmi, pifa+pmi).", range=POSITIVE_INT
    )
    loss: str = setting("squared_hinge", "Loss of every node classifier.", choices=LOSSES)
    C: float | None = setting(
        None,
        "Inverse L2 strength of every node classifier (LIBLINEAR's C); None: cross-validated up to cv_max_rows "
        "training rows, else 1 (squared_hinge), 10 (logistic).",
        range=POSITIVE,
    )
    cv_max_rows: int = setting(
        5000,
        "With C=None, training sets of at most this many rows choose C by 3-fold (2-fold with dcd) cross-validation of P@1..5 "
        "over the loss's C x 0.03, 0.1, 0.3, 1, 3, in turn until the score falls (0: never).",
        range=NON_NEGATIVE,
    )
    solver: str = setting(
        "auto",
        "Node solver: dcd (squared hinge), newton (both losses), auto (dcd if it applies, but newton on training "
        "sets of at most 1.5e6 stored entries x labels, or 5e7 with at most 512 features, where numba's start costs "
        "more than Newton's extra work).",
        choices=SOLVERS,
    )
    tol: float | None = setting(
        None,
        "Solver tolerance; None: dcd 0.4 (LIBLINEAR's 0.1 cost 1.1-1.4x the training CPU at the same hold-out "
        "P@k), newton 0.01 (LIBLINEAR's); the cross-validation of C solves dcd to 10x it.",
        range=POSITIVE,
    )
    max_iter: int = setting(100, "Most solver iterations per node.", range=POSITIVE_INT)
    threshold: float = setting(0.1, "Drop trained weights with |w| below this.", range=NON_NEGATIVE)
    bias: float = setting(1.0, "Value of the constant feature appended to every row.", range=NON_NEGATIVE)
    normalize_rows: bool = setting(True, "L2-normalise the rows of X before training and prediction.")
    n_trees: int = setting(
        1, "Trees in the ensemble (scores averaged), each clustered with its own seed.", range=POSITIVE_INT
    )
    seed: int = setting(0, "Seed of the label clustering (tree i uses seed + i).")
    n_jobs: int = setting(
        -1, "Threads training node classifiers and ranking rows (-1: every core this process may use)."
    )
    hinge_power: float = setting(
        HINGE_POWER,
        "Exponent q of the squared hinge's node score exp(-max(0, 1 - s)^q) in the search (3: PECOS's l3-hinge; "
        "2: Parabel's and omikuji's rule).",
        range=Range(1),
    )

    @classmethod
    def from_saved(cls, d: dict[str, Any]) -> LabelTreeParams:
        """The settings of a saved model (:meth:`from_dict`); a file written before ``hinge_power`` existed
        scored its nodes with q = 2, and keeps that; one written before ``frequent_share`` clustered every label
        (0)."""
        return cls.from_dict({"hinge_power": 2.0, "frequent_share": 0.0, **d} if isinstance(d, dict) else d)

    def resolved(self) -> LabelTreeParams:
        """These settings with ``C=None`` replaced by the loss's :data:`DEFAULT_C` (what ``fit`` trains with
        above ``cv_max_rows`` rows; below, ``fit`` cross-validates C: :func:`cross_validate_C`)."""
        return self if self.C is not None else self.replace(C=DEFAULT_C[self.loss])

    def for_data(self, n_entries: int, n_labels: int, n_features: int) -> LabelTreeParams:
        """These settings with the squared hinge's ``solver="auto"`` resolved for a training set of
        ``n_entries`` stored entries, ``n_labels`` labels and ``n_features`` features: ``"newton"`` if the work
        ``n_entries x n_labels`` is at most :data:`NEWTON_MAX_WORK` (there numba's one-off start, 0.35-0.45 CPU s
        a process, costs more than the whole fit with the Newton solver), or at most
        :data:`NEWTON_MAX_NARROW_WORK` with at most :data:`NEWTON_MAX_FEATURES` features (there Newton costs about
        what dual coordinate descent does without numba's start), else ``"dcd"``; any other setting unchanged.
        ``fit``, :func:`cross_validate_C` (on all its rows, before cutting the folds) and :func:`fit_C_path` apply
        it, so every fit of one training set uses the same solver, and the saved settings name it."""
        if self.solver != "auto" or self.loss != "squared_hinge":
            return self
        work = n_entries * n_labels
        narrow = n_features <= NEWTON_MAX_FEATURES and work <= NEWTON_MAX_NARROW_WORK
        return self.replace(solver="newton" if work <= NEWTON_MAX_WORK or narrow else "dcd")

    def cross_validates(self, n_rows: int) -> bool:
        """Whether ``fit`` on ``n_rows`` rows chooses C by cross-validation: C=None, ``n_rows <= cv_max_rows``,
        and enough rows for every fold to hold some (at least 2 x :data:`CV_FOLDS`)."""
        return self.C is None and 2 * CV_FOLDS <= n_rows <= self.cv_max_rows


def _workers(n_jobs: int) -> int:
    """Threads for ``n_jobs``: itself (at least 1), or for a negative value the cores this process may run on
    (its CPU affinity, which a container or ``taskset`` narrows; ``os.cpu_count()`` where there is none)."""
    if n_jobs >= 0:
        return max(1, n_jobs)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


class LabelTreeModel:
    """An ensemble of probabilistic label trees of sparse linear classifiers (see the module docstring).

    Parameters
    ----------
    params : LabelTreeParams, optional
        Training settings; defaults as Parabel/omikuji (squared hinge, C = 1, threshold 0.1, leaves of <= 100
        labels) with a 16-ary tree (PECOS), or a 64-ary one where the labels cluster poorly (``branching=None``).

    Attributes
    ----------
    coherence_ : float
        Only when ``fit`` chose the branching (``branching=None`` on more than 16 x ``max_leaf_size`` labels): the
        first 16-ary tree's :func:`~sparsexc.tree.cluster.leaf_coherence`; the branching chosen is
        ``params.branching``.
    cv_scores_ : dict of float to float
        Only when ``fit`` chose C by cross-validation: the mean held-out (P@1 + P@3 + P@5) / 3 of every C tried
        (:func:`cross_validate_C`); the chosen C is ``params.C``.
    trees_ : list of LabelTree
        One label tree per ensemble member (``n_trees``; member i clusters with seed ``seed + i``).
    weights_ : list of list of scipy.sparse.csr_matrix
        ``weights_[i][t]``: member i's classifiers of level t + 1, one row per node (labels in tree order on the
        last level), columns the features then the bias; float32. Once the model has predicted, the search
        layout alone holds them and each access rebuilds them from it, bit for bit (a new list every time).
    n_features_, n_labels_ : int
    """

    def __init__(self, params: LabelTreeParams | None = None) -> None:
        self.params = params if params is not None else LabelTreeParams()
        self._searcher_cache: list[TreeSearcher] | None = None

    # -- training --------------------------------------------------------------------------------------------
    def fit(self, X: Any, Y: Any, *, part: tuple[int, int] | None = None) -> LabelTreeModel:
        """Build the trees from (X, Y) and train every node's classifiers; returns ``self``.

        X: (n, d) features (sparse or dense); Y: (n, C) 0/1 labels (sparse, dense or lists of label ids).
        ``part=(rank, world)``: train only the nodes :func:`~sparsexc.tree.parallel.node_owners` gives ``rank``
        (their weight rows; the others stay empty), for :func:`~sparsexc.tree.parallel.merge_parts` to assemble
        the ``world`` parts into this fit's weights without ``part``, bit for bit.
        """
        part = None if part is None else check_part(part)  # before the costly steps
        X = as_features(X)
        Y = as_label_matrix(Y)
        if Y.shape[0] != X.shape[0]:
            raise ConfigurationError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}; they must match")
        self.params = self.params.for_data(X.nnz, Y.shape[1], X.shape[1])
        if self.params.cross_validates(X.shape[0]):
            # every rank of a distributed fit repeats this (whole fits, seeded): all choose the same C
            found = choose_C(X, Y, self.params)
            self.cv_scores_ = found.scores
            self.params = self.params.replace(C=found.C)
        # C=None: the loss's C; the C used is kept in params (and the saved files)
        self.params = self.params.resolved()
        X = self._prepared(X)
        self._build_trees(X, Y)
        self._train(X, Y, part=part)
        return self

    def _prepared(self, X: sp.csr_matrix) -> sp.csr_matrix:
        """X as the nodes train on it: rows L2-normalised (``normalize_rows``), in canonical CSR format."""
        if self.params.normalize_rows:
            X = _normalise_rows(X)
        if not X.has_canonical_format:  # the node solver reads the rows of X in place: sorted, no duplicates
            X = X.copy()
            X.sum_duplicates()
        return X

    def _build_trees(self, X: sp.csr_matrix, Y: sp.csr_matrix) -> None:
        """Cluster the labels (``representation`` of the prepared X and Y: :func:`label_representation`) into
        ``n_trees`` trees, member i seeded ``seed + i``. A flat tree (at most ``max_leaf_size`` labels) clusters
        nothing, so no representation is computed for it."""
        p = self.params
        if p.branching is None and not self._branching_matters(Y.shape[1]):
            self.params = p = p.replace(branching=DEFAULT_BRANCHING)  # both give the same tree: nothing to measure
        if not level_arities(Y.shape[1], p.branching or DEFAULT_BRANCHING, p.max_leaf_size):
            self.trees_ = [LabelTree.flat(Y.shape[1]) for _ in range(p.n_trees)]  # what build_tree gives it
            return
        representation = label_representation(X, Y, p.representation, dim=p.pmi_dim, seed=p.seed)
        separate = frequent_labels(Y, p.frequent_share, p.max_leaf_size)

        def tree(member: int, branching: int) -> LabelTree:
            return build_tree(
                representation,
                branching=branching,
                max_leaf_size=p.max_leaf_size,
                seed=p.seed + member,
                imbalance=p.imbalance,
                separate=separate,
            )

        trees: dict[int, LabelTree] = {}
        branching = p.branching
        if branching is None:  # the first 16-ary tree measures how well the labels cluster (COHERENCE_WIDE)
            trees[0] = tree(0, DEFAULT_BRANCHING)
            self.coherence_ = leaf_coherence(representation, trees[0], exclude=separate)
            branching = WIDE_BRANCHING if self.coherence_ < COHERENCE_WIDE else DEFAULT_BRANCHING
            self.params = p.replace(branching=branching)
            if branching != DEFAULT_BRANCHING:
                trees.clear()
        self.trees_ = [trees[m] if m in trees else tree(m, branching) for m in range(p.n_trees)]

    def _branching_matters(self, n_labels: int) -> bool:
        """Whether ``branching=None``'s two choices shape different trees for ``n_labels`` labels (more than
        ``DEFAULT_BRANCHING x max_leaf_size``, and not flat)."""
        m = self.params.max_leaf_size
        return level_arities(n_labels, DEFAULT_BRANCHING, m) != level_arities(n_labels, WIDE_BRANCHING, m)

    def _train(
        self,
        X: sp.csr_matrix,
        Y: sp.csr_matrix,
        *,
        part: tuple[int, int] | None = None,
        duals: dict[tuple[int, int, int], np.ndarray] | None = None,
    ) -> None:
        """Train every node's classifiers of ``trees_`` on the prepared X (``weights_``; see :meth:`fit`).

        ``duals`` (squared hinge by ``dcd`` only): each node's dual solution, keyed ``(tree, level, node)``; a
        node found there starts from it (a warm start) and every node's duals are stored there. An empty dict
        starts cold and collects them for the next C (:func:`fit_C_path`).
        """
        owned = None if part is None else node_owners(X, Y, self.trees_, part)
        # Every (tree, level, node) job is independent (teacher forcing: a node's rows come from Y, not from the
        # other nodes' classifiers), so one pool runs them all: the root's job (every row) then overlaps the
        # other levels' and trees' jobs instead of running alone. Jobs start in order, the roots first.
        levels = sorted(((m, t) for m, tree in enumerate(self.trees_) for t in range(tree.depth)), key=lambda mt: mt[1])
        rows_of = {(m, t): self._level_rows(Y, self.trees_[m], t) for m, t in levels}
        nodes_of = {
            (m, t): [
                int(v) for v in (range(self.trees_[m].n_nodes(t)) if owned is None else np.flatnonzero(owned[m][t]))
            ]
            for m, t in levels
        }
        jobs = [(m, t, node) for m, t in levels for node in nodes_of[m, t]]

        def run(job: tuple[int, int, int]) -> sp.csr_matrix:
            m, t, node = job
            return self._fit_node(X, *rows_of[m, t], self.trees_[m], t, node, duals=duals, key=job)

        # one BLAS thread for the whole pool: threadpool_limits is process-wide, so a node's own limit (the Newton
        # solver's, sparsexc.tree.solver) ending on one thread would let another thread's product run on several
        # BLAS threads, in another summation order (2 ranks then differed from 1 process in the last bits). The
        # dual solver (numba) calls no BLAS, so it runs without
        workers = min(_workers(self.params.n_jobs), len(jobs))
        blas_limit = one_blas_thread() if not self._dual() else contextlib.nullcontext()
        with blas_limit:
            if workers <= 1:  # no pool: starting its thread costs more than a tiny fit (the CV's fits, small data)
                results = [run(job) for job in jobs]
            else:
                with ThreadPoolExecutor(workers) as pool:
                    results = list(pool.map(run, jobs))
        done = dict(zip(jobs, results, strict=True))
        del results  # each level's node blocks are let go once stacked: the model is held once, not twice
        weights = []
        for m, tree in enumerate(self.trees_):
            level_weights = []
            for t in range(tree.depth):
                blocks = [done.pop((m, t, node)) for node in nodes_of[m, t]]
                if owned is not None:
                    blocks = fill_level(tree, t, nodes_of[m, t], blocks, X.shape[1] + 1)
                level_weights.append(sp.vstack(blocks, format="csr", dtype=np.float32))
            weights.append(level_weights)
        self._trained(weights, X.shape[1], Y.shape[1])
        if workers > 1:
            release_free_memory()  # the worker threads' arenas keep the freed training temporaries otherwise

    def _trained(self, weights: list[list[sp.csr_matrix]], n_features: int, n_labels: int) -> None:
        """Keep trained ``weights`` (``weights_``) and the sizes; a laid-out searcher is dropped."""
        self.weights_ = weights
        self.n_features_, self.n_labels_ = n_features, n_labels

    @property
    def weights_(self) -> list[list[sp.csr_matrix]]:
        """``weights_[i][t]``: member i's classifiers of level t + 1 (see the class docstring).

        A new list on every access (assign ``weights_`` to change the model). A member whose weights were laid
        out for the search (the first prediction) keeps that layout alone: its CSR matrices are rebuilt from it
        here, bit for bit (:meth:`~sparsexc.tree.search.LevelIndex.weights`)."""
        stored: list[list[sp.csr_matrix] | None] | None = self.__dict__.get("_weights")
        if stored is None:
            raise AttributeError("weights_")  # not fitted: hasattr(model, "weights_") is False
        return [list(w) if w is not None else self._member_weights(i) for i, w in enumerate(stored)]

    @weights_.setter
    def weights_(self, weights: Sequence[Sequence[sp.csr_matrix]]) -> None:
        self._weights: list[list[sp.csr_matrix] | None] = [list(w) for w in weights]
        self._searcher_cache = None

    def _member_weights(self, i: int) -> list[sp.csr_matrix]:
        """Member i's CSR weights rebuilt from its search layout."""
        assert self._searcher_cache is not None  # a member's CSR is dropped only once its layout exists
        return [level.weights() for level in self._searcher_cache[i].levels]

    def _dual(self) -> bool:
        """Whether the nodes are solved by dual coordinate descent (squared hinge, solver auto or dcd)."""
        return _solver(self.params.solver, self.params.loss, None) == "dcd"

    @staticmethod
    def _level_rows(Y: sp.csr_matrix, tree: LabelTree, t: int) -> tuple[sp.csr_matrix, sp.csc_matrix | None]:
        """(target, reach) of level t's jobs: which nodes of level t + 1 each row is positive for (CSR), and the
        rows each node of level t reaches (CSC; None for the root, which every row reaches)."""
        reach = None if t == 0 else ((Y @ tree.membership(t)) > 0).tocsc()
        return ((Y @ tree.membership(t + 1)) > 0).tocsr(), reach

    def _fit_node(
        self,
        X: sp.csr_matrix,
        target: sp.csr_matrix,
        reach: sp.csc_matrix | None,
        tree: LabelTree,
        t: int,
        node: int,
        *,
        duals: dict[tuple[int, int, int], np.ndarray] | None = None,
        key: tuple[int, int, int] = (0, 0, 0),
    ) -> sp.csr_matrix:
        """Pruned weights (children x (d + 1), CSR) of the children of ``node``, trained on the rows it reaches;
        with ``duals``, warm-started from and storing its duals under ``key`` (see :meth:`_train`)."""
        p = self.params
        kids = tree.children(t, node)
        rows = np.arange(X.shape[0]) if reach is None else reach.indices[reach.indptr[node] : reach.indptr[node + 1]]
        if rows.size == 0:  # a node no training row reaches (labels without positives): all-zero weights
            return sp.csr_matrix((len(kids), X.shape[1] + 1), dtype=np.float32)
        Z, certain = self._node_targets(target, rows, kids)
        learned = np.flatnonzero(~certain)
        if not learned.size:
            return self._node_weights(certain, learned, None, X.shape[1])
        assert p.C is not None  # fit resolves C=None (LabelTreeParams.resolved)
        alpha = None
        if duals is not None:  # the same rows and learned children at every C of a path: the shapes agree
            alpha = duals.setdefault(key, np.zeros((rows.size, learned.size)))
        # dcd gathers the node's rows compactly (int32 local columns), no X[rows] copy: see fit_rows
        fitted = fit_rows(X, rows, Z[:, learned] if certain.any() else Z, C=p.C, alpha=alpha, **self._solve_settings())
        return self._node_weights(certain, learned, fitted, X.shape[1])

    def _solve_settings(self) -> dict[str, Any]:
        """The settings of every node's :func:`~sparsexc.tree.solver.fit_rows` but C and the warm start."""
        p = self.params
        return {
            "loss": p.loss,
            "tol": node_tolerance(p),
            "max_iter": p.max_iter,
            "bias": p.bias,
            "solver": p.solver,
            "seed": p.seed,
        }

    def _node_targets(self, target: sp.csr_matrix, rows: np.ndarray, kids: range) -> tuple[sp.csr_matrix, np.ndarray]:
        """The children's 0/1 targets on the node's ``rows`` (CSR) and which children are *certain*.

        A child positive on every row that reaches its parent is certain given the parent: its classifier is
        the constant CERTAIN_MARGIN (a bias weight only), not a regularised fit of a constant target, whose
        margin falls just short of 1 (wordnet-hypernyms' root synset, in every row, scored 0.9999986 and lost
        to wrong labels at exactly 1). Without a bias feature (bias=0) it is trained like the others.
        """
        Z = target[rows][:, kids.start : kids.stop]
        certain = np.zeros(len(kids), dtype=bool)
        if self.params.bias > 0:
            certain = np.diff(Z.tocsc().indptr) == rows.size
        return Z, certain

    def _node_weights(
        self, certain: np.ndarray, learned: np.ndarray, fitted: tuple[np.ndarray, np.ndarray] | None, d: int
    ) -> sp.csr_matrix:
        """A node's children x (d + 1) float32 CSR weights: the certain children's constant margin (bias weight
        CERTAIN_MARGIN / bias), the learned ones' ``fitted = (W, used)`` (fit_rows's) pruned at ``threshold``."""
        p = self.params
        r = np.flatnonzero(certain)
        c = np.full(r.shape[0], d, dtype=np.int64)
        v = np.full(r.shape[0], CERTAIN_MARGIN / p.bias if p.bias > 0 else 0.0, dtype=np.float32)
        if fitted is not None:
            W, used = fitted
            block = prune(W, p.threshold).tocoo()  # learned children x (len(used) + 1)
            r = np.concatenate([r, learned[block.row]])
            c = np.concatenate([c, np.append(used, d).astype(np.int64)[block.col]])
            v = np.concatenate([v, block.data.astype(np.float32)])
        out = sp.csr_matrix((v, (r, c)), shape=(certain.size, d + 1), dtype=np.float32)
        out.sort_indices()
        return out

    def _solves_Cs_at_once(self) -> bool:
        """Whether :func:`fit_C_path` fits all its Cs in one solve (:meth:`_fit_flat_Cs`): one flat tree (every
        label a child of the root, ``n_labels <= max_leaf_size``), solved by Newton. Deeper trees, ensembles and
        dual coordinate descent (warm-started along the path instead) fit one C after the other."""
        return len(self.trees_) == 1 and self.trees_[0].depth == 1 and not self._dual()

    def _fit_flat_Cs(self, X: sp.csr_matrix, Y: sp.csr_matrix, Cs: Sequence[float]) -> list[list[sp.csr_matrix]]:
        """For each C of ``Cs``, the one-tree model's ``weights_[0]`` (one level: the root's children) trained on
        the prepared X, all in one Newton solve whose columns are Cs x learned labels, each with its own C
        (:func:`~sparsexc.tree.solver.fit_linear`).

        Each column has its own step, CG length and LIBLINEAR stop on the same rows as the separate fit of its C,
        so each C's weights are that fit's optimum to the solver's tolerance. Measured in one process with Newton
        on the cross-validation of C (3 folds x 5 Cs, CPU s of the 15 separate solves / 3 solves of 5 Cs each):
        medical 0.20 / 0.16, birds 0.23 / 0.11, scene 0.62 / 0.34: a fold's matrices are set up once instead of
        five times, in fewer and larger numpy operations (docs/tree.md, "One solve per fold on a flat tree").
        """
        tree = self.trees_[0]
        target, _ = self._level_rows(Y, tree, 0)
        kids, rows, d = tree.children(0, 0), np.arange(X.shape[0]), X.shape[1]
        Z, certain = self._node_targets(target, rows, kids)
        learned = np.flatnonzero(~certain)
        if not learned.size:
            return [[self._node_weights(certain, learned, None, d)] for _ in Cs]
        k = learned.size
        Z_all = sp.hstack([Z[:, learned] if certain.any() else Z] * len(Cs), format="csr")
        with one_blas_thread():  # as _train: small dense products on one BLAS thread
            W, used = fit_rows(
                X, rows, Z_all, C=np.repeat(np.asarray(Cs, dtype=np.float64), k), **self._solve_settings()
            )
        return [[self._node_weights(certain, learned, (W[:, i * k : (i + 1) * k], used), d)] for i in range(len(Cs))]

    # -- prediction ------------------------------------------------------------------------------------------
    def predict_topk(
        self, X: Any, k: int = 5, *, beam: int = 10, member_topk: int = MEMBER_TOPK
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best labels of every row and their scores.

        A tree scores a label by the product of the node probabilities on its path; the ensemble's score is the
        mean over its trees, a tree that does not reach the label within its ``max(k, member_topk)`` best
        contributing 0 (Parabel's rule, 100; fewer is faster and can only lose labels' shares, see docs/tree.md
        "Threads"). ``beam`` nodes are kept per level (wider: slower, misses fewer labels).
        A squared-hinge node scores exp(-max(0, 1 - s)^q) with q = ``params.hinge_power`` (times a small tail,
        :func:`~sparsexc.tree.search.log_probabilities`). Rows are ranked on ``params.n_jobs`` threads, in
        blocks; the result does not depend on the number of threads.

        Returns ``(indices, scores)``: int64 label ids and float32 scores, both (n, k), best first, ties broken
        towards the lower label id.
        """
        self._check_fitted()
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= self.n_labels_:
            raise ConfigurationError(f"k={k!r}: must be an integer in [1, {self.n_labels_}]")
        if isinstance(beam, bool) or not isinstance(beam, (int, np.integer)) or beam < 1:
            raise ConfigurationError(f"beam={beam!r}: must be an integer >= 1")
        if isinstance(member_topk, bool) or not isinstance(member_topk, (int, np.integer)) or member_topk < 1:
            raise ConfigurationError(f"member_topk={member_topk!r}: must be an integer >= 1")
        X = as_features(X, n_features=self.n_features_, owner="this LabelTreeModel")
        if self.params.normalize_rows:
            X = _normalise_rows(X)
        transform, power = TRANSFORMS[self.params.loss], float(self.params.hinge_power)
        k, beam, n = int(k), int(beam), X.shape[0]
        # the kernels (layout, search) or numpy and scipy (the same output), decided once for the whole call
        compiled = kernel_pays(sum(search_candidates(tree, n, beam) for tree in self.trees_))
        searchers = self._searchers(compiled)
        indices, scores = np.empty((n, k), dtype=np.int64), np.empty((n, k), dtype=np.float32)
        # rows in blocks: an ensemble's (block, kk) member results and their merge are its memory, not (n, kk) per
        # tree; with several threads the blocks run side by side (the search's kernel and numpy's large
        # operations release the GIL), each thread on blocks and search batches `workers` times smaller, so the
        # temporaries in flight are one thread's (measured: full-size batches on two threads raised debian-deps'
        # peak RSS by 50-60 MiB). Every row's result depends on that row alone, so blocks, batches and threads
        # change nothing in the output.
        workers = min(_workers(self.params.n_jobs), -(-n // BATCH_SIZE)) if n else 1
        size = max(1, min(ENSEMBLE_BLOCK // workers, -(-n // workers)))
        batch = max(1, BATCH_SIZE // workers)

        def rank(start: int) -> None:
            block = X[start : start + size]
            if len(searchers) == 1:
                found = searchers[0].search(
                    block, beam=beam, k=k, transform=transform, batch_size=batch, power=power, compiled=compiled
                )
            else:
                kk = min(self.n_labels_, max(k, int(member_topk)))
                members = [
                    s.search(
                        block, beam=beam, k=kk, transform=transform, batch_size=batch, power=power, compiled=compiled
                    )
                    for s in searchers
                ]
                found = _ensemble_topk(members, self.n_labels_, k, compiled=compiled)
            indices[start : start + block.shape[0]], scores[start : start + block.shape[0]] = found

        if workers == 1:
            for start in range(0, n, size):
                rank(start)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(rank, range(0, n, size)))
        return indices, scores

    def _searchers(self, compiled: bool | None = None) -> list[TreeSearcher]:
        """One :class:`TreeSearcher` per tree, laid out on first use and kept (its layout is the costly step).

        A member's layout holds its weights exactly (float32 CSR in canonical order, as training and loading make
        them), so its CSR matrices are dropped once it is built: the model then holds one copy of its weights,
        not two (debian-deps, three trees: 58 MiB of CSR weights, 46 MiB of layout; docs/tree.md, "Memory").
        ``weights_``, ``save`` and ``to_arrays`` rebuild the CSR from the layout. Members are laid out one after
        the other, each level on ``params.n_jobs`` threads (ranges of its features): members side by side on two
        threads had raised debian-deps' prediction peak RSS by 13-22 MiB (two members held twice at a time).
        ``compiled``: how the layouts are built (:meth:`~sparsexc.tree.search.LevelIndex.build`)."""
        if self._searcher_cache is None:
            n_jobs = _workers(self.params.n_jobs)
            searchers: list[TreeSearcher] = []
            try:
                for i, tree in enumerate(self.trees_):
                    weights = self._weights[i]
                    assert weights is not None  # without a layout every member holds its CSR
                    searchers.append(
                        TreeSearcher.build(tree, weights, self.params.bias, compiled=compiled, n_jobs=n_jobs)
                    )
                    if all(level.csr_dtypes is not None for level in searchers[i].levels):
                        self._weights[i] = None  # member by member: at most one member is held twice at a time
            except BaseException:  # e.g. MemoryError while laying out a later member: give the CSR back
                for i, searcher in enumerate(searchers):
                    if self._weights[i] is None:
                        self._weights[i] = [level.weights() for level in searcher.levels]
                raise
            self._searcher_cache = searchers
        return self._searcher_cache

    def _check_fitted(self) -> None:
        if self.__dict__.get("_weights") is None:
            raise ConfigurationError("this LabelTreeModel is not fitted yet: call fit(X, Y) or load a saved one")

    @property
    def n_weights(self) -> int:
        """Stored (nonzero) weights over all levels."""
        self._check_fitted()
        return sum(nnz for i in range(len(self.trees_)) for nnz, _ in self._level_sizes(i))

    def _level_sizes(self, i: int) -> list[tuple[int, int]]:
        """``(nnz, n_rows)`` of member i's level weights, from the CSR or its layout (no rebuild)."""
        stored = self._weights[i]
        if stored is not None:
            return [(int(w.nnz), int(w.shape[0])) for w in stored]
        assert self._searcher_cache is not None
        return [(level.n_weights, int(level.bias.shape[0])) for level in self._searcher_cache[i].levels]

    # -- storage ---------------------------------------------------------------------------------------------
    def _arrays(self) -> Iterator[tuple[str, np.ndarray | DeferredArray, type[np.generic]]]:
        """``(name, the model's own array, its dtype in the file)`` of every array the file holds.

        A member that keeps only its search layout gives :class:`~sparsexc._safetensors_write.DeferredArray`
        entries: its levels are rebuilt one at a time when their bytes are needed (the last one rebuilt is kept,
        so a level's three arrays cost one rebuild when they are read in a row)."""
        last: dict[tuple[int, int], sp.csr_matrix] = {}

        def rebuilt(i: int, t: int, field: str) -> np.ndarray:
            if (i, t) not in last:
                last.clear()
                assert self._searcher_cache is not None
                last[i, t] = self._searcher_cache[i].levels[t].weights()
            return getattr(last[i, t], field)

        # column ids below 2^31 (every realistic feature count) as int32: 8 bytes a weight in the file, not 12
        ids: type[np.generic] = np.int32 if self.n_features_ + 1 < 2**31 else np.int64
        for i, tree in enumerate(self.trees_):
            yield from ((f"tree.{i}.{k}", v, np.int64) for k, v in tree.to_arrays().items())
            stored = self._weights[i]
            for t, (nnz, n_rows) in enumerate(self._level_sizes(i)):
                name = f"weights.{i}.{t}"
                if stored is not None:
                    w = stored[t]
                    yield from ((f"{name}.indptr", w.indptr, np.int64), (f"{name}.indices", w.indices, ids))
                    yield f"{name}.data", w.data, np.float32
                    continue
                yield f"{name}.indptr", DeferredArray((n_rows + 1,), partial(rebuilt, i, t, "indptr")), np.int64
                yield f"{name}.indices", DeferredArray((nnz,), partial(rebuilt, i, t, "indices")), ids
                yield f"{name}.data", DeferredArray((nnz,), partial(rebuilt, i, t, "data")), np.float32

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``path/model.safetensors`` (trees and CSR weights) and ``path/config.json``, each atomically.

        The weights are cast to the file's dtypes (int64 column ids) and written one chunk at a time, so saving
        holds no copy of the model (it was the peak of a train-predict-save run; docs/tree.md, "Memory").
        """
        from sparsexc._atomic import atomic_file
        from sparsexc._safetensors_write import write_safetensors

        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "params": self.params.to_dict(),
            "n_features": self.n_features_,
            "n_labels": self.n_labels_,
            "depths": [tree.depth for tree in self.trees_],
        }
        with atomic_file(folder / "model.safetensors") as fh:
            write_safetensors(fh, self.file_arrays())
        with atomic_file(folder / "config.json") as fh:
            fh.write(json.dumps(config, indent=2).encode())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LabelTreeModel:
        """Read a model written by :meth:`save` (no code is executed; everything is checked before use)."""
        from sparsexc.tree._storage import read_model_files

        config, arrays = read_model_files(Path(path), FORMAT, READ_VERSIONS)
        return cls.from_arrays(config, arrays, path)

    def file_arrays(self) -> dict[str, tuple[np.ndarray | DeferredArray, type[np.generic]]]:
        """``{name: (array, its dtype in the file)}`` of :meth:`to_arrays`, for
        :func:`sparsexc._safetensors_write.write_safetensors`: the model's own arrays, and for a member that keeps
        only its search layout a :class:`~sparsexc._safetensors_write.DeferredArray` per CSR array, so a writer
        holds one level's weights at a time, not a copy of the model."""
        self._check_fitted()
        return {name: (array, dtype) for name, array, dtype in self._arrays()}

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The trees and CSR weights as named 1-D arrays (what :meth:`save` writes; :meth:`from_arrays` reads).

        Arrays already of the file's dtype are the model's own (not copies): read them, do not write to them.
        """
        return {
            k: np.ascontiguousarray(v.make() if isinstance(v, DeferredArray) else v, dtype=dtype)
            for k, (v, dtype) in self.file_arrays().items()
        }

    @classmethod
    def from_arrays(cls, config: dict[str, Any], arrays: dict[str, np.ndarray], path: Any) -> LabelTreeModel:
        """A model from ``config`` (``params``, ``n_features``, ``n_labels``, ``depths``, as :meth:`save` writes
        them, already type-checked) and the arrays of :meth:`to_arrays`; every shape is checked
        (:class:`~sparsexc.errors.ModelFormatError` naming ``path``)."""
        model = cls(LabelTreeParams.from_saved(config["params"]))
        d, C, depths = config["n_features"], config["n_labels"], config["depths"]
        if len(depths) != model.params.n_trees:
            raise ModelFormatError(
                f"{path}: config.json lists {len(depths)} trees, its params n_trees={model.params.n_trees}"
            )
        model.trees_, weights = [], []
        for i, depth in enumerate(depths):
            prefix = f"tree.{i}."
            tree = LabelTree.from_arrays({k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)})
            if tree.n_labels != C or tree.depth != depth:
                raise ModelFormatError(f"{path}: tree {i} does not match config.json's n_labels/depths")
            model.trees_.append(tree)
            weights.append([_load_level(arrays, i, t, (tree.n_nodes(t + 1), d + 1), path) for t in range(depth)])
        model.weights_ = weights
        model.n_features_, model.n_labels_ = d, C
        return model


def cross_validate_C(
    X: Any, Y: Any, params: LabelTreeParams, *, warm_start: bool = True, patience: int = CV_PATIENCE
) -> dict[float, float]:
    """The held-out ranking quality of the candidate Cs: ``{C: mean over folds of (P@1 + P@3 + P@5) / 3}``.

    The candidates are ``C_0 x f`` for f in :data:`C_FACTORS`, ``C_0`` the loss's :data:`DEFAULT_C`. The rows
    are shuffled (seed ``params.seed``) and cut into :func:`cv_folds` folds (3; 2 where dual coordinate descent
    solves the nodes); for each fold a model with
    ``params``, that C and the looser tolerance :func:`cv_tolerance` is fitted on the other folds and ranks the
    fold's rows (``predict_topk``, the default beam); P@k is :func:`sparsexc.metrics.evaluate`'s (rows without labels count 0; a k above the number of
    labels is left out). A fold's models are the C path of :func:`fit_C_path` (C increasing, one set of trees;
    with ``warm_start`` each node's solve starts from the previous C's solution): the same models as separate
    fits, to the solver's tolerance. The folds' paths advance together, one C at a time, and stop once the
    score has fallen (strictly) at ``patience`` consecutive Cs (0: never): the larger Cs, the costliest fits,
    are then left out of the result.
    """
    return choose_C(X, Y, params, warm_start=warm_start, patience=patience).scores


@dataclasses.dataclass
class CrossValidation:
    """What :func:`choose_C` found: ``scores`` of the Cs tried (:func:`cross_validate_C`'s), the ``C`` chosen and,
    when asked for, ``topk``: every row's out-of-fold ``(indices, scores)`` (int64 and float32, (n, k)) at that C,
    else None."""

    scores: dict[float, float]
    C: float
    topk: tuple[np.ndarray, np.ndarray] | None


def choose_C(
    X: Any,
    Y: Any,
    params: LabelTreeParams,
    *,
    warm_start: bool = True,
    patience: int = CV_PATIENCE,
    topk: int = 0,
) -> CrossValidation:
    """C by cross-validation, as ``fit`` chooses it for ``C=None``: :func:`cross_validate_C`'s scores, and the C
    of best score (ties to the loss's default C, then to the smaller C).

    With ``topk=k`` > 0 every row's best ``min(k, C)`` labels and scores are kept as ranked by the fold model at
    the C chosen, the one that did not train on the row (out of fold): a set rule tuned on them is tuned on
    predictions for rows the model did not see, without a hold-out (the estimator's small-data path). The fold
    models rank ``max(5, k)`` labels (the same beam search, whose first 5 are its top 5, so the scores do not
    depend on ``k``), and only the best C so far keeps its rankings: one ``(n, k)`` pair beside the one being
    scored.
    """
    from sparsexc.metrics import PRECISION_AT, evaluate

    if isinstance(topk, bool) or not isinstance(topk, (int, np.integer)) or topk < 0:
        raise ConfigurationError(f"topk={topk!r}: must be an integer >= 0")
    X, Y = as_features(X), as_label_matrix(Y)
    if Y.shape[0] != X.shape[0]:
        raise ConfigurationError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}; they must match")
    keep_k = min(int(topk), Y.shape[1])
    params = params.for_data(X.nnz, Y.shape[1], X.shape[1])  # fit's solver for all of X, which the folds' paths keep
    params = params.replace(tol=cv_tolerance(params))
    ks = tuple(k for k in (1, 3, 5) if k <= Y.shape[1])
    ranked = max(ks[-1], keep_k)
    folds = np.array_split(np.random.default_rng(params.seed).permutation(X.shape[0]), cv_folds(params))
    base = DEFAULT_C[params.loss]
    Cs = [float(f"{base * factor:.6g}") for factor in C_FACTORS]  # 0.3, not 0.30000000000000004, in the params
    paths = []
    for f, held in enumerate(folds):
        rest = np.concatenate([fold for g, fold in enumerate(folds) if g != f])
        paths.append((held, fit_C_path(X[rest], Y[rest], params, Cs, warm_start=warm_start)))
    scores: dict[float, float] = {}
    best: tuple[float, tuple[np.ndarray, np.ndarray] | None] | None = None
    falls, previous = 0, -np.inf
    for C in Cs:
        total = 0.0
        kept = (np.empty((X.shape[0], keep_k), np.int64), np.empty((X.shape[0], keep_k), np.float32))
        for held, path in paths:
            idx, top = next(path).predict_topk(X[held], ranked)
            found = evaluate(Y[held], (idx[:, : ks[-1]], top[:, : ks[-1]]), ks=ks)
            total += float(np.mean([found[PRECISION_AT.format(k=k)] for k in ks]))
            kept[0][held], kept[1][held] = idx[:, :keep_k], top[:, :keep_k]
        scores[C] = total / len(folds)
        if best is None or _best_C({best[0]: scores[best[0]], C: scores[C]}, params.loss) == C:
            best = (C, kept if keep_k else None)
        falls = falls + 1 if scores[C] < previous else 0
        previous = scores[C]
        if patience and falls >= patience:
            break
    assert best is not None  # Cs is not empty
    return CrossValidation(scores, best[0], best[1])


def cv_folds(params: LabelTreeParams) -> int:
    """The number of folds of :func:`cross_validate_C`: :data:`CV_DCD_FOLDS` where dual coordinate descent
    solves the nodes (the solver ``params`` resolves to), else :data:`CV_FOLDS`."""
    return CV_DCD_FOLDS if _solver(params.solver, params.loss, None) == "dcd" else CV_FOLDS


def node_tolerance(params: LabelTreeParams) -> float | None:
    """The solver tolerance of every node's fit: ``params.tol``; else :data:`DCD_TOL` where dual coordinate
    descent solves the nodes (the solver ``params`` resolves to), and None (the Newton solver's own,
    :data:`~sparsexc.tree.solver.DEFAULT_TOL`) otherwise."""
    if params.tol is not None:
        return params.tol
    return DCD_TOL if _solver(params.solver, params.loss, None) == "dcd" else None


def cv_tolerance(params: LabelTreeParams) -> float | None:
    """The solver tolerance of :func:`cross_validate_C`'s fits. Dual coordinate descent: :data:`CV_TOL_FACTOR` x
    the tolerance the fit itself uses (:func:`node_tolerance`: ``params.tol``, else :data:`DCD_TOL` -> 4.0): the
    cross-validation ranks Cs a factor 3 apart, and its held-out scores do not need the optimum to the final fit's
    precision. Newton: ``params.tol`` unchanged (None: the solver's own), as its looser fits swapped nearly tied
    Cs."""
    if _solver(params.solver, params.loss, None) != "dcd":
        return params.tol
    tol = node_tolerance(params)
    assert tol is not None  # dcd: the given tol, else DCD_TOL
    return CV_TOL_FACTOR * tol


def fit_C_path(
    X: Any, Y: Any, params: LabelTreeParams, Cs: Sequence[float], *, warm_start: bool = True
) -> Iterator[LabelTreeModel]:
    """The models of ``params`` with each C of ``Cs`` in turn, fitted on (X, Y) (no cross-validation of C).

    Each is the model ``LabelTreeModel(params.replace(C=C)).fit(X, Y)`` gives, but the rows are prepared and
    the labels clustered once (neither depends on C), and with ``warm_start`` (squared hinge solved by dual
    coordinate descent) each node's solve starts from its solution at the previous C, as LIBLINEAR's parameter
    search (``train -C``) does along increasing C. The dual problem

        min_{alpha >= 0} 1/2 alpha^T (Q + I / (2C)) alpha - sum_i alpha_i,   Q_ij = y_i y_j x_i.x_j

    has the same feasible set ``alpha >= 0`` at every C, so any previous solution is a feasible start. At the
    optimum ``alpha_i = 2 C xi_i`` with ``xi_i = max(0, 1 - y_i w.x_i)``, so the start is the previous duals
    times ``C / C_previous``: the previous solution's slacks at the new C. The solver's stopping rule is
    unchanged, so each model is the same optimum to its tolerance, reached with less work. Models are yielded
    one at a time (the previous one may be dropped); they share their ``trees_``.

    A flat tree (``n_labels <= max_leaf_size``, one tree) solved by Newton is fitted at every C in one solve
    instead, on the first model asked for (:meth:`LabelTreeModel._fit_flat_Cs`): the columns Cs x labels, each
    with its own C and its own stop, the same optima to the solver's tolerance; a consumer that stops early
    (:func:`cross_validate_C`'s ``patience``) then leaves the later Cs unscored, not unfitted.
    """
    X, Y = as_features(X), as_label_matrix(Y)
    if Y.shape[0] != X.shape[0]:
        raise ConfigurationError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}; they must match")
    params = params.for_data(X.nnz, Y.shape[1], X.shape[1])  # as fit resolves the solver
    first = LabelTreeModel(params)  # prepares X and clusters: neither reads C
    X = first._prepared(X)
    first._build_trees(X, Y)
    if first._solves_Cs_at_once():
        for C, weights in zip(Cs, first._fit_flat_Cs(X, Y, Cs), strict=True):
            model = LabelTreeModel(params.replace(C=float(C)))
            model.trees_ = first.trees_
            model._trained([weights], X.shape[1], Y.shape[1])
            yield model
        return
    warm = warm_start and first._dual()
    duals: dict[tuple[int, int, int], np.ndarray] | None = {} if warm else None
    previous = None
    for C in Cs:
        if duals and previous is not None:
            # alpha_i = 2 C xi_i at the optimum (xi_i = max(0, 1 - y_i w.x_i), row i's slack): start from the
            # previous C's slacks at this C. Measured on the CV of 7 small sets (stored entries the solver reads):
            # 12-41% less work than a cold start; the previous duals unscaled: 10-27% on six (docs/tree.md)
            for alpha in duals.values():
                alpha *= float(C) / previous
        previous = float(C)
        model = LabelTreeModel(params.replace(C=float(C)))
        model.trees_ = first.trees_
        model._train(X, Y, duals=duals)
        yield model


def _best_C(scores: dict[float, float], loss: str) -> float:
    """The C of best score; ties to the loss's default C, then to the smaller C (the stronger penalty)."""
    default = DEFAULT_C[loss]
    return max(scores, key=lambda c: (scores[c], c == default, -c))


def _load_level(arrays: dict[str, np.ndarray], i: int, t: int, shape: tuple[int, int], path: Any) -> sp.csr_matrix:
    """Tree i's level-(t + 1) weights from the loaded arrays, checked as a CSR matrix of ``shape``."""
    name = f"weights.{i}.{t}"
    try:
        w = sp.csr_matrix((arrays[f"{name}.data"], arrays[f"{name}.indices"], arrays[f"{name}.indptr"]), shape=shape)
        w.check_format(full_check=True)
    except (KeyError, ValueError) as exc:
        raise ModelFormatError(f"{path}: weights of tree {i}, level {t + 1} are malformed: {exc}") from None
    return w


def _ensemble_topk(
    found: Sequence[tuple[np.ndarray, np.ndarray]], n_labels: int, k: int, *, compiled: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The k best labels of every row by the mean over T members of their top-kk scores.

    ``found`` holds each member's ``(idx, scores)`` (n, kk); a label a member did not return counts 0. The sum
    runs in member order in float64 and is scaled by 1 / T (bit for bit what adding the members' rows as sparse
    matrices and dividing by T gives); ties go to the lower label id, and a row where fewer than k labels have a
    non-zero mean is filled with the lowest unused label ids at score 0. Returns int64 (n, k) label ids and
    float32 (n, k) scores, best first.

    One stable sort by label per row groups each label's entries, then :func:`~sparsexc._topk.topk_rows` picks
    the k best of the row's groups (kept in increasing label order, so its column-order ties are label ties).
    ``compiled``: numba's :func:`~sparsexc.tree._search_kernel.ensemble_mean_kernel` instead (a dense
    accumulator per row; the same arithmetic in the same order, so the same output bit for bit, tested), for
    searches that use the compiled kernels anyway.
    """
    T = len(found)
    idx = np.concatenate([i for i, _ in found], axis=1)
    if compiled:
        n = idx.shape[0]
        val32 = np.concatenate([v for _, v in found], axis=1).astype(np.float32, copy=False)
        out_idx, out = np.empty((n, k), dtype=np.int64), np.empty((n, k), dtype=np.float32)
        counts = np.empty(n, dtype=np.int64)
        ensemble_mean_kernel(idx.astype(np.int64, copy=False), val32, T, n_labels, k, out_idx, out, counts)
        return _fill_short_rows(out_idx, out, counts, k)
    val = np.concatenate([v for _, v in found], axis=1).astype(np.float64)
    n, width = idx.shape
    order = np.argsort(idx, axis=1, kind="stable")  # by label, members in order within a label
    idx, val = np.take_along_axis(idx, order, axis=1), np.take_along_axis(val, order, axis=1)
    first = np.ones((n, width), dtype=bool)
    first[:, 1:] = idx[:, 1:] != idx[:, :-1]
    starts = np.flatnonzero(first)
    means = np.add.reduceat(val.ravel(), starts) * (1.0 / T) if starts.size else val.ravel()[:0]
    keep = means != 0
    rows, cols = np.divmod(starts[keep], width)  # each label group at its first column: increasing label order
    labels = np.full((n, width), n_labels, dtype=np.int64)
    scores = np.full((n, width), -np.inf, dtype=np.float64)
    labels[rows, cols], scores[rows, cols] = idx.ravel()[starts[keep]], means[keep]
    top, best = topk_rows(scores, k)
    out_idx, out = np.take_along_axis(labels, top, axis=1), best.astype(np.float32)
    return _fill_short_rows(out_idx, out, np.minimum(np.bincount(rows, minlength=n), k), k)


def _fill_short_rows(out_idx: np.ndarray, out: np.ndarray, counts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows with ``counts[i] < k`` labels of non-zero mean: the rest are the lowest unused label ids at score 0."""
    for i in np.flatnonzero(counts < k):  # rare: fewer than k labels reached by every tree
        used = set(out_idx[i, : counts[i]].tolist())
        out_idx[i, counts[i] :] = [j for j in range(k + counts[i] + 1) if j not in used][: k - counts[i]]
        out[i, counts[i] :] = 0.0
    return out_idx, out
