"""sparsexc.tree: label trees and the sparse linear models trained on them (issue 19).

:class:`LabelTree` is the shape (child offsets per level, label order); :func:`pifa` and :func:`build_tree`
(in :mod:`sparsexc.tree.cluster`) make label representations and cluster them into one; the node classifiers'
solver is :mod:`sparsexc.tree.solver`, the beam search :mod:`sparsexc.tree.search`.
:class:`LabelTreeModel` is the probabilistic label tree of sparse linear classifiers (Parabel / omikuji /
PECOS XR-Linear family), configured by :class:`LabelTreeParams`.
"""

from sparsexc.tree.cluster import build_tree, level_arities, pifa
from sparsexc.tree.model import LabelTreeModel, LabelTreeParams
from sparsexc.tree.structure import LabelTree

__all__ = ["LabelTree", "LabelTreeModel", "LabelTreeParams", "build_tree", "level_arities", "pifa"]
