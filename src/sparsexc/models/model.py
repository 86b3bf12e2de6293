"""The encoder + head model and its batched numpy-facing inference helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from sparsexc.core.labels import LabelBatch
from sparsexc.core.layers import use_sparse_output_layers
from sparsexc.errors import ConfigurationError
from sparsexc.heads import Head, build_head
from sparsexc.models.batch import FeatureBatch
from sparsexc.models.encoder import SparseEncoder

__all__ = ["MAX_BATCH_SCORES", "XCModel"]

MAX_BATCH_SCORES = 2**25  # 32M float32 scores (128 MB) per inference batch


class XCModel(nn.Module):
    """``head(encoder(X))``: a sparse encoder followed by an output head.

    For the linear model (``encoder.is_identity``) with ``EncoderParams.sparse_gradients``, the head's output
    layers over the raw features become :class:`~sparsexc.core.layers.SparseGradientOutputLayer`
    (same weights, transposed storage, row-sparse gradients).

    The numpy-facing helpers run in eval mode without gradients, batch the rows of a CSR matrix, and
    return numpy / scipy results on the CPU.
    """

    def __init__(self, encoder: SparseEncoder, head: Head) -> None:
        super().__init__()
        if head.in_dim != encoder.out_dim:
            raise ValueError(f"head.in_dim={head.in_dim} does not match encoder.out_dim={encoder.out_dim}")
        self.encoder = encoder
        self.head = head
        if encoder.is_identity and encoder.params.sparse_gradients:
            # the linear model's weight over the raw features: row-sparse gradients (same function, same weights)
            use_sparse_output_layers(head, encoder.n_features)

    @property
    def n_features(self) -> int:
        return self.encoder.n_features

    @property
    def n_labels(self) -> int:
        return self.head.n_labels

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def hidden(self, batch: FeatureBatch) -> torch.Tensor:
        """Hidden vectors of a feature batch, (B, encoder.out_dim)."""
        return self.encoder(batch)

    # -- training (the Trainer calls these, whatever the model) -----------------------------------------
    def prepare(self, X: sp.csr_matrix, Y: sp.csr_matrix) -> None:
        """Called once before training with the training data: the head's :meth:`Head.prepare`."""
        self.head.prepare(X, Y)

    def loss(self, features: FeatureBatch, labels: LabelBatch) -> torch.Tensor:
        """The training loss of a batch: ``head.loss(encoder(features), labels)``."""
        return self.head.loss(self.hidden(features), labels)

    def config(self) -> dict[str, Any]:
        return {"encoder": self.encoder.config(), "head": self.head.config()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> XCModel:
        """Rebuild the architecture (fresh weights) from :meth:`config`."""
        encoder = SparseEncoder(int(config["encoder"]["n_features"]), config["encoder"]["params"])
        return cls(encoder, build_head(config["head"]))

    # -- batched inference ------------------------------------------------------------------------------
    def _check_X(self, X: sp.spmatrix) -> sp.csr_matrix:
        X = sp.csr_matrix(X)
        if X.shape[1] != self.n_features:
            raise ConfigurationError(f"X has {X.shape[1]} features; the model expects {self.n_features}")
        return X

    def _hidden_batches(self, X: sp.spmatrix, batch_size: int) -> Iterator[torch.Tensor]:
        X = self._check_X(X)
        device = self.device
        # the heads' dense (B, C) scores must stay moderate: at most MAX_BATCH_SCORES entries per batch
        batch_size = max(1, min(int(batch_size), MAX_BATCH_SCORES // self.n_labels))
        for start in range(0, X.shape[0], batch_size):
            yield self.encoder(FeatureBatch.from_csr(X[start : start + batch_size], device))

    def _inference(self):
        return _EvalMode(self)

    def predict_topk(
        self, X: sp.spmatrix, k: int = 5, batch_size: int = 1024, *, beam: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k labels: (indices int64 (n, k), scores float32 (n, k)), best first (k is capped at C).

        ``beam`` (here and in the other prediction methods) is a shortlist model's beam width; this model scores
        every label and ignores it."""
        k = min(int(k), self.n_labels)
        indices, scores = [], []
        with self._inference():
            for hidden in self._hidden_batches(X, batch_size):
                idx, val = self.head.topk(hidden, k)
                indices.append(idx.cpu().numpy().astype(np.int64))
                scores.append(val.float().cpu().numpy())
        if not indices:
            return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
        return np.concatenate(indices), np.concatenate(scores)

    def predict_sets(self, X: sp.spmatrix, batch_size: int = 1024, *, beam: int | None = None) -> sp.csr_matrix:
        """Predicted label sets as a CSR 0/1 float32 indicator (n, C)."""
        parts = []
        with self._inference():
            for hidden in self._hidden_batches(X, batch_size):
                parts.append(self.head.predict_sets(hidden).to_csr())
        if not parts:
            return sp.csr_matrix((0, self.n_labels), dtype=np.float32)
        return sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=np.float32)

    def predict_scores(self, X: sp.spmatrix, batch_size: int = 1024, *, beam: int | None = None) -> np.ndarray:
        """Dense scores of all labels, float32 (n, C)."""
        parts = []
        with self._inference():
            for hidden in self._hidden_batches(X, batch_size):
                parts.append(self.head.scores(hidden).float().cpu().numpy())
        if not parts:
            return np.zeros((0, self.n_labels), dtype=np.float32)
        return np.concatenate(parts)

    def tune(
        self, X_val: sp.spmatrix, Y_val: sp.spmatrix, metric: str = "micro-F1", batch_size: int = 1024
    ) -> dict[str, Any]:
        """Tune the head's set-prediction parameter on validation rows; returns what the head reports.

        The rows go to the head batch by batch (:meth:`Head.tune_batches`): heads that tune a scalar keep
        per-row counts at each candidate value, not the (rows x labels) scores, so validation sets of any
        size fit; the chosen value does not depend on ``batch_size``.
        """
        X_val, Y_val = self._check_X(X_val), sp.csr_matrix(Y_val)
        if Y_val.shape[0] != X_val.shape[0]:
            raise ValueError(f"X_val has {X_val.shape[0]} rows but Y_val has {Y_val.shape[0]}")
        with self._inference():
            return self.head.tune_batches(self._labelled_batches(X_val, Y_val, batch_size), metric)

    def tuned_state(self) -> dict[str, Any]:
        """JSON-able values set by :meth:`tune` (the head's; a model that tunes more adds its own)."""
        return self.head.tuned_state()

    def load_tuned_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`tuned_state` returned."""
        self.head.load_tuned_state(state)

    def _labelled_batches(
        self, X: sp.csr_matrix, Y: sp.csr_matrix, batch_size: int
    ) -> Iterator[tuple[torch.Tensor, LabelBatch]]:
        # at least one (possibly empty) batch, so a head sees the rows' shape even without rows
        step = max(1, min(int(batch_size), MAX_BATCH_SCORES // self.n_labels))
        for start in range(0, max(X.shape[0], 1), step):
            rows = slice(start, start + step)
            hidden = self.encoder(FeatureBatch.from_csr(X[rows], self.device))
            yield hidden, LabelBatch.from_csr(Y[rows], self.device)


class _EvalMode:
    """Context: eval mode and no autograd, restoring the previous training flag on exit."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.was_training = self.model.training
        self.grad = torch.no_grad()
        self.grad.__enter__()
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        self.grad.__exit__(*exc)
        self.model.train(self.was_training)
