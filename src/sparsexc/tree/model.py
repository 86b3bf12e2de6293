"""The label-tree linear model: a tree of labels, one sparse linear classifier per node, beam search.

This is the model family of Parabel, Bonsai, omikuji, PECOS XR-Linear and napkinXC's PLT (see
``docs/tree.md``): a probabilistic label tree.

Training (teacher-forced, as Parabel and PECOS's default ``tfn``):

1. Rows of X are L2-normalised (``normalize_rows``). Each label is represented by PIFA, the normalised sum of
   its positive rows (:func:`~sparsexc.tree.cluster.pifa`), and the labels are clustered into a balanced tree
   (:func:`~sparsexc.tree.cluster.build_tree`: ``branching`` children per node, leaves of at most
   ``max_leaf_size`` labels).
2. Node v of level t+1 is *positive* for row i when i has a positive label under v:
   ``z_iv = [(Y M_{t+1})_iv > 0]`` with M the label-to-node membership. For each node p of level t, its
   children's classifiers are trained on the rows where p is positive (every row for the root) to predict
   their own z; the last level's "children" are the labels themselves, so the rankers of a leaf are trained on
   the rows of that leaf's labels (the shortlist's hard negatives). Each classifier is L2-regularised
   (``C``) squared hinge or logistic, solved by :func:`~sparsexc.tree.solver.fit_linear` on the columns the
   node's rows use.
3. Weights with ``|w| < threshold`` are dropped (the bias weight is kept), so every level's weights are one
   sparse matrix (nodes x (features + 1), CSR).

Prediction: a label's score is the product of the node probabilities on its path from the root, with
sigma(s) for logistic and exp(-max(0, 1 - s)^2) for squared-hinge classifiers (the probability each loss's
margin implies; Parabel, omikuji and napkinXC combine them the same way); beam search keeps the ``beam`` best
nodes per level (:func:`~sparsexc.tree.search.beam_search`), so a row costs O(beam x branching x depth), not
O(labels).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from sparsexc._params import NON_NEGATIVE, POSITIVE, POSITIVE_INT, Params, Range, setting
from sparsexc._sparse import as_features, as_label_matrix
from sparsexc.errors import ConfigurationError, ModelFormatError
from sparsexc.tree.cluster import build_tree, pifa
from sparsexc.tree.search import beam_search
from sparsexc.tree.solver import drop_empty_columns, fit_linear, prune
from sparsexc.tree.structure import LabelTree

__all__ = ["LabelTreeModel", "LabelTreeParams"]

LOSSES = ("squared_hinge", "logistic")
# the node probability each loss's margin implies (the beam search's `transform`)
TRANSFORMS = {"squared_hinge": "squared_hinge", "logistic": "sigmoid"}
FORMAT = "sparsexc.label-tree"
FORMAT_VERSION = 1


@dataclasses.dataclass
class LabelTreeParams(Params):
    """Settings of :class:`LabelTreeModel` (training; the beam is a prediction setting)."""

    branching: int = setting(16, "Children per internal node of the label tree.", range=Range(2))
    max_leaf_size: int = setting(100, "Most labels per leaf cluster.", range=POSITIVE_INT)
    loss: str = setting("squared_hinge", "Loss of every node classifier.", choices=LOSSES)
    C: float = setting(1.0, "Inverse L2 strength of every node classifier (LIBLINEAR's C).", range=POSITIVE)
    tol: float = setting(0.1, "Solver tolerance (LIBLINEAR's eps).", range=POSITIVE)
    max_iter: int = setting(100, "Most solver iterations per node.", range=POSITIVE_INT)
    threshold: float = setting(0.1, "Drop trained weights with |w| below this.", range=NON_NEGATIVE)
    bias: float = setting(1.0, "Value of the constant feature appended to every row.", range=NON_NEGATIVE)
    normalize_rows: bool = setting(True, "L2-normalise the rows of X before training and prediction.")
    seed: int = setting(0, "Seed of the label clustering.")
    n_jobs: int = setting(1, "Threads training node classifiers (-1: all cores).")


def _normalize(X: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags((1.0 / norms).astype(np.float32)) @ X, dtype=np.float32)


def _workers(n_jobs: int) -> int:
    return max(1, os.cpu_count() or 1) if n_jobs < 0 else max(1, n_jobs)


class LabelTreeModel:
    """A probabilistic label tree of sparse linear classifiers (see the module docstring for the maths).

    Parameters
    ----------
    params : LabelTreeParams, optional
        Training settings; defaults as Parabel/omikuji (squared hinge, C = 1, threshold 0.1, leaves of <= 100
        labels) with a 16-ary tree (PECOS).

    Attributes
    ----------
    tree_ : LabelTree
        The label tree.
    weights_ : list of scipy.sparse.csr_matrix
        ``weights_[t]``: one row per node of level t + 1 (labels in tree order on the last level), columns the
        features then the bias; float32.
    n_features_ : int
    """

    def __init__(self, params: LabelTreeParams | None = None) -> None:
        self.params = params if params is not None else LabelTreeParams()

    # -- training --------------------------------------------------------------------------------------------
    def fit(self, X: Any, Y: Any) -> LabelTreeModel:
        """Build the tree from (X, Y) and train every node's classifiers; returns ``self``.

        X: (n, d) features (sparse or dense); Y: (n, C) 0/1 labels (sparse, dense or lists of label ids).
        """
        p = self.params
        X = as_features(X)
        Y = as_label_matrix(Y)
        if Y.shape[0] != X.shape[0]:
            raise ConfigurationError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}; they must match")
        if p.normalize_rows:
            X = _normalize(X)
        tree = build_tree(pifa(X, Y), branching=p.branching, max_leaf_size=p.max_leaf_size, seed=p.seed)
        self.tree_ = tree
        self.n_features_ = X.shape[1]
        self.weights_ = [self._fit_level(X, Y, tree, t) for t in range(tree.depth)]
        return self

    def _fit_level(self, X: sp.csr_matrix, Y: sp.csr_matrix, tree: LabelTree, t: int) -> sp.csr_matrix:
        """The weights of level t + 1: the children of every node of level t, trained on that node's rows."""
        reach = None if t == 0 else ((Y @ tree.membership(t)) > 0).tocsc()
        target = ((Y @ tree.membership(t + 1)) > 0).tocsr()
        jobs = range(tree.n_nodes(t))
        with ThreadPoolExecutor(_workers(self.params.n_jobs)) as pool:
            blocks = list(pool.map(lambda node: self._fit_node(X, target, reach, tree, t, node), jobs))
        return sp.vstack(blocks, format="csr", dtype=np.float32)

    def _fit_node(
        self,
        X: sp.csr_matrix,
        target: sp.csr_matrix,
        reach: sp.csc_matrix | None,
        tree: LabelTree,
        t: int,
        node: int,
    ) -> sp.csr_matrix:
        """Pruned weights (children x (d + 1), CSR) of the children of ``node``, trained on the rows it reaches."""
        p = self.params
        kids = tree.children(t, node)
        d = X.shape[1]
        rows = np.arange(X.shape[0]) if reach is None else reach.indices[reach.indptr[node] : reach.indptr[node + 1]]
        if rows.size == 0:  # a node no training row reaches (labels without positives): all-zero weights
            return sp.csr_matrix((len(kids), d + 1), dtype=np.float32)
        X_used, used = drop_empty_columns(X[rows])
        Z = target[rows][:, kids.start : kids.stop]
        W = fit_linear(X_used, Z, loss=p.loss, C=p.C, tol=p.tol, max_iter=p.max_iter, bias=p.bias)
        block = prune(W, p.threshold)  # children x (len(used) + 1)
        columns = np.append(used, d).astype(np.int64)[block.indices]
        out = sp.csr_matrix((block.data, columns, block.indptr), shape=(len(kids), d + 1), dtype=np.float32)
        out.sort_indices()
        return out

    # -- prediction ------------------------------------------------------------------------------------------
    def predict_topk(self, X: Any, k: int = 5, *, beam: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best labels of every row and their path scores (products of node probabilities).

        Returns ``(indices, scores)``: int64 label ids and float32 scores, both (n, k), best first.
        ``beam`` nodes are kept per level (a wider beam is slower and misses fewer labels).
        """
        self._check_fitted()
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= self.tree_.n_labels:
            raise ConfigurationError(f"k={k!r}: must be an integer in [1, {self.tree_.n_labels}]")
        if not isinstance(beam, (int, np.integer)) or beam < 1:
            raise ConfigurationError(f"beam={beam!r}: must be an integer >= 1")
        X = as_features(X, n_features=self.n_features_, owner="this LabelTreeModel")
        if self.params.normalize_rows:
            X = _normalize(X)
        return beam_search(
            X,
            self.tree_,
            self.weights_,
            beam=int(beam),
            k=int(k),
            transform=TRANSFORMS[self.params.loss],
            bias=self.params.bias,
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise ConfigurationError("this LabelTreeModel is not fitted yet: call fit(X, Y) or load a saved one")

    @property
    def n_weights(self) -> int:
        """Stored (nonzero) weights over all levels."""
        self._check_fitted()
        return int(sum(w.nnz for w in self.weights_))

    # -- storage ---------------------------------------------------------------------------------------------
    def _arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        yield from (("tree." + k, v) for k, v in self.tree_.to_arrays().items())
        for t, w in enumerate(self.weights_):
            yield f"weights.{t}.indptr", w.indptr.astype(np.int64)
            yield f"weights.{t}.indices", w.indices.astype(np.int64)
            yield f"weights.{t}.data", w.data.astype(np.float32)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``path/model.safetensors`` (tree and CSR weights) and ``path/config.json``, each atomically."""
        from safetensors.numpy import save as st_save

        from sparsexc._atomic import atomic_file

        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        payload = st_save({k: np.ascontiguousarray(v) for k, v in self._arrays()})
        config = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "params": self.params.to_dict(),
            "n_features": self.n_features_,
            "n_labels": self.tree_.n_labels,
            "depth": self.tree_.depth,
        }
        with atomic_file(folder / "model.safetensors") as fh:
            fh.write(payload)
        with atomic_file(folder / "config.json") as fh:
            fh.write(json.dumps(config, indent=2).encode())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LabelTreeModel:
        """Read a model written by :meth:`save` (no code is executed; shapes are checked before use)."""
        from sparsexc.tree._storage import read_model_files

        config, arrays = read_model_files(Path(path), FORMAT, FORMAT_VERSION)
        model = cls(LabelTreeParams.from_dict(config["params"]))
        tree = LabelTree.from_arrays({k[5:]: v for k, v in arrays.items() if k.startswith("tree.")})
        d = int(config["n_features"])
        if tree.n_labels != config["n_labels"] or tree.depth != config["depth"]:
            raise ModelFormatError(f"{path}: the tree does not match config.json's n_labels/depth")
        weights = []
        for t in range(tree.depth):
            shape = (tree.n_nodes(t + 1), d + 1)
            try:
                w = sp.csr_matrix(
                    (arrays[f"weights.{t}.data"], arrays[f"weights.{t}.indices"], arrays[f"weights.{t}.indptr"]),
                    shape=shape,
                )
                w.check_format(full_check=True)
            except (KeyError, ValueError) as exc:
                raise ModelFormatError(f"{path}: weights of level {t + 1} are malformed: {exc}") from None
            weights.append(w)
        model.tree_, model.weights_, model.n_features_ = tree, weights, d
        return model
