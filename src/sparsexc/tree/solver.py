"""Many L2-regularised linear classifiers on the same sparse rows at once: the node solver of the label tree.

A tree node trains ``K`` binary classifiers (one per child, or one per label of a leaf cluster) on the rows that
reach it. They share ``X`` and are independent, so :func:`fit_linear` solves them together: for every column
``k`` of the targets it minimises LIBLINEAR's primal

.. math::

    f_k(w) = \\tfrac12 \\lVert w \\rVert^2 + C \\sum_i \\xi(y_{ik}\\, w^\\top \\tilde x_i),
    \\qquad \\tilde x_i = [x_i, b],\\quad y_{ik} \\in \\{-1, +1\\},

with ``xi(m) = max(0, 1 - m)^2`` (``"squared_hinge"``, LIBLINEAR ``-s 1/2``) or ``xi(m) = log(1 + e^{-m})``
(``"logistic"``, ``-s 0/7``); the bias feature ``b`` is appended and its weight regularised, as LIBLINEAR ``-B b``.

The algorithm is LIBLINEAR's primal Newton method (version >= 2.40: preconditioned conjugate gradients with the
quadratic-decrease stopping rule, then a backtracking line search), run on all ``K`` columns at once: every
matrix product is one sparse x dense product ``X @ V`` or ``X.T @ G`` over the columns still running, and each
column has its own step, its own CG length and its own stop. A node with few rows and many features (a leaf
cluster) runs the same iterations on the span of its rows (``w = X.T b``, dense n x n Gram matrix), which gives
the same iterates without the d x K arrays; rows with at least half their cells stored (standardised
real-valued features) are multiplied as dense arrays by BLAS (:class:`_DensePrimal`). The choice against
LIBLINEAR's dual coordinate descent (scikit-learn's ``liblinear``, one column per call) was made by measurement
(``benchmarks/results/tree_solver_speed.md``, CPU s at about the same distance to the optimum): 100 leaf-like
nodes (K = 100) 13-25 s against 27-35 s, i.e. 1.1-2.7x faster and 10-70x closer to the optimum; root-like
nodes (44-50k rows, K = 16) 2.3-15 s against 3.0-9.6 s: the dual method stays up to 1.5x faster there on the
squared hinge.

Stopping rule (LIBLINEAR's, per column): stop when

.. math::

    \\lVert \\nabla f_k(w) \\rVert \\le \\mathrm{tol} \\cdot \\frac{\\max(\\min(n^+_k, n^-_k), 1)}{n}
    \\cdot \\lVert \\nabla f_k(0) \\rVert,

or after ``max_iter`` Newton steps, or when a step no longer decreases ``f_k`` (relative change <= 1e-12, or
the line search fails), as LIBLINEAR does.

:func:`drop_empty_columns` restricts a node's problem to the features its rows use; :func:`prune` turns the
weights into the sparse layout the model stores.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from sparsexc._blas import one_blas_thread
from sparsexc.errors import ConfigurationError
from sparsexc.tree._dcd import dcd_squared_hinge, used_columns

__all__ = ["DEFAULT_TOL", "LOSSES", "SOLVERS", "drop_empty_columns", "fit_linear", "fit_rows", "objective", "prune"]

LOSSES = ("squared_hinge", "logistic")
# "auto": dual coordinate descent for the squared hinge, Newton for the logistic loss
SOLVERS = ("auto", "dcd", "newton")
# each solver's own stopping tolerance (LIBLINEAR's defaults for the rule each one uses)
DEFAULT_TOL = {"dcd": 0.1, "newton": 0.01}

_ALPHA_PCG = 0.01  # LIBLINEAR's mix of the identity and the Hessian diagonal in the preconditioner
_EPS_CG = 0.5  # LIBLINEAR's relative tolerance of the CG quadratic decrease
_ETA = 0.01  # Armijo constant of the line search
_MAX_LINESEARCH = 20  # halvings of the step before the line search gives up
_MAX_CG_ITER = 250  # a cap on CG steps per Newton step (LIBLINEAR: the dimension; PCG needs far fewer)
_ROW_SPAN_MAX_ROWS = 4096  # the Gram matrix of a node with more rows is not worth its n^2 memory
_ROW_SPAN_RATIO = 32.0  # see _row_span_pays: the measured break-even is near 40
# a node's rows with at least this share of stored entries are multiplied as dense arrays (see _dense_pays)
DENSE_SHARE = 0.5


# -- arguments -------------------------------------------------------------------------------------------------
def _check_settings(loss: str, C: float | np.ndarray, tol: float, max_iter: int, bias: float) -> None:
    """Check the scalar settings (a C given per column is checked by :func:`_column_C`)."""
    if loss not in LOSSES:
        raise ConfigurationError(f"loss must be one of {', '.join(map(repr, LOSSES))}; got {loss!r}")
    for name, value in (("tol", tol),) if isinstance(C, np.ndarray) else (("C", C), ("tol", tol)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise ConfigurationError(f"{name} must be a positive number; got {value!r}")
        if not (np.isfinite(value) and value > 0):
            raise ConfigurationError(f"{name} must be a positive finite number (> 0); got {value!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ConfigurationError(f"max_iter must be an integer >= 1; got {max_iter!r}")
    if isinstance(bias, bool) or not isinstance(bias, (int, float, np.floating, np.integer)):
        raise ConfigurationError(f"bias must be a number >= 0 (0: no bias feature); got {bias!r}")
    if not (np.isfinite(bias) and bias >= 0):
        raise ConfigurationError(f"bias must be a finite number >= 0 (0: no bias feature); got {bias!r}")


def _column_C(C: float | np.ndarray, K: int, method: str) -> float | np.ndarray:
    """``C`` as the solver takes it: one float for every column, or (``newton`` only) a float64 array (K,) of
    each column's own C; a ConfigurationError for an array of another shape, a C <= 0 or another solver."""
    if not isinstance(C, np.ndarray):
        return float(C)  # checked by _check_settings
    if method != "newton":
        raise ConfigurationError(f"C as an array (one C per column) needs solver='newton'; got solver {method!r}")
    if C.shape != (K,) or C.dtype.kind not in "iuf" or not np.all(np.isfinite(C) & (C > 0)):
        raise ConfigurationError(
            f"C as an array must hold one positive finite number per column of Y ({K}); got {C.dtype} {C.shape}"
        )
    return C.astype(np.float64)


def _solver(solver: str, loss: str, W0: object) -> str:
    """The method ``solver`` names for ``loss`` ("auto" resolved), or a ConfigurationError."""
    if solver not in SOLVERS:
        raise ConfigurationError(f"solver must be one of {', '.join(map(repr, SOLVERS))}; got {solver!r}")
    method = ("dcd" if loss == "squared_hinge" else "newton") if solver == "auto" else solver
    if method == "dcd" and loss != "squared_hinge":
        raise ConfigurationError(f"solver='dcd' solves loss='squared_hinge' only; got loss={loss!r} (use 'newton')")
    if method == "dcd" and W0 is not None:
        raise ConfigurationError("W0 (a warm start) needs solver='newton'")
    return method


def _as_csr(X: object) -> sp.csr_matrix:
    if not (sp.issparse(X) or isinstance(X, np.ndarray)) or np.ndim(X) != 2:  # type: ignore[arg-type]
        raise ConfigurationError(f"X must be a 2-D scipy.sparse matrix (CSR, n x d); got {type(X).__name__}")
    return sp.csr_matrix(X)


def _as_signs(Y: object, n: int) -> np.ndarray:
    """The targets as a dense (n, K) float64 array of +-1 (nonzero = +1)."""
    return np.where(_as_positive(Y, n), 1.0, -1.0)


def _as_positive(Y: object, n: int) -> np.ndarray:
    """The targets as a dense (n, K) bool array (nonzero = positive)."""
    if sp.issparse(Y):
        Yc = sp.csr_matrix(Y)
        Yc.eliminate_zeros()
        positive = Yc.toarray() != 0
    elif isinstance(Y, np.ndarray) and Y.ndim == 2:
        positive = Y != 0
    else:
        raise ConfigurationError(
            f"Y must be a 2-D scipy.sparse matrix or a 2-D bool array (n x K); got {type(Y).__name__}"
            + (f" with {Y.ndim} dimensions" if isinstance(Y, np.ndarray) else "")
        )
    if positive.shape[0] != n:
        raise ConfigurationError(f"Y must have one row per row of X ({n}); got shape {positive.shape}")
    return positive


def _with_bias(X: sp.csr_matrix, bias: float) -> sp.csr_matrix:
    """``[X, bias]`` as CSR float64 (the bias column appended; all zero, and then not stored, if ``bias`` is 0)."""
    X = sp.csr_matrix(X, dtype=np.float64)
    n = X.shape[0]
    column = sp.csr_matrix(np.full((n, 1), float(bias))) if bias > 0 else sp.csr_matrix((n, 1))
    out = sp.hstack([X, column], format="csr", dtype=np.float64)
    out.sort_indices()
    return out


# -- the losses, elementwise on margins M = y * (X w) (n x K) ---------------------------------------------------
@dataclass(frozen=True)
class _Loss:
    """Per-row terms of one loss: value, first derivative factor and Hessian weight, all on the margins."""

    name: str

    def value(self, M: np.ndarray) -> np.ndarray:
        """Column sums of xi(M)."""
        if self.name == "squared_hinge":
            return np.square(np.maximum(0.0, 1.0 - M)).sum(axis=0)
        return np.logaddexp(0.0, -M).sum(axis=0)

    def dmargin(self, M: np.ndarray) -> np.ndarray:
        """xi'(M): the gradient of the loss part is ``C * X.T @ (y * xi'(M))``."""
        if self.name == "squared_hinge":
            return -2.0 * np.maximum(0.0, 1.0 - M)
        return -expit(-M)

    def curvature(self, M: np.ndarray) -> np.ndarray:
        """xi''(M) (the generalised one for the squared hinge): the Hessian is ``I + C X.T diag(xi'') X``."""
        if self.name == "squared_hinge":
            return np.where(M < 1.0, 2.0, 0.0)
        p = expit(M)
        return p * (1.0 - p)


def objective(
    X: sp.spmatrix,
    Y: object,
    W: np.ndarray,
    *,
    loss: str = "squared_hinge",
    C: float | np.ndarray = 1.0,
    bias: float = 1.0,
) -> np.ndarray:
    """The primal objective ``f_k(W[:, k])`` of every column, in float64 (shape (K,)).

    ``W`` has shape (d + 1, K), its last row the bias weights, as :func:`fit_linear` returns; ``C`` one float
    or each column's own (K,), as :func:`fit_linear` takes it.
    """
    _check_settings(loss, C, 1.0, 1, bias)
    Xb = _with_bias(_as_csr(X), bias)
    Ys = _as_signs(Y, Xb.shape[0])
    C = _column_C(C, Ys.shape[1], "newton")
    W = np.asarray(W, dtype=np.float64)
    if W.shape != (Xb.shape[1], Ys.shape[1]):
        raise ConfigurationError(f"W must have shape (d + 1, K) = {(Xb.shape[1], Ys.shape[1])}; got {W.shape}")
    margins = Ys * np.asarray(Xb @ W)
    return 0.5 * np.einsum("ij,ij->j", W, W) + C * _Loss(loss).value(margins)


def _dot(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Column-wise dot products."""
    return np.einsum("ij,ij->j", A, B)


# -- the solver --------------------------------------------------------------------------------------------------
def fit_linear(
    X: sp.spmatrix,
    Y: object,
    *,
    loss: str = "squared_hinge",
    C: float | np.ndarray = 1.0,
    tol: float | None = None,
    max_iter: int = 100,
    bias: float = 1.0,
    W0: np.ndarray | None = None,
    solver: str = "newton",
    seed: int = 0,
) -> np.ndarray:
    """Fit one L2-regularised linear classifier per column of ``Y`` on the rows of ``X``.

    ``solver="newton"`` (the default here) is the primal Newton-CG described above, for both losses;
    ``"dcd"`` is LIBLINEAR's dual coordinate descent for the squared hinge (:mod:`sparsexc.tree._dcd`, compiled
    by numba, the peers' solver: measured 2.8x less CPU than Newton for a whole debian-deps tree at the same
    validation accuracy); ``"auto"`` takes ``dcd`` for the squared hinge and ``newton`` for the logistic loss.

    Parameters
    ----------
    X : scipy.sparse matrix, shape (n, d)
        The rows (CSR float32 usually; any sparse format is converted).
    Y : scipy.sparse matrix or bool array, shape (n, K)
        The targets: a nonzero entry is a positive (``y = +1``), anything else a negative (``y = -1``). A column
        with one class only is allowed (its optimum is unique too).
    loss : {"squared_hinge", "logistic"}
        ``xi(m) = max(0, 1 - m)^2`` or ``log(1 + exp(-m))`` of the margin ``m = y w.[x, bias]``.
    C : float > 0, or array of shape (K,) (``newton`` only)
        Weight of the loss against ``||w||^2 / 2``: one for every column, or column k's own ``C[k]``. Columns
        with their own C are the separate fits of each C, in one solve: every column keeps its own step, CG
        length and stop, so the cross-validation of C solves a fold's Cs x labels at once
        (:func:`~sparsexc.tree.model.cross_validate_C`).
    tol : float > 0 or None
        None: the solver's default, :data:`DEFAULT_TOL` (dcd 0.1, newton 0.01). For ``dcd``: LIBLINEAR's dual
        rule, stop when max - min of the projected gradients over the rows is <= tol. For ``newton``:
        LIBLINEAR's ``eps`` of its primal solvers: column ``k`` stops when ``||grad f_k(w)|| <= tol *
        max(min(n_pos, n_neg), 1) / n * ||grad f_k(0)||``. The default 0.01 is LIBLINEAR's for this rule (``-s 0``,
        ``-s 2``); it lands about as close to the optimum (relative excess ~1e-3 to 1e-5) as the peers' dual
        coordinate descent with its own ``eps = 0.1``, while 0.1 in this rule stops far earlier (excess up to
        1e-1 on squared hinge; benchmarks/tree_solver_speed.md).
    max_iter : int >= 1
        Newton steps at most per column.
    bias : float >= 0
        Value of the appended bias feature (LIBLINEAR ``-B``); its weight is regularised like the others. With
        0 there is no bias: the last row of the result is 0.
    W0 : array of shape (d + 1, K), optional
        Starting weights (a warm start; ``newton`` only); zero by default.
    solver : {"newton", "dcd", "auto"}
        See above; ``dcd`` needs ``loss="squared_hinge"``.
    seed : int
        Seeds ``dcd``'s row order (deterministic for a seed); ``newton`` has no random choice.

    Returns
    -------
    numpy.ndarray of shape (d + 1, K), float32
        Column ``k`` minimises ``f_k``; the last row is the bias weight. The score of a row ``x`` is
        ``x @ W[:-1] + bias * W[-1]``.

    Raises
    ------
    ConfigurationError
        An unknown ``loss``, ``C``/``tol`` not > 0, ``max_iter`` < 1, ``bias`` < 0, or shapes that disagree.
    """
    method = _solver(solver, loss, W0)
    tol = DEFAULT_TOL[method] if tol is None else tol
    _check_settings(loss, C, tol, max_iter, bias)
    X = _as_csr(X)
    n, d = X.shape
    Ys = _as_signs(Y, n)
    K = Ys.shape[1]
    C = _column_C(C, K, method)
    if W0 is not None:
        W0 = np.asarray(W0)
        if W0.shape != (d + 1, K):
            raise ConfigurationError(f"W0 must have shape (d + 1, K) = {(d + 1, K)}; got {W0.shape}")
    if K == 0:
        return np.zeros((d + 1, 0), dtype=np.float32)
    if n == 0:  # no loss term: the optimum is w = 0
        return np.zeros((d + 1, K), dtype=np.float32)
    if method == "dcd":
        Xd = _kernel_csr(X)
        return dcd_squared_hinge(
            Xd.indptr, Xd.indices, Xd.data, Ys > 0, d, C=float(C), bias=bias, tol=tol, max_iter=max_iter, seed=seed
        )
    Xb = _with_bias(X, bias)
    if W0 is None and _row_span_pays(n, d + 1, Xb.nnz):
        # dense n x n products: one BLAS thread, because the tree trains nodes in parallel and a multi-threaded
        # BLAS on small matrices spins (measured: 6x the CPU seconds on a busy 2-core machine)
        with one_blas_thread():
            space: _Primal | _RowSpan = _RowSpan(Xb)
            W = np.zeros((n, K))
            _Newton(space, Ys, _Loss(loss), C).run(W, float(tol), int(max_iter))
    else:
        W = np.zeros((d + 1, K)) if W0 is None else W0.astype(np.float64, copy=True)
        dense = _dense_pays(Xb)
        # dense rows: BLAS products, one thread as above (small matrices, nodes in parallel)
        with one_blas_thread() if dense else contextlib.nullcontext():
            space = _DensePrimal(Xb) if dense else _Primal(Xb)
            _Newton(space, Ys, _Loss(loss), C).run(W, float(tol), int(max_iter))
    return space.weights(W).astype(np.float32)


def fit_rows(
    X: sp.csr_matrix,
    rows: np.ndarray,
    Y: object,
    *,
    loss: str = "squared_hinge",
    C: float | np.ndarray = 1.0,
    tol: float | None = None,
    max_iter: int = 100,
    bias: float = 1.0,
    solver: str = "newton",
    seed: int = 0,
    alpha: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_linear` on the rows ``rows`` of ``X``, over the columns those rows use (a tree node's problem).

    Returns ``(W, used)``: ``used`` the increasing int64 ids of the columns of ``X[rows]`` with a stored entry,
    ``W`` (len(used) + 1, K) float32 the weights on those columns, then the bias weight; the weights of every
    other column are 0 (an unused feature's weight is 0 at the optimum). Equal to
    ``fit_linear(drop_empty_columns(X[rows])[0], Y, ...)``, but the ``dcd`` solver reads the rows and columns
    of ``X`` in place through index arrays (:func:`~sparsexc.tree._dcd.used_columns`), with no copy of
    ``X[rows]``: a node's memory is O(len(rows) x K + d), not a share of X. (A column that holds only explicitly
    stored zeros may be listed in ``used`` then, with weight 0.) ``Y``: (len(rows), K) targets, as
    :func:`fit_linear` takes them.

    ``alpha`` (``dcd`` only): (len(rows), K) float64 duals, C-ordered, >= 0, to warm-start from; overwritten with
    the solution's duals (see :func:`~sparsexc.tree._dcd.dcd_squared_hinge`). Along increasing C on the same
    rows (the cross-validation of C) each solve then starts from the previous C's solution, which is feasible
    for the next: the solution is the same optimum to the solver's tolerance, reached in fewer passes.
    """
    method = _solver(solver, loss, None)
    if alpha is not None and method != "dcd":
        raise ConfigurationError("alpha (a dual warm start) needs solver='dcd'")
    if method != "dcd":
        X_used, used = drop_empty_columns(_as_csr(X)[rows])
        W = fit_linear(X_used, Y, loss=loss, C=C, tol=tol, max_iter=max_iter, bias=bias, solver=solver, seed=seed)
        return W, used
    tol = DEFAULT_TOL[method] if tol is None else tol
    _check_settings(loss, C, tol, max_iter, bias)
    C = _column_C(C, 0, method)  # an array: the error that it needs newton
    Xk = _kernel_csr(X)
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= Xk.shape[0])):
        raise ConfigurationError(f"rows must be a 1-D array of row ids in 0..{Xk.shape[0] - 1}")
    positive = _as_positive(Y, rows.shape[0])
    used, remap = used_columns(Xk.indptr, Xk.indices, rows, Xk.shape[1])
    if positive.shape[1] == 0 or rows.size == 0:
        return np.zeros((used.size + 1, positive.shape[1]), dtype=np.float32), used
    W = dcd_squared_hinge(
        Xk.indptr,
        Xk.indices,
        Xk.data,
        positive,
        used.size,
        C=float(C),
        bias=bias,
        tol=tol,
        max_iter=max_iter,
        seed=seed,
        rows=rows,
        remap=remap,
        alpha=alpha,
    )
    return W, used


def _kernel_csr(X: object) -> sp.csr_matrix:
    """``X`` as CSR with float32/float64 values, sharing its arrays when they already are (no copy of X)."""
    M = _as_csr(X)
    return M if M.dtype in (np.float32, np.float64) else M.astype(np.float64)


class _Primal:
    """The weights themselves as the unknowns: ``w`` in R^(d+1), margins ``X w``, the Euclidean inner product."""

    def __init__(self, Xb: sp.csr_matrix) -> None:
        self.X = Xb
        self.XT = Xb.T.tocsr()  # X.T @ G as a row-wise product (faster than scipy's CSC scatter)
        # Hessian products (most of the work) in float32: twice as fast, and CG needs no more precision; the
        # gradient, the line search and so the stopping rule stay in float64
        self.X32 = Xb.astype(np.float32)
        self.XT32 = self.XT.astype(np.float32)
        self.X2T = self.XT32.multiply(self.XT32).tocsr()

    def margins(self, V: np.ndarray) -> np.ndarray:
        return np.asarray(self.X @ V)

    def gradient(self, V: np.ndarray, coef: np.ndarray) -> np.ndarray:
        """``v + X.T coef`` (the gradient is ``w + X.T (C y xi')``)."""
        return V + self.XT @ coef

    def hess_vec(self, V: np.ndarray, weights: np.ndarray, MV: np.ndarray) -> np.ndarray:
        """``v + X.T diag(weights) X v`` (``MV``, v's image, is v itself here)."""
        XV = np.asarray(self.X32 @ V.astype(np.float32))
        XV *= weights
        return V + self.XT32 @ XV

    def dot(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        return _dot(A, B)

    def image(self, V: np.ndarray) -> np.ndarray:
        """``M v`` with ``dot(a, v) = a . M v``: the Euclidean inner product's ``M = I``, so v itself."""
        return V

    def image_of(self, V: np.ndarray, XV: np.ndarray) -> np.ndarray:
        """v's image given its margins ``XV``: v itself."""
        return V

    def preconditioner(self, weights: np.ndarray) -> np.ndarray:
        """LIBLINEAR's: ``(1 - a) + a diag(H)`` with ``a = 0.01``."""
        return (1.0 - _ALPHA_PCG) + _ALPHA_PCG * (1.0 + self.X2T @ weights)

    def weights(self, V: np.ndarray) -> np.ndarray:
        return V


class _DensePrimal(_Primal):
    """:class:`_Primal` with the rows held as dense arrays: the same products by BLAS instead of scipy's sparse
    kernels, for rows with at least :data:`DENSE_SHARE` of their entries stored (standardised real-valued
    features are all non-zero). The same iterates up to float rounding; measured (``XCClassifier()``'s whole
    fit, Newton, fresh processes, CPU s after / before, with the row span's Gram matrix): scene 0.38x, yeast 0.46x,
    birds 0.62x, cal500 0.68x, emotions 0.69x, flags 1.00x, the same C and hold-out P@k on every seed
    (``benchmarks/results/default_fit_cpu_s51_dense.md``)."""

    def __init__(self, Xb: sp.csr_matrix) -> None:
        self.X = Xb.toarray()  # float64, as the sparse path's X
        self.XT = self.X.T
        self.X32 = self.X.astype(np.float32)
        self.XT32 = self.X32.T
        self.X2T = np.square(self.X32).T


def _dense_pays(Xb: sp.csr_matrix) -> bool:
    """Whether :class:`_DensePrimal` takes the node: at least :data:`DENSE_SHARE` of the cells stored. Its
    arrays (16 bytes a cell) then take no more memory than the sparse path's five CSR copies (about 10-12
    bytes per stored entry each)."""
    n, d = Xb.shape
    return n * d > 0 and Xb.nnz >= DENSE_SHARE * n * d


class _RowSpan:
    """The same problem on the span of the rows: ``w = X.T b`` with ``b`` in R^n, for nodes with few rows.

    Newton's iterates from ``w = 0`` never leave the span of the rows (the gradient ``w + X.T c`` and the
    Hessian ``I + X.T D X`` keep it), so the method runs on the coefficients ``b`` with the Gram matrix
    ``G = X X.T`` (dense, n x n): margins ``G b``, gradient coefficients ``b + c``, Hessian ``b + D (G b)``, inner
    products ``<X.T a, X.T b> = a.G b``. Every quantity, the stopping rule's norms included, is the one of the
    weight space, while the work is dense n x n products instead of d x K arrays (d >> n at a leaf).
    """

    def __init__(self, Xb: sp.csr_matrix) -> None:
        if _dense_pays(Xb):  # the Gram matrix by BLAS: birds' whole default fit 0.11 -> 0.08 CPU s, one thread
            self.X: sp.csr_matrix | np.ndarray = Xb.toarray()
            self.G = self.X @ self.X.T
        else:
            self.X = Xb
            self.G = np.asarray((Xb @ Xb.T).todense())

    def margins(self, V: np.ndarray) -> np.ndarray:
        return self.G @ V

    def gradient(self, V: np.ndarray, coef: np.ndarray) -> np.ndarray:
        return V + coef

    def hess_vec(self, V: np.ndarray, weights: np.ndarray, MV: np.ndarray) -> np.ndarray:
        """``v + diag(weights) G v`` from v's image ``MV = G v``: no product."""
        return V + weights * MV

    def dot(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        return _dot(A, self.G @ B)

    def image(self, V: np.ndarray) -> np.ndarray:
        """``G v``: ``<X.T a, X.T v> = a . G v``."""
        return self.G @ V

    def image_of(self, V: np.ndarray, XV: np.ndarray) -> np.ndarray:
        """v's image given its margins: the margins ``G v`` themselves."""
        return XV

    def preconditioner(self, weights: np.ndarray) -> np.ndarray:
        return np.ones(weights.shape)

    def weights(self, V: np.ndarray) -> np.ndarray:
        return np.asarray(self.X.T @ V)


def _row_span_pays(n: int, d: int, nnz: int) -> bool:
    """Whether :class:`_RowSpan` is cheaper: its CG step costs ~4 dense n x n x K products, the weight space's
    two sparse products and ~15 passes over d x K arrays. Measured (synthetic text, K = 100, tol 0.01, CPU s
    primal / row span): n = 350, d = 10k: 1.2 / 0.15; n = 1000: 3.6 / 1.3; n = 2000: 7.0 / 4.6; n = 4000, d = 37k:
    8.9 / 19.8, i.e. break-even near ``4 n^2 = 40 (2 nnz + 15 d)``. Never with at least as many rows as
    columns: the n x K coefficients are then no smaller than the d x K weights, and n^2 >= n d >= nnz (measured,
    the squared hinge's whole default fit with the Newton solver, dense rows, CPU s row span / weight space:
    yeast, nodes of ~1000 rows x 104 columns, 5.43 / 0.69; scene, ~800 x 295, 5.95 / 1.28; emotions, ~260 x
    73, 0.32 / 0.19: benchmarks/results/default_fit_cpu_row_span.md)."""
    return n < d and n <= _ROW_SPAN_MAX_ROWS and 4 * n * n <= _ROW_SPAN_RATIO * (2 * nnz + 15 * d)


class _Newton:
    """LIBLINEAR's ``NEWTON::newton`` on all columns at once (state of one :func:`fit_linear` call)."""

    def __init__(self, space: _Primal | _RowSpan, Ys: np.ndarray, loss: _Loss, C: float | np.ndarray) -> None:
        self.space = space
        self.Y = Ys
        self.loss = loss
        self.C = C  # one C for every column, or each column's own C (K,)

    def _C(self, cols: np.ndarray) -> float | np.ndarray:
        """The C of the columns ``cols``: the one C, or their own (broadcast over the rows)."""
        return self.C[cols] if isinstance(self.C, np.ndarray) else self.C

    # f and its gradient on a subset of columns `cols`, from the margins XW = X w
    def _fun(self, W: np.ndarray, XW: np.ndarray, cols: np.ndarray) -> np.ndarray:
        margins = self.Y[:, cols] * XW
        return 0.5 * self.space.dot(W, W) + self._C(cols) * self.loss.value(margins)

    def _grad(self, W: np.ndarray, XW: np.ndarray, cols: np.ndarray) -> np.ndarray:
        Ysub = self.Y[:, cols]
        return self.space.gradient(W, self._C(cols) * Ysub * self.loss.dmargin(Ysub * XW))

    def _norm(self, A: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum(self.space.dot(A, A), 0.0))

    def run(self, W: np.ndarray, tol: float, max_iter: int) -> None:
        """Minimise every column of ``W`` (coordinates of the space) in place."""
        n, K = self.Y.shape
        every = np.arange(K)
        positives = (self.Y > 0).sum(axis=0)
        scale = tol * np.maximum(np.minimum(positives, n - positives), 1) / n
        gnorm0 = self._norm(self._grad(np.zeros_like(W), np.zeros((n, K)), every))
        XW = self.space.margins(W) if W.any() else np.zeros((n, K))
        f = self._fun(W, XW, every)
        G = self._grad(W, XW, every)
        running = self._norm(G) > scale * gnorm0
        for _ in range(max_iter):
            cols = np.flatnonzero(running)
            if cols.size == 0:
                break
            Wc, XWc, Gc = W[:, cols], XW[:, cols], G[:, cols]
            weights = (self._C(cols) * self.loss.curvature(self.Y[:, cols] * XWc)).astype(np.float32)
            S = self._pcg(Gc, self.space.preconditioner(weights), weights)
            step, f_new, XS = self._line_search(Wc, XWc, S, Gc, f[cols], cols)
            moved = step > 0
            Wc += step * S
            XWc += step * XS
            W[:, cols], XW[:, cols] = Wc, XWc
            G[:, cols] = self._grad(Wc, XWc, cols)
            small_change = np.abs(f[cols] - f_new) <= 1e-12 * np.abs(f_new)
            f[cols] = np.where(moved, f_new, f[cols])
            done = ~moved | small_change | (self._norm(G[:, cols]) <= scale[cols] * gnorm0[cols])
            running[cols[done]] = False

    def _pcg(self, G: np.ndarray, precond: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Approximate Newton steps ``S`` (one per column): preconditioned CG on ``H s = -g``, each column
        stopping by LIBLINEAR's rule on the decrease of the quadratic model ``Q(s) = g.s + s.H.s / 2``.

        The working arrays hold only the columns still iterating: they shrink when columns stop, so no step
        indexes columns. Inner products are ``a . M b`` with ``M b`` the space's image of b (:meth:`_Primal.image`,
        :meth:`_RowSpan.image`): the residual's image is computed once per CG step, the images of the direction
        and the step follow by the same updates as the vectors (``M`` is linear), so the row span does one Gram
        product per CG step instead of four. Its preconditioner is the identity, so the image of ``z = r / p`` is
        ``M r / p`` in both spaces (in the weight space ``M`` is the identity).
        """
        out = np.zeros_like(G)
        ids = np.arange(G.shape[1])  # columns of G that the working arrays hold
        S = np.zeros_like(G)
        R = -G
        Z = R / precond
        D = Z.copy()
        MR = self.space.image(R)
        euclidean = MR is R  # the weight space: every image is the vector itself
        MS, MD = (S, D) if euclidean else (np.zeros_like(G), MR / precond)
        zTr = _dot(Z, MR)
        cgtol = np.minimum(_EPS_CG, np.sqrt(np.sqrt(zTr)))
        Q = np.zeros(G.shape[1])
        for iteration in range(1, _MAX_CG_ITER + 1):
            if iteration == 1:
                stop = ~(zTr > 0)  # a zero gradient: the step is 0
            else:
                HD = self.space.hess_vec(D, weights, MD)
                dHd = _dot(MD, HD)
                ok = dHd > 1e-16  # LIBLINEAR: avoid 0/0
                alpha = np.where(ok, zTr / np.where(ok, dHd, 1.0), 0.0)
                S += alpha * D
                if not euclidean:
                    MS += alpha * MD
                R -= alpha * HD
                newQ = -0.5 * _dot(MS, R - G)
                Qdiff = newQ - Q
                stop = ~ok | ~((newQ <= 0) & (Qdiff <= 0)) | ((iteration - 1) * Qdiff >= cgtol * newQ)
                Q = newQ
            if stop.any():
                out[:, ids[stop]] = S[:, stop]
                go = ~stop
                ids, S, R, D, G, precond, weights = (ids[go], *(a[:, go] for a in (S, R, D, G, precond, weights)))
                MS, MD = (S, D) if euclidean else (MS[:, go], MD[:, go])
                zTr, cgtol, Q = zTr[go], cgtol[go], Q[go]
                if ids.size == 0:
                    return out
            if iteration > 1:
                MR = self.space.image(R)
                Z = R / precond
                zTr_new = _dot(Z, MR)
                beta = zTr_new / zTr
                D *= beta
                D += Z
                if not euclidean:
                    MD *= beta
                    MD += MR / precond
                zTr = zTr_new
        out[:, ids] = S
        return out

    def _line_search(
        self, W: np.ndarray, XW: np.ndarray, S: np.ndarray, G: np.ndarray, f: np.ndarray, cols: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Backtracking from step 1 (halving) until ``f(w + a s) - f(w) <= eta a g.s``; 0 where it fails.

        Uses ``X (w + a s) = X w + a X s``: one product per Newton step, whatever the number of trials; the
        inner products use the images of ``w`` and ``s`` given their margins (in the row span, the margins).
        """
        XS = self.space.margins(S)
        Ysub = self.Y[:, cols]
        C = self._C(cols)
        MS, MW = self.space.image_of(S, XS), self.space.image_of(W, XW)
        gTs = _dot(G, MS)
        wTw, wTs, sTs = _dot(W, MW), _dot(W, MS), _dot(S, MS)
        step = np.ones(S.shape[1])
        f_new = f.copy()
        todo = np.arange(S.shape[1])
        for _ in range(_MAX_LINESEARCH):
            a = step[todo]
            margins = Ysub[:, todo] * (XW[:, todo] + a * XS[:, todo])
            Ct = C[todo] if isinstance(C, np.ndarray) else C
            value = 0.5 * (wTw[todo] + 2 * a * wTs[todo] + a * a * sTs[todo]) + Ct * self.loss.value(margins)
            accepted = value - f[todo] <= _ETA * a * gTs[todo]
            f_new[todo[accepted]] = value[accepted]
            todo = todo[~accepted]
            if todo.size == 0:
                break
            step[todo] *= 0.5
        step[todo] = 0.0  # the line search failed for these columns: they stop where they are
        return step, f_new, XS


# -- helpers of the model ----------------------------------------------------------------------------------------
def drop_empty_columns(X: sp.spmatrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """The columns of ``X`` that hold a nonzero entry, and their ids.

    Returns
    -------
    X_used : scipy.sparse.csr_matrix, shape (n, len(used_column_ids))
        ``X[:, used_column_ids]`` (same dtype, explicit zeros dropped, indices sorted).
    used_column_ids : int64 array
        Increasing ids of the columns of ``X`` with a nonzero entry. A node's weights ``W_used`` (rows = used
        columns, then the bias) go back to the full feature space as ``W[used_column_ids] = W_used[:-1]``.
    """
    X = _as_csr(X).copy()
    X.eliminate_zeros()
    X.sum_duplicates()  # also sorts the indices
    used = np.flatnonzero(np.bincount(X.indices, minlength=X.shape[1]))
    remap = np.zeros(X.shape[1], dtype=np.int64)
    remap[used] = np.arange(used.size)
    X_used = sp.csr_matrix((X.data, remap[X.indices], X.indptr), shape=(X.shape[0], used.size))
    return X_used, used.astype(np.int64)


def prune(W: np.ndarray, threshold: float) -> sp.csr_matrix:
    """The transposed weights as a sparse matrix, entries with ``|w| < threshold`` dropped.

    Parameters
    ----------
    W : array of shape (d + 1, K)
        Weights as :func:`fit_linear` returns them (last row the bias weight).
    threshold : float >= 0
        Entries of the feature rows with ``|w| < threshold`` are dropped (0 keeps every nonzero). The bias
        weight is always kept (stored even when 0), because it is most of the score of a row with few features.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (K, d + 1), float32
        Row ``k`` is classifier ``k``. This layout makes the children of a tree node, which are contiguous, a
        slice of rows (``indptr`` only), and a row's scores ``W_T[a:b] @ x``.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)):
        raise ConfigurationError(f"threshold must be a number >= 0; got {threshold!r}")
    if not (np.isfinite(threshold) and threshold >= 0):
        raise ConfigurationError(f"threshold must be a finite number >= 0; got {threshold!r}")
    W = np.asarray(W)
    if W.ndim != 2 or W.shape[0] < 1:
        raise ConfigurationError(f"W must be a 2-D array of shape (d + 1, K); got shape {W.shape}")
    WT = np.ascontiguousarray(W.T, dtype=np.float32)
    keep = (np.abs(WT) >= threshold) & (WT != 0)
    keep[:, -1] = True
    rows, cols = np.nonzero(keep)
    return sp.csr_matrix((WT[rows, cols], (rows, cols)), shape=WT.shape, dtype=np.float32)
