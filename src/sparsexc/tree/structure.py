"""The shape of a label tree: which nodes are whose children, level by level, and which leaf is which label.

A tree of depth ``D`` has levels ``0 .. D``. Level 0 holds one node, the root; level ``D`` holds the ``C``
labels. The children of node ``p`` of level ``t`` are the *contiguous* nodes ``offsets[t][p]:offsets[t][p+1]``
of level ``t + 1``, so a level's weights are one matrix whose rows are grouped by parent and a beam search
reads a parent's children as a slice. The labels keep their ids: position ``j`` of the last level is label
``label_order[j]``.

Every label lies at depth ``D`` (a tree with uniform depth), as in PECOS's and Parabel's balanced trees: a beam
search then compares nodes of one level with each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from sparsexc.errors import ModelFormatError

__all__ = ["LabelTree"]


@dataclass(frozen=True, eq=False)
class LabelTree:
    """A label tree of uniform depth stored as child offsets per level.

    Parameters
    ----------
    offsets : tuple of int64 arrays
        ``offsets[t]`` has ``n_nodes(t) + 1`` entries, starts at 0 and does not decrease; its last entry is
        ``n_nodes(t + 1)``. ``len(offsets)`` is the depth ``D``.
    label_order : int64 array of shape (C,)
        A permutation of ``0 .. C-1``: the label id of each position of the last level.
    """

    offsets: tuple[np.ndarray, ...]
    label_order: np.ndarray

    def __post_init__(self) -> None:
        self.validate()

    # -- shape --------------------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Number of edges from the root to a label (levels are ``0 .. depth``)."""
        return len(self.offsets)

    @property
    def n_labels(self) -> int:
        return int(self.label_order.shape[0])

    def n_nodes(self, level: int) -> int:
        """Nodes on ``level`` (1 for the root, ``n_labels`` for the last level)."""
        return 1 if level == 0 else int(self.offsets[level - 1][-1])

    def children(self, level: int, node: int) -> range:
        """Indices on ``level + 1`` of the children of ``node`` of ``level``."""
        off = self.offsets[level]
        return range(int(off[node]), int(off[node + 1]))

    def parents(self, level: int) -> np.ndarray:
        """For every node of ``level`` (>= 1), the index of its parent on ``level - 1`` (int64)."""
        off = self.offsets[level - 1]
        return np.repeat(np.arange(off.shape[0] - 1, dtype=np.int64), np.diff(off))

    def label_positions(self) -> np.ndarray:
        """Inverse of :attr:`label_order`: the last-level position of each label id."""
        pos = np.empty_like(self.label_order)
        pos[self.label_order] = np.arange(self.n_labels, dtype=np.int64)
        return pos

    def ancestors(self, level: int) -> np.ndarray:
        """For every label id, the index of its ancestor on ``level`` (int64, shape (C,))."""
        node = self.label_positions()
        for t in range(self.depth, level, -1):
            node = self.parents(t)[node]
        return node

    def membership(self, level: int) -> sp.csr_matrix:
        """Indicator (C x n_nodes(level), float32 CSR): label ``l`` belongs to node ``v`` of ``level``.

        ``Y @ membership(level)`` counts each row's positive labels under every node of that level, so
        ``(Y @ M) > 0`` are the node targets of a probabilistic label tree.
        """
        anc = self.ancestors(level)
        C = self.n_labels
        return sp.csr_matrix(
            (np.ones(C, dtype=np.float32), anc, np.arange(C + 1, dtype=np.int64)), shape=(C, self.n_nodes(level))
        )

    # -- checks and storage ----------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`~sparsexc.errors.ModelFormatError` unless the arrays describe a tree as documented."""
        if not self.offsets:
            raise ModelFormatError("a label tree needs at least one level of children")
        expected = 1
        for t, off in enumerate(self.offsets):
            if off.ndim != 1 or off.shape[0] != expected + 1 or off[0] != 0 or np.any(np.diff(off) < 0):
                raise ModelFormatError(
                    f"label tree level {t}: offsets must be {expected + 1} non-decreasing integers from 0"
                )
            expected = int(off[-1])
        order = self.label_order
        if order.ndim != 1 or order.shape[0] != expected:
            raise ModelFormatError(f"label tree: label_order has {order.shape[0]} entries, the last level {expected}")
        if expected and not np.array_equal(np.sort(order), np.arange(expected)):
            raise ModelFormatError("label tree: label_order is not a permutation of the label ids")

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The tree as named int64 arrays (for safetensors): ``offsets.<t>`` and ``label_order``."""
        out = {f"offsets.{t}": np.ascontiguousarray(o, dtype=np.int64) for t, o in enumerate(self.offsets)}
        out["label_order"] = np.ascontiguousarray(self.label_order, dtype=np.int64)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any]) -> LabelTree:
        """Inverse of :meth:`to_arrays` (checked: a malformed tree raises ModelFormatError)."""
        depth = sum(1 for k in arrays if k.startswith("offsets."))
        try:
            offsets = tuple(np.asarray(arrays[f"offsets.{t}"], dtype=np.int64) for t in range(depth))
            order = np.asarray(arrays["label_order"], dtype=np.int64)
        except KeyError as exc:
            raise ModelFormatError(f"label tree: missing array {exc.args[0]!r}") from None
        return cls(offsets, order)

    @classmethod
    def flat(cls, n_labels: int) -> LabelTree:
        """The tree of depth 1: every label a child of the root (one-vs-rest)."""
        return cls((np.array([0, n_labels], dtype=np.int64),), np.arange(n_labels, dtype=np.int64))
