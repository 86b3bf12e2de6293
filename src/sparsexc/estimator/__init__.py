"""sparsexc.estimator: the scikit-learn estimator and its model files."""

from sparsexc.estimator.classifier import DEFAULT_LR, MAX_DENSE_ENTRIES, XCClassifier
from sparsexc.estimator.serialization import ModelFormatError

__all__ = ["DEFAULT_LR", "MAX_DENSE_ENTRIES", "ModelFormatError", "XCClassifier"]
