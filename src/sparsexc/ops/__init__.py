"""Differentiable maps and losses: sparsemax, the sparsemax loss and sparsemax attention."""

from ._simplex import AUTO_BISECT_MAX_K, AUTO_SORT_MAX_K, AUTO_TOPK_K
from .attention import SparsemaxAttention, sparsemax_attention
from .losses import SparsemaxLoss, sparsemax_loss
from .sparsemax import Sparsemax, sparsemax

__all__ = [
    "AUTO_BISECT_MAX_K",
    "AUTO_SORT_MAX_K",
    "AUTO_TOPK_K",
    "Sparsemax",
    "SparsemaxAttention",
    "SparsemaxLoss",
    "sparsemax",
    "sparsemax_attention",
    "sparsemax_loss",
]
