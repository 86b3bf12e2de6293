"""The ``"ridge"`` model family: one-vs-rest ridge regression, its penalty by exact leave-one-out
(:mod:`sparsexc.estimator._ridge`), scores calibrated to probabilities on the leave-one-out scores.

``model="auto"`` chooses it for small training sets (:data:`sparsexc.estimator._auto.RULES`, "ridge-small"): there
the label tree's cross-validation of C is most of its training CPU and is decided on a few hundred rows, while
ridge scores every penalty from one eigendecomposition, on every row, with no refit. numpy and scipy only, on the
CPU, like the tree.

Fit: the validation rows the estimator held out of the training rows go back into them (leave-one-out needs no
hold-out: each row is scored by the model fitted without it), the penalty is chosen, Platt's (a, c) fitted and
the set rule tuned for ``tune_metric`` (:func:`~sparsexc.estimator._families.tune_tree_sets`: a threshold on the
probabilities or sparsemax's support over each row's best :data:`~sparsexc.estimator._families.TREE_CANDIDATES`
labels) on the leave-one-out probabilities; validation rows given to ``fit`` (``X_val``) tune the set rule
instead, as for the other families. Model files: ``ridge.weight`` float32 (d x L) and ``ridge.bias`` float32 (L)
in ``model.safetensors``; the alpha, Platt's (a, c) and ``single_label`` (every training row had one label:
the probabilities of a row are normalised to sum to 1) in the config's ``"model"`` entry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from sparsexc._blas import one_blas_thread
from sparsexc._params import PredictParams, RunParams
from sparsexc._topk import topk_rows
from sparsexc.errors import ConfigurationError, ModelFormatError
from sparsexc.estimator._families import (
    THRESHOLD_GRID,
    TREE_CANDIDATES,
    Fitted,
    ModelFamily,
    check_tuned_rule,
    family_params,
    refuse_checkpoints,
    register_family,
    rule_sets,
    tune_tree_sets,
)
from sparsexc.estimator._ridge import RBF_GAMMA, RidgeModel, RidgeParams, calibrated, choose_fit, platt, unit_rows
from sparsexc.train.progress import fit_summary

if TYPE_CHECKING:
    from sparsexc.estimator.serialization import ModelFiles

__all__ = ["MAX_EIGEN", "MAX_WEIGHTS", "RidgeClassifierModel", "RidgeFamily"]

MAX_EIGEN = 8000  # the eigenproblem is min(rows, features) square: 8,000 is 0.5 GB and minutes of one core
MAX_WEIGHTS = 100_000_000  # features x labels of the dense weight matrix (0.4 GB in float32)
_ONE_THREAD_MAX = 2000  # eigenproblems up to this size run on one BLAS thread
DEFAULT_THRESHOLD = 0.5  # the set threshold on probabilities before tuning (and without rows to tune on)
_WEIGHT, _BIAS, _LANDMARKS = "ridge.weight", "ridge.bias", "ridge.landmarks"
_CONFIG_KEYS = frozenset(
    {"family", "n_features", "n_labels", "alpha", "platt", "single_label", "kernel", "gamma", "n_landmarks"}
)


@dataclasses.dataclass
class RidgeClassifierModel:
    """A fitted :class:`~sparsexc.estimator._ridge.RidgeModel` and its set rule (``threshold``, or the sparsemax
    rule's ``scale`` where tuning chose it), over each row's best ``min(TREE_CANDIDATES, L)`` labels."""

    ridge: RidgeModel
    threshold: float
    scale: float | None = None

    def probabilities(self, X: sp.csr_matrix, batch_size: int) -> np.ndarray:
        """Dense float32 (n, L) probabilities, ``batch_size`` rows at a time (memory: rows x labels)."""
        parts = [self.ridge.probabilities(X[i : i + batch_size]) for i in range(0, X.shape[0], batch_size)]
        return np.vstack(parts) if parts else np.zeros((0, self.ridge.n_labels), dtype=np.float32)

    def topk(self, X: sp.csr_matrix, k: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Each row's best ``min(k, L)`` labels and probabilities, best first (ties: the lower label id)."""
        parts = [
            topk_rows(self.ridge.probabilities(X[i : i + batch_size]), k) for i in range(0, X.shape[0], batch_size)
        ]
        if not parts:
            k = min(k, self.ridge.n_labels)
            return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
        return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])

    def sets(self, X: sp.csr_matrix, batch_size: int) -> sp.csr_matrix:
        """The predicted sets (CSR 0/1 float32) by the tuned rule."""
        idx, scores = self.topk(X, TREE_CANDIDATES, batch_size)
        return rule_sets(idx, scores, self.threshold, self.scale, self.ridge.n_labels)


def _check_size(n_rows: int, n_features: int, n_labels: int) -> None:
    """Refuse data whose eigenproblem or weight matrix is beyond :data:`MAX_EIGEN` / :data:`MAX_WEIGHTS`."""
    if min(n_rows, n_features) > MAX_EIGEN:
        raise ConfigurationError(
            f"model='ridge' solves an eigenproblem of min(rows, features) = {min(n_rows, n_features)} square, above "
            f"its limit {MAX_EIGEN}; use model='tree' (or model='auto', which chooses ridge only for small data)"
        )
    if n_features * n_labels > MAX_WEIGHTS:
        raise ConfigurationError(
            f"model='ridge' keeps a dense weight matrix of features x labels = {n_features} x {n_labels}, above its "
            f"limit of {MAX_WEIGHTS:,} values; use model='tree'"
        )


@register_family
class RidgeFamily(ModelFamily):
    """One-vs-rest ridge regression (the module docstring), configured by the estimator's ``ridge_params``
    (:class:`~sparsexc.estimator._ridge.RidgeParams`)."""

    name = "ridge"
    uses_device = False  # numpy arrays, on the CPU

    def params(self, estimator: Any) -> RidgeParams:
        """The :class:`~sparsexc.estimator._ridge.RidgeParams` of ``estimator.ridge_params`` (None: the defaults)."""
        return family_params(estimator, "ridge_params", RidgeParams)

    def check(self, estimator: Any) -> None:
        self.params(estimator)

    def check_run(self, run: RunParams) -> None:
        refuse_checkpoints(run, self.name)

    def fit(
        self,
        estimator: Any,
        X: sp.csr_matrix,
        Y: sp.csr_matrix,
        X_val: Any,
        Y_val: Any,
        run: RunParams,
        *,
        held_out: bool = False,
    ) -> Fitted:
        self.check_run(run)
        params = self.params(estimator)
        n_val = 0 if X_val is None else X_val.shape[0]
        if held_out and n_val > 0:  # leave-one-out needs no hold-out: the model gets every row
            X, Y = sp.vstack([X, X_val], format="csr"), sp.vstack([Y, Y_val], format="csr")
        _check_size(X.shape[0], X.shape[1], Y.shape[1])
        # small matrices: one BLAS thread (a second one spins: measured 2.3x the CPU seconds on medical)
        small = min(X.shape) <= _ONE_THREAD_MAX
        with one_blas_thread() if small else contextlib.nullcontext():
            chosen = choose_fit(unit_rows(X), Y, int(estimator.random_state), params)
            found = chosen.fit
            a, c = platt(found.loo_scores, Y)
        single = bool(np.all(np.diff(Y.indptr) == 1))  # multi-class data: probabilities sum to 1 per row
        weights, bias = found.weights.astype(np.float32), found.bias.astype(np.float32)
        landmarks = None if chosen.landmarks is None else chosen.landmarks.astype(np.float32)
        ridge = RidgeModel(weights, bias, a, c, found.alpha, single, landmarks, params.gamma)
        model = RidgeClassifierModel(ridge, DEFAULT_THRESHOLD)
        k = min(TREE_CANDIDATES, Y.shape[1])
        if n_val > 0 and not held_out:  # validation rows given: they tune the set rule
            idx, scores = model.topk(X_val, k, PredictParams().batch_size)
            tune_on, where = Y_val, f"the {n_val} validation rows"
        else:
            loo = calibrated(found.loo_scores, a, c, single)
            idx, scores = topk_rows(loo, k)
            tune_on, where = Y, "the leave-one-out probabilities"
        tuned = tune_tree_sets(idx, scores, tune_on, [DEFAULT_THRESHOLD, *THRESHOLD_GRID], estimator.tune_metric)
        model.threshold = float(tuned["threshold"])
        model.scale = None if "sparsemax_scale" not in tuned else float(tuned["sparsemax_scale"])
        summary = fit_summary([], None, 0, None, estimator.val_metric)
        loo_note = "" if X.shape[0] > 1 else " (one row: no leave-one-out, the grid's middle alpha)"
        z = "" if math.isnan(chosen.z) else f", paired z of the leave-one-out errors = {chosen.z:.1f}"
        if chosen.landmarks is not None:
            why = "kernel='rbf'" if params.kernel == "rbf" else "its leave-one-out error below the linear model's"
            kernel = f"on RBF kernel features (gamma {params.gamma:g}, {len(chosen.landmarks)} landmark rows: {why}{z})"
        elif params.kernel == "linear":
            kernel = "on the rows (kernel='linear')"
        elif math.isnan(chosen.z):
            kernel = "on the rows (linear; the RBF kernel not tried)"
        else:
            kernel = (
                f"on the rows (linear; the RBF kernel's leave-one-out error not lower by {params.kernel_z:g} s.e.{z})"
            )
        summary["message"] = (
            f"ridge regression on all {X.shape[0]} rows {kernel}: alpha = {found.alpha:g} of least leave-one-out squared "
            f"error{loo_note}; probabilities sigma({a:.3g} s {c:+.3g}) (Platt, on the leave-one-out scores); the "
            f"set rule tuned on {where}"
        )
        return Fitted(model, [], None, summary, tuned)

    def topk(self, model: Any, X: sp.csr_matrix, settings: PredictParams) -> tuple[np.ndarray, np.ndarray]:
        return model.topk(X, settings.k, settings.batch_size)

    def sets(self, model: Any, X: sp.csr_matrix, settings: PredictParams) -> sp.csr_matrix:
        return model.sets(X, settings.batch_size)

    def scores(self, model: Any, X: sp.csr_matrix, settings: PredictParams) -> np.ndarray:
        return model.probabilities(X, settings.batch_size)

    def probabilistic(self, model: Any) -> bool:
        return True  # Platt-calibrated

    def state(self, model: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        ridge = model.ridge
        f32 = np.dtype(np.float32)
        tensors = {_WEIGHT: (np.ascontiguousarray(ridge.weights), f32), _BIAS: (np.ascontiguousarray(ridge.bias), f32)}
        config = {
            "family": self.name,
            "n_features": ridge.n_features,
            "n_labels": ridge.n_labels,
            "alpha": float(ridge.alpha),
            "platt": [float(ridge.a), float(ridge.c)],
            "single_label": bool(ridge.single_label),
            "kernel": ridge.kernel,
        }
        if ridge.landmarks is not None:
            tensors[_LANDMARKS] = (np.ascontiguousarray(ridge.landmarks), f32)
            config.update(gamma=float(ridge.gamma), n_landmarks=int(ridge.landmarks.shape[0]))
        return tensors, config

    def check_files(self, plan: Any, config: dict[str, Any], files: ModelFiles, fields: Any) -> dict[str, Any]:
        f = fields
        model = f.mapping(f.get(config, "model", "model"), "model")
        unknown = sorted(set(model) - _CONFIG_KEYS)
        if unknown:
            raise f.error("model", f"holds the unknown key {unknown[0]!r}")
        if model.get("family") != self.name:
            raise f.error("model.family", f"is {model.get('family')!r} but params.model is {self.name!r}")
        for key, expected in (("n_features", plan.n_features), ("n_labels", plan.n_labels)):
            value = f.size(f.get(model, key, f"model.{key}"), f"model.{key}")
            if value != expected:
                raise f.error(f"model.{key}", f"is {value} but {key} is {expected}")
        alpha = f.get(model, "alpha", "model.alpha")
        if not _number(alpha) or not alpha > 0:
            raise f.error("model.alpha", f"must be a finite number > 0; got {alpha!r}")
        pair = f.get(model, "platt", "model.platt")
        if not (isinstance(pair, list) and len(pair) == 2 and all(map(_number, pair)) and pair[0] > 0):
            raise f.error("model.platt", f"must be [a, c], finite numbers with a > 0; got {pair!r}")
        if not isinstance(f.get(model, "single_label", "model.single_label"), bool):
            raise f.error("model.single_label", f"must be true or false; got {model['single_label']!r}")
        check_tuned_rule(plan.tuned, f, "ridge")
        wanted = {_WEIGHT: (plan.n_features, plan.n_labels), _BIAS: (plan.n_labels,)}
        kernel = model.get("kernel", "linear")  # stop 61's files have no kernel: linear
        if kernel == "rbf":
            gamma = f.get(model, "gamma", "model.gamma")
            if not _number(gamma) or not gamma > 0:
                raise f.error("model.gamma", f"must be a finite number > 0; got {gamma!r}")
            m = f.size(f.get(model, "n_landmarks", "model.n_landmarks"), "model.n_landmarks")
            if m < 1:
                raise f.error("model.n_landmarks", f"must be at least 1; got {m}")
            wanted = {_WEIGHT: (m, plan.n_labels), _BIAS: (plan.n_labels,), _LANDMARKS: (m, plan.n_features)}
        elif kernel != "linear":
            raise f.error("model.kernel", f"must be 'linear' or 'rbf'; got {kernel!r}")
        elif "gamma" in model or "n_landmarks" in model:
            raise f.error("model", "holds 'gamma' or 'n_landmarks' but its kernel is linear")
        for name in sorted(set(files.header) - set(wanted)):
            raise ModelFormatError(f"{files.weights_path}: unexpected array {name!r}")
        for name, shape in wanted.items():
            info = files.header.get(name)
            if info is None:
                raise ModelFormatError(f"{files.weights_path}: array {name!r} is missing")
            if info.dtype_name != "float32" or tuple(info.shape) != shape:
                raise ModelFormatError(
                    f"{files.weights_path}: array {name!r} must be float32 {list(shape)}, found "
                    f"{info.dtype_name} {list(info.shape)}"
                )
        return dict(model)

    def build(
        self, model_config: dict[str, Any], arrays: dict[str, Any], device: Any, tuned: dict[str, Any], where: Any
    ) -> Any:
        weights, bias, landmarks = arrays.pop(_WEIGHT), arrays.pop(_BIAS), arrays.pop(_LANDMARKS, None)
        if not all(np.all(np.isfinite(v)) for v in (weights, bias, () if landmarks is None else landmarks)):
            raise ModelFormatError(f"{where}: the ridge weights hold non-finite values")
        a, c = (float(v) for v in model_config["platt"])
        gamma = float(model_config.get("gamma", RBF_GAMMA))
        alpha, single = float(model_config["alpha"]), model_config["single_label"]
        ridge = RidgeModel(weights, bias, a, c, alpha, single, landmarks, gamma)
        scale = tuned.get("sparsemax_scale")
        return RidgeClassifierModel(ridge, float(tuned["threshold"]), None if scale is None else float(scale))


def _number(value: Any) -> bool:
    """A finite int or float, not a bool."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
