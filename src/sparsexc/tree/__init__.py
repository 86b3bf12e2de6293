"""sparsexc.tree: label trees and the sparse linear models trained on them (issue 19).

:class:`LabelTree` is the shape (child offsets per level, label order); :func:`pifa` and :func:`build_tree`
(in :mod:`sparsexc.tree.cluster`) make label representations and cluster them into one; the node classifiers'
solver is :func:`fit_linear` (:mod:`sparsexc.tree.solver`); :func:`beam_search` / :class:`TreeSearcher` (:mod:`sparsexc.tree.search`)
find a row's best labels level by level. :class:`LabelTreeModel` is the probabilistic label tree of sparse linear
classifiers (Parabel / omikuji / PECOS XR-Linear family), configured by :class:`LabelTreeParams`; :func:`choose_C`
is its cross-validation of C.
"""

from sparsexc.tree.cluster import build_tree, frequent_labels, leaf_coherence, level_arities, pifa
from sparsexc.tree.model import (
    C_FACTORS,
    COHERENCE_WIDE,
    DEFAULT_BRANCHING,
    DEFAULT_C,
    WIDE_BRANCHING,
    CrossValidation,
    LabelTreeModel,
    LabelTreeParams,
    choose_C,
)
from sparsexc.tree.search import TreeSearcher, beam_search, pair_scores
from sparsexc.tree.solver import drop_empty_columns, fit_linear, objective, prune
from sparsexc.tree.structure import LabelTree

__all__ = [
    "COHERENCE_WIDE",
    "C_FACTORS",
    "DEFAULT_BRANCHING",
    "DEFAULT_C",
    "WIDE_BRANCHING",
    "CrossValidation",
    "LabelTree",
    "LabelTreeModel",
    "LabelTreeParams",
    "TreeSearcher",
    "beam_search",
    "build_tree",
    "choose_C",
    "drop_empty_columns",
    "fit_linear",
    "frequent_labels",
    "leaf_coherence",
    "level_arities",
    "objective",
    "pair_scores",
    "pifa",
    "prune",
]
