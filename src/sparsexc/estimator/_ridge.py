r"""One-vs-rest ridge regression with its penalty chosen by exact leave-one-out, and Platt-calibrated scores.

The maths of the ``"ridge"`` model family (:mod:`sparsexc.estimator._ridge_family`); numpy and scipy only.

For rows :math:`z_i` (n x d, each scaled to unit L2 norm) and 0/1 label columns :math:`Y` (n x L), every label
gets :math:`\min_{w, b} \sum_i (y_{il} - w^\top z_i - b)^2 + \alpha \lVert w \rVert^2` (the intercept is not
penalised), one :math:`\alpha` for all labels. With the centred rows :math:`Z_c = U \operatorname{diag}(\sqrt{s})
V^\top` (thin SVD, from the eigendecomposition of the smaller of :math:`Z_c^\top Z_c` and :math:`Z_c Z_c^\top`),
the fitted values are :math:`\hat Y = \bar y + H_\alpha (Y - \bar y)` with the hat matrix :math:`H_\alpha = U
\operatorname{diag}(s / (s + \alpha)) U^\top + \mathbf{1}\mathbf{1}^\top / n`, and the leave-one-out residual of
row i is exactly :math:`(y_i - \hat y_i) / (1 - h_{ii})` (no refit): every :math:`\alpha` of :data:`ALPHAS` is
scored from one decomposition, and the one of least leave-one-out squared error (summed over the labels) is kept
(scikit-learn's ``RidgeCV`` does the same; tested against refits without each row). The weights are
:math:`W = Z_c^\top U \operatorname{diag}(1 / (s + \alpha)) U^\top (Y - \bar y)`, :math:`b = \bar y - \mu^\top W`.

Scores become probabilities by Platt scaling, :math:`p = \sigma(a (w_l^\top z + b_l) + c)` with one (a, c) for
all labels, fitted by logistic regression on the leave-one-out scores of the training rows (scores of rows the
model did not train on) with Platt's smoothed targets :math:`(N_+ + 1)/(N_+ + 2)` and :math:`1/(N_- + 2)`, which
keep (a, c) finite when the scores separate the labels. With :math:`a > 0` the map is increasing: the ranking is
the scores'.

The rows may also be mapped to an RBF kernel (:func:`rbf_map`, :func:`choose_fit`),
:math:`k(z, l) = \exp(-\gamma \lVert z - l \rVert^2) = \exp(-2\gamma (1 - z^\top l))` on unit rows: up to
:data:`MAX_LANDMARKS` training rows exact kernel ridge regression with an unpenalised bias, from one
eigendecomposition of the centred Gram matrix (:func:`fit_kernel_ridge`, the same leave-one-out); above, ridge as
above on Nystroem's features :math:`\phi(z) = k(z)^\top K_{mm}^{-1/2}` of that many landmark rows drawn with the seed
(:class:`RbfMap`; with every row a landmark :math:`\Phi\Phi^\top = K`, the exact model again). The kernel fit has
its own alpha by leave-one-out and is kept when its per-row leave-one-out squared errors are below the linear
model's by more than :data:`KERNEL_Z` standard errors, paired over the rows (the simpler model otherwise); it is
tried on real-valued dense rows only. :math:`\gamma` = :data:`RBF_GAMMA`: unit rows put every squared distance in
[0, 4].
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from sparsexc._params import NON_NEGATIVE, POSITIVE, POSITIVE_INT, Params, setting
from sparsexc._preprocess import _unit_rows as _unit_csr_rows
from sparsexc.errors import ConfigurationError

__all__ = [
    "ALPHAS",
    "KERNEL_MIN_DENSITY",
    "KERNEL_Z",
    "MAX_KERNEL_VALUES",
    "MAX_LANDMARKS",
    "RBF_GAMMA",
    "KernelChoice",
    "RbfMap",
    "RidgeFit",
    "RidgeModel",
    "RidgeParams",
    "calibrated",
    "choose_fit",
    "fit_kernel_ridge",
    "fit_ridge",
    "platt",
    "rbf_map",
    "unit_rows",
]

# the penalties tried: 10^-3 .. 10^3, two per decade (the grid stop 60 priced on hold-outs)
ALPHAS: tuple[float, ...] = tuple(float(10.0**e) for e in np.arange(-3.0, 3.01, 0.5))
_RELATIVE_EIGEN_FLOOR = 1e-10  # eigenvalues below this share of the largest are rounding, not directions
_ABSOLUTE_EIGEN_FLOOR = 1e-12  # ... and below this x n (unit rows: the eigenvalues sum to at most n)
# The RBF kernel's width on unit rows, its landmarks, and the paired z of the leave-one-out errors that keeps it
# (stop 62, 20% hold-outs of the training rows of the six dense sets; docs/getting-started.md, the rule table)
RBF_GAMMA = 1.0
MAX_LANDMARKS = 600
KERNEL_Z = 2.0
# sparse rows (text) keep the linear model: on medical the kernel never won (its errors higher on 20 of 20
# hold-outs) and trying it cost 2.8x the fit's CPU (stop 62)
KERNEL_MIN_DENSITY = 0.5
MAX_LANDMARK_VALUES = 10_000_000  # landmarks x features kept dense in the model (40 MB in float32); else linear only
MAX_KERNEL_VALUES = 50_000_000  # rows x landmarks of the kernel features (400 MB in float64); else linear only
_DENSE_SHARE = 0.25  # a CSR matrix with at least this share of its entries non-zero is multiplied as a dense one


KERNELS = ("auto", "linear", "rbf")


@dataclasses.dataclass
class RidgeParams(Params):
    """Settings of the ``"ridge"`` model family (the estimator's ``ridge_params``, ``sparsexc train --ridge-param``).
    The defaults are what ``model="auto"`` was measured with (docs/getting-started.md, "The default model")."""

    kernel: str = setting(
        "auto",
        "auto: ridge on the rows, and on the RBF kernel where the rows are real-valued and dense and its "
        "leave-one-out errors beat the linear model's by kernel_z standard errors (paired over the rows); linear: "
        "the rows only; rbf: the RBF kernel whatever its errors.",
        choices=KERNELS,
    )
    gamma: float = setting(RBF_GAMMA, "Width of the RBF kernel exp(-gamma |z - l|^2) on unit rows.", range=POSITIVE)
    max_landmarks: int = setting(
        MAX_LANDMARKS,
        "Training rows up to which the kernel is exact kernel ridge; above, Nystroem's features of this many "
        "landmark rows drawn with the seed.",
        range=POSITIVE_INT,
    )
    kernel_z: float = setting(
        KERNEL_Z,
        "kernel=auto keeps the kernel where its per-row leave-one-out squared errors are below the linear model's by "
        "more than this many standard errors.",
        range=NON_NEGATIVE,
    )


def unit_rows(X: sp.csr_matrix | np.ndarray) -> sp.csr_matrix | np.ndarray:
    """X (float64) with every non-zero row scaled to unit L2 norm, as the label tree's ``normalize_rows``; a CSR
    matrix at least :data:`_DENSE_SHARE` full becomes a dense array (scipy's sparse products cost several times
    BLAS's on such rows: standardised features are all non-zero). numpy only: importing scikit-learn's
    ``normalize`` cost more CPU than a whole ridge fit of the small sets (0.17 s)."""
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64)
        if X.nnz < _DENSE_SHARE * X.shape[0] * X.shape[1]:
            return _unit_csr_rows(X, np.float64)
        X = X.toarray()
    X = np.asarray(X, dtype=np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    return X / np.where(norms > 0, norms, 1.0)[:, None]


def _dense64(Y: sp.csr_matrix | np.ndarray) -> np.ndarray:
    """``Y`` as a dense float64 array (no copy where it already is one)."""
    return np.asarray(sp.csr_matrix(Y).toarray() if sp.issparse(Y) else Y, dtype=np.float64)


def _decompose(Z: sp.csr_matrix | np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(s, U)``: the non-zero eigenvalues of :math:`Z_c Z_c^\\top` (:math:`Z_c = Z - \\mathbf 1 \\mu^\\top`) and
    their unit eigenvectors (n x r), from the d x d or the n x n eigenproblem, whichever is smaller."""
    n, d = Z.shape
    if d <= n:
        gram = Z.T @ Z
        gram = np.asarray(gram.toarray() if sp.issparse(gram) else gram) - n * np.outer(mu, mu)
        s, V = np.linalg.eigh(gram)
        keep = s > _eigen_floor(s, n)
        s, V = s[keep], V[:, keep]
        ZV = Z @ V - (mu @ V)[None, :]  # Z_c V = U sqrt(s)
        return s, np.asarray(ZV) / np.sqrt(s)[None, :]
    kernel = Z @ Z.T
    return _centred_eigen(np.asarray(kernel.toarray() if sp.issparse(kernel) else kernel, dtype=np.float64))


def _centred_eigen(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``(s, U)``: the eigenvalues above the floor of the centred Gram matrix :math:`H K H` (:math:`H = I -
    \mathbf 1 \mathbf 1^\top / n`) and their unit eigenvectors, which are orthogonal to the ones vector."""
    n = kernel.shape[0]
    kernel = kernel - kernel.mean(axis=0)[None, :]
    kernel = kernel - kernel.mean(axis=1)[:, None]
    s, U = np.linalg.eigh((kernel + kernel.T) / 2)
    keep = s > _eigen_floor(s, n)
    return s[keep], U[:, keep]


def _eigen_floor(s: np.ndarray, n: int) -> float:
    """The eigenvalues at or below this are rounding (identical or constant rows leave only such): relative to
    the largest, and absolute, so that no direction of rounding noise is divided by its tiny sqrt(s)."""
    return max(_RELATIVE_EIGEN_FLOOR * float(s[-1]) if s.size else 0.0, _ABSOLUTE_EIGEN_FLOOR * n)


@dataclasses.dataclass
class RidgeFit:
    """What :func:`fit_ridge` found: weights (d x L), bias (L), the alpha chosen, each alpha's leave-one-out
    squared error (summed over rows and labels; NaN when leave-one-out is undefined: one row), and the
    leave-one-out scores of the training rows (n x L; the fitted values when undefined)."""

    weights: np.ndarray
    bias: np.ndarray
    alpha: float
    loo_errors: dict[float, float]
    loo_scores: np.ndarray


def fit_ridge(
    Z: sp.csr_matrix | np.ndarray, Y: sp.csr_matrix | np.ndarray, alphas: tuple[float, ...] = ALPHAS
) -> RidgeFit:
    """One-vs-rest ridge regression of the 0/1 columns of ``Y`` on the rows ``Z`` (already scaled as the model
    sees them), alpha by exact leave-one-out over ``alphas`` (ties: the larger alpha); see the module docstring.

    On a single row leave-one-out is undefined: the middle alpha of the grid is used and ``loo_scores`` are the
    fitted values.
    """
    mu = np.asarray(Z.mean(axis=0), dtype=np.float64).ravel()
    s, U = _decompose(Z, mu)
    alpha, errors, loo, coefficients, y_bar = _loo_path(s, U, Y, alphas)
    # Z_c^T U = Z^T U - mu (1^T U), and 1^T U = 0: U's columns are orthogonal to the ones vector (Z_c's rows sum to 0)
    weights = np.asarray(Z.T @ coefficients)
    return RidgeFit(weights, y_bar - mu @ weights, alpha, errors, loo)


def fit_kernel_ridge(kernel: np.ndarray, Y: sp.csr_matrix | np.ndarray, alphas: tuple[float, ...] = ALPHAS) -> RidgeFit:
    r"""Kernel ridge regression with an unpenalised bias from the training rows' Gram matrix ``kernel`` (n x n):
    :func:`fit_ridge` in the feature space of the kernel (the same leave-one-out over ``alphas``). The weights are
    on a row's kernel values against the training rows: a row scores :math:`k(z)^\top A + b` (``weights`` = A,
    n x L; :math:`b = \bar y - \bar k^\top A` with :math:`\bar k` the column means of ``kernel``)."""
    s, U = _centred_eigen(kernel)
    alpha, errors, loo, coefficients, y_bar = _loo_path(s, U, Y, alphas)
    return RidgeFit(coefficients, y_bar - kernel.mean(axis=0) @ coefficients, alpha, errors, loo)


def _loo_path(
    s: np.ndarray, U: np.ndarray, Y: sp.csr_matrix | np.ndarray, alphas: tuple[float, ...]
) -> tuple[float, dict[float, float], np.ndarray, np.ndarray, np.ndarray]:
    r"""From the centred rows' eigenpairs: the alpha of least leave-one-out squared error (ties: the larger),
    every alpha's error, the leave-one-out scores (n x L), the dual coefficients
    :math:`U \operatorname{diag}(1 / (s + \alpha)) U^\top (Y - \bar y)` (n x L) and :math:`\bar y`. One row: no
    leave-one-out (NaN errors, the grid's middle alpha, the fitted values as scores)."""
    n = U.shape[0]
    Yd = _dense64(Y)
    y_bar = Yd.mean(axis=0)
    Yc = Yd - y_bar[None, :]
    P = U.T @ Yc  # r x L
    errors: dict[float, float] = {}
    best: tuple[float, float, np.ndarray] | None = None
    squares = U * U
    for alpha in sorted(alphas, reverse=True):  # the larger alpha first: it keeps ties
        f = s / (s + alpha)
        if n < 2:
            errors[alpha] = float("nan")
            continue
        leverage = 1.0 / n + squares @ f
        residual = (Yc - U @ (f[:, None] * P)) / (1.0 - leverage)[:, None]
        errors[alpha] = float(np.sum(residual * residual))
        if best is None or errors[alpha] < best[1] * (1.0 - 1e-9):  # equal up to rounding: the larger alpha
            best = (alpha, errors[alpha], Yd - residual)
    if best is None:  # one row: no leave-one-out
        alpha = float(sorted(alphas)[len(alphas) // 2])
        loo = U @ ((s / (s + alpha))[:, None] * P) + y_bar[None, :]
    else:
        alpha, _, loo = best
    return float(alpha), errors, np.asarray(loo), U @ (P / (s + alpha)[:, None]), y_bar


def platt(scores: np.ndarray, Y: sp.csr_matrix, iterations: int = 100) -> tuple[float, float]:
    r"""``(a, c)`` of :math:`\sigma(a s + c)` fitted to the 0/1 entries of ``Y`` (dense or CSR, the shape of
    ``scores``) with Platt's smoothed targets, by Newton's method with backtracking on the cross-entropy (a
    plain Newton step can overshoot and diverge); ``a`` is kept > 0 (a decreasing map would reverse the ranking),
    else ``(1, 0)``."""
    x = np.asarray(scores, dtype=np.float64).ravel()
    y = _dense64(Y).ravel() > 0
    n_pos = int(y.sum())
    t = np.where(y, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (y.size - n_pos + 2.0))

    def loss(a: float, c: float) -> float:
        v = a * x + c  # -[t log sigma(v) + (1 - t) log sigma(-v)] = log(1 + e^v) - t v
        return float(np.sum(np.logaddexp(0.0, v) - t * v))

    # start at sigma(8 (s - 1/2)): ridge on 0/1 targets scores about 0 and 1, and the fits on the small sets found
    # a = 5-12 with c near -a/2 (fewer Newton steps than from a = 1)
    a, c = 8.0, -4.0
    current = loss(a, c)
    for _ in range(iterations):
        p = expit(a * x + c)
        g = np.array([np.dot(p - t, x), np.sum(p - t)])
        w = p * (1.0 - p)
        h = np.array([[np.dot(w, x * x), np.dot(w, x)], [np.dot(w, x), np.sum(w)]]) + 1e-12 * np.eye(2)
        step = np.linalg.solve(h, g)
        if np.max(np.abs(step)) < 1e-8 * (1.0 + abs(a) + abs(c)):  # converged (the loss no longer resolves it)
            a, c = a - float(step[0]), c - float(step[1])
            break
        size = 1.0
        while size > 1e-8 and not (new := loss(a - size * step[0], c - size * step[1])) <= current:
            size /= 2.0
        if size <= 1e-8:  # no descent left
            break
        a, c, current = a - size * float(step[0]), c - size * float(step[1]), new
    if not (np.isfinite(a) and np.isfinite(c)) or a <= 0:  # degenerate scores (constant): keep the ranking
        return 1.0, 0.0
    return a, c


def rbf_map(Z: sp.csr_matrix | np.ndarray, landmarks: np.ndarray, gamma: float) -> np.ndarray:
    r"""The RBF kernel :math:`\exp(-\gamma \lVert z - l_j \rVert^2)` of every row z of ``Z`` and landmark
    :math:`l_j` (dense float64, n x m); :math:`\exp(-2\gamma (1 - z^\top l_j))` on rows of unit length."""
    inner = Z @ landmarks.T
    inner = np.asarray(inner.toarray() if sp.issparse(inner) else inner, dtype=np.float64)
    if sp.issparse(Z):
        z_sq = np.asarray(sp.csr_matrix(Z).multiply(Z).sum(axis=1)).ravel()
    else:
        z_sq = np.einsum("ij,ij->i", Z, Z)
    l_sq = np.einsum("ij,ij->i", landmarks, landmarks)
    squared = np.maximum(z_sq[:, None] + l_sq[None, :] - 2.0 * inner, 0.0)  # >= 0 despite rounding
    return np.exp(-gamma * squared)


@dataclasses.dataclass
class RbfMap:
    r"""Nystroem's features :math:`\phi(z) = k(z)^\top K_{mm}^{-1/2}` (module docstring): ``landmarks`` (m x d),
    ``projection`` (m x r, r <= m: the eigenvectors of :math:`K_{mm}` above the floor over their square roots)."""

    landmarks: np.ndarray
    projection: np.ndarray
    gamma: float

    @classmethod
    def fit(cls, Z: sp.csr_matrix | np.ndarray, gamma: float, max_landmarks: int, seed: int) -> RbfMap:
        n = Z.shape[0]
        rng = np.random.default_rng(seed)
        rows = np.arange(n) if n <= max_landmarks else np.sort(rng.choice(n, max_landmarks, replace=False))
        landmarks = sp.csr_matrix(Z)[rows].toarray() if sp.issparse(Z) else np.asarray(Z, dtype=np.float64)[rows]
        s, V = np.linalg.eigh(rbf_map(landmarks, landmarks, gamma))
        keep = s > _eigen_floor(s, len(rows))
        return cls(landmarks, V[:, keep] / np.sqrt(s[keep])[None, :], gamma)

    def __call__(self, Z: sp.csr_matrix | np.ndarray) -> np.ndarray:
        return rbf_map(Z, self.landmarks, self.gamma) @ self.projection


@dataclasses.dataclass
class KernelChoice:
    """What :func:`choose_fit` kept: the ridge fit, its weights on the rows (d x L) or, with ``landmarks`` (m x d,
    the RBF kernel won), on a row's kernel values against them (m x L); and the paired z of the RBF fit's
    leave-one-out squared errors minus the linear fit's (negative: the kernel's are lower; NaN when not tried)."""

    fit: RidgeFit
    landmarks: np.ndarray | None
    z: float


def _row_errors(found: RidgeFit, Yd: np.ndarray) -> np.ndarray:
    """Each row's leave-one-out squared error, summed over the labels."""
    residual = Yd - found.loo_scores
    return np.sum(residual * residual, axis=1)


def _rbf_fit(
    Z: sp.csr_matrix | np.ndarray, Y: sp.csr_matrix | np.ndarray, seed: int, params: RidgeParams
) -> tuple[RidgeFit, np.ndarray]:
    """Ridge on the RBF kernel (``params.gamma``) and its landmarks: exact kernel ridge on every row up to
    ``params.max_landmarks`` rows (one eigenproblem), else on Nystroem's features of a seeded sample of that many;
    the weights on a row's kernel values against the landmarks either way."""
    if Z.shape[0] <= params.max_landmarks:
        landmarks = sp.csr_matrix(Z).toarray() if sp.issparse(Z) else np.asarray(Z, dtype=np.float64)
        return fit_kernel_ridge(rbf_map(Z, landmarks, params.gamma), Y), landmarks
    kernel = RbfMap.fit(Z, params.gamma, params.max_landmarks, seed)
    found = fit_ridge(kernel(Z), Y)
    return dataclasses.replace(found, weights=kernel.projection @ found.weights), kernel.landmarks


def choose_fit(
    Z: sp.csr_matrix | np.ndarray, Y: sp.csr_matrix, seed: int, params: RidgeParams | None = None
) -> KernelChoice:
    """Ridge on the rows ``Z`` (unit L2 norm), and on their RBF kernel (:func:`_rbf_fit`; landmarks beyond
    ``params.max_landmarks`` rows drawn with ``seed``). With ``params.kernel`` "auto" (the default) the RBF fit is
    kept when the mean of its per-row leave-one-out squared errors minus the linear fit's is below
    -``params.kernel_z`` standard errors (paired over the rows), and tried on real-valued dense rows only (at least
    :data:`KERNEL_MIN_DENSITY` of the entries non-zero) with at least 3 rows; "linear" never fits it, "rbf" always
    keeps it. The kernel's memory is bounded either way: at most :data:`MAX_LANDMARK_VALUES` landmarks x features
    and :data:`MAX_KERNEL_VALUES` rows x landmarks ("auto" keeps the linear model beyond them, "rbf" is refused).

    Raises
    ------
    ConfigurationError
        ``kernel="rbf"`` on data whose kernel would pass the memory bounds.
    """
    params = RidgeParams() if params is None else params
    n, d = Z.shape
    Yd = _dense64(Y)  # once, for both fits and their z
    linear = fit_ridge(Z, Yd)
    if params.kernel == "linear":
        return KernelChoice(linear, None, float("nan"))
    m = min(n, params.max_landmarks)
    if m * d > MAX_LANDMARK_VALUES or n * m > MAX_KERNEL_VALUES:
        if params.kernel == "rbf":
            raise ConfigurationError(
                f"ridge_params kernel='rbf': {m} landmarks x {d} features and {n} rows x {m} landmarks pass the "
                f"kernel's limits ({MAX_LANDMARK_VALUES:,} and {MAX_KERNEL_VALUES:,} values); lower max_landmarks "
                "or use kernel='linear'"
            )
        return KernelChoice(linear, None, float("nan"))
    stored = sp.csr_matrix(Z).nnz if sp.issparse(Z) else int(np.count_nonzero(Z))
    if params.kernel == "auto" and (n < 3 or stored < KERNEL_MIN_DENSITY * n * d):
        return KernelChoice(linear, None, float("nan"))
    rbf, landmarks = _rbf_fit(Z, Yd, seed, params)
    z = _paired_z(rbf, linear, Yd) if n >= 3 else float("nan")
    if params.kernel == "rbf" or z < -params.kernel_z:
        return KernelChoice(rbf, landmarks, z)
    return KernelChoice(linear, None, z)


def _paired_z(rbf: RidgeFit, linear: RidgeFit, Yd: np.ndarray) -> float:
    """The mean of the rows' leave-one-out squared errors of ``rbf`` minus ``linear`` (labels ``Yd``, dense) over
    its standard error (0 where the differences are the same on every row: nothing tells the fits apart)."""
    diff = _row_errors(rbf, Yd) - _row_errors(linear, Yd)
    spread = float(np.std(diff, ddof=1))
    return float(np.mean(diff)) / (spread / np.sqrt(len(diff))) if spread > 0 else 0.0


@dataclasses.dataclass
class RidgeModel:
    """A fitted one-vs-rest ridge model: ``weights`` float32 (d x L, or m x L on the RBF kernel row), ``bias``
    float32 (L), Platt's ``(a, c)``, and the alpha chosen (recorded); with ``landmarks`` (float32, m x d) the RBF
    kernel of width ``gamma``. A row is scaled to unit L2 norm z (with landmarks: mapped to its kernel row
    :math:`k_j(z) = \\exp(-2\\gamma(1 - z^\\top l_j))`), scored :math:`W^\\top z + b`, and mapped to
    :math:`\\sigma(a s + c)`."""

    weights: np.ndarray
    bias: np.ndarray
    a: float
    c: float
    alpha: float
    single_label: bool = False  # multi-class data: each row's probabilities are normalised to sum to 1
    landmarks: np.ndarray | None = None  # the RBF kernel's landmark rows (m x d); None: linear
    gamma: float = RBF_GAMMA

    @property
    def n_features(self) -> int:
        return int(self.weights.shape[0] if self.landmarks is None else self.landmarks.shape[1])

    @property
    def kernel(self) -> str:
        return "linear" if self.landmarks is None else "rbf"

    @property
    def n_labels(self) -> int:
        return int(self.weights.shape[1])

    @functools.cached_property
    def _weights64(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The weights, bias and landmarks in float64, converted once (not per batch of rows)."""
        landmarks = None if self.landmarks is None else self.landmarks.astype(np.float64)
        return self.weights.astype(np.float64), self.bias.astype(np.float64), landmarks

    def raw_scores(self, X: sp.csr_matrix | np.ndarray) -> np.ndarray:
        """:math:`W^\\top z + b` for every row (float64, n x L), rows scaled to unit L2 norm first (and mapped to
        their kernel rows with landmarks)."""
        weights, bias, landmarks = self._weights64
        Z = unit_rows(X)
        if landmarks is not None:
            Z = rbf_map(Z, landmarks, self.gamma)
        return np.asarray(Z @ weights) + bias[None, :]

    def probabilities(self, X: sp.csr_matrix | np.ndarray) -> np.ndarray:
        """:math:`\\sigma(a s + c)` for every row and label (float32, n x L); see :func:`calibrated`."""
        return calibrated(self.raw_scores(X), self.a, self.c, self.single_label)


def calibrated(scores: np.ndarray, a: float, c: float, single_label: bool) -> np.ndarray:
    """Platt's :math:`\\sigma(a s + c)` of raw scores (float32); with ``single_label`` (every training row had one
    label: multi-class data) each row divided by its sum, a distribution over the labels (one-vs-rest's usual
    multi-class probabilities, as scikit-learn's ``OneVsRestClassifier``). Either way increasing in the scores."""
    p = expit(a * np.asarray(scores, dtype=np.float64) + c)
    if single_label:
        p /= np.maximum(p.sum(axis=1, keepdims=True), np.finfo(np.float64).tiny)
    return p.astype(np.float32)
