"""sparsexc.tree: label trees and the sparse linear models trained on them (issue 19).

:class:`LabelTree` is the shape (child offsets per level, label order); :func:`pifa` and :func:`build_tree`
(in :mod:`sparsexc.tree.cluster`) make label representations and cluster them into one. The solvers of the node
classifiers, the beam search and the model are in modules of their own.
"""

from sparsexc.tree.cluster import build_tree, level_arities, pifa
from sparsexc.tree.structure import LabelTree

__all__ = ["LabelTree", "build_tree", "level_arities", "pifa"]
