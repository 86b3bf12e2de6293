"""sparsexc.estimator: the scikit-learn estimator and its model files, and the SDLGM autoencoders."""

from typing import TYPE_CHECKING

from sparsexc._lazy import lazy_exports

if TYPE_CHECKING:
    from sparsexc.estimator.classifier import DEFAULT_LR, MAX_DENSE_ENTRIES, XCClassifier
    from sparsexc.estimator.serialization import ModelFormatError
    from sparsexc.estimator.vae import GaussianVAE, SparseVAE, VAEParams

# imported on first use (sparsexc._lazy): XCClassifier imports no torch until a neural model needs it, the
# autoencoders (torch modules) only when asked for
_EXPORTS = {
    "DEFAULT_LR": "sparsexc.estimator.classifier",
    "MAX_DENSE_ENTRIES": "sparsexc.estimator.classifier",
    "XCClassifier": "sparsexc.estimator.classifier",
    "ModelFormatError": "sparsexc.estimator.serialization",
    "GaussianVAE": "sparsexc.estimator.vae",
    "SparseVAE": "sparsexc.estimator.vae",
    "VAEParams": "sparsexc.estimator.vae",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "DEFAULT_LR",
    "MAX_DENSE_ENTRIES",
    "GaussianVAE",
    "ModelFormatError",
    "SparseVAE",
    "VAEParams",
    "XCClassifier",
]
