"""sparsexc.models: sparse encoders and the encoder + head model."""

from sparsexc.models.batch import FeatureBatch, LabelBatch
from sparsexc.models.encoder import SparseEncoder
from sparsexc.models.model import XCModel

__all__ = ["FeatureBatch", "LabelBatch", "SparseEncoder", "XCModel"]
