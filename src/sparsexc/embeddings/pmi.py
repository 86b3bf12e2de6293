r"""Label embeddings from the pointwise mutual information of label co-occurrence (Chollet, 2016).

Chollet (arXiv 1607.05691) embeds C labels on the unit sphere of a d-dimensional space so that labels that
co-occur lie close, by factorising their PMI matrix (in the style of Levy & Goldberg's PMI-SVD word
vectors). The paper's details beyond the abstract are recalled, not verified (see
``shared/reference/papers.md`` section 4), so every choice below is an explicit, documented option.

Statistics over the N training rows of the 0/1 label matrix Y (only its sparsity pattern counts):

* :math:`n_i` rows with label i, :math:`n_{ij}` rows with both i and j (the sparse product :math:`Y^\top Y`);
* :math:`P(i, j) = n_{ij} / N` and the marginals with *context-distribution smoothing* exponent
  :math:`\alpha` (Levy et al. 2015, applied to both sides so the matrix stays symmetric):
  :math:`P_\alpha(i) = \frac{n_i^\alpha}{\sum_k n_k^\alpha} \cdot \frac{\sum_k n_k}{N}` (the smoothed
  distribution over labels times the mean number of labels per row), so :math:`\alpha = 1` gives the plain
  :math:`P(i) = n_i / N`; :math:`\alpha < 1` raises the probability of rare labels and so damps PMI's bias
  towards them;
* :math:`M_{ij} = \log P(i, j) - \log P_\alpha(i) - \log P_\alpha(j) - s` for **co-occurring pairs only**
  (:math:`n_{ij} > 0`); pairs that never co-occur have PMI :math:`-\infty` and are stored as 0 (the sparse
  matrix's implicit zero, as in the public re-implementation the reference notes cite). ``shift`` is
  :math:`s` (Levy & Goldberg's :math:`\log k`); ``positive=True`` keeps :math:`\max(M_{ij}, 0)` (PPMI /
  SPPMI). ``diagonal="pmi"`` (default) keeps the self-pairs, :math:`M_{ii} = \log(P(i) / P_\alpha(i)^2) - s`
  (the self-information :math:`-\log P(i)` when :math:`\alpha = 1`); ``diagonal="zero"`` drops them, as that
  re-implementation does. With the diagonal dropped, two labels that always occur together have PMI rows that
  differ in exactly their two largest entries (:math:`0` against :math:`-\log P(i)`), so they need not end
  up close (``tests/embeddings`` shows a case with cosine near 0.1); with it kept their rows are equal.

The C x C matrix is never dense: it has the non-zero pattern of :math:`Y^\top Y`. It is factorised by a
seeded truncated randomized SVD, :math:`M \approx U_d \Sigma_d V_d^\top`, and the embedding is
:math:`E = U_d \Sigma_d^{1/2}` with rows normalised to unit length.

Labels whose row of :math:`E` is (numerically) zero -- labels that never occur, labels that never co-occur
with another label when ``diagonal="zero"``, or labels whose PMI row lies outside the top-d subspace --
get a **random unit vector** drawn from ``seed``: it is nearly orthogonal to every other embedding (expected
:math:`|\cos| \approx 1/\sqrt{d}`), so such a label is close to no other label, and two such labels are
not confused with each other. When ``dim`` exceeds C the factorisation has at most C components, and the
remaining coordinates of the PMI embeddings are 0.
"""

from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np
import scipy.sparse as sp

from sparsexc._sparse import as_label_matrix
from sparsexc.errors import ConfigurationError

__all__ = ["DIAGONAL_MODES", "ZERO_ROW_TOL", "pmi_embeddings", "pmi_matrix", "pmi_svd"]

DIAGONAL_MODES: tuple[str, ...] = ("pmi", "zero")
# a row of U Sigma^(1/2) shorter than this fraction of the longest row counts as zero (gets the fallback)
ZERO_ROW_TOL = 1e-6


def _check_options(alpha: float, shift: float, diagonal: str) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha <= 1.0:
        raise ConfigurationError(f"alpha={alpha!r} must be a number in (0, 1] (1 = no smoothing)")
    if isinstance(shift, bool) or not isinstance(shift, (int, float)) or not np.isfinite(shift):
        raise ConfigurationError(f"shift={shift!r} must be a finite number")
    if diagonal not in DIAGONAL_MODES:
        raise ConfigurationError(
            f"diagonal={diagonal!r} is not allowed; choose one of {', '.join(map(repr, DIAGONAL_MODES))}"
        )


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigurationError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def pmi_matrix(
    Y: Any,
    *,
    alpha: float = 1.0,
    positive: bool = False,
    shift: float = 0.0,
    diagonal: str = "pmi",
) -> sp.csr_matrix:
    r"""The sparse C x C PMI matrix of the label co-occurrences of ``Y`` (see the module docstring).

    Parameters
    ----------
    Y : CSR / dense 0/1 indicator or list of label-id lists, shape (N, C)
    alpha : float in (0, 1]
        Context-distribution smoothing exponent of the marginals (1 = none).
    positive : bool
        Keep only positive values (PPMI).
    shift : float
        Subtracted from every stored value before ``positive`` (SPPMI with ``shift = log k``).
    diagonal : {"pmi", "zero"}
        Keep :math:`M_{ii}` (default), or drop the self-pairs.

    Returns
    -------
    scipy.sparse.csr_matrix, float64, shape (C, C), symmetric, with sorted indices; entries only where
    :math:`n_{ij} > 0` (fewer with ``positive``).
    """
    _check_options(alpha, shift, diagonal)
    Y = as_label_matrix(Y, name="Y")
    n_rows, n_labels = Y.shape
    B = sp.csr_matrix((np.ones(Y.nnz), Y.indices, Y.indptr), shape=Y.shape)  # pattern in float64: exact counts
    counts = np.asarray(B.sum(axis=0)).ravel()
    M = sp.csr_matrix(B.T @ B)
    M.sum_duplicates()
    M.sort_indices()
    if diagonal == "zero":
        M = sp.csr_matrix(M - sp.diags(M.diagonal()))
        M.eliminate_zeros()
        M.sort_indices()
    if M.nnz == 0:
        return sp.csr_matrix((n_labels, n_labels), dtype=np.float64)
    occurring = counts > 0
    log_marginal = np.zeros(n_labels)  # only read for occurring labels: every stored pair has n_i, n_j > 0
    log_marginal[occurring] = alpha * np.log(counts[occurring])
    # P_a(i) = (n_i^a / sum_k n_k^a) * (sum_k n_k / N): the smoothed distribution over labels, rescaled by
    # the mean number of labels per row so that a = 1 gives exactly P(i) = n_i / N
    log_marginal -= np.log(np.sum(counts[occurring] ** alpha)) - np.log(counts.sum() / n_rows)
    rows = np.repeat(np.arange(n_labels), np.diff(M.indptr))
    # log P(i,j) - log P_a(i) - log P_a(j) - s
    M.data = np.log(M.data / n_rows) - log_marginal[rows] - log_marginal[M.indices] - float(shift)
    if positive:
        M.data = np.maximum(M.data, 0.0)
        M.eliminate_zeros()
    return M


def pmi_svd(M: sp.spmatrix, dim: int, *, seed: int = 0, n_iter: int = 7, n_oversamples: int = 10) -> np.ndarray:
    r"""Raw embedding :math:`U_d \Sigma_d^{1/2}` of a sparse C x C matrix by seeded randomized SVD.

    Returns a float64 (C, dim) array; with ``dim > C`` the columns past C are 0, and an all-zero ``M``
    gives all zeros. The sign of each component follows scikit-learn's ``flip_sign`` rule (deterministic).
    """
    dim = _check_int("dim", dim, 1)
    n_labels = M.shape[0]
    out = np.zeros((n_labels, dim))
    k = min(dim, n_labels)
    if M.nnz == 0:
        return out
    # imported here: scikit-learn costs 64 MiB of RSS on import, and the label tree (which imports this module
    # for its PMI representation) otherwise trains, predicts and loads without it
    from sklearn.utils.extmath import randomized_svd

    U, S, _ = randomized_svd(
        sp.csr_matrix(M),
        n_components=k,
        n_oversamples=n_oversamples,
        n_iter=n_iter,
        random_state=np.random.RandomState(seed),
    )
    out[:, :k] = U * np.sqrt(S)
    return out


@overload
def pmi_embeddings(
    Y: Any,
    dim: int,
    *,
    alpha: float = 1.0,
    positive: bool = False,
    shift: float = 0.0,
    diagonal: str = "pmi",
    seed: int = 0,
    n_iter: int = 7,
    return_fallback: Literal[False] = False,
) -> np.ndarray: ...


@overload
def pmi_embeddings(
    Y: Any,
    dim: int,
    *,
    alpha: float = 1.0,
    positive: bool = False,
    shift: float = 0.0,
    diagonal: str = "pmi",
    seed: int = 0,
    n_iter: int = 7,
    return_fallback: Literal[True],
) -> tuple[np.ndarray, np.ndarray]: ...


def pmi_embeddings(
    Y: Any,
    dim: int,
    *,
    alpha: float = 1.0,
    positive: bool = False,
    shift: float = 0.0,
    diagonal: str = "pmi",
    seed: int = 0,
    n_iter: int = 7,
    return_fallback: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    r"""Unit-norm label embeddings :math:`E = \mathrm{normalise}(U_d \Sigma_d^{1/2})` of the PMI matrix of ``Y``.

    Parameters
    ----------
    Y : CSR / dense 0/1 indicator or list of label-id lists, shape (N, C)
    dim : int >= 1
        Embedding dimension d.
    alpha, positive, shift, diagonal
        PMI options of :func:`pmi_matrix`.
    seed : int
        Seeds the randomized SVD and the fallback vectors; the same seed gives the same embeddings.
    n_iter : int >= 0
        Power iterations of the randomized SVD (more = closer to the exact truncated SVD).
    return_fallback : bool
        Also return the boolean (C,) mask of the labels that got a random fallback vector.

    Returns
    -------
    E : float32 array (C, dim), every row of unit L2 norm; and the fallback mask if asked for.
    """
    dim = _check_int("dim", dim, 1)
    seed = _check_int("seed", seed, 0)
    n_iter = _check_int("n_iter", n_iter, 0)
    M = pmi_matrix(Y, alpha=alpha, positive=positive, shift=shift, diagonal=diagonal)
    E = pmi_svd(M, dim, seed=seed, n_iter=n_iter)
    norms = np.linalg.norm(E, axis=1)
    longest = float(norms.max()) if norms.size else 0.0
    fallback = norms <= ZERO_ROW_TOL * longest if longest > 0 else np.ones(E.shape[0], dtype=bool)
    if fallback.any():
        # a seeded random direction: close to no other label (see the module docstring)
        E[fallback] = np.random.default_rng(seed).standard_normal((int(fallback.sum()), dim))
        norms[fallback] = np.linalg.norm(E[fallback], axis=1)
    E = (E / norms[:, None]).astype(np.float32)
    return (E, fallback) if return_fallback else E
