"""Label propensities for propensity-scored metrics (Jain, Prabhu & Varma, KDD 2016)."""

from __future__ import annotations

from typing import Any

import numpy as np

from sparsexc._sparse import as_label_matrix
from sparsexc.errors import ConfigurationError

__all__ = ["inverse_propensity"]


def inverse_propensity(Y_train: Any, A: float = 0.55, B: float = 1.5, *, n_labels: int | None = None) -> np.ndarray:
    r"""Inverse propensity of every label, estimated from the training labels (Jain et al. 2016).

    With :math:`N` training examples and :math:`N_l` of them carrying label :math:`l`:
    :math:`C = (\ln N - 1)(B + 1)^A` and :math:`1/p_l = 1 + C (N_l + B)^{-A}`.
    Rare labels get large weights; a label never seen in training gets the largest, :math:`1 + C B^{-A}`.

    Parameters
    ----------
    Y_train : CSR 0/1 indicator, dense 0/1 array or list of label-id lists, shape (n_samples, n_labels)
    A, B : float
        The data-set constants of the paper: 0.55 and 1.5 by default; 0.6 and 2.6 for Amazon, 0.5 and 0.4
        for Wikipedia data sets.
    n_labels : int, optional
        Width of the label space when ``Y_train`` is a list of label-id lists.

    Returns
    -------
    ndarray, shape (n_labels,), float64
    """
    for name, value in (("A", A), ("B", B)):
        if not np.isfinite(value) or value <= 0:
            raise ConfigurationError(f"{name} must be a positive number; got {value!r}")
    Y = as_label_matrix(Y_train, n_labels=n_labels, name="Y_train")
    n_samples = Y.shape[0]
    if n_samples == 0:
        raise ConfigurationError("Y_train has no rows; propensities need the training label counts")
    label_counts = np.bincount(Y.indices, minlength=Y.shape[1]).astype(np.float64)
    C = (np.log(n_samples) - 1.0) * (B + 1.0) ** A
    return 1.0 + C * (label_counts + B) ** (-A)
