"""sparsexc.models: sparse encoders (configured by :class:`EncoderParams`) and the encoder + head model."""

from sparsexc._params import EncoderParams
from sparsexc.models.batch import FeatureBatch, LabelBatch
from sparsexc.models.encoder import SparseEncoder
from sparsexc.models.model import XCModel

__all__ = ["EncoderParams", "FeatureBatch", "LabelBatch", "SparseEncoder", "XCModel"]
