"""sparsexc.estimator: the scikit-learn estimator and its model files."""

from sparsexc.estimator.classifier import DEFAULT_LR, MAX_DENSE_ENTRIES, XCClassifier

__all__ = ["DEFAULT_LR", "MAX_DENSE_ENTRIES", "XCClassifier"]
