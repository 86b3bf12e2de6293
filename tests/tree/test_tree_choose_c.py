"""C=None on small training sets: C chosen by cross-validation (``cross_validate_C``), checked by brute force; a
label prior the data support is then ranked first; old model files (no ``cv_max_rows``) load as before."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc.tree import LabelTreeModel, LabelTreeParams
from sparsexc.tree.model import (
    C_FACTORS,
    CV_DCD_FOLDS,
    CV_FOLDS,
    DCD_TOL,
    DEFAULT_C,
    _best_C,
    choose_C,
    cross_validate_C,
    cv_folds,
    cv_tolerance,
    node_tolerance,
)


def _noise(n: int, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Dense Gaussian features (100) unrelated to the labels; label 0 is in 90% of the rows, labels 1-9 in 30%:
    the best ranking puts label 0 first for every row."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 100)).astype(np.float32)
    Y = (rng.random((n, 10)) < np.array([0.9] + [0.3] * 9)).astype(np.float32)
    return sp.csr_matrix(X), sp.csr_matrix(Y)


def test_frequent_label_ranks_first_when_the_features_say_nothing():
    X, Y = _noise(120, 0)
    X_new, _ = _noise(1000, 1)
    tuned = LabelTreeModel(LabelTreeParams()).fit(X, Y)
    peers = LabelTreeModel(LabelTreeParams(C=1.0)).fit(X, Y)  # the peers' C: fits the noise
    first = {name: np.mean(m.predict_topk(X_new, 1)[0][:, 0] == 0) for name, m in (("tuned", tuned), ("C=1", peers))}
    assert tuned.params.C < 1.0
    assert first["tuned"] >= 0.95
    assert first["C=1"] < 0.9  # so the assert above is not true of any C


def _precision(Y: sp.csr_matrix, idx: np.ndarray, k: int) -> float:
    """P@k by Python sets, rows without labels counting 0."""
    rows = [set(Y.indices[Y.indptr[i] : Y.indptr[i + 1]].tolist()) for i in range(Y.shape[0])]
    return float(np.mean([len(rows[i] & set(idx[i, :k].tolist())) / k for i in range(Y.shape[0])]))


@pytest.mark.parametrize(
    ("solver", "n_folds", "tol"),
    [("auto", CV_FOLDS, None), ("dcd", CV_DCD_FOLDS, 4.0)],  # auto on 60 rows: Newton, 3 folds, its own tolerance
)
def test_cross_validated_scores_equal_brute_force_folds_and_fit_takes_the_best(solver, n_folds, tol):
    X, Y = _noise(60, 2)
    params = LabelTreeParams(branching=2, max_leaf_size=4, seed=5, solver=solver)
    # cold: every fit as a separate one (the warm-started path's models agree to the solver's tolerance,
    # tests/tree/test_tree_warm_path.py)
    scores = cross_validate_C(X, Y, params, warm_start=False, patience=0)  # every C (the early stop: elsewhere)
    assert list(scores) == [float(f"{DEFAULT_C['squared_hinge'] * f:.6g}") for f in C_FACTORS]
    folds = np.array_split(np.random.default_rng(5).permutation(60), n_folds)
    # the folds' fits stop at the cross-validation's tolerance (Newton: its own; dcd: 10x its own)
    cv_tol = cv_tolerance(params.for_data(X.nnz, Y.shape[1], X.shape[1]))
    assert cv_tol == (tol if tol is None else pytest.approx(tol))
    for C in (0.03, 1.0):
        want = []
        for f, held in enumerate(folds):
            rest = np.concatenate([g for i, g in enumerate(folds) if i != f])
            model = LabelTreeModel(params.replace(C=C, tol=cv_tol)).fit(X[rest], Y[rest])
            idx, _ = model.predict_topk(X[held], 5)
            want.append(np.mean([_precision(Y[held], idx, k) for k in (1, 3, 5)]))
        assert scores[C] == pytest.approx(np.mean(want), abs=1e-12)
    fitted = LabelTreeModel(params).fit(X, Y)
    assert fitted.cv_scores_ == cross_validate_C(X, Y, params)  # fit's: warm-started
    chosen = fitted.params.C
    assert chosen == _best_C(fitted.cv_scores_, "squared_hinge")
    # the final model is the one trained on every row with that C, at the solver's own tolerance
    assert fitted.params.tol is None
    again = LabelTreeModel(params.replace(C=chosen)).fit(X, Y)
    for a, b in zip(fitted.weights_[0], again.weights_[0], strict=True):
        assert (a != b).nnz == 0


def _signal(n: int, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Gaussian features (30) and 10 labels thresholded from a random linear map plus noise: held-out P@k rises
    with C up to 1 and falls after it (a C chosen inside the grid, with a larger one tried)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 30)).astype(np.float32)
    Y = ((X @ rng.normal(size=(30, 10)) + rng.normal(size=(n, 10))) > 1.0).astype(np.float32)
    return sp.csr_matrix(X), sp.csr_matrix(Y)


@pytest.mark.parametrize("solver", ["auto", "dcd"])  # auto on 90 rows: Newton, 3 folds; dcd: 2, warm-started
def test_choose_c_keeps_every_rows_out_of_fold_ranking_at_the_chosen_c(monkeypatch, solver):
    import sparsexc.tree.model as model_module

    X, Y = _signal(90, 0)
    # every label clustered (frequent_share 0): the peaks below are those of this tree, whose labels are positive on
    # up to half the rows
    params = LabelTreeParams(branching=2, max_leaf_size=4, seed=5, solver=solver, frequent_share=0.0)
    paths: list[list[LabelTreeModel]] = []  # each fold's models, one per C, as the cross-validation made them
    real = model_module.fit_C_path

    def spy(*args, **kw):
        made: list[LabelTreeModel] = []
        paths.append(made)
        for model in real(*args, **kw):
            made.append(model)
            yield model

    monkeypatch.setattr(model_module, "fit_C_path", spy)
    found = choose_C(X, Y, params, topk=7)
    tried = list(found.scores)
    # inside the grid: a smaller C exists and a later C was scored and not kept (Newton peaks at 1.0 here; dcd's
    # folds, solved to 10x DCD_TOL, at 0.3)
    peak = 1.0 if solver == "auto" else 0.3
    assert peak == found.C and tried[-1] > found.C > min(tried)
    idx, scores = found.topk
    assert idx.shape == scores.shape == (90, 7) and idx.dtype == np.int64 and scores.dtype == np.float32
    folds = np.array_split(np.random.default_rng(5).permutation(90), len(paths))
    cv_tol = cv_tolerance(params.for_data(X.nnz, Y.shape[1], X.shape[1]))
    newton = params.for_data(X.nnz, Y.shape[1], X.shape[1]).solver == "newton"
    assert newton is (solver == "auto")
    for f, held in enumerate(folds):
        model = paths[f][tried.index(found.C)]
        assert model.params.C == found.C
        want_idx, want_scores = model.predict_topk(X[held], 7)
        np.testing.assert_array_equal(idx[held], want_idx)
        np.testing.assert_array_equal(scores[held], want_scores)
        if newton:  # no warm start: the path's model is the separate fit (brute force)
            rest = np.concatenate([g for i, g in enumerate(folds) if i != f])
            alone = LabelTreeModel(params.replace(C=found.C, tol=cv_tol)).fit(X[rest], Y[rest])
            np.testing.assert_array_equal(idx[held], alone.predict_topk(X[held], 7)[0])
    # the kept rankings are the ones the chosen C was scored by
    by_fold = [np.mean([_precision(Y[held], idx[held], k) for k in (1, 3, 5)]) for held in folds]
    assert found.scores[found.C] == pytest.approx(np.mean(by_fold), abs=1e-12)
    # keeping them changes nothing else: the scores and the C of cross_validate_C and of fit
    monkeypatch.setattr(model_module, "fit_C_path", real)
    assert cross_validate_C(X, Y, params) == found.scores
    fitted = LabelTreeModel(params).fit(X, Y)
    assert fitted.cv_scores_ == found.scores and fitted.params.C == found.C
    assert choose_C(X, Y, params).topk is None


def test_choose_c_clips_topk_to_the_labels_and_checks_it():
    from sparsexc.errors import ConfigurationError

    X, Y = _signal(60, 1)
    params = LabelTreeParams(branching=2, max_leaf_size=4, seed=5)
    assert choose_C(X, Y, params, topk=100).topk[0].shape == (60, 10)
    for bad in (-1, 1.5, True, "5"):
        with pytest.raises(ConfigurationError, match="topk"):
            choose_C(X, Y, params, topk=bad)


@pytest.mark.parametrize(
    ("settings", "want"),
    [
        ({"solver": "dcd"}, 4.0),  # the tree's dual tolerance DCD_TOL = 0.4, x 10
        ({"solver": "auto"}, 4.0),  # auto: dcd for the squared hinge
        ({"solver": "dcd", "tol": 0.05}, 0.5),  # a tolerance given: 10x that one
        ({"solver": "newton"}, None),  # Newton keeps its own (None: the solver's 0.01)
        ({"loss": "logistic"}, None),  # auto: newton for the logistic loss
        ({"solver": "newton", "tol": 0.05}, 0.05),
    ],
)
def test_the_cross_validation_solves_dcd_to_ten_times_the_fits_tolerance(settings, want):
    assert cv_tolerance(LabelTreeParams(**settings)) == (want if want is None else pytest.approx(want))


@pytest.mark.parametrize(
    ("settings", "want"),
    [
        ({"solver": "dcd"}, CV_DCD_FOLDS),
        ({"solver": "auto"}, CV_DCD_FOLDS),  # auto, before for_data: dcd for the squared hinge
        ({"solver": "newton"}, CV_FOLDS),
        ({"loss": "logistic"}, CV_FOLDS),  # auto: newton for the logistic loss
    ],
)
def test_the_cross_validation_cuts_two_folds_where_dcd_solves_the_nodes(settings, want):
    assert (CV_DCD_FOLDS, CV_FOLDS) == (2, 3)
    assert cv_folds(LabelTreeParams(**settings)) == want


def test_the_cross_validation_uses_its_tolerance_and_the_fit_its_own(monkeypatch):
    import sparsexc.tree.model as model_module

    X, Y = _noise(60, 3)
    seen = []
    real = model_module.fit_C_path

    def spy(X, Y, params, Cs, **kw):
        seen.append(params.tol)
        return real(X, Y, params, Cs, **kw)

    monkeypatch.setattr(model_module, "fit_C_path", spy)
    fitted = LabelTreeModel(LabelTreeParams(solver="dcd")).fit(X, Y)
    assert seen == [pytest.approx(10 * DCD_TOL)] * CV_DCD_FOLDS  # dual coordinate descent: two folds
    assert fitted.params.tol is None and node_tolerance(fitted.params) == DCD_TOL  # the final fit: the tree's own


def test_best_c_breaks_ties_towards_the_default_then_the_stronger_penalty():
    assert _best_C({0.1: 0.5, 1.0: 0.5, 3.0: 0.5}, "squared_hinge") == 1.0
    assert _best_C({0.1: 0.5, 0.3: 0.5, 1.0: 0.4}, "squared_hinge") == 0.1
    assert _best_C({1.0: 0.5, 3.0: 0.5, 10.0: 0.4}, "logistic") == 1.0
    assert _best_C({0.3: 0.1, 10.0: 0.2, 30.0: 0.3}, "logistic") == 30.0


@pytest.mark.parametrize(
    ("settings", "rows", "cross_validates"),
    [
        ({}, 120, True),
        ({"C": 1.0}, 120, False),  # C given
        ({"cv_max_rows": 0}, 120, False),  # off
        ({"cv_max_rows": 119}, 120, False),  # too many rows
        ({}, 2 * CV_FOLDS - 1, False),  # too few rows for the folds
        ({}, 2 * CV_FOLDS, True),
    ],
)
def test_when_c_is_cross_validated(settings, rows, cross_validates):
    X, Y = _noise(rows, 3)
    params = LabelTreeParams(**settings)
    assert params.cross_validates(rows) is cross_validates
    model = LabelTreeModel(params).fit(X, Y)
    assert hasattr(model, "cv_scores_") is cross_validates
    if not cross_validates:
        used = model.params.C
        assert used == (settings.get("C") or DEFAULT_C["squared_hinge"])


def test_model_files_without_cv_max_rows_load_and_predict_as_before(tmp_path):
    """A folder saved before ``cv_max_rows`` existed states its C (``fit`` always wrote the number): it loads
    with that C and predicts exactly what it predicted."""
    X, Y = _noise(80, 4)
    model = LabelTreeModel(LabelTreeParams(C=1.0, branching=2, max_leaf_size=4)).fit(X, Y)
    model.save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    del config["params"]["cv_max_rows"]
    config_path.write_text(json.dumps(config))
    old = LabelTreeModel.load(tmp_path / "m")
    assert old.params.C == 1.0
    for a, b in zip(model.predict_topk(X, 5), old.predict_topk(X, 5), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("settings", "want"),
    [
        ({"solver": "dcd"}, DCD_TOL),  # the tree's own dual tolerance, not LIBLINEAR's 0.1
        ({"solver": "auto"}, DCD_TOL),  # auto: dcd for the squared hinge
        ({"solver": "dcd", "tol": 0.1}, 0.1),  # a tolerance given wins
        ({"solver": "newton"}, None),  # Newton: the solver's own (0.01)
        ({"loss": "logistic"}, None),
    ],
)
def test_every_node_solves_to_the_trees_tolerance(settings, want):
    assert node_tolerance(LabelTreeParams(**settings)) == want


def test_the_default_tolerance_is_what_the_nodes_are_solved_to():
    X, Y = _signal(200, 4)
    params = LabelTreeParams(branching=2, max_leaf_size=4, C=1.0, solver="dcd")
    weights = [LabelTreeModel(params.replace(tol=tol)).fit(X, Y).weights_[0] for tol in (None, DCD_TOL, 0.001)]
    for a, b in zip(weights[0], weights[1], strict=True):
        assert (a != b).nnz == 0  # None: bit for bit the fit at DCD_TOL
    assert any((a != b).nnz for a, b in zip(weights[0], weights[2], strict=True))  # so the check can fail
