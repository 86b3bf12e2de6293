"""sparsexc.models: sparse encoders (configured by :class:`EncoderParams`), the encoder + head model, and the
same model scored over a label tree's shortlist (:class:`ShortlistModel`)."""

from typing import Any

from sparsexc._params import EncoderParams
from sparsexc.models.batch import FeatureBatch, LabelBatch
from sparsexc.models.encoder import DENSE_BATCH_DENSITY, DENSE_BATCH_MAX_CELLS, SparseEncoder, dense_pays
from sparsexc.models.model import XCModel
from sparsexc.models.shortlist import ShortlistModel, shortlist_heads

__all__ = [
    "DENSE_BATCH_DENSITY",
    "DENSE_BATCH_MAX_CELLS",
    "EncoderParams",
    "FeatureBatch",
    "LabelBatch",
    "ShortlistModel",
    "SparseEncoder",
    "XCModel",
    "dense_pays",
    "model_from_config",
    "shortlist_heads",
]


def model_from_config(config: dict[str, Any]) -> XCModel:
    """The model of a :meth:`XCModel.config` (a :class:`ShortlistModel` when it has a ``"shortlist"`` entry),
    with fresh weights."""
    return ShortlistModel.from_config(config) if "shortlist" in config else XCModel.from_config(config)
