"""Old home of the sparse-gradient output layer, kept as a re-export.

The layer lives in :mod:`sparsexc.core.layers` (below heads and models, which both use it) and the
parameter flag in :mod:`sparsexc.ops.sparse_grad`; this module re-exports the names its users know.
"""

from sparsexc.core.layers import SparseGradientOutputLayer, use_sparse_output_layers
from sparsexc.ops.sparse_grad import (
    SparseGradientParameter,
    gather_sparse_grad,
    has_sparse_gradient,
    mark_sparse_gradient,
)

__all__ = [
    "SparseGradientOutputLayer",
    "SparseGradientParameter",
    "gather_sparse_grad",
    "has_sparse_gradient",
    "mark_sparse_gradient",
    "use_sparse_output_layers",
]
