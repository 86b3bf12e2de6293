"""``model="auto"`` (the estimator's default): the model family and its settings chosen from the training data.

:class:`AutoFamily` is a model family like the others (:mod:`sparsexc.estimator._families`), so the estimator
and the CLI need no special case: its :meth:`~AutoFamily.fit` looks at the training rows (:class:`DataProfile`),
picks a family and the settings the rule sets (:func:`choose_model`, a :class:`ModelChoice`) and fits that
family with them. The fitted model is that family's own (the estimator's ``model_choice_`` names the family
that predicts, saves and loads it), so nothing downstream knows it was chosen. The choice is saved with the model (the config's ``"model_choice"``) and checked on load.

What the user gave wins over the rule (:func:`given_settings`): any setting that only the neural model reads
(``head``, ``hidden_sizes``, ``epochs``, ``lr``, ``shortlist``, ...) or a checkpointed run (``checkpoint_dir``,
``resume``; the tree trains in one pass) means the neural model with the user's settings; ``tree_params`` means
the label tree, ``ridge_params`` the ridge model. A setting counts as given when it differs from the constructor's default (an estimator cannot
tell ``head="softmax"`` typed out from the default; pass ``model="neural"`` to insist on the neural model).

Otherwise the first rule of :data:`RULES` that matches the data decides. The rules and the evidence for each
are in ``docs/getting-started.md``, "The default model".
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import scipy.sparse as sp

from sparsexc._params import RunParams
from sparsexc.errors import ConfigurationError
from sparsexc.estimator._families import Fitted, ModelChoice, ModelFamily, get_family, list_families, register_family

__all__ = [
    "NEUTRAL_SETTINGS",
    "RIDGE_DENSE_MAX_ROWS",
    "RIDGE_MAX_ROWS",
    "RIDGE_SETTINGS",
    "RULES",
    "TREE_SETTINGS",
    "AutoFamily",
    "DataProfile",
    "Rule",
    "choose_model",
    "given_family",
    "given_settings",
]

# Estimator settings every family reads (or none does); any other setting belongs to one family.
NEUTRAL_SETTINGS: frozenset[str] = frozenset(
    {"model", "random_state", "verbose", "validation_fraction", "tune_metric", "preprocess"}
)
# The label tree's and the ridge model's own settings; every remaining estimator setting is the neural model's.
TREE_SETTINGS: frozenset[str] = frozenset({"tree_params"})
RIDGE_SETTINGS: frozenset[str] = frozenset({"ridge_params"})
# fit's run plumbing that only the neural family honours (a tree trains in one pass: nothing to checkpoint)
_NEURAL_RUN: tuple[str, ...] = ("checkpoint_dir", "checkpoint_every", "resume")


@dataclasses.dataclass(frozen=True)
class DataProfile:
    """What the rules look at: the training rows after the feature preprocessing.

    ``density`` is the share of non-zero entries of X (the preprocessing keeps a sparse input sparse and
    centres, i.e. fills, only a matrix at least half full, so ``density >= 0.5`` means real-valued dense
    features); ``labels_per_row`` the mean number of positive labels of a row.
    """

    n_rows: int
    n_features: int
    n_labels: int
    density: float
    labels_per_row: float

    @classmethod
    def from_data(cls, X: sp.csr_matrix, Y: sp.csr_matrix) -> DataProfile:
        n, d = X.shape
        cells = n * d
        return cls(
            n_rows=int(n),
            n_features=int(d),
            n_labels=int(Y.shape[1]),
            density=float(X.nnz) / cells if cells else 0.0,
            labels_per_row=float(Y.nnz) / n if n else 0.0,
        )

    @property
    def dense(self) -> bool:
        """Real-valued dense features (at least half the entries non-zero)."""
        return self.density >= 0.5

    def describe(self) -> str:
        kind = "dense" if self.dense else "sparse"
        return (
            f"{self.n_rows} rows x {self.n_features} {kind} features ({100 * self.density:.1f}% non-zero), "
            f"{self.n_labels} labels, {self.labels_per_row:.2f} per row"
        )


@dataclasses.dataclass(frozen=True)
class Rule:
    """One row of the rule table: when ``applies(profile)``, fit ``family`` with the estimator ``settings``."""

    name: str
    applies: Callable[[DataProfile], bool]
    family: str
    settings: dict[str, Any]
    reason: str


def _ensemble_pays(profile: DataProfile) -> bool:
    """More training rows than the tree cross-validates C on (so C is the fixed C_0) and more labels than one
    leaf holds (with one leaf every tree is the same one-vs-rest model): the data where 3 trees gained."""
    from sparsexc.tree import LabelTreeParams

    tree = LabelTreeParams()
    return profile.n_rows > tree.cv_max_rows and profile.n_labels > tree.max_leaf_size


# ridge-small: at most this many training rows (those the family is given, after the validation hold-out). On the
# hold-outs of stops 60 and 61 (benchmarks/results/small_holdout_s60_ridge.md, ..._s61_ridge.md) ridge was level
# with or ahead of the tree on P@1 on every set of at most 351 rows and behind (scene) or dearer (enron) on the sets
# of 1,011 rows and more.
RIDGE_MAX_ROWS = 600
# ridge-dense: on real-valued dense features, at most this many training rows. On the hold-outs of stop 62
# (benchmarks/results/small_holdout_s62_rbf.md) the family's RBF kernel, kept by its leave-one-out errors, put
# scene (969 rows) and yeast (1,200) ahead of the tree; no dense set above 1,500 rows was measured.
RIDGE_DENSE_MAX_ROWS = 2000
_RIDGE_MAX_WEIGHTS = 10_000_000  # features x labels of the rules' ridge models


def _ridge_pays(profile: DataProfile) -> bool:
    """Few training rows (:data:`RIDGE_MAX_ROWS`), and a dense weight matrix of at most 10^7 values."""
    return profile.n_rows <= RIDGE_MAX_ROWS and profile.n_features * profile.n_labels <= _RIDGE_MAX_WEIGHTS


def _ridge_dense_pays(profile: DataProfile) -> bool:
    """Real-valued dense features, at most :data:`RIDGE_DENSE_MAX_ROWS` rows and 10^7 features x labels."""
    return (
        profile.dense
        and profile.n_rows <= RIDGE_DENSE_MAX_ROWS
        and profile.n_features * profile.n_labels <= _RIDGE_MAX_WEIGHTS
    )


# The rule table, first match wins (evidence: docs/getting-started.md, "The default model").
RULES: tuple[Rule, ...] = (
    Rule(
        "ridge-small",
        _ridge_pays,
        "ridge",
        {},
        "one-vs-rest ridge regression, its penalty by exact leave-one-out: at most 600 training rows, where on 20% "
        "hold-outs of the training rows of flags, emotions, birds, cal500 and medical its P@1 was the label tree's "
        "+0.1 to +1.5 points at 0.11-0.38x the training CPU",
    ),
    Rule(
        "ridge-dense",
        _ridge_dense_pays,
        "ridge",
        {},
        "one-vs-rest ridge regression on real-valued dense features of at most 2,000 training rows, where its RBF "
        "kernel (kept when its leave-one-out error is lower) put the 20% hold-outs of the training rows of scene and "
        "yeast ahead of the label tree (P@1 +3.6 and +0.3, P@5 +0.0 and +0.9)",
    ),
    Rule(
        "label-tree-ensemble",
        _ensemble_pays,
        "tree",
        {"tree_params": {"n_trees": 3}},
        "the label tree with 3 trees (omikuji's default): above 5,000 training rows and 100 labels, 3 trees "
        "gained over 1 on 20% hold-outs of the training rows (P@1 debtags +0.8, debian-deps +0.6, "
        "wordnet-hypernyms 100 both, delicious -0.1; P@5 +0.3 to +0.6 on all four) at 2.4-3.6x the training CPU",
    ),
    Rule(
        "label-tree",
        lambda p: True,
        "tree",
        {},
        "the label-tree linear model (squared hinge): on hold-outs of every kind of data measured no neural head "
        "was consistently ahead, at 3-27x the training CPU",
    ),
)


def _defaults(estimator: Any) -> dict[str, Any]:
    signature = inspect.signature(type(estimator).__init__)
    return {name: p.default for name, p in signature.parameters.items() if p.default is not inspect.Parameter.empty}


def given_settings(estimator: Any) -> dict[str, str]:
    """The settings of ``estimator`` that differ from the constructor's defaults, each with the family it belongs
    to ("neural", "tree"; the neutral ones of :data:`NEUTRAL_SETTINGS` are left out)."""
    defaults = _defaults(estimator)
    given: dict[str, str] = {}
    for name, value in estimator.get_params(deep=False).items():
        if name in NEUTRAL_SETTINGS or name not in defaults:
            continue
        default = defaults[name]
        same = (
            (list(value) == list(default))
            if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple))
            else value == default
        )
        if not same:
            given[name] = "tree" if name in TREE_SETTINGS else "ridge" if name in RIDGE_SETTINGS else "neural"
    return given


def _given(estimator: Any, run: RunParams | None) -> tuple[str | None, list[str]]:
    """(the family the settings given and ``run``'s checkpoint options name, or None; the names that chose it)."""
    given = given_settings(estimator)
    run_given = [n for n in _NEURAL_RUN if run is not None and getattr(run, n) not in (None, False)]
    neural = sorted(n for n, fam in given.items() if fam == "neural") + run_given
    if neural and "tree_params" in given and getattr(estimator, "shortlist", "none") != "tree":
        raise ConfigurationError(
            f"model='auto' was given settings of both model families: tree_params (the label tree) and "
            f"{', '.join(neural)} (the neural model); pass model='tree' or model='neural'"
        )
    if "ridge_params" in given and (neural or "tree_params" in given):
        others = ", ".join(neural + (["tree_params"] if "tree_params" in given else []))
        raise ConfigurationError(
            f"model='auto' was given settings of two model families: ridge_params (the ridge model) and {others}; "
            "pass model='ridge' or the other family's model"
        )
    if neural:
        return "neural", neural
    if not given:
        return None, []
    return ("ridge" if "ridge_params" in given else "tree"), sorted(given)


def given_family(estimator: Any, run: RunParams | None = None) -> str | None:
    """The family the settings given (and ``run``'s checkpoint options) name, or None when they name none.

    Raises
    ------
    ConfigurationError
        When settings of both families are given (except ``tree_params`` with ``shortlist="tree"``, which
        configures the neural model's shortlist).
    """
    return _given(estimator, run)[0]


def choose_model(estimator: Any, profile: DataProfile, run: RunParams | None = None) -> ModelChoice:
    """The family (and the settings the rule sets) that ``model="auto"`` fits on data of ``profile``.

    The user's settings first (see the module docstring), then the first matching rule of :data:`RULES`.
    """
    family, names = _given(estimator, run)
    if family is not None:
        return ModelChoice(family, {}, f"given {', '.join(names)} (settings of the {family} model)")
    for rule in RULES:
        if rule.applies(profile):
            return ModelChoice(
                rule.family, dict(rule.settings), f"{rule.reason}; data: {profile.describe()}", rule.name
            )
    raise AssertionError("the last rule matches every profile")  # pragma: no cover


@register_family
class AutoFamily(ModelFamily):
    """Chooses the family and its settings from the settings given and the training data (the module docstring),
    then fits that family. The fitted model is the chosen family's: the estimator's ``model_choice_`` says which,
    and its predictions, files and checks go to that family."""

    name = "auto"

    def choose(self, estimator: Any, X: sp.csr_matrix, Y: sp.csr_matrix, run: RunParams | None = None) -> ModelChoice:
        return choose_model(estimator, DataProfile.from_data(X, Y), run)

    def holdout_rows(self, estimator: Any, n_rows: int) -> int:
        """The hold-out of the family the settings given choose (:func:`given_family`), before any data are seen;
        when the rules choose (from the training rows, so after the hold-out is cut), the share
        ``validation_fraction`` that every family of :data:`RULES` holds out (tested)."""
        family = given_family(estimator)
        if family is None:
            return super().holdout_rows(estimator, n_rows)
        return get_family(family).holdout_rows(estimator, n_rows)

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
        choice = self.choose(estimator, X, Y, run)
        family = get_family(choice.family)
        fitted_with = choice.applied_to(estimator)
        fitted_with._check_settings()  # the rule's settings, checked as the user's are
        family.check_run(run)
        fitted = family.fit(fitted_with, X, Y, X_val, Y_val, run, held_out=held_out)
        return dataclasses.replace(fitted, choice=choice)

    def saved_choice(self, estimator: Any, config: dict[str, Any], family: Any, fields: Any) -> ModelChoice | None:
        """The config's ``"model_choice"``, checked: a family other than "auto" and the one the config's
        ``"family"`` names, and the rule's settings valid settings of the estimator."""
        f = fields
        choice = _checked_choice(f.mapping(f.get(config, "model_choice", "model_choice"), "model_choice"), estimator, f)
        if choice.family != family:
            raise f.error("model_choice.family", f"is {choice.family!r} but the config's family is {family!r}")
        return choice


def _checked_choice(entry: dict[str, Any], estimator: Any, f: Any) -> ModelChoice:
    """The saved ``model_choice`` entry as a :class:`ModelChoice`, every field checked."""
    unknown = sorted(set(entry) - {"family", "settings", "reason", "rule"})
    if unknown:
        raise f.error("model_choice", f"holds the unknown key {unknown[0]!r}")
    family = f.get(entry, "family", "model_choice.family")
    choices = [name for name in list_families() if name != AutoFamily.name]
    if family not in choices:
        raise f.error("model_choice.family", f"is {family!r}; one of {', '.join(map(repr, choices))}")
    settings = f.mapping(f.get(entry, "settings", "model_choice.settings"), "model_choice.settings")
    f.finite(settings, "model_choice.settings")
    allowed = set(type(estimator)._get_param_names()) - {"model"}
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise f.error(f"model_choice.settings.{unknown[0]}", f"is not a setting of {type(estimator).__name__}")
    reason, rule = entry.get("reason", ""), entry.get("rule")
    if not isinstance(reason, str) or not (rule is None or isinstance(rule, str)):
        raise f.error("model_choice", "'reason' must be a string and 'rule' a string or null")
    choice = ModelChoice(family, dict(settings), reason, rule)
    try:
        choice.applied_to(estimator)._check_settings()
    except (ValueError, TypeError) as exc:
        raise f.error("model_choice.settings", f"holds an invalid setting: {exc}") from None
    return choice
