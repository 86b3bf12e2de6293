"""sparsexc.tree: label trees and the sparse linear models trained on them (issue 19).

:class:`LabelTree` is the shape (child offsets per level, label order); the clustering that builds it, the
solvers of the node classifiers, the beam search and the model are in modules of their own.
:class:`LabelTreeModel` is the probabilistic label tree of sparse linear classifiers (Parabel / omikuji /
PECOS XR-Linear family), configured by :class:`LabelTreeParams`.
"""

from sparsexc.tree.model import LabelTreeModel, LabelTreeParams
from sparsexc.tree.structure import LabelTree

__all__ = ["LabelTree", "LabelTreeModel", "LabelTreeParams"]
