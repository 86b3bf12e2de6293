"""sparsexc.estimator: the scikit-learn estimator and its model files, and the SDLGM autoencoders."""

from sparsexc.estimator.classifier import DEFAULT_LR, MAX_DENSE_ENTRIES, XCClassifier
from sparsexc.estimator.serialization import ModelFormatError
from sparsexc.estimator.vae import GaussianVAE, SparseVAE, VAEParams

__all__ = [
    "DEFAULT_LR",
    "MAX_DENSE_ENTRIES",
    "GaussianVAE",
    "ModelFormatError",
    "SparseVAE",
    "VAEParams",
    "XCClassifier",
]
