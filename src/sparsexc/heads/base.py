"""Old home of the head protocol, registry and tuning, kept as a re-export for code that imports it.

The protocol is in :mod:`sparsexc.heads.protocol`, the registry in :mod:`sparsexc.heads.registry`, the
tuning in :mod:`sparsexc.heads.tuning` and the top-k in :mod:`sparsexc.core.topk`.
"""

from sparsexc.core.topk import topk_lower_id_ties
from sparsexc.heads.protocol import Head, ScalarTunedHead
from sparsexc.heads.registry import build_head, get_head, list_heads, register_head
from sparsexc.heads.tuning import tune_grid, tune_masks, tune_threshold

__all__ = [
    "Head",
    "ScalarTunedHead",
    "build_head",
    "get_head",
    "list_heads",
    "register_head",
    "topk_lower_id_ties",
    "tune_grid",
    "tune_masks",
    "tune_threshold",
]
