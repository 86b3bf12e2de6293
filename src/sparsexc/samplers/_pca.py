"""Whitened PCA of sparse features as one affine map, for the tree sampler's low-dimensional inputs."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import PCA

__all__ = ["DENSE_PCA_MAX_ENTRIES", "whitened_pca"]

# below this many entries (N x F) the features are densified and decomposed exactly (LAPACK)
DENSE_PCA_MAX_ENTRIES = 4_000_000
# components whose variance is below this fraction of the largest are dropped (set to zero)
_RELATIVE_VARIANCE_FLOOR = 1e-10


def whitened_pca(
    X: sp.csr_matrix, k: int, *, standardize: bool = False, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    r"""The affine map :math:`\tilde x = x P + c` onto the top ``k`` principal components, whitened.

    With column means :math:`\mu`, principal directions :math:`v_j` and variances :math:`\lambda_j` of the
    (optionally standardised) training features, :math:`\tilde x_j = (x - \mu)^\top v_j / \sqrt{\lambda_j}`,
    so on the training rows every component has mean 0 and variance 1. ``standardize=True`` first divides
    each feature by its standard deviation (the authors' notebook: PCA of the correlation matrix).

    Sparse input is never centred explicitly: scikit-learn's ARPACK solver centres implicitly (its start
    vector is seeded by ``seed``); small inputs (at most ``DENSE_PCA_MAX_ENTRIES`` entries) use an exact dense SVD.
    When the data have fewer than ``k`` usable directions, the missing components are zero columns.

    Returns
    -------
    P : float64 (F, k)
    c : float64 (k,)
    """
    N, F = X.shape
    scale = np.ones(F)
    if standardize:
        mean = np.asarray(X.mean(axis=0)).ravel()
        var = np.asarray(X.multiply(X).mean(axis=0)).ravel() - mean**2
        std = np.sqrt(np.maximum(var, 0.0))
        scale = np.divide(1.0, std, out=np.zeros(F), where=std > 0)
        X = sp.csr_matrix(X @ sp.diags(scale))
    dense = N * F <= DENSE_PCA_MAX_ENTRIES
    k_eff = min(k, N, F) if dense else min(k, min(N, F) - 1)
    P = np.zeros((F, k))
    c = np.zeros(k)
    if k_eff < 1 or N < 2:
        return P, c
    if dense:
        pca = PCA(n_components=k_eff, svd_solver="full").fit(X.toarray().astype(np.float64))
    else:
        pca = PCA(n_components=k_eff, svd_solver="arpack", random_state=seed).fit(X.astype(np.float64))
    variance = np.asarray(pca.explained_variance_, dtype=np.float64)
    keep = variance > _RELATIVE_VARIANCE_FLOOR * max(float(variance.max()), np.finfo(float).tiny)
    whitened = pca.components_.T / np.sqrt(np.where(keep, variance, 1.0))  # (F, k_eff)
    whitened[:, ~keep] = 0.0
    P[:, :k_eff] = whitened * scale[:, None]
    c[:k_eff] = -(np.asarray(pca.mean_, dtype=np.float64) @ whitened)
    return P, c
