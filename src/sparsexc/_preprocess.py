"""Feature preprocessing: the kind of a feature matrix, the transform chosen for it, fitted on training rows.

The estimator's ``preprocess`` setting (:attr:`sparsexc._params.FitParams.preprocess`) names a transform or
``"auto"``. :func:`choose` applies the rule below to the training ``X``; :func:`fit_preprocessor` fits the
chosen transform on the training rows only; :meth:`FeaturePreprocessor.transform` applies it to any rows
(training, validation, prediction). numpy/scipy only: importing it loads no torch.

Transforms of a CSR matrix ``X`` (n rows, d features), with statistics from the n training rows:

* ``"none"``: ``X`` unchanged.
* ``"l2"``: every row divided by its L2 norm (empty rows stay empty).
* ``"tfidf"``: ``x_ij * idf_j``, then every row to unit L2 norm, with the smooth idf of scikit-learn's
  ``TfidfTransformer``: ``idf_j = ln((1 + n) / (1 + df_j)) + 1``, ``df_j`` the number of training rows where
  feature j is non-zero (a feature never seen in training gets the largest weight, ``ln(1 + n) + 1``).
  Refused for negative values.
* ``"standardize"``: ``(x_ij - mean_j) / std_j`` with the training mean and standard deviation (``ddof=0``;
  a constant feature has ``std_j = 1``), as scikit-learn's ``StandardScaler``. Centring makes every entry
  non-zero, so it is done only when the training ``X`` is at least half full (:data:`DENSE_FRACTION`);
  a sparser matrix is only scaled (``x_ij / std_j``, ``StandardScaler(with_mean=False)``) and stays sparse.

The ``"auto"`` rule (:func:`choose`), in this order (the evidence is in ``docs/getting-started.md``,
"Feature preprocessing"):

1. any negative value: real-valued features -> ``"standardize"``;
2. at least half the entries non-zero (:data:`DENSE_FRACTION`): dense real-valued features -> ``"standardize"``;
3. every value 1: a binary bag of words -> ``"none"`` (TF-IDF measured no better on such sets);
4. every value a non-negative integer: word counts when there are at least :data:`MIN_VOCABULARY` columns ->
   ``"tfidf"``; fewer columns are integer-coded tabular features -> ``"standardize"``;
5. every non-empty row of unit L2 norm (within :data:`UNIT_TOLERANCE`): already TF-IDF-like -> ``"none"``;
6. otherwise (sparse non-negative weights of any scale) -> ``"l2"``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.sparse as sp

from sparsexc._params import PREPROCESS_CHOICES
from sparsexc.errors import ConfigurationError

__all__ = [
    "DENSE_FRACTION",
    "MIN_VOCABULARY",
    "TRANSFORMS",
    "UNIT_TOLERANCE",
    "Choice",
    "FeaturePreprocessor",
    "array_names",
    "check_choice",
    "check_saved",
    "choose",
    "fit_preprocessor",
    "from_saved",
]

TRANSFORMS: tuple[str, ...] = tuple(c for c in PREPROCESS_CHOICES if c != "auto")
# a matrix with at least this share of non-zero entries counts as dense (standardised with centring)
DENSE_FRACTION = 0.5
# non-negative integer features with at least this many columns are word counts (tfidf); fewer: tabular codes
MIN_VOCABULARY = 100
# |row norm - 1| below this for every non-empty row: the rows are already unit-normalised (float32 input)
UNIT_TOLERANCE = 1e-3


@dataclasses.dataclass(frozen=True)
class Choice:
    """What :func:`choose` decided: the transform and why (the feature kind it saw, in words)."""

    transform: str
    reason: str


def _density(X: sp.csr_matrix) -> float:
    cells = X.shape[0] * X.shape[1]
    return float(X.nnz) / cells if cells else 0.0


def choose(X: sp.csr_matrix) -> Choice:
    """The ``"auto"`` rule (see the module docstring) applied to the training features ``X`` (CSR)."""
    data = X.data
    density = _density(X)
    if data.size and float(data.min()) < 0:
        return Choice("standardize", "real-valued features with negative values")
    if density >= DENSE_FRACTION:
        return Choice("standardize", f"dense real-valued features ({density:.0%} non-zero)")
    if np.all(data == 1):
        return Choice("none", "binary bag of words")
    if np.all(data == np.round(data)):
        if X.shape[1] >= MIN_VOCABULARY:
            return Choice("tfidf", "non-negative integer counts (bag of words)")
        return Choice("standardize", f"integer-coded tabular features ({X.shape[1]} columns)")
    norms = _row_norms(X)
    present = norms[np.diff(X.indptr) > 0]
    if present.size and float(np.max(np.abs(present - 1.0))) <= UNIT_TOLERANCE:
        return Choice("none", "non-negative rows of unit L2 norm (already TF-IDF-like)")
    return Choice("l2", "sparse non-negative real-valued features")


def _row_norms(X: sp.csr_matrix) -> np.ndarray:
    """Every row's L2 norm, in float64 (0 for empty rows)."""
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    return np.sqrt(np.bincount(rows, weights=np.square(X.data, dtype=np.float64), minlength=X.shape[0]))


def _unit_rows(X: sp.csr_matrix, dtype: type = np.float32) -> sp.csr_matrix:
    """Every row divided by its L2 norm (empty rows stay empty), as ``dtype`` (the ridge family's float64 too)."""
    norms = _row_norms(X)
    norms[norms == 0] = 1.0
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    return _csr(X.data / norms[rows], X, dtype)


def _csr(data: np.ndarray, like: sp.csr_matrix, dtype: type = np.float32) -> sp.csr_matrix:
    """A CSR matrix (float32 unless ``dtype``) with ``like``'s structure and ``data`` as values."""
    return sp.csr_matrix((np.asarray(data, dtype=dtype), like.indices.copy(), like.indptr.copy()), shape=like.shape)


def array_names(transform: str, centred: bool) -> tuple[str, ...]:
    """The fitted vectors (each of length n_features, float32) that ``transform`` keeps."""
    if transform == "tfidf":
        return ("idf",)
    if transform == "standardize":
        return ("mean", "scale") if centred else ("scale",)
    return ()


@dataclasses.dataclass
class FeaturePreprocessor:
    """A fitted feature transform (see the module docstring for the maths).

    Attributes
    ----------
    transform : {"none", "tfidf", "l2", "standardize"}
    n_features : int
    requested : str, the ``preprocess`` setting it was fitted for ("auto" or ``transform``)
    reason : str, why: the rule's words for ``"auto"``, else "given"
    centred : bool, whether ``"standardize"`` subtracts the mean
    arrays : dict of str to ndarray, the fitted float32 vectors named by :func:`array_names`
    """

    transform: str
    n_features: int
    requested: str = "none"
    reason: str = "given"
    centred: bool = False
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __call__(self, X: sp.csr_matrix) -> sp.csr_matrix:
        return self.apply(X)

    def apply(self, X: sp.csr_matrix) -> sp.csr_matrix:
        """``X`` (CSR, ``n_features`` columns) transformed: CSR float32 of the same shape (``X`` itself for
        ``"none"``)."""
        if self.transform == "none":
            return X
        if self.transform == "l2":
            return _unit_rows(X)
        if self.transform == "tfidf":
            _refuse_negative(X, "tfidf")
            return _unit_rows(_csr(X.data * self.arrays["idf"][X.indices], X))
        scale = self.arrays["scale"]
        if not self.centred:
            return _csr(X.data / scale[X.indices], X)
        dense = (X.toarray().astype(np.float64) - self.arrays["mean"]) / scale
        return sp.csr_matrix(dense.astype(np.float32))

    def config(self) -> dict[str, Any]:
        """The JSON description saved with the model (the vectors go to the weights file)."""
        return {
            "transform": self.transform,
            "requested": self.requested,
            "reason": self.reason,
            "centred": self.centred,
        }

    def describe(self) -> str:
        """One line for people: "tfidf (auto: binary bag of words)", "standardize (given)"."""
        how = f"auto: {self.reason}" if self.requested == "auto" else "given"
        centred = "" if self.transform != "standardize" else (", centred" if self.centred else ", scaled only")
        return f"{self.transform} ({how}{centred})"


def _refuse_negative(X: sp.csr_matrix, transform: str) -> None:
    if X.nnz and float(X.data.min()) < 0:
        raise ConfigurationError(
            f"preprocess={transform!r} needs non-negative features (counts or weights) and X holds negative "
            "values; use preprocess='standardize', 'l2', 'none' or 'auto'"
        )


def check_choice(requested: Any) -> str:
    """``requested`` if it is one of :data:`sparsexc._params.PREPROCESS_CHOICES`; one clear error otherwise."""
    if not isinstance(requested, str) or requested not in PREPROCESS_CHOICES:
        # the wording of the setting's own check (FitParams), so every entry point says the same
        raise ConfigurationError(
            f"preprocess={requested!r} is not allowed; choose one of {', '.join(map(repr, PREPROCESS_CHOICES))}"
        )
    return requested


def fit_preprocessor(requested: str, X: sp.csr_matrix) -> FeaturePreprocessor:
    """The transform ``requested`` (``"auto"``: :func:`choose`'s) fitted on the training rows ``X`` (CSR).

    Raises
    ------
    ConfigurationError
        An unknown ``requested``, or ``"tfidf"`` asked for features with negative values.
    """
    check_choice(requested)
    n, d = X.shape
    choice = choose(X) if requested == "auto" else Choice(requested, "given")
    transform = choice.transform
    if transform == "tfidf":
        _refuse_negative(X, "tfidf")
        df = np.bincount(X.indices[X.data != 0], minlength=d).astype(np.float64)
        idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        arrays = {"idf": idf.astype(np.float32)}
        return FeaturePreprocessor(transform, d, requested, choice.reason, False, arrays)
    if transform == "standardize":
        mean, std = _mean_std(X)
        centred = _density(X) >= DENSE_FRACTION
        arrays = {"scale": std.astype(np.float32)}
        if centred:
            arrays = {"mean": mean.astype(np.float32), **arrays}
        return FeaturePreprocessor(transform, d, requested, choice.reason, centred, arrays)
    return FeaturePreprocessor(transform, d, requested, choice.reason)


def _mean_std(X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation (ddof 0, two passes in float64); a constant feature's std is 1."""
    n, d = X.shape
    data = X.data.astype(np.float64)
    mean = np.bincount(X.indices, weights=data, minlength=d) / max(n, 1)
    present = np.bincount(X.indices, minlength=d)
    # sum over rows of (x - mean)^2: the stored entries, plus (n - present) zeros each contributing mean^2
    squares = np.bincount(X.indices, weights=np.square(data - mean[X.indices]), minlength=d)
    variance = (squares + (n - present) * np.square(mean)) / max(n, 1)
    std = np.sqrt(variance)
    std[std == 0] = 1.0
    return mean, std


def from_saved(config: Any, arrays: dict[str, np.ndarray], n_features: int) -> FeaturePreprocessor:
    """The preprocessor a model folder saved (``config``: :meth:`FeaturePreprocessor.config`; ``None`` for a
    folder written before preprocessing existed: ``"none"``). ``config`` and the names and shapes of
    ``arrays`` were checked (:func:`check_saved`); this checks their values."""
    if config is None:
        return FeaturePreprocessor("none", n_features, "none", "saved before preprocessing existed")
    pre = FeaturePreprocessor(
        config["transform"], n_features, config["requested"], config["reason"], bool(config["centred"]), arrays
    )
    if "scale" in arrays and not np.all(arrays["scale"] > 0):
        raise ValueError("the standardisation scale must be positive")
    if "idf" in arrays and not np.all(arrays["idf"] >= 1):
        raise ValueError("the idf weights must be at least 1")
    return pre


def check_saved(config: Any) -> tuple[str, ...] | str:
    """The vector names a saved preprocessing ``config`` needs, or a message saying what is wrong with it."""
    if config is None:
        return ()
    if not isinstance(config, dict):
        return f"must be an object; got {type(config).__name__}"
    expected = {"transform": str, "requested": str, "reason": str, "centred": bool}
    for key in config:
        if key not in expected:
            return f"holds the unknown key {key!r}"
    for key, kind in expected.items():
        if not isinstance(config.get(key), kind):
            return f"needs {key!r} ({kind.__name__})"
    if config["transform"] not in TRANSFORMS:
        return f"has transform {config['transform']!r}; one of {', '.join(map(repr, TRANSFORMS))} is needed"
    if config["requested"] not in PREPROCESS_CHOICES:
        return f"has requested {config['requested']!r}; one of {', '.join(map(repr, PREPROCESS_CHOICES))} is needed"
    if config["centred"] and config["transform"] != "standardize":
        return "is centred, which only 'standardize' can be"
    return array_names(config["transform"], config["centred"])
