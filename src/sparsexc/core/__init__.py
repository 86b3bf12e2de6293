"""sparsexc.core: the ground floor that heads, models, training, distributed and latent code share.

* :class:`LabelBatch` - the positive labels of a mini-batch as CSR pieces (the currency between trainer and
  heads);
* :class:`OutputLayer` / :class:`SparseGradientOutputLayer` - the affine output layer, dense or over raw
  sparse features with a row-sparse gradient;
* :func:`topk_lower_id_ties` - top-k of dense scores, ties to the lower label id.

Nothing here imports a package above it (see ``tests/test_layers.py`` for the layer order); the
sparse-gradient parameter flag and gather live one floor lower, in :mod:`sparsexc.ops.sparse_grad`.
"""

from typing import TYPE_CHECKING

from sparsexc._lazy import lazy_exports

if TYPE_CHECKING:
    from sparsexc.core.labels import LabelBatch
    from sparsexc.core.layers import OutputLayer, SparseGradientOutputLayer, use_sparse_output_layers
    from sparsexc.core.topk import topk_lower_id_ties

# imported on first use (sparsexc._lazy): importing one module of this package imports no other
_EXPORTS = {
    "LabelBatch": "sparsexc.core.labels",
    "OutputLayer": "sparsexc.core.layers",
    "SparseGradientOutputLayer": "sparsexc.core.layers",
    "use_sparse_output_layers": "sparsexc.core.layers",
    "topk_lower_id_ties": "sparsexc.core.topk",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "LabelBatch",
    "OutputLayer",
    "SparseGradientOutputLayer",
    "topk_lower_id_ties",
    "use_sparse_output_layers",
]
