"""sparsexc.heads: output layers on one protocol (see ``docs/heads/README.md``).

A head turns hidden vectors into a loss, label scores, top-k labels and label sets. Heads are looked up
by name (:func:`get_head`); adding one means writing one module with a :class:`Head` subclass decorated
with :func:`register_head`, listed in :data:`sparsexc.heads.registry.BUILTIN_HEAD_MODULES` (a lookup by name
imports them) and its public names below.

The set-rule search a head's tuning runs on is public too: :func:`tune_threshold` (rules ``{j : s_j > t}``),
:func:`tune_masks` (any rule given as a boolean mask per grid value) and :func:`tune_grid` (any rule given as
label sets); :func:`topk_recall` measures an approximate top-k (the label-embedding head's ``ann="hnsw"``)
against the exact one.
"""

from typing import TYPE_CHECKING

from sparsexc._lazy import lazy_exports

if TYPE_CHECKING:
    from sparsexc.core.labels import LabelBatch
    from sparsexc.core.layers import OutputLayer
    from sparsexc.heads.label_embedding import LabelEmbeddingHead, LabelEmbeddingHeadParams, topk_recall
    from sparsexc.heads.nce import NCEHead, NCEHeadParams
    from sparsexc.heads.negative_sampling import NegativeSamplingHead, NegativeSamplingHeadParams
    from sparsexc.heads.protocol import Head, ScalarTunedHead
    from sparsexc.heads.registry import (
        build_head,
        describe_scores,
        document_scores,
        get_head,
        list_heads,
        register_head,
    )
    from sparsexc.heads.sampled_softmax import SampledSoftmaxHead, SampledSoftmaxHeadParams
    from sparsexc.heads.sdlgm import SparseLatentHead, SparseLatentHeadParams
    from sparsexc.heads.sigmoid import SigmoidHead, SigmoidHeadParams
    from sparsexc.heads.softmax import SoftmaxHead, SoftmaxHeadParams
    from sparsexc.heads.sparsemax import SparsemaxHead, SparsemaxHeadParams
    from sparsexc.heads.tuning import tune_grid, tune_masks, tune_threshold

# imported on first use (sparsexc._lazy): importing one module of this package imports no other
_EXPORTS = {
    "LabelBatch": "sparsexc.core.labels",
    "OutputLayer": "sparsexc.core.layers",
    "LabelEmbeddingHead": "sparsexc.heads.label_embedding",
    "LabelEmbeddingHeadParams": "sparsexc.heads.label_embedding",
    "topk_recall": "sparsexc.heads.label_embedding",
    "NCEHead": "sparsexc.heads.nce",
    "NCEHeadParams": "sparsexc.heads.nce",
    "NegativeSamplingHead": "sparsexc.heads.negative_sampling",
    "NegativeSamplingHeadParams": "sparsexc.heads.negative_sampling",
    "Head": "sparsexc.heads.protocol",
    "ScalarTunedHead": "sparsexc.heads.protocol",
    "build_head": "sparsexc.heads.registry",
    "describe_scores": "sparsexc.heads.registry",
    "document_scores": "sparsexc.heads.registry",
    "get_head": "sparsexc.heads.registry",
    "list_heads": "sparsexc.heads.registry",
    "register_head": "sparsexc.heads.registry",
    "SampledSoftmaxHead": "sparsexc.heads.sampled_softmax",
    "SampledSoftmaxHeadParams": "sparsexc.heads.sampled_softmax",
    "SparseLatentHead": "sparsexc.heads.sdlgm",
    "SparseLatentHeadParams": "sparsexc.heads.sdlgm",
    "SigmoidHead": "sparsexc.heads.sigmoid",
    "SigmoidHeadParams": "sparsexc.heads.sigmoid",
    "SoftmaxHead": "sparsexc.heads.softmax",
    "SoftmaxHeadParams": "sparsexc.heads.softmax",
    "SparsemaxHead": "sparsexc.heads.sparsemax",
    "SparsemaxHeadParams": "sparsexc.heads.sparsemax",
    "tune_grid": "sparsexc.heads.tuning",
    "tune_masks": "sparsexc.heads.tuning",
    "tune_threshold": "sparsexc.heads.tuning",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "Head",
    "LabelBatch",
    "LabelEmbeddingHead",
    "LabelEmbeddingHeadParams",
    "NCEHead",
    "NCEHeadParams",
    "NegativeSamplingHead",
    "NegativeSamplingHeadParams",
    "OutputLayer",
    "SampledSoftmaxHead",
    "SampledSoftmaxHeadParams",
    "ScalarTunedHead",
    "SigmoidHead",
    "SigmoidHeadParams",
    "SoftmaxHead",
    "SoftmaxHeadParams",
    "SparseLatentHead",
    "SparseLatentHeadParams",
    "SparsemaxHead",
    "SparsemaxHeadParams",
    "build_head",
    "describe_scores",
    "document_scores",
    "get_head",
    "list_heads",
    "register_head",
    "topk_recall",
    "tune_grid",
    "tune_masks",
    "tune_threshold",
]
