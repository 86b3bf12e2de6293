"""sparsexc.embeddings: label embeddings computed from the training labels.

:func:`pmi_embeddings` gives unit-norm label vectors from the PMI of label co-occurrence (Chollet, 2016),
used by the ``"label-embedding"`` head.
"""

from sparsexc.embeddings.pmi import DIAGONAL_MODES, pmi_embeddings, pmi_matrix, pmi_svd

__all__ = ["DIAGONAL_MODES", "pmi_embeddings", "pmi_matrix", "pmi_svd"]
