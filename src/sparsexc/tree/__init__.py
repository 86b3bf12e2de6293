"""sparsexc.tree: label trees and the sparse linear models trained on them (issue 19).

:class:`LabelTree` is the shape (child offsets per level, label order); the clustering that builds it, the
solvers of the node classifiers, the beam search and the model are in modules of their own.
"""

from sparsexc.tree.search import TreeSearcher, beam_search, pair_scores
from sparsexc.tree.structure import LabelTree

__all__ = ["LabelTree", "TreeSearcher", "beam_search", "pair_scores"]
