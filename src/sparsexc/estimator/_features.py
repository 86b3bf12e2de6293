"""The features ``X`` an :class:`~sparsexc.estimator.XCClassifier` accepts, with scikit-learn's messages.

:func:`sparsexc._sparse.as_features` does the conversion; this adds what scikit-learn's estimator checks
expect of a dense input: numbers stored as objects are converted, complex numbers, 1-D arrays and empty
arrays are refused with the messages scikit-learn's own estimators give.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from sparsexc._sparse import as_features
from sparsexc.errors import ConfigurationError

__all__ = ["checked_features"]


def checked_features(
    X: Any,
    name: str = "X",
    *,
    n_features: int | None = None,
    owner: str = "the model",
    fitting: bool = False,
) -> sp.csr_matrix:
    """``X`` as :func:`~sparsexc._sparse.as_features` returns it, after scikit-learn's input rules.

    Raises
    ------
    ValueError
        1-D input ("Reshape your data"), complex numbers ("Complex data not supported"), no feature column
        (or, when ``fitting``, no row), NaN / infinite values or a wrong feature count.
    TypeError
        An object array holding something that is not a number.
    """
    if not sp.issparse(X):
        arr = np.asarray(X)
        if arr.ndim < 2:
            raise ConfigurationError(
                f"{name} must be 2-D (n_samples, n_features); got an array of shape {arr.shape}. "
                "Reshape your data either using array.reshape(-1, 1) if your data has a single "
                "feature or array.reshape(1, -1) if it contains a single sample."
            )
        if arr.dtype == object:
            arr = arr.astype(np.float64)  # numbers stored as objects; anything else is a TypeError naming it
        X = arr
    if X.dtype.kind == "c":
        raise ConfigurationError(f"Complex data not supported: {name} holds complex numbers")
    if X.ndim == 2 and X.shape[1] == 0:
        raise ConfigurationError(
            f"{name}: found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required."
        )
    if fitting and X.shape[0] == 0:
        raise ConfigurationError(
            f"{name}: found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required."
        )
    return as_features(X, name=name, n_features=n_features, owner=owner)
