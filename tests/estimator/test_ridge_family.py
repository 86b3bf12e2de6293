"""The "ridge" model family: its leave-one-out against refits without each row, its weights against the normal
equations, Platt's calibration, the family's fit / predict / save / load, its checks of damaged files, and the
auto rule that chooses it for small training sets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from sparsexc import XCClassifier
from sparsexc._params import RunParams
from sparsexc.errors import ConfigurationError, ModelFormatError
from sparsexc.estimator import _ridge
from sparsexc.estimator._auto import RIDGE_DENSE_MAX_ROWS, RIDGE_MAX_ROWS, DataProfile, choose_model
from sparsexc.estimator._ridge import (
    ALPHAS,
    RbfMap,
    RidgeParams,
    choose_fit,
    fit_kernel_ridge,
    fit_ridge,
    platt,
    rbf_map,
    unit_rows,
)


def _ridge_solution(Z: np.ndarray, Y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The ridge weights and bias from the normal equations of the centred rows (the intercept unpenalised)."""
    mu, y_bar = Z.mean(axis=0), Y.mean(axis=0)
    Zc = Z - mu
    W = np.linalg.solve(Zc.T @ Zc + alpha * np.eye(Z.shape[1]), Zc.T @ (Y - y_bar))
    return W, y_bar - mu @ W


def _brute_loo(Z: np.ndarray, Y: np.ndarray, alpha: float) -> np.ndarray:
    """Each row scored by the ridge model refitted without it."""
    out = np.zeros_like(Y)
    for i in range(Z.shape[0]):
        keep = np.arange(Z.shape[0]) != i
        W, b = _ridge_solution(Z[keep], Y[keep], alpha)
        out[i] = Z[i] @ W + b
    return out


def _problem(n: int, d: int, labels: int, seed: int, sparse: bool) -> tuple[np.ndarray | sp.csr_matrix, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.2, format="csr", random_state=seed) if sparse else rng.normal(size=(n, d))
    truth = (np.asarray(X @ rng.normal(size=(d, labels))) + 0.5 * rng.normal(size=(n, labels))) > 0.3
    return X, sp.csr_matrix(truth.astype(np.float32))


@pytest.mark.parametrize(("n", "d", "sparse"), [(30, 6, False), (12, 40, False), (25, 60, True), (2, 3, False)])
def test_leave_one_out_and_weights_match_refits_and_the_normal_equations(n: int, d: int, sparse: bool) -> None:
    X, Y = _problem(n, d, 4, seed=n + d, sparse=sparse)
    Z = unit_rows(X)
    fit = fit_ridge(Z, Y)
    Zd = Z.toarray() if sp.issparse(Z) else Z
    Yd = Y.toarray().astype(np.float64)
    brute = {alpha: float(np.sum((Yd - _brute_loo(Zd, Yd, alpha)) ** 2)) for alpha in ALPHAS}
    for alpha in ALPHAS:
        assert fit.loo_errors[alpha] == pytest.approx(brute[alpha], rel=1e-8, abs=1e-10)
    assert brute[fit.alpha] <= min(brute.values()) * (1 + 1e-8) + 1e-12  # the least error (ties up to rounding)
    assert all(brute[a] >= brute[fit.alpha] * (1 - 1e-8) for a in ALPHAS if a > fit.alpha)  # ties: the larger
    np.testing.assert_allclose(fit.loo_scores, _brute_loo(Zd, Yd, fit.alpha), atol=1e-9)
    W, b = _ridge_solution(Zd, Yd, fit.alpha)
    np.testing.assert_allclose(fit.weights, W, atol=1e-9)
    np.testing.assert_allclose(fit.bias, b, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 20), st.integers(1, 15), st.integers(0, 10_000))
def test_leave_one_out_prediction_never_uses_its_own_row(n: int, d: int, seed: int) -> None:
    """Changing a row's labels leaves its own leave-one-out score unchanged (it is a refit without the row)."""
    X, Y = _problem(n, d, 2, seed, sparse=False)
    Z = unit_rows(X)
    Yd = Y.toarray()
    flipped = Yd.copy()
    flipped[0] = 1.0 - flipped[0]
    alphas = (0.1,)
    a = fit_ridge(Z, sp.csr_matrix(Yd), alphas).loo_scores[0]
    b = fit_ridge(Z, sp.csr_matrix(flipped), alphas).loo_scores[0]
    np.testing.assert_allclose(a, b, atol=1e-8)


def test_one_row_takes_the_middle_alpha_and_fits() -> None:
    fit = fit_ridge(unit_rows(np.ones((1, 3))), sp.csr_matrix(np.array([[1.0, 0.0]])))
    assert fit.alpha == sorted(ALPHAS)[len(ALPHAS) // 2] and np.isnan(fit.loo_errors[fit.alpha])
    np.testing.assert_allclose(fit.bias, [1.0, 0.0])


def test_platt_recovers_a_logistic_model_and_stays_finite_on_separable_scores() -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(size=(4000, 5))
    Y = (rng.random(s.shape) < expit(3.0 * s - 1.0)).astype(np.float32)
    a, c = platt(s, sp.csr_matrix(Y))
    assert a == pytest.approx(3.0, rel=0.1) and c == pytest.approx(-1.0, abs=0.15)
    # scores that separate the labels exactly (a plain Newton step diverged on such scores): finite, increasing
    s = np.array([[0.9, 0.1], [0.8, 0.05], [0.95, 0.2]])
    a, c = platt(s, sp.csr_matrix(s > 0.5))
    assert np.isfinite([a, c]).all() and 0 < a < 1e3
    # scores that rank the labels backwards: a would be negative; the map stays increasing
    assert platt(-s, sp.csr_matrix(s > 0.5)) == (1.0, 0.0)


def _data(n: int = 150, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    X, Y = _problem(n, 20, 6, seed, sparse=True)
    return sp.csr_matrix(X, dtype=np.float32), Y


def test_the_family_fits_predicts_and_ranks_by_its_scores(tmp_path: Path) -> None:
    X, Y = _data()
    est = XCClassifier(model="ridge", verbose=0).fit(X, Y)
    assert est.model_choice_.family == "ridge" and "leave-one-out" in est.fit_summary_["message"]
    idx, scores = est.predict_topk(X, 3)
    proba = est.predict_proba(X)
    assert proba.shape == Y.shape and np.all((proba > 0) & (proba < 1))
    np.testing.assert_allclose(np.take_along_axis(proba, idx, axis=1), scores)
    raw = est.model_.ridge.raw_scores(est._features(X))
    assert np.all(np.diff(np.take_along_axis(raw, idx, axis=1), axis=1) <= 1e-12)  # the raw scores' order
    sets = est.predict(X)
    assert sets.shape == Y.shape
    # the model is better than ranking by label frequency on its training rows
    top = np.asarray(Y[np.arange(X.shape[0]), idx[:, 0]]).ravel()
    assert top.mean() > np.asarray(Y.sum(axis=0)).ravel().max() / X.shape[0]


def test_the_family_saves_and_loads_bit_exactly(tmp_path: Path) -> None:
    X, Y = _data()
    est = XCClassifier(model="ridge", verbose=0, tune_metric="example-F1").fit(X, Y)
    est.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    keys = {"family", "n_features", "n_labels", "alpha", "platt", "single_label", "kernel"}
    assert config["family"] == "ridge" and set(config["model"]) == keys
    loaded = XCClassifier.load(tmp_path / "m")
    for a, b in zip(est.predict_topk(X, 5), loaded.predict_topk(X, 5), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(est.predict_proba(X), loaded.predict_proba(X))
    assert (est.predict(X) != loaded.predict(X)).nnz == 0


def _edit_config(folder: Path, edit) -> None:
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda c: c["model"].update(alpha=-1.0), "model.alpha"),
        (lambda c: c["model"].update(alpha="x"), "model.alpha"),
        (lambda c: c["model"].update(platt=[-2.0, 0.0]), "model.platt"),
        (lambda c: c["model"].update(platt=[1.0]), "model.platt"),
        (lambda c: c["model"].update(n_labels=7), "model.n_labels"),
        (lambda c: c["model"].update(extra=1), "model"),
        (lambda c: c["model"].update(family="tree"), "model.family"),
        (lambda c: c["model"].update(single_label=1), "model.single_label"),
        (lambda c: c["model"].pop("single_label"), "model.single_label"),
        (lambda c: c["tuned"].pop("threshold"), "tuned.threshold"),
    ],
)
def test_a_damaged_config_is_one_clear_error_naming_the_field(tmp_path: Path, edit, field: str) -> None:
    X, Y = _data()
    XCClassifier(model="ridge", verbose=0).fit(X, Y).save(tmp_path / "m")
    _edit_config(tmp_path / "m", edit)
    with pytest.raises(ModelFormatError, match=field.replace(".", r"\.")):
        XCClassifier.load(tmp_path / "m")


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (lambda w, b: {"ridge.weight": w}, "'ridge.bias' is missing"),
        (lambda w, b: {"ridge.weight": w[:-1], "ridge.bias": b}, "must be float32"),
        (lambda w, b: {"ridge.weight": w.astype(np.float64), "ridge.bias": b}, "must be float32"),
        (lambda w, b: {"ridge.weight": w, "ridge.bias": b, "other": b}, "unexpected array 'other'"),
        (lambda w, b: {"ridge.weight": w, "ridge.bias": np.full_like(b, np.nan)}, "non-finite"),
    ],
)
def test_damaged_weights_are_one_clear_error(tmp_path: Path, arrays, message: str) -> None:
    from safetensors.numpy import load_file, save_file

    X, Y = _data()
    folder = tmp_path / "m"
    XCClassifier(model="ridge", verbose=0).fit(X, Y).save(folder)
    saved = load_file(str(folder / "model.safetensors"))
    rest = {k: v for k, v in saved.items() if not k.startswith("ridge.")}
    save_file({**rest, **arrays(saved["ridge.weight"], saved["ridge.bias"])}, str(folder / "model.safetensors"))
    _edit_config(folder, lambda c: c.pop("weights_sha256", None))  # the file is replaced on purpose
    with pytest.raises(ModelFormatError, match=message):
        XCClassifier.load(folder)


def test_validation_rows_given_tune_the_set_rule_and_the_held_out_rows_go_back() -> None:
    X, Y = _data(200)
    given = XCClassifier(model="ridge", verbose=0).fit(X[:150], Y[:150], X_val=X[150:], Y_val=Y[150:])
    assert "the 50 validation rows" in given.fit_summary_["message"]
    assert "on all 150 rows" in given.fit_summary_["message"]
    held = XCClassifier(model="ridge", verbose=0, validation_fraction=0.2).fit(X, Y)
    assert "on all 200 rows" in held.fit_summary_["message"]  # the hold-out costs the model no row
    alone = XCClassifier(model="ridge", verbose=0, validation_fraction=0.0).fit(X, Y)
    np.testing.assert_allclose(held.model_.ridge.alpha, alone.model_.ridge.alpha)


def test_checkpoints_and_data_beyond_the_limits_are_refused() -> None:
    X, Y = _data(20)
    with pytest.raises(ConfigurationError, match=r"ridge model .*one pass"):
        XCClassifier(model="ridge", verbose=0).fit(X, Y, checkpoint_dir="/tmp/nowhere")
    from sparsexc.estimator import _ridge_family

    with pytest.raises(ConfigurationError, match="eigenproblem"):
        _ridge_family._check_size(_ridge_family.MAX_EIGEN + 1, _ridge_family.MAX_EIGEN + 1, 2)
    with pytest.raises(ConfigurationError, match="dense weight matrix"):
        _ridge_family._check_size(10, 100_000, 100_000)


@pytest.mark.filterwarnings("ignore:Y.s positives all belong to one label")
def test_one_training_row_fits_and_predicts() -> None:
    X = sp.csr_matrix(np.array([[1.0, 0.0, 2.0]], dtype=np.float32))
    Y = sp.csr_matrix(np.array([[1.0, 0.0]], dtype=np.float32))
    est = XCClassifier(model="ridge", verbose=0, validation_fraction=0.0).fit(X, Y)
    assert est.predict_topk(X, 1)[0][0, 0] == 0


def test_auto_chooses_ridge_for_small_training_sets_only() -> None:
    small = DataProfile(RIDGE_MAX_ROWS, 300, 40, 0.05, 2.0)
    assert choose_model(XCClassifier(), small).family == "ridge"
    assert choose_model(XCClassifier(), small).rule == "ridge-small"
    assert choose_model(XCClassifier(), DataProfile(RIDGE_MAX_ROWS + 1, 300, 40, 0.05, 2.0)).family == "tree"
    # a weight matrix beyond 10^7 values: the tree
    assert choose_model(XCClassifier(), DataProfile(300, 100_000, 200, 0.001, 2.0)).family == "tree"
    # settings given still win
    assert choose_model(XCClassifier(tree_params={"n_trees": 2}), small).family == "tree"
    assert choose_model(XCClassifier(), small, RunParams(checkpoint_dir="/tmp/x")).family == "neural"
    X, Y = _data()
    est = XCClassifier(verbose=0).fit(X, Y)
    assert est.model_choice_.family == "ridge" and type(est.model_).__name__ == "RidgeClassifierModel"


def test_multi_class_data_gets_a_distribution_over_the_labels_and_multi_label_data_does_not() -> None:
    rng = np.random.default_rng(3)
    X = sp.csr_matrix(rng.normal(size=(120, 5)).astype(np.float32))
    y = np.asarray(X[:, :3].argmax(axis=1)).ravel()  # one class per row
    est = XCClassifier(model="ridge", verbose=0).fit(X, y)
    proba = est.predict_proba(X)
    assert est.model_.ridge.single_label
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert (est.predict(X) == y).mean() > 0.8
    X2, Y2 = _data()  # rows with several labels
    multi = XCClassifier(model="ridge", verbose=0).fit(X2, Y2)
    assert not multi.model_.ridge.single_label
    raw = multi.model_.ridge.raw_scores(multi._features(X2))
    np.testing.assert_allclose(
        multi.predict_proba(X2), expit(multi.model_.ridge.a * raw + multi.model_.ridge.c), rtol=1e-5
    )


@pytest.mark.parametrize("columns", [3, 40])  # the d x d and the n x n eigenproblem
def test_identical_rows_leave_no_direction_and_fit_the_label_frequencies(columns: int) -> None:
    """Rows that are all the same (after the unit-norm scaling) have no centred direction: only rounding noise,
    which must not be divided by its tiny square root; the model is then the labels' frequencies."""
    X = np.tile(np.arange(1.0, columns + 1.0), (12, 1)) * np.arange(1.0, 13.0)[:, None]  # one direction, 12 lengths
    Y = sp.csr_matrix((np.arange(12)[:, None] % np.array([2, 3]) == 0).astype(np.float32))
    fit = fit_ridge(unit_rows(X), Y)
    np.testing.assert_allclose(fit.weights, 0.0, atol=1e-9)
    np.testing.assert_allclose(fit.bias, np.asarray(Y.mean(axis=0)).ravel(), atol=1e-12)
    assert np.all(np.isfinite(fit.loo_scores))


# --- the RBF kernel (stop 62) ---


@pytest.mark.parametrize("sparse", [False, True])
def test_rbf_map_is_the_gaussian_of_the_squared_distances(sparse: bool) -> None:
    rng = np.random.default_rng(5)
    Z = rng.normal(size=(7, 4))
    Z[2] = 0.0  # a zero row: its distance to l is |l|, not what unit rows would give
    landmarks = rng.normal(size=(3, 4))
    brute = np.exp(-0.7 * ((Z[:, None, :] - landmarks[None, :, :]) ** 2).sum(axis=2))
    np.testing.assert_allclose(rbf_map(sp.csr_matrix(Z) if sparse else Z, landmarks, 0.7), brute, rtol=1e-12)


def _kernel_ridge(K: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Kernel ridge with an unpenalised intercept, from its own optimality conditions: minimise
    |y - K beta - b|^2 + alpha beta^T K beta, i.e. (K + alpha I) beta + b 1 = y with 1^T beta = 0."""
    n = len(y)
    system = np.block([[K + alpha * np.eye(n), np.ones((n, 1))], [np.ones((1, n)), np.zeros((1, 1))]])
    solution = np.linalg.solve(system, np.concatenate([y, [0.0]]))
    return solution[:n], float(solution[n])


def test_every_row_a_landmark_is_exact_kernel_ridge_and_its_leave_one_out() -> None:
    rng = np.random.default_rng(11)
    Z = unit_rows(rng.normal(size=(25, 3)))
    Y = sp.csr_matrix((rng.random((25, 2)) < 0.4).astype(np.float32))
    kernel = RbfMap.fit(Z, 1.3, max_landmarks=25, seed=0)
    found = fit_ridge(kernel(Z), Y, alphas=(0.5,))
    W = kernel.projection @ found.weights
    new = unit_rows(rng.normal(size=(6, 3)))
    K = rbf_map(Z, Z, 1.3)
    for label in range(2):
        y = Y[:, label].toarray().ravel()
        beta, b = _kernel_ridge(K, y, 0.5)
        np.testing.assert_allclose(
            rbf_map(new, Z, 1.3) @ W[:, label] + found.bias[label], rbf_map(new, Z, 1.3) @ beta + b, atol=1e-8
        )
        # leave-one-out by refitting kernel ridge without each row
        loo = [
            rbf_map(Z[i : i + 1], Z[np.arange(25) != i], 1.3)
            @ (fit := _kernel_ridge(K[np.ix_(keep, keep)], y[keep], 0.5))[0]
            + fit[1]
            for i in range(25)
            if (keep := np.arange(25) != i) is not None
        ]
        np.testing.assert_allclose(found.loo_scores[:, label], np.concatenate(loo), atol=1e-8)


def test_kernel_ridge_from_the_gram_matrix_is_kernel_ridge_and_its_leave_one_out() -> None:
    """fit_kernel_ridge (the path of up to MAX_LANDMARKS rows: one eigenproblem of the centred kernel) against
    kernel ridge's own optimality conditions, its leave-one-out against refits, and the Nystroem path with every
    row a landmark (the same model, by another road)."""
    rng = np.random.default_rng(12)
    Z = unit_rows(rng.normal(size=(20, 4)))
    Y = sp.csr_matrix((rng.random((20, 3)) < 0.4).astype(np.float32))
    K = rbf_map(Z, Z, 0.8)
    found = fit_kernel_ridge(K, Y, alphas=(0.3,))
    new = unit_rows(rng.normal(size=(5, 4)))
    scores = rbf_map(new, Z, 0.8) @ found.weights + found.bias
    nystroem = RbfMap.fit(Z, 0.8, max_landmarks=20, seed=0)
    other = fit_ridge(nystroem(Z), Y, alphas=(0.3,))
    np.testing.assert_allclose(scores, nystroem(new) @ other.weights + other.bias, atol=1e-8)
    np.testing.assert_allclose(found.loo_scores, other.loo_scores, atol=1e-8)
    for label in range(3):
        y = Y[:, label].toarray().ravel()
        beta, b = _kernel_ridge(K, y, 0.3)
        np.testing.assert_allclose(scores[:, label], rbf_map(new, Z, 0.8) @ beta + b, atol=1e-8)
        for i in range(20):
            keep = np.arange(20) != i
            beta_i, b_i = _kernel_ridge(K[np.ix_(keep, keep)], y[keep], 0.3)
            np.testing.assert_allclose(found.loo_scores[i, label], K[i, keep] @ beta_i + b_i, atol=1e-8)


def _ring(n: int, seed: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """Points on the unit circle labelled by the sign of cos(3 angle) and its complement: no linear model ranks
    them, an RBF kernel does."""
    angle = np.random.default_rng(seed).uniform(0, 2 * np.pi, n)
    X = np.column_stack([np.cos(angle), np.sin(angle)])
    positive = np.cos(3 * angle) > 0
    return X, sp.csr_matrix(np.column_stack([positive, ~positive]).astype(np.float32))


def test_the_kernel_is_kept_where_it_predicts_better_and_the_linear_model_otherwise() -> None:
    X, Y = _ring(200, 0)
    ring = choose_fit(unit_rows(X), Y, seed=0)
    assert ring.landmarks is not None and ring.z < -_ridge.KERNEL_Z
    rng = np.random.default_rng(1)
    Xl = rng.normal(size=(200, 30))
    Yl = sp.csr_matrix((Xl[:, :2] + 0.3 * rng.normal(size=(200, 2)) > 0).astype(np.float32))  # linear labels
    linear = choose_fit(unit_rows(Xl), Yl, seed=0)
    assert linear.landmarks is None and linear.z >= -_ridge.KERNEL_Z
    assert np.isnan(choose_fit(unit_rows(X[:2]), Y[:2], seed=0).z)  # two rows: the kernel is not tried
    with pytest.MonkeyPatch.context() as patch:  # the kernel features would exceed their memory limit
        patch.setattr(_ridge, "MAX_KERNEL_VALUES", 200 * 200 - 1)
        assert np.isnan(choose_fit(unit_rows(X), Y, seed=0).z)
    wide = sp.csr_matrix(np.hstack([X, np.zeros((len(X), 3))]))  # 40% of the entries stored: sparse rows
    assert choose_fit(unit_rows(wide), Y, seed=0).landmarks is None and np.isnan(
        choose_fit(unit_rows(wide), Y, seed=0).z
    )


def test_landmarks_are_a_seeded_sample_above_the_limit() -> None:
    X, Y = _ring(90, 2)
    few = RidgeParams(max_landmarks=40)
    first, again, other = (choose_fit(unit_rows(X), Y, seed=s, params=few) for s in (3, 3, 4))
    assert first.landmarks is not None and first.landmarks.shape == (40, 2)
    np.testing.assert_array_equal(first.landmarks, again.landmarks)
    np.testing.assert_array_equal(first.fit.weights, again.fit.weights)
    assert not np.array_equal(first.landmarks, other.landmarks)
    # each landmark is a training row
    rows = {tuple(r) for r in unit_rows(X).round(12)}
    assert all(tuple(r) in rows for r in first.landmarks.round(12))


def _ring_estimator() -> tuple[XCClassifier, np.ndarray, sp.csr_matrix]:
    X, Y = _ring(240, 4)
    return XCClassifier(model="ridge", verbose=0).fit(X, Y), X, Y


def test_the_family_with_the_kernel_fits_saves_and_loads_bit_exactly(tmp_path: Path) -> None:
    est, X, Y = _ring_estimator()
    assert est.model_.ridge.kernel == "rbf" and "RBF kernel features" in est.fit_summary_["message"]
    idx, _ = est.predict_topk(X, 1)
    assert (np.asarray(Y[np.arange(len(X)), idx[:, 0]]).ravel() > 0).mean() > 0.9  # a linear model gets ~0.5
    est.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())["model"]
    assert config["kernel"] == "rbf" and config["n_landmarks"] == 240 and config["gamma"] == _ridge.RBF_GAMMA
    loaded = XCClassifier.load(tmp_path / "m")
    for a, b in zip(est.predict_topk(X, 2), loaded.predict_topk(X, 2), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(est.predict_proba(X), loaded.predict_proba(X))


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda m: m.update(kernel="poly"), "model.kernel"),
        (lambda m: m.update(gamma=0.0), "model.gamma"),
        (lambda m: m.update(gamma=True), "model.gamma"),
        (lambda m: m.pop("gamma"), "model.gamma"),
        (lambda m: m.update(n_landmarks=0), "model.n_landmarks"),
        (lambda m: m.update(n_landmarks=239), "ridge.weight"),
        (lambda m: m.update(kernel="linear"), "model"),
    ],
)
def test_a_damaged_kernel_config_is_one_clear_error(tmp_path: Path, edit, field: str) -> None:
    est, _, _ = _ring_estimator()
    est.save(tmp_path / "m")
    _edit_config(tmp_path / "m", lambda c: edit(c["model"]))
    with pytest.raises(ModelFormatError, match=field.replace(".", r"\.")):
        XCClassifier.load(tmp_path / "m")


def test_a_model_file_without_a_kernel_entry_is_linear(tmp_path: Path) -> None:
    """Stop 61's ridge files have no "kernel": they load as the linear model they are."""
    X, Y = _data()
    est = XCClassifier(model="ridge", verbose=0).fit(X, Y)
    assert est.model_.ridge.kernel == "linear"
    est.save(tmp_path / "m")
    _edit_config(tmp_path / "m", lambda c: c["model"].pop("kernel"))
    np.testing.assert_array_equal(XCClassifier.load(tmp_path / "m").predict_proba(X), est.predict_proba(X))


def test_auto_chooses_ridge_for_dense_features_up_to_its_row_limit() -> None:
    dense = DataProfile(RIDGE_DENSE_MAX_ROWS, 100, 10, 0.9, 2.0)
    assert choose_model(XCClassifier(), dense).rule == "ridge-dense"
    assert choose_model(XCClassifier(), DataProfile(RIDGE_DENSE_MAX_ROWS + 1, 100, 10, 0.9, 2.0)).family == "tree"
    sparse = DataProfile(RIDGE_MAX_ROWS + 1, 100, 10, 0.1, 2.0)  # above ridge-small, not dense
    assert choose_model(XCClassifier(), sparse).family == "tree"


# --- the family's settings (ridge_params) ---


def test_ridge_params_force_the_linear_model_or_the_kernel_and_set_its_width() -> None:
    X, Y = _ring(200, 0)
    Z = unit_rows(X)
    assert choose_fit(Z, Y, 0, RidgeParams(kernel="linear")).landmarks is None  # the ring: auto keeps the kernel
    rng = np.random.default_rng(1)
    Xl = rng.normal(size=(200, 30))
    Yl = sp.csr_matrix((Xl[:, :2] + 0.3 * rng.normal(size=(200, 2)) > 0).astype(np.float32))
    forced = choose_fit(unit_rows(Xl), Yl, 0, RidgeParams(kernel="rbf"))  # auto keeps the linear model here
    assert forced.landmarks is not None and forced.z >= -_ridge.KERNEL_Z
    wide = sp.csr_matrix(np.hstack([X, np.zeros((len(X), 3))]))  # sparse rows: rbf fits the kernel all the same
    assert choose_fit(unit_rows(wide), Y, 0, RidgeParams(kernel="rbf")).landmarks is not None
    # gamma is the kernel's: the weights differ, and the model records it
    narrow = XCClassifier(model="ridge", verbose=0, ridge_params={"kernel": "rbf", "gamma": 4.0}).fit(X, Y)
    assert narrow.model_.ridge.gamma == 4.0 and narrow.model_.ridge.kernel == "rbf"
    assert "gamma 4, 200 landmark rows: kernel='rbf'" in narrow.fit_summary_["message"]
    linear = XCClassifier(model="ridge", verbose=0, ridge_params={"kernel": "linear"}).fit(X, Y)
    assert linear.model_.ridge.kernel == "linear" and "kernel='linear'" in linear.fit_summary_["message"]
    with pytest.MonkeyPatch.context() as patch:  # a forced kernel beyond its memory bounds is refused, not shrunk
        patch.setattr(_ridge, "MAX_KERNEL_VALUES", 100)
        with pytest.raises(ConfigurationError, match=r"kernel='rbf'.*limits"):
            choose_fit(Z, Y, 0, RidgeParams(kernel="rbf"))


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"kernel": "poly"}, "kernel"),
        ({"gamma": 0.0}, "gamma"),
        ({"max_landmarks": 0}, "max_landmarks"),
        ({"kernel_z": -1.0}, "kernel_z"),
        ({"no_such": 1}, "no_such"),
        ("kernel=linear", "must be a dict"),
    ],
)
def test_bad_ridge_params_are_one_clear_error_before_any_data_is_read(given, message: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"ridge_params.*{message}|{message}.*ridge_params"):
        XCClassifier(ridge_params=given).fit(*_data(20))


def test_ridge_params_choose_the_ridge_family_save_and_load(tmp_path: Path) -> None:
    X, Y = _ring(240, 4)
    assert choose_model(XCClassifier(ridge_params={"kernel": "linear"}), DataProfile(5000, 10, 2, 1.0, 1.0)).family == (
        "ridge"
    )  # given settings win over the rules (5,000 dense rows: the tree by the rules)
    with pytest.raises(ConfigurationError, match="ridge_params"):
        choose_model(
            XCClassifier(ridge_params={"kernel": "linear"}, tree_params={"n_trees": 2}), DataProfile(50, 5, 2, 1.0, 1.0)
        )
    with pytest.raises(ConfigurationError, match="ridge_params"):
        choose_model(XCClassifier(ridge_params={"kernel": "linear"}, epochs=3), DataProfile(50, 5, 2, 1.0, 1.0))
    est = XCClassifier(verbose=0, ridge_params={"kernel": "rbf", "gamma": 2.0}).fit(X, Y)
    assert est.model_choice_.family == "ridge" and est.model_.ridge.gamma == 2.0
    est.save(tmp_path / "m")
    loaded = XCClassifier.load(tmp_path / "m")
    assert loaded.get_params()["ridge_params"] == {"kernel": "rbf", "gamma": 2.0}
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
