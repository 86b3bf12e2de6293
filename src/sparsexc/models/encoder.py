"""Encoders from sparse features to hidden vectors."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from sparsexc._params import EncoderParams
from sparsexc.errors import ConfigurationError
from sparsexc.models.batch import FeatureBatch
from sparsexc.ops.sparse_grad import mark_sparse_gradient

__all__ = ["DENSE_BATCH_DENSITY", "DENSE_BATCH_MAX_CELLS", "SparseEncoder", "dense_pays"]

# The linear model multiplies its batch by the (n_labels, n_features) output layer. torch's CSR product (forward
# and the weight's gradient, one thread, B = 256) is level with a dense GEMM at 10% of the cells stored (0.6-1.3x)
# and 1.2-4x slower at 20%, 4-15x at 100%; where the product is large (19,005 labels, or 5,000 features) it is
# already 1.2-1.3x slower at 10% (benchmarks/results/dense_batches.md). So a batch at least this dense is
# multiplied dense. The cap keeps the dense copy small (2^24 cells = 64 MiB of float32).
DENSE_BATCH_DENSITY = 0.1
DENSE_BATCH_MAX_CELLS = 1 << 24

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


class SparseEncoder(nn.Module):
    r"""Sparse features -> hidden vectors.

    With ``hidden_sizes = (h_1, ..., h_k)``:
    :math:`h^{(1)} = \mathrm{drop}(a(X W_1 + b_1))`, :math:`h^{(i)} = \mathrm{drop}(a(h^{(i-1)} W_i + b_i))`;
    the first layer is an ``EmbeddingBag`` (mode "sum", per-sample weights = feature values), so a batch of
    CSR rows costs O(nnz * h_1) and X is never densified. ``out_dim = h_k``.

    With ``hidden_sizes = ()`` (the linear model) the encoder is the identity on the sparse input: it
    returns the batch as a ``torch.sparse_csr`` (B, n_features) tensor, ``out_dim = n_features``, and the
    head's output layer (``n_labels x n_features`` + bias) is the full-rank linear model. A batch with at
    least :data:`DENSE_BATCH_DENSITY` of its cells stored (and at most :data:`DENSE_BATCH_MAX_CELLS` cells)
    is returned dense instead: the same values, multiplied by a dense GEMM, which is faster there (dense
    features such as embeddings or an SVD). Not with ``sparse_gradients``, whose output layer reads the
    batch's feature ids.

    With ``params.sparse_gradients`` the first layer's table gets row-sparse gradients
    (``embedding_bag(..., sparse=True)``: only the rows of the features in the batch); for the linear model
    :class:`~sparsexc.models.XCModel` swaps the head's output layer for the sparse-gradient one instead.

    Parameters
    ----------
    n_features : int
    params : EncoderParams or dict or None
    """

    def __init__(self, n_features: int, params: EncoderParams | dict | None = None) -> None:
        super().__init__()
        if n_features < 1:
            raise ValueError(f"SparseEncoder: n_features={n_features} must be positive")
        self.n_features = int(n_features)
        self.params = params if isinstance(params, EncoderParams) else EncoderParams.from_dict(params)
        sizes = self.params.hidden_sizes
        self.out_dim = sizes[-1] if sizes else self.n_features
        if not sizes:
            self.embedding = None
            self.first_bias = None
            self.mlp = nn.Sequential()
            return
        self.embedding = nn.EmbeddingBag(self.n_features, sizes[0], mode="sum", include_last_offset=True)
        bound = 1.0 / math.sqrt(self.n_features)  # torch.nn.Linear's rule for a layer with n_features inputs
        nn.init.uniform_(self.embedding.weight, -bound, bound)
        self.first_bias = nn.Parameter(torch.zeros(sizes[0]))
        if self.params.sparse_gradients:
            self.embedding.weight = mark_sparse_gradient(self.embedding.weight)
        layers: list[nn.Module] = [_ACTIVATIONS[self.params.activation]()]
        if self.params.dropout > 0:
            layers.append(nn.Dropout(self.params.dropout))
        for width_in, width_out in itertools.pairwise(sizes):
            layers.append(nn.Linear(width_in, width_out))
            layers.append(_ACTIVATIONS[self.params.activation]())
            if self.params.dropout > 0:
                layers.append(nn.Dropout(self.params.dropout))
        self.mlp = nn.Sequential(*layers)

    @property
    def is_identity(self) -> bool:
        """True for the linear model (no hidden layer): hidden vectors are the sparse features themselves."""
        return self.embedding is None

    def forward(self, batch: FeatureBatch) -> torch.Tensor:
        """Hidden vectors (B, out_dim): dense, or ``torch.sparse_csr`` when :attr:`is_identity` and the batch
        is sparse (see the class docstring)."""
        if batch.n_features != self.n_features:
            raise ConfigurationError(
                f"the batch has {batch.n_features} features; the encoder expects {self.n_features}"
            )
        if self.embedding is None:
            if not self.params.sparse_gradients and dense_pays(batch):
                return batch.to_dense()
            return batch.to_sparse_csr()
        assert self.first_bias is not None  # built together with the embedding
        first = F.embedding_bag(
            batch.indices,
            self.embedding.weight,
            batch.offsets,
            mode="sum",
            per_sample_weights=batch.values,
            include_last_offset=True,
            sparse=self.params.sparse_gradients,
        )
        return self.mlp(first + self.first_bias)

    def config(self) -> dict:
        return {"n_features": self.n_features, "params": self.params.to_dict()}


def dense_pays(batch: FeatureBatch) -> bool:
    """Whether the linear model multiplies ``batch`` dense: at least :data:`DENSE_BATCH_DENSITY` of its cells
    stored and at most :data:`DENSE_BATCH_MAX_CELLS` cells."""
    return batch.n_rows * batch.n_features <= DENSE_BATCH_MAX_CELLS and batch.density >= DENSE_BATCH_DENSITY
