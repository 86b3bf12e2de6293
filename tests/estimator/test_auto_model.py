"""model="auto" (the estimator's default): the choice of family from the settings given and the data, the
choice recorded, saved, checked on load, and the model behaving as the chosen family's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc import XCClassifier
from sparsexc._params import RunParams
from sparsexc.errors import ConfigurationError, ModelFormatError
from sparsexc.estimator._auto import (
    NEUTRAL_SETTINGS,
    RULES,
    TREE_SETTINGS,
    DataProfile,
    choose_model,
    given_settings,
)
from sparsexc.estimator._families import ModelChoice, list_families


def _data(n: int = 240, d: int = 200, c: int = 12, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.05, format="csr", random_state=seed, dtype=np.float32)
    X.data[:] = 1.0
    # each row's labels follow its strongest feature block, so the problem is learnable
    block = np.asarray(X[:, : c * (d // c)].reshape(n, -1).argmax(axis=1)).ravel() % c
    rows = np.repeat(np.arange(n), 2)
    cols = np.stack([block, (block + rng.integers(1, c, n)) % c], axis=1).ravel()
    Y = sp.csr_matrix((np.ones(2 * n, dtype=np.float32), (rows, cols)), shape=(n, c))
    Y.data[:] = 1.0
    return X, Y


def test_the_default_is_auto_and_auto_is_a_registered_family() -> None:
    assert XCClassifier().model == "auto"
    assert "auto" in list_families()


def test_every_setting_belongs_to_one_family_or_none() -> None:
    names = set(XCClassifier._get_param_names())
    assert names >= NEUTRAL_SETTINGS | TREE_SETTINGS
    assert given_settings(XCClassifier()) == {}
    # neutral settings never decide the family
    assert given_settings(XCClassifier(random_state=3, verbose=0, preprocess="none", validation_fraction=0.2)) == {}
    assert given_settings(XCClassifier(head="sigmoid", epochs=3)) == {"head": "neural", "epochs": "neural"}
    assert given_settings(XCClassifier(hidden_sizes=[1024])) == {}  # the default, as a list
    assert given_settings(XCClassifier(tree_params={"n_trees": 2})) == {"tree_params": "tree"}


def test_given_settings_decide_before_the_rules() -> None:
    profile = DataProfile(100, 50, 5, 0.1, 1.0)
    assert choose_model(XCClassifier(head="sparsemax"), profile).family == "neural"
    assert choose_model(XCClassifier(tree_params={"loss": "logistic"}), profile).family == "tree"
    # a checkpointed run can only be the neural model (the tree trains in one pass)
    run = RunParams(checkpoint_dir="/tmp/x")
    chosen = choose_model(XCClassifier(), profile, run)
    assert chosen.family == "neural" and "checkpoint_dir" in chosen.reason
    with pytest.raises(ConfigurationError, match="both model families"):
        choose_model(XCClassifier(head="sigmoid", tree_params={"n_trees": 2}), profile)
    # the shortlist's tree is configured by tree_params: a neural model with a shortlist is not a conflict
    both = XCClassifier(shortlist="tree", tree_params={"max_leaf_size": 10})
    assert choose_model(both, profile).family == "neural"


def test_without_given_settings_the_first_matching_rule_decides() -> None:
    for profile in (DataProfile(300, 72, 6, 1.0, 1.9), DataProfile(20000, 30000, 4000, 0.001, 4.0)):
        chosen = choose_model(XCClassifier(), profile)
        rule = next(r for r in RULES if r.applies(profile))
        assert (chosen.rule, chosen.family, chosen.settings) == (rule.name, rule.family, rule.settings)
        assert profile.describe() in chosen.reason


def test_the_rules_settings_are_valid_estimator_settings() -> None:
    allowed = set(XCClassifier._get_param_names()) - {"model"}
    for rule in RULES:
        assert set(rule.settings) <= allowed, rule.name
        assert rule.family in list_families() and rule.family != "auto"
        XCClassifier(model=rule.family, **rule.settings)._settings()


def test_auto_fits_the_chosen_family_records_it_and_saves_and_loads_bit_exactly(tmp_path: Path) -> None:
    X, Y = _data()
    est = XCClassifier(verbose=0).fit(X, Y)
    chosen = est.resolved_model()
    assert chosen == est.model_choice_ == est.resolved_model(X, Y)  # the same rows, split and preprocessed as fit's
    assert chosen.rule is not None and est._family().name == chosen.family
    assert est.get_params()["model"] == "auto"  # fit does not change the settings
    bare = XCClassifier(verbose=0, model=chosen.family, **chosen.settings).fit(X, Y)
    np.testing.assert_array_equal(est.predict_topk(X, 3)[0], bare.predict_topk(X, 3)[0])
    np.testing.assert_array_equal(est.predict_topk(X, 3)[1], bare.predict_topk(X, 3)[1])
    est.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["family"] == chosen.family and config["model_choice"] == chosen.to_dict()
    assert config["params"]["model"] == "auto"
    loaded = XCClassifier.load(tmp_path / "m")
    assert loaded.resolved_model() == chosen and loaded.model == "auto"
    for a, b in zip(est.predict_topk(X, 5), loaded.predict_topk(X, 5), strict=True):
        np.testing.assert_array_equal(a, b)
    assert (est.predict(X) != loaded.predict(X)).nnz == 0


def test_auto_with_neural_settings_trains_the_neural_model_and_loads_it(tmp_path: Path) -> None:
    X, Y = _data()
    est = XCClassifier(verbose=0, head="sigmoid", hidden_sizes=(16,), epochs=2).fit(X, Y)
    assert est.resolved_model().family == "neural" and len(est.history_) >= 1
    assert type(est.model_).__name__ == "XCModel"  # the chosen family's own model
    assert "head 'sigmoid'" in est._family().describe(est)
    est.save(tmp_path / "n")
    loaded = XCClassifier.load(tmp_path / "n")
    for a, b in zip(est.predict_topk(X, 5), loaded.predict_topk(X, 5), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(est.predict_proba(X[:5]), loaded.predict_proba(X[:5]))


def test_auto_needs_data_or_a_fitted_model_to_say_its_choice() -> None:
    with pytest.raises(ConfigurationError, match="give X and Y"):
        XCClassifier().resolved_model()
    assert XCClassifier(model="tree").resolved_model() == ModelChoice("tree", {}, "given")


def test_a_rule_choice_with_settings_is_applied_and_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule that sets estimator settings: they reach the fitted family and the saved choice, and the load
    rebuilds the model with them (here: a logistic tree)."""
    import sparsexc.estimator._auto as auto

    rule = auto.Rule("test-logistic", lambda p: True, "tree", {"tree_params": {"loss": "logistic"}}, "a test")
    monkeypatch.setattr(auto, "RULES", (rule,))
    X, Y = _data()
    est = XCClassifier(verbose=0).fit(X, Y)
    assert est.model_.tree.params.loss == "logistic"
    assert est.tree_params is None  # the user's settings are untouched
    est.save(tmp_path / "m")
    monkeypatch.setattr(auto, "RULES", RULES)  # loading does not depend on today's rules
    loaded = XCClassifier.load(tmp_path / "m")
    assert loaded.model_.tree.params.loss == "logistic"
    assert loaded._family().probabilistic(loaded.model_)  # the chosen family's answer
    np.testing.assert_array_equal(est.predict_topk(X, 5)[1], loaded.predict_topk(X, 5)[1])


def _saved(tmp_path: Path) -> Path:
    X, Y = _data()
    folder = tmp_path / "m"
    XCClassifier(verbose=0).fit(X, Y).save(folder)
    return folder


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda a: a.update(family="auto"), "model_choice.family"),
        (lambda a: a.update(family="bogus"), "model_choice.family"),
        (lambda a: a.update(family="neural"), "model_choice.family"),  # not the family the config names
        (lambda a: a.update(settings={"no_such": 1}), "model_choice.settings.no_such"),
        (lambda a: a.update(settings={"epochs": -3}), "model_choice.settings"),
        (lambda a: a.update(settings=[1]), "model_choice.settings"),
        (lambda a: a.update(extra=1), "model_choice"),
        (lambda a: a.update(reason=5), "model_choice"),
    ],
)
def test_a_damaged_choice_is_one_clear_error_naming_the_field(tmp_path: Path, edit, field: str) -> None:
    folder = _saved(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    edit(config["model_choice"])
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match=field.replace(".", r"\.").replace("_", "_")):
        XCClassifier.load(folder)


def test_a_missing_choice_is_a_clear_error(tmp_path: Path) -> None:
    folder = _saved(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    del config["model_choice"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="model_choice"):
        XCClassifier.load(folder)


def test_a_folder_saved_before_the_families_loads_as_the_neural_model(tmp_path: Path) -> None:
    X, Y = _data()
    est = XCClassifier(verbose=0, model="neural", hidden_sizes=(8,), epochs=1).fit(X, Y)
    est.save(tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["params"]["model"], config["family"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    loaded = XCClassifier.load(tmp_path / "old")
    assert loaded.model == "neural"
    np.testing.assert_array_equal(est.predict_topk(X, 3)[0], loaded.predict_topk(X, 3)[0])


def test_every_rules_family_holds_out_the_plain_share() -> None:
    """The rules choose from the training rows, after the hold-out is cut: so with model="auto" and no family's
    settings given the hold-out is the plain share, which must be what each rule's family would cut itself."""
    from sparsexc.estimator._families import ModelFamily, get_family
    from sparsexc.train.budget import holdout_rows

    auto = XCClassifier()
    for n in (10, 300, 5_000, 200_000):
        assert get_family("auto").holdout_rows(auto, n) == holdout_rows(n, auto.validation_fraction)
        for rule in RULES:
            est = XCClassifier(model=rule.family, **rule.settings)
            assert get_family(rule.family).holdout_rows(est, n) == ModelFamily.holdout_rows(get_family("auto"), est, n)
    # settings of the neural model given: its hold-out (a minimum before its small-data refit)
    neural = XCClassifier(head="sigmoid")
    assert get_family("auto").holdout_rows(neural, 300) == get_family("neural").holdout_rows(neural, 300)


def test_three_trees_only_above_the_cross_validated_size_and_one_leaf() -> None:
    """The ensemble rule: more rows than LabelTreeParams.cv_max_rows (C fixed) and more labels than
    max_leaf_size (with one leaf the trees are identical); an explicit tree setting always wins."""
    big = DataProfile(20000, 30000, 4000, 0.001, 4.0)
    assert choose_model(XCClassifier(), big).settings == {"tree_params": {"n_trees": 3}}
    for small in (DataProfile(5000, 30000, 4000, 0.001, 4.0), DataProfile(80000, 30000, 100, 0.001, 2.0)):
        chosen = choose_model(XCClassifier(), small)
        assert chosen.family == "tree" and chosen.settings == {}, small
    given = choose_model(XCClassifier(tree_params={"n_trees": 1}), big)
    assert given.family == "tree" and given.settings == {}  # the user's tree_params alone: n_trees=1
