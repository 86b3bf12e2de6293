"""Model families of :class:`~sparsexc.estimator.XCClassifier`: the seam between the estimator and what it fits.

The estimator owns what every family shares (checking X and Y, label names, the validation hold-out, the model
folder, scikit-learn's contract); a family owns the rest: training from ``(X, Y, X_val, Y_val)``, top-k, label
sets and dense scores, tuning its set rule, and its part of the model files. The estimator's ``model`` setting
names one (:data:`sparsexc._params.FitParams.model`: its choices are :func:`list_families`), so a new family
(issue 20's ``"auto"``) is one class decorated with :func:`register_family`, never a special case in the estimator or the CLI.

* ``"neural"`` (:class:`NeuralFamily`): the encoder + head trained by :class:`~sparsexc.train.Trainer`, as the
  estimator has always done; its model is an :class:`~sparsexc.models.XCModel`.
* ``"tree"`` (:class:`TreeFamily`): the label-tree linear model :class:`~sparsexc.tree.LabelTreeModel`
  (settings: the estimator's ``tree_params``), wrapped with its tuned set threshold as :class:`TreeClassifierModel`.
  numpy/scipy only: training and prediction compute with no torch (the estimator module, the model files'
  reader and, in a process group, the exchange of the ranks' parts of the tree use it).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from sparsexc._params import MODEL_FAMILIES, P, PredictParams, RunParams
from sparsexc.core.registry import Registry
from sparsexc.distributed.context import all_gather_objects, is_distributed, rank, world_size
from sparsexc.errors import ConfigurationError
from sparsexc.heads.tuning import candidate_sets, tune_candidates  # numpy: no torch
from sparsexc.train.progress import fit_summary

if TYPE_CHECKING:
    from sparsexc.estimator.serialization import ModelFiles
    from sparsexc.train.budget import TrainingBudget
    from sparsexc.tree import LabelTreeModel, LabelTreeParams

__all__ = [
    "THRESHOLD_GRID",
    "TREE_CANDIDATES",
    "Fitted",
    "ModelChoice",
    "ModelFamily",
    "NeuralFamily",
    "TreeClassifierModel",
    "TreeFamily",
    "check_tuned_rule",
    "default_tree_threshold",
    "family_params",
    "get_family",
    "list_families",
    "refuse_checkpoints",
    "register_family",
    "rule_sets",
    "tune_tree_sets",
]

# a tree model's label sets are chosen among each row's best TREE_CANDIDATES labels (Parabel keeps 100)
TREE_CANDIDATES = 100
# thresholds tried when tuning a set rule on scores in (0, 1] (a tree model's path scores, ridge's probabilities)
THRESHOLD_GRID: tuple[float, ...] = tuple(float(v) for v in np.round(np.arange(0.02, 1.0, 0.02), 2))
# scales a tried for the sparsemax set rule (support of sparsemax(a log s)); on a label tree's 100 best labels a
# 10% hold-out of the training rows chose 0.1-1.25 for example-F1 on bibtex, delicious, medical, tmc2007-500
# (docs/tree.md, "Sets")
SPARSEMAX_SCALES: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 8.0)


@dataclasses.dataclass
class Fitted:
    """What a family's :meth:`ModelFamily.fit` leaves on the estimator (its fitted attributes)."""

    model: Any
    history: list[dict[str, Any]]
    best_epoch: int | None
    fit_summary: dict[str, Any]
    tuned: dict[str, Any]
    budget: TrainingBudget | None = None  # the neural family's training budget (sparsexc.train.budget)
    choice: ModelChoice | None = None  # what was fitted, when a family fits another (model="auto"); None: itself


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    """Which family a fit trains and why: ``family`` fitted with the estimator's settings plus ``settings`` (the
    ones a rule set; never one the user gave). ``model="auto"`` chooses from the data
    (:mod:`sparsexc.estimator._auto`); the other families choose themselves ("given")."""

    family: str
    settings: dict[str, Any]
    reason: str
    rule: str | None = None  # the name of the rule of model="auto" that chose, None otherwise

    def describe(self) -> str:
        """One line, e.g. ``"tree (rule sparse-input: ...)"``."""
        settings = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        how = f"rule {self.rule}: {self.reason}" if self.rule else self.reason
        return self.family + (f" with {settings}" if settings else "") + f" ({how})"

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "settings": dict(self.settings), "reason": self.reason, "rule": self.rule}

    def applied_to(self, estimator: Any) -> Any:
        """``estimator`` itself when the choice changes nothing, else a copy (scikit-learn's ``clone``: settings
        only) with ``model`` the chosen family and the rule's settings set: what the family is fitted with."""
        if estimator.model == self.family and not self.settings:
            return estimator
        from sklearn.base import clone

        return clone(estimator).set_params(model=self.family, **self.settings)


class ModelFamily:
    """One model family: how the estimator fits, queries, saves and loads its model (see the module docstring).

    Every method receives the fitted model object the family's :meth:`fit` or :meth:`build` made.
    """

    name: ClassVar[str]
    # whether the fitted model's weights are placed on a torch device (resolved at load, which imports torch)
    uses_device: ClassVar[bool] = True

    def check(self, estimator: Any) -> None:
        """Validate the family's own settings on ``estimator`` (beyond the shared ones); raise a
        :class:`~sparsexc.errors.ConfigurationError` naming the argument."""

    def choose(self, estimator: Any, X: sp.csr_matrix, Y: sp.csr_matrix, run: RunParams | None = None) -> ModelChoice:
        """What :meth:`fit` would train on the (preprocessed) training rows ``X``, ``Y``: this family, as given."""
        return ModelChoice(self.name, {}, "given")

    def saved_choice(self, estimator: Any, config: dict[str, Any], family: Any, fields: Any) -> ModelChoice | None:
        """The choice of a saved folder whose model is of ``family`` (its config's ``"family"``) while
        ``estimator.model`` names this, other, family; None when this family fits no other (the folder is then
        refused). ``"auto"`` reads and checks its saved choice here."""
        return None

    def holdout_rows(self, estimator: Any, n_rows: int) -> int:
        """Rows of ``n_rows`` the estimator holds out for validation when ``fit`` gets no ``X_val``: the share
        ``validation_fraction`` (:func:`sparsexc.train.budget.holdout_rows`)."""
        from sparsexc.train.budget import holdout_rows

        return holdout_rows(n_rows, estimator.validation_fraction)

    def check_run(self, run: RunParams) -> None:
        """Refuse run plumbing (:class:`~sparsexc._params.RunParams`) the family cannot honour, before any data
        are read: a :class:`~sparsexc.errors.ConfigurationError` naming the argument."""

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
        """Train on ``(X, Y)``; ``(X_val, Y_val)`` (or None) choose and tune. ``held_out``: the validation rows
        were held out of the training rows by the estimator (so a family may train on them too), not given."""
        raise NotImplementedError

    def topk(self, model: Any, X: sp.csr_matrix, settings: PredictParams) -> tuple[np.ndarray, np.ndarray]:
        """(int64 (n, k'), float32 (n, k')) best labels and scores per row, best first; ``k' = min(k, C)``."""
        raise NotImplementedError

    def sets(self, model: Any, X: sp.csr_matrix, settings: PredictParams) -> sp.csr_matrix:
        """Predicted label sets: CSR 0/1 float32 indicator (n, C)."""
        raise NotImplementedError

    def scores(self, model: Any, X: sp.csr_matrix, settings: PredictParams) -> np.ndarray:
        """Dense float32 (n, C) scores (what :meth:`topk` ranks by)."""
        raise NotImplementedError

    def probabilistic(self, model: Any) -> bool:
        """Whether :meth:`scores` are probabilities (``predict_proba`` allowed)."""
        raise NotImplementedError

    def describe(self, estimator: Any) -> str:
        """What the estimator's model is, for messages ("head 'softmax'", "model 'tree' (loss 'squared_hinge')")."""
        return f"model {self.name!r}"

    def every_rank_saves(self, model: Any) -> bool:
        """Whether every rank of a process group takes part in saving and predicting (label-sharded models)."""
        return False

    def state(self, model: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(tensors for ``model.safetensors``, the config's ``"model"`` entry); None on ranks that write nothing."""
        raise NotImplementedError

    def check_files(self, plan: Any, config: dict[str, Any], files: ModelFiles, fields: Any) -> dict[str, Any]:
        """Check the config's ``"model"`` entry against ``plan`` and the weights' header before anything is
        allocated; return the model config :meth:`build` takes."""
        raise NotImplementedError

    def build(
        self, model_config: dict[str, Any], arrays: dict[str, Any], device: Any, tuned: dict[str, Any], where: Any
    ) -> Any:
        """The fitted model from a checked model config and the weights file's arrays (numpy; the family makes
        tensors of them where it needs some, and empties ``arrays``), on ``device`` (a ``torch.device``; None
        for a family that does not :attr:`uses_device` when none was asked for)."""
        raise NotImplementedError


_FAMILIES: Registry[type[ModelFamily]] = Registry(
    "family",
    ModelFamily,
    unknown=lambda name, names: f"model={name!r} is not a model family; choose one of {', '.join(map(repr, names))}",
)


def register_family(cls: type[ModelFamily]) -> type[ModelFamily]:
    """Class decorator: make the family ``cls`` the estimator's ``model=cls.name`` (its name joins the choices
    of :attr:`sparsexc._params.FitParams.model`, :data:`sparsexc._params.MODEL_FAMILIES`)."""
    _FAMILIES.register(cls)
    if cls.name not in MODEL_FAMILIES:
        MODEL_FAMILIES.append(cls.name)
    return cls


def list_families() -> tuple[str, ...]:
    """The registered family names, sorted."""
    return tuple(_FAMILIES.names())


_INSTANCES: dict[type[ModelFamily], ModelFamily] = {}  # families hold no state: one object per class


def get_family(name: str) -> ModelFamily:
    """The family registered as ``name``; an :class:`~sparsexc.errors.UnknownNameError` naming ``model`` else."""
    cls = _FAMILIES.get(name)
    if cls not in _INSTANCES:
        _INSTANCES[cls] = cls()
    return _INSTANCES[cls]


# -- neural: encoder + head ------------------------------------------------------------------------------------
@register_family
class NeuralFamily(ModelFamily):
    """The encoder + head of the estimator's settings, trained by :class:`~sparsexc.train.Trainer`."""

    name = "neural"

    def check(self, estimator: Any) -> None:
        """With ``shortlist="tree"`` (and ``model="neural"``) the head must score a shortlist."""
        if getattr(estimator, "model", "neural") != self.name or getattr(estimator, "shortlist", "none") != "tree":
            return
        from sparsexc.models.shortlist import check_shortlist_head

        head_cls = estimator._head_class()
        check_shortlist_head(head_cls, head_cls.Params.from_dict(estimator.head_params))

    def holdout_rows(self, estimator: Any, n_rows: int) -> int:
        """The share ``validation_fraction``, and at least a minimum when the model is refitted on all rows
        (:func:`sparsexc.train.budget.refits`): the hold-out then only chooses, and costs the model no row."""
        from sparsexc.train.budget import holdout_rows, refits

        refit = refits(n_rows, estimator.epochs, held_out=True)
        return holdout_rows(n_rows, estimator.validation_fraction, refit=refit)

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
        """Train with the budget of :mod:`sparsexc.train.budget`: ``epochs``/``patience`` None are chosen from
        the rows; on small data with a held-out validation set (:func:`~sparsexc.train.budget.refits`) the run
        on ``X`` chooses the number of steps, then the model is trained again from the same initial weights on
        all rows (``X`` and ``X_val``) for as many steps, and keeps the set rule tuned on ``X_val`` by the first
        run. The refit writes no checkpoint or log (``run``'s are the first run's): a resumed fit replays it.
        ``history``, ``best_epoch`` and ``fit_summary`` are the first run's (its ``message`` says the refit)."""
        from sparsexc.train.budget import plan_budget, refit_epochs

        _, _, _, train_params = estimator._settings()
        n_val = 0 if X_val is None else X_val.shape[0]
        budget = plan_budget(
            X.shape[0], n_val, train_params.batch_size, estimator.epochs, estimator.patience, held_out=held_out
        )
        train_params = train_params.replace(epochs=budget.epochs, patience=budget.patience)
        model, trainer = self._train(estimator, train_params, X, Y, X_val, Y_val, run)
        summary = trainer.fit_summary
        if budget.refit and budget.refit_rows is not None:
            n_all = budget.refit_rows
            kept = trainer.best_epoch or len(trainer.history)
            budget.refit_epochs = refit_epochs(kept, budget.steps_per_epoch, n_all, train_params.batch_size)
            X_all, Y_all = sp.vstack([X, X_val], format="csr"), sp.vstack([Y, Y_val], format="csr")
            tuned_state = model.tuned_state()
            refit = train_params.replace(epochs=budget.refit_epochs, patience=None)
            model, _ = self._train(estimator, refit, X_all, Y_all, None, None, RunParams())
            model.load_tuned_state(tuned_state)  # the set rule the first run tuned on the hold-out
            summary = {
                **summary,
                "refit_epochs": budget.refit_epochs,
                "message": f"{summary['message']}; then refit on all {n_all} rows for {budget.refit_epochs} "
                "epochs (as many steps)",
            }
        return Fitted(model, trainer.history, trainer.best_epoch, summary, trainer.tuned, budget)

    def _train(
        self, estimator: Any, train_params: Any, X: Any, Y: Any, X_val: Any, Y_val: Any, run: RunParams
    ) -> tuple[Any, Any]:
        """A fresh model of the estimator's settings (seeded by ``random_state``) trained by a
        :class:`~sparsexc.train.Trainer` with ``train_params``; ``(model, trainer)``."""
        import torch

        from sparsexc.models import SparseEncoder, XCModel
        from sparsexc.train import Trainer

        head_cls, head_params, encoder_params, _ = estimator._settings()
        # everything random is seeded from random_state; the caller's torch (CPU) generator is left as it was
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(estimator.random_state))
            encoder = SparseEncoder(X.shape[1], encoder_params)
            head = head_cls(encoder.out_dim, Y.shape[1], head_params)
            model = _shortlist_model(estimator, encoder, head) or XCModel(encoder, head)
            trainer = Trainer(
                model,
                train_params,
                checkpoint_dir=run.checkpoint_dir,
                checkpoint_every=run.checkpoint_every,
                log_path=run.log_path,
            )
            trainer.fit(X, Y, X_val, Y_val, resume=run.resume)
        return model, trainer

    def topk(self, model: Any, X: sp.csr_matrix, settings: PredictParams) -> tuple[np.ndarray, np.ndarray]:
        return model.predict_topk(X, settings.k, batch_size=settings.batch_size, beam=settings.beam)

    def sets(self, model: Any, X: sp.csr_matrix, settings: PredictParams) -> sp.csr_matrix:
        return model.predict_sets(X, batch_size=settings.batch_size, beam=settings.beam)

    def scores(self, model: Any, X: sp.csr_matrix, settings: PredictParams) -> np.ndarray:
        return model.predict_scores(X, batch_size=settings.batch_size, beam=settings.beam)

    def probabilistic(self, model: Any) -> bool:
        return bool(model.head.probabilistic)

    def describe(self, estimator: Any) -> str:
        return f"head {estimator.head!r}"

    def every_rank_saves(self, model: Any) -> bool:
        from sparsexc.train.strategy import choose_strategy

        return bool(choose_strategy(model).every_rank_saves)

    def state(self, model: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        from sparsexc.distributed.sharded import full_state_dict

        state = full_state_dict(model)  # a collective for label-sharded models; None on ranks > 0
        return None if state is None else (state, model.config())

    def check_files(self, plan: Any, config: dict[str, Any], files: ModelFiles, fields: Any) -> dict[str, Any]:
        """The encoder + head (``check_neural_model``); a shortlist model's ``"shortlist"`` entry and matcher
        arrays (``shortlist.*``) are checked here and left out of that check."""
        from sparsexc.estimator._load_checks import check_neural_model
        from sparsexc.models.shortlist import PREFIX
        from sparsexc.tree._storage import check_array_header

        f = fields
        model = f.mapping(f.get(config, "model", "model"), "model")
        wanted = getattr(plan.estimator, "shortlist", "none")
        if "shortlist" not in model:
            if wanted == "tree":
                raise f.error("model", "has no 'shortlist' entry but params.shortlist is 'tree'")
            return check_neural_model(plan, config, files, fields)
        if wanted != "tree":
            raise f.error("model.shortlist", f"is present but params.shortlist is {wanted!r}")
        shortlist = _check_shortlist_entry(plan, model["shortlist"], f)
        matcher = {name: info for name, info in files.header.items() if name.startswith(PREFIX)}
        check_array_header({name[len(PREFIX) :]: info for name, info in matcher.items()}, files.weights_path)
        rest = dataclasses.replace(files, header={k: v for k, v in files.header.items() if k not in matcher})
        core = {k: v for k, v in model.items() if k != "shortlist"}
        return {**check_neural_model(plan, {**config, "model": core}, rest, fields), "shortlist": shortlist}

    def build(
        self, model_config: dict[str, Any], arrays: dict[str, Any], device: Any, tuned: dict[str, Any], where: Any
    ) -> Any:
        import torch

        from sparsexc.errors import ModelFormatError
        from sparsexc.models import model_from_config

        model = model_from_config(model_config)  # sizes checked against the weights' header
        tensors = {name: torch.from_numpy(arrays.pop(name)) for name in list(arrays)}  # no copy
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:  # not expected after the header checks; kept as one clear error
            raise ModelFormatError(f"{where}: the weights do not match the config ({exc})") from None
        tensors.clear()
        try:
            model.to(device)
        except RuntimeError as exc:
            raise ConfigurationError(f"{where}: cannot move the model to device {str(device)!r} ({exc})") from None
        model.eval()
        return model


def _shortlist_model(estimator: Any, encoder: Any, head: Any) -> Any:
    """The :class:`~sparsexc.models.ShortlistModel` of ``shortlist="tree"`` (its tree: ``tree_params``, seeded by
    ``random_state``; the training beam is :class:`PredictParams`'s default; ``shortlist_size`` and
    ``shortlist_negatives``, ``shortlist_path_weight``), or None for ``shortlist="none"``."""
    if getattr(estimator, "shortlist", "none") != "tree":
        return None
    from sparsexc.models import ShortlistModel
    from sparsexc.tree import LabelTreeModel

    matcher = LabelTreeModel(TreeFamily().params(estimator))
    sizes = int(estimator.shortlist_size), PredictParams().beam, int(estimator.shortlist_negatives)
    return ShortlistModel(encoder, head, matcher, *sizes, path_weight=estimator.shortlist_path_weight)


def _check_shortlist_entry(plan: Any, entry: Any, f: Any) -> dict[str, Any]:
    """The config's ``model.shortlist`` (``size``, ``beam``, ``negatives``, ``path_weight``, ``tuned``, ``tree``:
    params, sizes, depths), checked; ``negatives`` may be missing (a file saved before they existed: trained with
    none), and ``path_weight`` and ``tuned`` (saved before the path weight: the head alone)."""

    entry = f.mapping(entry, "model.shortlist")
    unknown = sorted(set(entry) - {"size", "beam", "negatives", "path_weight", "tuned", "tree"})
    if unknown:
        raise f.error("model.shortlist", f"holds the unknown key {unknown[0]!r}")
    size = f.size(f.get(entry, "size", "model.shortlist.size"), "model.shortlist.size")
    if size != plan.estimator.shortlist_size:
        raise f.error("model.shortlist.size", f"is {size} but params.shortlist_size is {plan.estimator.shortlist_size}")
    wanted = plan.estimator.shortlist_negatives
    if "negatives" in entry and (type(entry["negatives"]) is not int or entry["negatives"] != wanted):
        raise f.error(
            "model.shortlist.negatives", f"is {entry['negatives']!r} but params.shortlist_negatives is {wanted}"
        )
    _check_path_weight(plan, entry, f)
    f.size(f.get(entry, "beam", "model.shortlist.beam"), "model.shortlist.beam")
    tree = f.mapping(f.get(entry, "tree", "model.shortlist.tree"), "model.shortlist.tree")
    unknown = sorted(set(tree) - {"params", "n_features", "n_labels", "depths"})
    if unknown:
        raise f.error("model.shortlist.tree", f"holds the unknown key {unknown[0]!r}")
    _check_tree_entry(f, tree, "model.shortlist.tree", plan)
    return dict(entry)


def _check_path_weight(plan: Any, entry: dict[str, Any], f: Any) -> None:
    """``model.shortlist.path_weight`` (the setting: a number >= 0 or null, equal to the estimator's) and
    ``model.shortlist.tuned.path_weight`` (the weight in use, >= 0); both may be missing (saved before the path
    weight existed: the head alone)."""
    wanted = plan.estimator.shortlist_path_weight
    if "path_weight" in entry:
        saved = entry["path_weight"]
        if saved is not None and not _non_negative(saved):
            raise f.error("model.shortlist.path_weight", f"must be a finite number >= 0 or null; got {saved!r}")
        if saved != wanted:
            raise f.error("model.shortlist.path_weight", f"is {saved!r} but params.shortlist_path_weight is {wanted!r}")
    tuned = f.numbers(entry.get("tuned"), "model.shortlist.tuned")
    unknown = sorted(set(tuned) - {"path_weight"})
    if unknown:
        raise f.error("model.shortlist.tuned", f"holds the unknown key {unknown[0]!r}")
    if "path_weight" in tuned and tuned["path_weight"] < 0:
        raise f.error("model.shortlist.tuned.path_weight", f"must be >= 0; got {tuned['path_weight']!r}")


def _non_negative(value: Any) -> bool:
    """A finite number >= 0 (not a bool)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value >= 0


def _check_tree_entry(f: Any, entry: dict, where: str, plan: Any) -> LabelTreeParams:
    """Check a saved label tree's config entry (``params``, ``n_features``, ``n_labels``, ``depths``) against the
    model's sizes; its :class:`~sparsexc.tree.LabelTreeParams`. ``where`` names the entry in the errors."""
    from sparsexc.tree import LabelTreeParams

    params = f.mapping(f.get(entry, "params", f"{where}.params"), f"{where}.params")
    f.finite(params, f"{where}.params")
    try:
        tree_params = LabelTreeParams.from_saved(params)
    except ValueError as exc:
        raise f.error(f"{where}.params", f"is invalid: {exc}") from None
    for key, expected in (("n_features", plan.n_features), ("n_labels", plan.n_labels)):
        value = f.size(f.get(entry, key, f"{where}.{key}"), f"{where}.{key}")
        if value != expected:
            raise f.error(f"{where}.{key}", f"is {value} but {key} is {expected}")
    depths = f.get(entry, "depths", f"{where}.depths")
    if not isinstance(depths, list) or len(depths) != tree_params.n_trees:
        raise f.error(f"{where}.depths", f"must list one depth per tree ({tree_params.n_trees})")
    for i, depth in enumerate(depths):
        f.size(depth, f"{where}.depths[{i}]")
    return tree_params


# -- tree: the label-tree linear model ----------------------------------------------------------------------------
def default_tree_threshold(loss: str) -> float:
    """The set threshold of a tree model fitted without validation rows: the node probability that a classifier
    at margin 0 (its decision boundary) implies, sigma(0) = 0.5 for "logistic" and exp(-(1 - 0)^2) x
    sigma(-1)^0.01 (about 0.363) for "squared_hinge" (:func:`sparsexc.tree.search.log_probabilities`)."""
    from sparsexc.tree.model import TRANSFORMS
    from sparsexc.tree.search import log_probabilities

    return float(np.exp(log_probabilities(np.zeros(1), TRANSFORMS[loss])[0]))


def sparsemax_margins(idx: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Each row's candidates ``idx`` reordered by decreasing score and, beside them, the margins
    :math:`h_k = k L_{(k)} - \sum_{i \le k} L_{(i)}` (float64), :math:`L = \log \max(s, \text{tiny})` in that
    order: the labels in the support of :math:`\mathrm{sparsemax}(a L)` over the row's candidates are those with
    :math:`h_k > -1/a` (Martins & Astudillo's condition :math:`1 + k z_{(k)} > \sum_{i \le k} z_{(i)}` at
    :math:`z = a L`). As :math:`h_k` does not increase along a row, the support is a prefix of the ranking, and
    the sparsemax rule of every scale is a threshold on :math:`h` (``-1/a``): :func:`tune_candidates` scores them
    all in one pass. Equal scores get equal margins (in the support together)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = np.take_along_axis(idx, order, axis=1)
    logs = np.log(np.maximum(np.take_along_axis(scores, order, axis=1).astype(np.float64), np.finfo(np.float32).tiny))
    k = np.arange(1, logs.shape[1] + 1, dtype=np.float64)
    return ranked, k * logs - np.cumsum(logs, axis=1)


def sparsemax_threshold(scale: float) -> float:
    """The threshold on :func:`sparsemax_margins` of the sparsemax rule at ``scale`` a: ``-1/a``. The rule keeps a
    margin equal to it too (``h >= -1/a``: the support's closure, where sparsemax gives exactly 0)."""
    return -1.0 / scale


@dataclasses.dataclass
class TreeClassifierModel:
    """A fitted :class:`~sparsexc.tree.LabelTreeModel` and its set rule.

    A row's predicted set is ``{j among its best min(TREE_CANDIDATES, C) labels : score_j >= threshold}`` with
    ``score_j`` the path score (the product of node probabilities; the ensemble's mean); where tuning chose the
    sparsemax rule (``scale`` a, else None), it is the support of ``sparsemax(a log score)`` over those labels
    (:func:`sparsemax_margins`).
    """

    tree: LabelTreeModel
    threshold: float
    scale: float | None = None

    def candidates(self, X: sp.csr_matrix, beam: int) -> tuple[np.ndarray, np.ndarray]:
        """Each row's best ``min(TREE_CANDIDATES, C)`` labels and path scores (beam search)."""
        return self.tree.predict_topk(X, min(TREE_CANDIDATES, self.tree.n_labels_), beam=beam)

    def sets(self, X: sp.csr_matrix, beam: int) -> sp.csr_matrix:
        """The predicted sets (CSR 0/1 float32) by the tuned rule."""
        return rule_sets(*self.candidates(X, beam), self.threshold, self.scale, self.tree.n_labels_)


def check_tuned_rule(tuned: dict[str, float], f: Any, what: str) -> None:
    """The saved set rule of :func:`tune_tree_sets` (``tuned``: ``threshold``, and ``sparsemax_scale`` > 0 where
    that rule was kept), else a ModelFormatError naming the field; ``what`` names the model ("tree")."""
    if "threshold" not in tuned:
        raise f.error("tuned.threshold", f"must be a number (the {what} model's set threshold)")
    if "sparsemax_scale" in tuned and not tuned["sparsemax_scale"] > 0:
        raise f.error("tuned.sparsemax_scale", "must be a positive number (the sparsemax set rule's scale)")


def rule_sets(
    idx: np.ndarray, scores: np.ndarray, threshold: float, scale: float | None, n_labels: int
) -> sp.csr_matrix:
    """The sets (CSR 0/1 float32, n x ``n_labels``) of the rule :func:`tune_tree_sets` tuned over each row's
    candidates ``idx`` and their scores: ``score >= threshold``, or, where ``scale`` a is not None, the support of
    ``sparsemax(a log score)`` (:func:`sparsemax_margins`)."""
    if scale is None:
        return candidate_sets(idx, scores, threshold, n_labels)
    ranked, margins = sparsemax_margins(idx, scores)
    return candidate_sets(ranked, margins, sparsemax_threshold(scale), n_labels)


def tune_tree_sets(
    idx: np.ndarray, scores: np.ndarray, Y: sp.csr_matrix, grid: list[float], metric: str
) -> dict[str, float]:
    """The tree's set rule tuned for ``metric`` on rankings of rows with labels ``Y``: the best threshold of
    ``grid`` (:func:`tune_candidates`), and the best scale of :data:`SPARSEMAX_SCALES` for the sparsemax rule
    (:func:`sparsemax_margins`); the sparsemax rule where it scores strictly higher. ``{"threshold": t, metric:
    value}``, plus ``"sparsemax_scale": a`` where the sparsemax rule was chosen (``threshold`` is kept: the
    threshold rule's best)."""
    threshold, value = tune_candidates(idx, scores, Y, grid, metric)
    ranked, margins = sparsemax_margins(idx, scores)
    bounds = [sparsemax_threshold(a) for a in SPARSEMAX_SCALES]
    bound, sparse_value = tune_candidates(ranked, margins, Y, bounds, metric)
    if sparse_value > value:
        scale = SPARSEMAX_SCALES[bounds.index(bound)]
        return {"threshold": float(threshold), "sparsemax_scale": float(scale), metric: float(sparse_value)}
    return {"threshold": float(threshold), metric: float(value)}


def _tree_classifier(tree: LabelTreeModel, tuned: dict[str, Any]) -> TreeClassifierModel:
    """The tree with the set rule of ``tuned`` (``threshold``; ``sparsemax_scale`` where that rule was chosen)."""
    scale = tuned.get("sparsemax_scale")
    return TreeClassifierModel(tree, float(tuned["threshold"]), None if scale is None else float(scale))


def _candidate_matrix(idx: np.ndarray, scores: np.ndarray, n_labels: int) -> sp.csr_matrix:
    n, m = idx.shape
    return sp.csr_matrix((scores.ravel(), idx.ravel(), np.arange(0, n * m + 1, m)), shape=(n, n_labels))


def family_params(estimator: Any, name: str, cls: type[P], **defaults: Any) -> P:
    """The ``cls`` (a :class:`~sparsexc._params.Params`) of the estimator's dict setting ``name`` (``tree_params``,
    ``ridge_params``; None: the fields' defaults), ``defaults`` filling what it leaves unset; a
    :class:`~sparsexc.errors.ConfigurationError` naming ``name`` for anything else or a bad field."""
    given = getattr(estimator, name, None)
    if given is not None and not isinstance(given, dict):
        raise ConfigurationError(f"{name} must be a dict or None; got {type(given).__name__}")
    try:
        return cls.from_dict({**defaults, **(given or {})})
    except ValueError as exc:
        raise ConfigurationError(f"{name}: {exc}") from None


def refuse_checkpoints(run: RunParams, family: str = "tree") -> None:
    """A :class:`~sparsexc.errors.ConfigurationError` naming a checkpoint option of ``run`` that is set: a model
    of ``family`` (the label tree, ridge) trains in one pass, so there is nothing to checkpoint or resume
    (``log_path`` is allowed: such a run simply writes no per-epoch log)."""
    for name in ("resume", "checkpoint_every", "checkpoint_dir"):  # the most specific first
        value = getattr(run, name)
        if value is not None and value is not False:
            raise ConfigurationError(
                f"{name}={value!r}: the {family} model (model={family!r}) trains in one pass, with no epochs to "
                "checkpoint or resume; leave checkpoint_dir, checkpoint_every and resume unset "
                "(sparsexc train: no --checkpoint-every, no --resume)"
            )


def _fit_tree(params: LabelTreeParams, X: sp.csr_matrix, Y: sp.csr_matrix) -> LabelTreeModel:
    """A :class:`~sparsexc.tree.LabelTreeModel` fitted on (X, Y). Inside a ``torch.distributed`` process group
    of S ranks (``sparsexc train --nproc-per-node S``, :func:`sparsexc.distributed.spawn`), every rank reads all
    rows and builds the same trees (the clustering is seeded; a cross-validation of C is repeated by every rank,
    seeded alike), trains its share of the nodes (``fit``'s ``part``: :mod:`sparsexc.tree.parallel` splits them
    by work), and the parts are exchanged and assembled, so every rank ends with the model one process trains,
    bit for bit."""
    from sparsexc.tree import LabelTreeModel
    from sparsexc.tree.parallel import check_same_trees, merge_parts, tree_fingerprint

    if not is_distributed():
        return LabelTreeModel(params).fit(X, Y)
    tree = LabelTreeModel(params).fit(X, Y, part=(rank(), world_size()))
    check_same_trees(all_gather_objects(tree_fingerprint(tree.trees_)))  # else the parts belong to other nodes
    tree.weights_ = merge_parts(all_gather_objects(tree.weights_))
    return tree


@register_family
class TreeFamily(ModelFamily):
    """The label-tree linear model (:class:`~sparsexc.tree.LabelTreeModel`), settings from ``tree_params``.

    The tree's ``seed`` is the estimator's ``random_state`` unless ``tree_params`` sets it. The set threshold
    is tuned for ``tune_metric`` on the validation rows (``X_val``, else the ``validation_fraction`` hold-out)
    over the grid 0.02, 0.04, ..., 0.98 and :func:`default_tree_threshold` (ties: the first, i.e. the default)
    by :func:`sparsexc.heads.tuning.tune_candidates` (all values in one pass over each row's candidates; the
    result of scoring the sets of each value in turn); without validation rows it is that default. When the
    validation rows were held out of the training rows and the tree chooses C by cross-validation (``C=None`` on
    at most ``cv_max_rows`` rows: small data), :func:`~sparsexc.tree.choose_C` chooses it on the rows the hold-out
    left, the threshold is tuned on those rows' out-of-fold rankings at the C chosen (each row ranked by the fold
    model that did not train on it: nine times the hold-out's rows), and the tree is trained once, on all rows
    (``X`` and ``X_val``) with that C: the hold-out then costs the model no row. On more than ``cv_max_rows``
    rows (large data) with the hold-out cut from the training rows, the tree is trained once on all rows and the
    threshold tuned on its rankings of the hold-out rows, which it trained on (in-sample; measured against tuning
    on rows it did not see: docs/getting-started.md, "The default model").
    ``tune_threshold`` does not apply: it needs a dense (n, C) score matrix and the rule ``s > t``; the tree
    scores only each row's candidates, and its rule is ``s >= t``. On the same rankings the sparsemax rule (the
    support of ``sparsemax(a log s)`` over each row's candidates, a in :data:`SPARSEMAX_SCALES`) is tuned too, and
    kept where it scores strictly higher (:func:`tune_tree_sets`; docs/tree.md, "Sets: the threshold, or sparsemax's
    support").

    In a ``torch.distributed`` process group the ranks train the tree's nodes in parts (:func:`_fit_tree`); every
    rank ends with the whole model and the same threshold, and only rank 0 saves (:meth:`every_rank_saves` is
    False). The tree trains in one pass: checkpoint and resume options are refused (:meth:`check_run`).
    """

    name = "tree"
    uses_device = False  # numpy and scipy arrays, on the CPU

    def params(self, estimator: Any) -> LabelTreeParams:
        """The :class:`~sparsexc.tree.LabelTreeParams` of ``estimator.tree_params`` (seed: ``random_state``)."""
        from sparsexc.tree import LabelTreeParams

        return family_params(estimator, "tree_params", LabelTreeParams, seed=int(estimator.random_state))

    def check(self, estimator: Any) -> None:
        # without tree_params the settings are the defaults (seed: random_state, an integer checked before): valid,
        # and checking them would import the tree and numba (about 0.25 s) in every fit of another family
        if estimator.tree_params is not None:
            self.params(estimator)

    def check_run(self, run: RunParams) -> None:
        refuse_checkpoints(run)

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
        threshold = default_tree_threshold(params.loss)
        grid = [threshold, *THRESHOLD_GRID]
        tuned: dict[str, Any] = {"threshold": threshold}
        summary = fit_summary([], None, 0, None, estimator.val_metric)
        summary["message"] = "label-tree model: trained to convergence (no epochs)"
        n_val = 0 if X_val is None else X_val.shape[0]
        if held_out and n_val > 0 and params.cross_validates(X.shape[0]):
            # small data: the folds that choose C on the rows the hold-out left also rank each of those rows with
            # a model that did not train on it; the threshold is tuned on those rankings, and the model is
            # trained once, on all rows (the hold-out's too) with the C chosen (evidence:
            # docs/getting-started.md, "The default model")
            from sparsexc.tree import choose_C

            chosen = params.for_data(X.nnz, Y.shape[1], X.shape[1])  # the solver of the folds' fits
            found = choose_C(X, Y, chosen, topk=TREE_CANDIDATES)
            assert found.topk is not None  # asked for
            tuned = tune_tree_sets(*found.topk, Y, grid, estimator.tune_metric)
            X, Y = sp.vstack([X, X_val], format="csr"), sp.vstack([Y, Y_val], format="csr")
            tree = _fit_tree(chosen.replace(C=found.C), X, Y)
            tree.cv_scores_ = found.scores
            summary["message"] += (
                f"; C = {found.C:g} chosen by cross-validation on {X.shape[0] - n_val} rows, whose out-of-fold "
                f"rankings tuned the set threshold; trained on all {X.shape[0]} rows"
            )
        else:
            # large data (more than cv_max_rows rows the hold-out left): the tree trains on all rows, and the
            # threshold is tuned on its rankings of the hold-out rows, which it trained on (evidence:
            # docs/getting-started.md, "The default model"); a hold-out of small data with C given stays out
            in_sample = held_out and n_val > 0 and X.shape[0] > params.cv_max_rows
            if in_sample:
                X, Y = sp.vstack([X, X_val], format="csr"), sp.vstack([Y, Y_val], format="csr")
            tree = _fit_tree(params, X, Y)
            if n_val > 0:
                idx, scores = TreeClassifierModel(tree, threshold).candidates(X_val, PredictParams().beam)
                tuned = tune_tree_sets(idx, scores, Y_val, grid, estimator.tune_metric)
            if in_sample:
                summary["message"] += (
                    f"; trained on all {X.shape[0]} rows, the set threshold tuned on its rankings of the {n_val} "
                    "hold-out rows"
                )
        if hasattr(tree, "coherence_"):  # branching=None chose the tree's arity (docs/tree.md)
            from sparsexc.tree import COHERENCE_WIDE, WIDE_BRANCHING

            summary["message"] += (
                f"; {tree.params.branching} children per node, chosen from the labels' leaf coherence "
                f"{tree.coherence_:.3f} ({WIDE_BRANCHING} below {COHERENCE_WIDE:g})"
            )
        if "sparsemax_scale" in tuned:
            summary["message"] += (
                f"; sets: the support of sparsemax({tuned['sparsemax_scale']:g} x log path score), which scored "
                f"above every threshold on {estimator.tune_metric}"
            )
        return Fitted(_tree_classifier(tree, tuned), [], None, summary, tuned)

    def topk(self, model: Any, X: sp.csr_matrix, settings: PredictParams) -> tuple[np.ndarray, np.ndarray]:
        return model.tree.predict_topk(X, min(settings.k, model.tree.n_labels_), beam=settings.beam)

    def sets(self, model: Any, X: sp.csr_matrix, settings: PredictParams) -> sp.csr_matrix:
        return model.sets(X, settings.beam)

    def scores(self, model: Any, X: sp.csr_matrix, settings: PredictParams) -> np.ndarray:
        """The path scores of each row's candidates (its best ``min(TREE_CANDIDATES, C)`` labels), 0 elsewhere."""
        idx, scores = model.candidates(X, settings.beam)
        return np.asarray(_candidate_matrix(idx, scores, model.tree.n_labels_).todense(), dtype=np.float32)

    def describe(self, estimator: Any) -> str:
        return f"model {self.name!r} (loss {self.params(estimator).loss!r})"

    def probabilistic(self, model: Any) -> bool:
        # a logistic node's sigma(s) is a probability; the squared hinge's exp(-max(0, 1 - s)^2) x sigma(s - 1)^0.01 only a score
        return bool(model.tree.params.loss == "logistic")

    def state(self, model: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        tree = model.tree
        # (array, file dtype) pairs, the weights made level by level as they are written: no copy of the model
        # (write_model_dir streams them; evidence: docs/tree.md, "Memory")
        tensors = tree.file_arrays()
        config = {
            "family": self.name,
            "params": tree.params.to_dict(),
            "n_features": int(tree.n_features_),
            "n_labels": int(tree.n_labels_),
            "depths": [t.depth for t in tree.trees_],
        }
        return tensors, config

    def check_files(self, plan: Any, config: dict[str, Any], files: ModelFiles, fields: Any) -> dict[str, Any]:
        from sparsexc.tree._storage import check_array_header

        f = fields
        model = f.mapping(f.get(config, "model", "model"), "model")
        unknown = sorted(set(model) - {"family", "params", "n_features", "n_labels", "depths"})
        if unknown:
            raise f.error("model", f"holds the unknown key {unknown[0]!r}")
        if model.get("family") != self.name:
            raise f.error("model.family", f"is {model.get('family')!r} but params.model is {self.name!r}")
        _check_tree_entry(f, model, "model", plan)
        check_tuned_rule(plan.tuned, f, "tree")
        check_array_header(files.header, files.weights_path)
        return dict(model)

    def build(
        self, model_config: dict[str, Any], arrays: dict[str, Any], device: Any, tuned: dict[str, Any], where: Any
    ) -> Any:
        from sparsexc.tree import LabelTreeModel

        tree = LabelTreeModel.from_arrays(model_config, dict(arrays), where)
        arrays.clear()
        return _tree_classifier(tree, tuned)
