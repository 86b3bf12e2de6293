"""``XCClassifier``: the scikit-learn face of sparsexc (encoder + head + trainer, save/load)."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin

from sparsexc._params import (
    ESTIMATOR_SETTINGS,
    EncoderParams,
    FitParams,
    Params,
    PredictParams,
    RunParams,
    TrainParams,
)
from sparsexc._preprocess import Choice, FeaturePreprocessor, check_choice, choose, fit_preprocessor, from_saved
from sparsexc._sparse import as_label_matrix
from sparsexc.errors import ConfigurationError, UnknownNameError
from sparsexc.estimator import _auto, _ridge_family  # noqa: F401  (register the families "auto" and "ridge")
from sparsexc.estimator._families import ModelChoice, ModelFamily, get_family, list_families
from sparsexc.estimator._features import checked_features
from sparsexc.estimator._load_checks import (
    check_classifier_files,
    load_device,
    loaded_preprocessor,
    preprocess_arrays,
)
from sparsexc.estimator._targets import classes_array, encode_targets, fit_targets, saveable_names
from sparsexc.estimator.serialization import open_model_dir, write_model_dir
from sparsexc.heads._metric_bridge import evaluate
from sparsexc.train.budget import TrainingBudget, plan_budget, resolve_budget
from sparsexc.train.progress import fit_summary, resolve_verbose

if TYPE_CHECKING:
    from sparsexc.heads import Head

# the heads (and torch) are imported where a head is resolved (_head_class), not here: a label-tree model
# fits, predicts, saves and loads without torch (see _check_settings)

__all__ = ["DEFAULT_LR", "ESTIMATOR_SETTINGS", "MAX_DENSE_ENTRIES", "RunArgumentError", "XCClassifier"]

# learning rate used when lr=None, per optimiser (tuned on bibtex with the default architecture)
DEFAULT_LR: dict[str, float] = {"adam": 1e-3, "adamw": 1e-3, "adagrad": 1e-2, "sgd": 0.1}
# the head of XCClassifier(); its default settings need no check (see XCClassifier._check_settings)
DEFAULT_HEAD = "softmax"
# an optimizer that completes the TrainParams of a settings check that resolves no head (any valid name would)
_CHECK_OPTIMIZER = "adam"
# predict_proba / decision_function refuse outputs with more entries than this (4 bytes each: 400 MB)
MAX_DENSE_ENTRIES = 100_000_000
# the run plumbing (RunParams): arguments of fit, no longer parameters of the estimator (they were until the
# renovation, issue 18)
_RUN_ARGUMENTS: tuple[str, ...] = tuple(RunParams.field_names())

F = TypeVar("F", bound=Callable[..., Any])


class RunArgumentError(ConfigurationError, TypeError):
    """A run-plumbing argument (:class:`~sparsexc._params.RunParams`) given to the constructor or ``set_params``
    instead of ``fit``. A ``TypeError``, as an unexpected keyword argument is, and a ``ConfigurationError``."""


def _refuse_run_arguments(method: F) -> F:
    """``method`` (``__init__`` or ``set_params``) refusing the run arguments with a message that says to give
    them to ``fit``; its signature (``functools.wraps``: what scikit-learn reads) is unchanged."""

    @functools.wraps(method)
    def refusing(self: Any, *args: Any, **kwargs: Any) -> Any:
        moved = [name for name in _RUN_ARGUMENTS if name in kwargs]
        if moved:
            given = ", ".join(f"{name}=..." for name in moved)
            raise RunArgumentError(
                f"{', '.join(moved)} {'is' if len(moved) == 1 else 'are'} no longer "
                f"{'a parameter' if len(moved) == 1 else 'parameters'} of {type(self).__name__}: run plumbing "
                f"goes to fit, as in clf.fit(X, Y, {given})"
            )
        return method(self, *args, **kwargs)

    return cast(F, refusing)


class XCClassifier(ClassifierMixin, BaseEstimator):
    """Multi-label / extreme multi-label classifier: sparse encoder + output head, trained by mini-batches, or
    (``model="tree"``) the label-tree linear model.

    Every parameter but ``head``, ``head_params``, ``tree_params``, ``ridge_params`` and ``verbose`` is a field of
    :class:`~sparsexc._params.EncoderParams`, :class:`~sparsexc._params.TrainParams` (``random_state`` is its
    ``seed``) or :class:`~sparsexc._params.FitParams`, where its constraint and help are declared; the defaults
    are the fields' (or their ``estimator_default``); ``sparsexc train --print-config`` lists them all.
    ``tests/estimator/test_estimator_params.py`` keeps this signature, its defaults and the table below equal to
    the fields. The run plumbing (checkpoints, resuming, the log file: :class:`~sparsexc._params.RunParams`)
    is given to :meth:`fit`, and the prediction settings (:class:`~sparsexc._params.PredictParams`) to the
    prediction methods; passing ``checkpoint_dir=``, ``checkpoint_every=``, ``resume=`` or ``log_path=`` here
    or to ``set_params`` raises a :class:`RunArgumentError` (a ``TypeError``) that says so.

    Parameters
    ----------
    head : str
        Registered head name (``sparsexc.heads.list_heads()``): "softmax", "sigmoid", ...
    head_params : dict or None
        The head's own settings, validated by its ``Params`` dataclass (e.g. ``{"threshold": 0.3}``).
    model : str
        The model family (:mod:`sparsexc.estimator._families`). "auto" (default): chosen at ``fit`` from the
        training rows by the rule table of :mod:`sparsexc.estimator._auto` (``docs/getting-started.md``, "The
        default model"), unless settings of one family are given: any setting below that only the neural model
        reads (``head``, ``hidden_sizes``, ``epochs``, ``lr``, ...; a value other than its default) or a checkpointed
        run means "neural", ``tree_params`` means "tree". :meth:`resolved_model` says what a fit chooses, and
        ``fit_summary_["model"]`` what it chose. "neural": the encoder + head below. "tree": the label-tree linear model :class:`sparsexc.tree.LabelTreeModel` (see ``docs/tree.md``),
        configured by ``tree_params``; the encoder, head and optimiser settings do not apply to it. Its label
        sets are the candidates (each row's best 100 labels) whose path score is >= a threshold tuned on the
        validation rows for ``tune_metric`` (0.5 for the logistic loss, 0.363 for the squared hinge without
        validation rows: the node score at margin 0); ``predict_topk``'s ``beam`` is its beam width. "ridge":
        one-vs-rest ridge regression, its penalty by exact leave-one-out, Platt probabilities and the set rule fitted
        on the leave-one-out scores; on real-valued dense rows also on RBF kernel features, kept where its
        leave-one-out errors are lower (:mod:`sparsexc.estimator._ridge_family`; "auto" chooses it on at most 600
        training rows, and on dense features up to 2,000; landmarks drawn with ``random_state``), configured by
        ``ridge_params``.
    tree_params : dict or None
        The tree model's settings, validated by :class:`sparsexc.tree.LabelTreeParams` (e.g.
        ``{"loss": "logistic", "max_leaf_size": 20}``); its ``seed`` is ``random_state`` unless given here. They
        also configure the label tree of ``shortlist="tree"``.
    ridge_params : dict or None
        The ridge model's settings, validated by :class:`sparsexc.estimator._ridge.RidgeParams`: ``kernel``
        ("auto", "linear", "rbf"), ``gamma``, ``max_landmarks``, ``kernel_z`` (e.g. ``{"kernel": "linear"}``).
    shortlist, shortlist_size, shortlist_negatives, shortlist_path_weight
        ``shortlist="tree"`` (neural model): the head is trained and scored over each row's shortlist only, the
        ``shortlist_size`` best labels of a label tree fitted on the training rows (plus, at training, the row's
        positives and ``shortlist_negatives`` labels drawn uniformly at every step, so that labels the tree
        seldom shortlists still meet negative rows); ``predict_topk``'s ``beam`` is the tree's beam width. At
        prediction a label's logit is the head's plus ``shortlist_path_weight`` times the log of its path score
        in the tree (None: tuned with the set rule on the validation rows, ``tuned_["path_weight"]``; 0: the
        head alone). Heads: sigmoid, softmax, sparsemax. See ``docs/shortlist.md``.
    hidden_sizes, activation, dropout
        The encoder (:class:`sparsexc._params.EncoderParams`); ``hidden_sizes=()`` is the full-rank linear model.
    optimizer, lr, weight_decay, momentum, lr_schedule, warmup_steps, step_size, step_gamma, grad_clip
        The optimiser and its schedule (:class:`sparsexc._params.TrainParams`); ``optimizer=None`` takes the
        head's ``default_optimizer`` ("adam"; "adagrad" for negative-sampling and nce); ``lr=None`` takes
        :data:`DEFAULT_LR` of the optimiser times the head's ``default_lr_scale``.
    epochs, batch_size, patience, val_metric, tune_metric, eval_batch_size
        Training length, early stopping on ``val_metric``, the set metric the head's threshold is tuned for,
        rows per validation batch (:class:`sparsexc._params.TrainParams`). ``epochs=None`` and ``patience=None``
        (the defaults) are chosen from the number of training rows (:mod:`sparsexc.train.budget`): at least
        20 epochs and 1000 optimiser steps, patience at least 5 epochs and 400 steps; and below 10,000 rows the
        run on the rows left after the hold-out only chooses the number of steps, then the model is trained
        again on all rows for as many steps (see ``docs/getting-started.md``, "Training budget"). An explicit
        value is used as given (and an explicit ``epochs`` trains once, keeping the best epoch as before);
        to never stop early give a ``patience`` of at least ``epochs``. :meth:`resolved_budget` and
        ``budget_`` tell the choice.
    validation_fraction : float
        Share of the training rows held out (seeded by ``random_state``) for early stopping and for tuning the
        head's set threshold when ``fit`` gets no ``X_val``; at least ``min(100, n / 4)`` rows when the neural
        model is refitted on all rows afterwards (:func:`sparsexc.train.budget.holdout_rows`); 0 disables both.
        The label tree trains on the held-out rows too, except on at most ``cv_max_rows`` rows with a C given.
    preprocess : {"auto", "none", "tfidf", "l2", "standardize"}
        The feature transform (:mod:`sparsexc._preprocess`), fitted on the training rows only (never the
        validation rows), saved with the model and applied to every ``X`` the prediction methods get.
        "tfidf": smooth idf weights (as scikit-learn's ``TfidfTransformer``) then unit L2 rows; "l2": unit L2
        rows; "standardize": per-feature ``(x - mean) / std`` (as ``StandardScaler``), centred only when the
        training ``X`` is at least half full (a sparser ``X`` is only scaled and stays sparse); "none".
        "auto" (default) chooses from the training ``X`` (:func:`sparsexc._preprocess.choose`): "standardize"
        for negative values, a dense ``X`` or integer-coded tabular columns, "none" for a binary bag of words or
        unit rows, "tfidf" for word counts, else "l2" (see ``docs/getting-started.md``, "Feature
        preprocessing", for the rule and its evidence); :meth:`resolved_preprocess` and ``preprocess_`` tell
        the choice.
    device : str
        "auto" (CUDA when present), "cpu", "cuda", ...
    random_state : int
        Seeds the validation split, the initial weights, the data order and dropout.
    verbose : {"auto", 0, 1, 2} or bool
        What ``fit`` says on stderr (:mod:`sparsexc.train.progress`): 0 nothing; 1 one line per epoch (epoch
        i/n, loss, validation metric, seconds, ``* best`` when best so far) and how training ended ("stopped
        early after epoch 13: validation P@1 did not improve for 5 epochs; kept epoch 8 (P@1 0.6312)"); 2 the
        same plus a progress bar during each epoch when stderr is a terminal or a notebook (never in a file or
        pipe). "auto" (default): 2 in a terminal or notebook, else 0. ``True``/``False`` mean 2/0. The model
        does not depend on it: the same ``random_state`` gives the same weights at every level.
    sparse_gradients : bool
        Row-sparse gradients for the weights indexed by feature id (the linear model's output weight, or the
        first hidden layer): a step touches only the features present in its batch; "adam" then means lazy
        Adam (``torch.optim.SparseAdam``) on those weights, whose ``weight_decay`` is lazy (it acts on a step's
        touched rows only; see :func:`sparsexc.train.build_optimizer`). For linear models
        with a large ``n_features x n_labels`` output (see :class:`sparsexc._params.EncoderParams`).
    precision : {"float32", "bfloat16"}
        "bfloat16" trains under ``torch.autocast`` with bfloat16 matrix products (losses in float32; see
        :class:`sparsexc._params.TrainParams`); prediction runs in float32.

    Attributes
    ----------
    model_ : the fitted family's model: XCModel (or ShortlistModel) for "neural", TreeClassifierModel for "tree",
        RidgeClassifierModel for "ridge"
    model_choice_ : ModelChoice, the family fitted and why (with ``model="auto"``: the rule or the settings given
        that chose it; :meth:`resolved_model`)
    n_features_in_, n_labels_ : int
    classes_ : ndarray, the label names in output-column order (see :meth:`fit`), or the label ids 0..C-1
        for a model fitted without names
    multilabel_ : bool, False for a model fitted on a 1-D vector of classes (one class per row)
    history_ : list of dict, per-epoch training log
    best_epoch_ : int or None
    fit_summary_ : dict, how training ended (:func:`sparsexc.train.progress.fit_summary`): ``stopped_early``,
        ``kept_epoch``, ``kept_value``, ``epochs_run``, ``message``, ... (after :meth:`load`: inferred from the
        saved history)
    tuned_ : dict, the head's tuned set parameter(s)
    budget_ : TrainingBudget or None, the neural family's training budget (:mod:`sparsexc.train.budget`): rows,
        epochs and patience (given or chosen from the data), validation rows, and the refit on all rows of small
        data (``budget_.describe()`` says it in one line); None for the tree and ridge families
    preprocess_ : FeaturePreprocessor, the fitted feature transform (``preprocess_.describe()`` says which and
        why; ``"none"`` for a model loaded from a folder saved before preprocessing existed)
    """

    @_refuse_run_arguments
    def __init__(
        self,
        head: str = DEFAULT_HEAD,
        head_params: dict | None = None,
        hidden_sizes: tuple[int, ...] = (1024,),
        activation: str = "relu",
        dropout: float = 0.6,
        optimizer: str | None = None,
        lr: float | None = None,
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
        grad_clip: float | None = None,
        epochs: int | None = None,
        batch_size: int = 128,
        patience: int | None = None,
        val_metric: str = "P@1",
        validation_fraction: float = 0.1,
        device: str = "auto",
        random_state: int = 0,
        verbose: str | int | bool = "auto",
        sparse_gradients: bool = False,
        precision: str = "float32",
        momentum: float = 0.0,
        warmup_steps: int = 0,
        step_size: int = 10,
        step_gamma: float = 0.1,
        tune_metric: str = "micro-F1",
        eval_batch_size: int = 1024,
        model: str = "auto",
        tree_params: dict | None = None,
        ridge_params: dict | None = None,
        shortlist: str = "none",
        shortlist_size: int = 100,
        shortlist_negatives: int = 300,
        shortlist_path_weight: float | None = None,
        preprocess: str = "auto",
    ) -> None:
        self.head = head
        self.head_params = head_params
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.dropout = dropout
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.grad_clip = grad_clip
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_metric = val_metric
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.sparse_gradients = sparse_gradients
        self.precision = precision
        self.momentum = momentum
        self.warmup_steps = warmup_steps
        self.step_size = step_size
        self.step_gamma = step_gamma
        self.tune_metric = tune_metric
        self.eval_batch_size = eval_batch_size
        self.model = model
        self.tree_params = tree_params
        self.ridge_params = ridge_params
        self.shortlist = shortlist
        self.shortlist_size = shortlist_size
        self.shortlist_negatives = shortlist_negatives
        self.shortlist_path_weight = shortlist_path_weight
        self.preprocess = preprocess

    @_refuse_run_arguments
    def set_params(self, **params: Any) -> XCClassifier:
        """scikit-learn's ``set_params``; a run argument (``checkpoint_dir``, ...) raises :class:`RunArgumentError`."""
        return cast(XCClassifier, super().set_params(**params))

    # -- scikit-learn tags --------------------------------------------------------------------------------
    def __sklearn_tags__(self) -> Any:
        """scikit-learn >= 1.6: a classifier of sparse inputs, multi-label (indicator ``Y``) or single-label."""
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        tags.target_tags.single_output = True  # a 1-D vector of classes
        tags.target_tags.multi_output = True  # a label indicator matrix
        return tags

    def _more_tags(self) -> dict[str, Any]:
        """The same for scikit-learn < 1.6 (pyproject allows >= 1.3)."""
        return {"X_types": ["2darray", "sparse"], "multilabel": True, "multioutput": True, "requires_y": True}

    # -- settings -----------------------------------------------------------------------------------------
    def _head_class(self) -> type[Head]:
        from sparsexc.heads import get_head, list_heads

        try:
            return get_head(self.head)
        except KeyError:
            raise UnknownNameError(
                f"head={self.head!r} is not a registered head; choose one of {', '.join(map(repr, list_heads()))}"
            ) from None

    def _fields(self, params_cls: type[Params]) -> dict[str, Any]:
        """This estimator's values of the fields of ``params_cls`` that are parameters of it (by name)."""
        return {
            field.name: getattr(self, field.metadata.get("estimator_name", field.name))
            for field, _ in params_cls.settings()
            if "from_estimator" not in field.metadata
        }

    def _settings(self) -> tuple[type[Head], Any, EncoderParams, TrainParams]:
        """Validate the constructor arguments; return (head class, head params, encoder params, train params)."""
        head_cls = self._head_class()
        if self.head_params is not None and not isinstance(self.head_params, dict):
            raise ConfigurationError(f"head_params must be a dict or None; got {type(self.head_params).__name__}")
        head_params = head_cls.Params.from_dict(self.head_params)
        optimizer = self.optimizer if self.optimizer is not None else head_cls.default_optimizer
        lr = self.lr
        if lr is None:
            # an unknown optimizer is reported by TrainParams below
            lr = DEFAULT_LR.get(optimizer, 1e-3) * head_cls.default_lr_scale
        encoder, train = self._network_settings(optimizer, lr)
        head_cls.check_encoder(head_params, encoder.hidden_sizes)
        return head_cls, head_params, encoder, train

    def _network_settings(self, optimizer: str, lr: float) -> tuple[EncoderParams, TrainParams]:
        """Validate every argument but the head's; the encoder and train params with ``optimizer`` and ``lr``."""
        encoder = EncoderParams.from_dict(self._fields(EncoderParams))
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, (int, np.integer)):
            raise ConfigurationError(f"random_state must be an integer; got {self.random_state!r}")
        FitParams.from_dict(self._fields(FitParams))  # checks validation_fraction and model; fit reads them
        for name in list_families():  # each family's own settings (tree_params) are checked whatever the
            get_family(name).check(self)  # family, as head_params is
        level = resolve_verbose(self.verbose)  # "auto": is stderr a terminal or notebook now
        resolved = {
            "optimizer": optimizer,
            "lr": lr,
            "seed": int(self.random_state),
            "progress": level > 0,
            "progress_bar": level > 1,
        }
        fields = self._fields(TrainParams)
        # epochs / patience None: chosen from the data by the family (sparsexc.train.budget); here the rule's
        # values for data of unknown size, so that the TrainParams are complete
        has_val = self.validation_fraction > 0  # fit with X_val resolves it again (the family, with the data)
        budget = resolve_budget(None, fields["batch_size"], self.epochs, self.patience, has_validation=has_val)
        resolved.update(epochs=budget.epochs, patience=budget.patience)
        return encoder, TrainParams.from_dict({**fields, **resolved})

    def _check_settings(self) -> None:
        """Validate every constructor argument, whatever the family: the errors :meth:`fit` raises before it
        reads the data.

        The head's settings are checked by :meth:`_settings`, which imports the heads (and torch), unless they
        are the defaults (``head=DEFAULT_HEAD``, ``head_params=None``: valid with every encoder, tested); then the
        rest is checked without them, so that a model with no head (the label tree, which ``model="auto"``
        chose on every data set measured) fits, predicts and saves without importing torch (about 175 MiB of
        resident memory; docs/tree.md, "Memory")."""
        if self.head != DEFAULT_HEAD or self.head_params is not None:
            self._settings()
        else:
            # the optimizer only completes the TrainParams checked here; the default head's own default
            # (head_cls.default_optimizer) is resolved where a network is built
            optimizer = _CHECK_OPTIMIZER if self.optimizer is None else self.optimizer
            self._network_settings(optimizer, 1.0 if self.lr is None else self.lr)

    def resolved_params(self) -> tuple[type[Head], Any, EncoderParams, TrainParams]:
        """The settings :meth:`fit` trains with: ``(head class, head params, encoder params, train params)``.

        The constructor arguments are validated (the errors :meth:`fit` would raise) and the defaults that
        depend on other settings resolved: ``optimizer=None`` is the head's ``default_optimizer``, ``lr=None``
        is ``DEFAULT_LR[optimizer] * head.default_lr_scale``, ``random_state`` is the ``seed`` and ``verbose``
        the ``progress`` flags. :meth:`fit` builds ``XCModel(SparseEncoder(n_features, encoder),
        head_class(encoder.out_dim, n_labels, head_params))`` under ``torch.manual_seed(random_state)`` and
        trains it with ``Trainer(model, train)`` on the rows left after holding out ``validation_fraction``
        (``patience`` dropped when nothing is held out). A caller who drives the training loop itself (a
        per-epoch callback, its own split) does the same and gets the estimator's model and training. The
        feature transform, which depends on the data when ``preprocess="auto"``, is :meth:`resolved_preprocess`'s;
        ``epochs=None`` and ``patience=None`` are chosen from the number of rows (:meth:`resolved_budget`): here
        they are the rule's large-data values (``sparsexc.train.budget.MIN_EPOCHS`` and ``MIN_PATIENCE``).

        Returns
        -------
        head_class : type[Head]
        head_params : head_class.Params
        encoder : EncoderParams
        train : TrainParams
        """
        return self._settings()

    def resolved_preprocess(self, X: Any = None) -> Choice:
        """The feature transform :meth:`fit` applies, and why: a :class:`sparsexc._preprocess.Choice`
        ``(transform, reason)`` with ``transform`` one of "none", "tfidf", "l2", "standardize".

        An explicit ``preprocess`` is itself (reason "given"). For ``"auto"`` it is the rule's choice
        (:func:`sparsexc._preprocess.choose`) for the training features ``X`` (``fit`` applies the rule to the
        rows left after the validation hold-out, which have the same kind), or, without ``X``, the fitted
        model's choice. Bad values raise the :class:`~sparsexc.errors.ConfigurationError` ``fit`` would.
        """
        check_choice(self.preprocess)
        if self.preprocess != "auto":
            return Choice(self.preprocess, "given")
        if X is not None:
            return choose(checked_features(X, "X", fitting=True))
        if hasattr(self, "preprocess_"):
            return Choice(self.preprocess_.transform, self.preprocess_.reason)
        raise ConfigurationError('preprocess="auto" chooses from the training features: give X, or fit the model first')

    def resolved_model(self, X: Any = None, Y: Any = None) -> ModelChoice:
        """The model family :meth:`fit` trains, the settings a rule sets, and why: a
        :class:`~sparsexc.estimator._families.ModelChoice` ``(family, settings, reason, rule)``.

        ``model="neural"`` or ``"tree"`` is itself (reason "given"). For ``model="auto"`` it is the choice of
        :func:`sparsexc.estimator._auto.choose_model` for the training data ``X``, ``Y`` (taken as :meth:`fit`
        takes them: the validation hold-out set aside and the features preprocessed). Without data: the fitted
        model's (``model_choice_``). Bad values raise the :class:`~sparsexc.errors.ConfigurationError` ``fit``
        would.
        """
        self._check_settings()
        family = get_family(self.model)
        if X is not None and Y is not None:
            X, Y, *_ = self._training_rows(X, Y, None, None, None)
            return family.choose(self, X, Y)
        if hasattr(self, "model_choice_"):
            return self.model_choice_
        if family.name != "auto":
            return ModelChoice(family.name, {}, "given")
        raise ConfigurationError('model="auto" chooses from the training data: give X and Y, or fit the model first')

    def resolved_budget(self, X: Any) -> TrainingBudget:
        """The training budget the neural model's :meth:`fit` would use on the training features ``X`` without
        ``X_val``: the rows
        held out (``validation_fraction``, :func:`sparsexc.train.budget.holdout_rows`), the epochs and patience
        (given, or chosen by :func:`sparsexc.train.budget.resolve_budget`) and whether the model is refitted on
        all rows (:func:`sparsexc.train.budget.refits`; ``refit_epochs`` is known only after ``fit``, in
        :attr:`budget_`). Bad settings raise the :class:`~sparsexc.errors.ConfigurationError` ``fit`` would."""
        _, _, _, train = self._settings()
        n = checked_features(X, "X", fitting=True).shape[0]
        n_val = get_family("neural").holdout_rows(self, n)
        return plan_budget(n - n_val, n_val, train.batch_size, self.epochs, self.patience, held_out=True)

    def _family(self) -> ModelFamily:
        """The family of the fitted model (``model_choice_``), else the one ``model`` names
        (:mod:`sparsexc.estimator._families`)."""
        choice = getattr(self, "model_choice_", None)
        return get_family(choice.family if choice is not None else getattr(self, "model", "neural"))

    def _fitted_settings(self) -> Any:
        """This estimator with the fitted choice's settings applied (what the fitted family was given)."""
        choice = getattr(self, "model_choice_", None)
        return self if choice is None else choice.applied_to(self)

    # -- training -----------------------------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        Y: Any,
        X_val: Any = None,
        Y_val: Any = None,
        *,
        label_names: Any = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        checkpoint_every: int | None = None,
        resume: bool = False,
        log_path: str | os.PathLike[str] | None = None,
    ) -> XCClassifier:
        """Train on ``X`` (CSR or dense, (n, n_features)) and the targets ``Y``.

        ``Y`` is one of (see ``docs/getting-started.md``, "Label names"):

        * a 0/1 indicator, sparse or dense (n, C): column ``j`` is label ``j``, or ``label_names[j]``;
        * label lists, one per row: label ids (non-negative integers, as ``[[0, 3], [2]]``; ``classes_`` is
          then ``0..C-1`` with ``C = max id + 1``) or label names (any hashable that is not a number, as
          ``[["rock", "pop"], ["jazz"]]``; ``classes_`` is their sorted set);
        * a 1-D vector of classes (any hashable), one per row: a single-label problem, as for scikit-learn's
          classifiers; ``classes_`` is their sorted set and :meth:`predict` returns one class per row.

        Parameters
        ----------
        X_val, Y_val : optional
            Validation data (else a ``validation_fraction`` of the rows), which drive early stopping on
            ``val_metric`` and the tuning of the head's set threshold. Labels found only in ``Y_val`` still get
            an output.
        label_names : sequence of hashable, optional
            One distinct name per label, which become ``classes_``: the names of an indicator's columns (as
            ``MultiLabelData.label_names``), or the labels (and their order) that label lists or a class vector
            may name.
        checkpoint_dir : str, os.PathLike or None
            Folder of the resumable checkpoint (see :class:`sparsexc.train.Trainer`), written at every epoch end
            and every ``checkpoint_every`` steps.
        checkpoint_every : int or None
            Steps between checkpoints, beside the one at every epoch end; needs ``checkpoint_dir``.
        resume : bool
            Continue from the checkpoint in ``checkpoint_dir`` (a fresh start when there is none); with a larger
            ``epochs`` than the checkpoint's, training goes on to ``epochs``.
        log_path : str, os.PathLike or None
            JSON-lines file of per-epoch metrics.

        ``checkpoint_dir``, ``checkpoint_every``, ``resume`` and ``log_path`` are the run plumbing
        (:class:`sparsexc._params.RunParams`): they say where this run writes, never what it learns, so they
        are arguments of ``fit`` (scikit-learn's fit parameters), not of the estimator. A saved model records
        them under ``"training_run"`` (for the record; never read back), so a loaded, cloned or refitted model
        never touches the files of the run that made it.

        Raises
        ------
        ValueError
            Among others when ``Y`` holds no positive label at all (a ``UserWarning`` when all its positives
            belong to one label), or a continuous 1-D ``Y`` ("Unknown label type").
        sparsexc.train.NonFiniteLossError
            When the training loss becomes NaN or infinite (training stops at that step).
        """
        self._check_settings()
        family = get_family(self.model)  # the one asked for (model_choice_ is the last fit's)
        run = RunParams.from_arguments(
            checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, resume=resume, log_path=log_path
        )
        family.check_run(run)  # e.g. the tree family refuses checkpoints
        X, Y, X_val, Y_val, targets, preprocessor, held_out = self._training_rows(X, Y, X_val, Y_val, label_names)
        fitted = family.fit(self, X, Y, X_val, Y_val, run, held_out=held_out)
        self.preprocess_ = preprocessor
        self.model_choice_ = fitted.choice or ModelChoice(family.name, {}, "given")
        self.model_ = fitted.model
        self.n_features_in_ = X.shape[1]
        self.n_labels_ = Y.shape[1]
        self._set_classes(targets.classes, targets.multilabel)
        self.history_ = fitted.history
        self.best_epoch_ = fitted.best_epoch
        self.fit_summary_ = fitted.fit_summary
        self.tuned_ = fitted.tuned
        self.budget_ = fitted.budget
        self._training_run = run.to_dict()  # saved for the record
        return self

    def _training_rows(self, X: Any, Y: Any, X_val: Any, Y_val: Any, label_names: Any) -> tuple[Any, ...]:
        """What a family fits on: (X, Y, X_val, Y_val, targets, preprocessor, held_out), the inputs checked, the
        validation hold-out set aside (unless X_val is given; ``held_out`` says whether it was, its size is the
        family's :meth:`~sparsexc.estimator._families.ModelFamily.holdout_rows`), the preprocessing fitted on the
        training rows and applied."""
        family = get_family(self.model)
        if Y is None:  # scikit-learn's wording, which its checks look for
            raise ConfigurationError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        X = checked_features(X, "X", fitting=True)
        if (X_val is None) != (Y_val is None):
            raise ConfigurationError("give both X_val and Y_val, or neither")
        targets = fit_targets(Y, Y_val, label_names)
        Y = targets.Y
        if X.shape[0] != Y.shape[0]:
            raise ConfigurationError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
        if Y.shape[1] == 0:
            raise ConfigurationError("Y holds no label at all; nothing to learn")
        _check_targets(Y)
        held_out = False  # whether the validation rows come out of the training rows (small data refits on them)
        if X_val is not None:
            X_val = checked_features(
                X_val, "X_val", n_features=X.shape[1], owner=f"{type(self).__name__} (fitted on X)"
            )
            if targets.classes is not None:
                Y_val = targets.Y_val
            else:  # label ids
                Y_val = as_label_matrix(Y_val, name="Y_val", n_labels=max(Y.shape[1], _label_width(Y_val)))
                if Y_val.shape[1] > Y.shape[1]:  # labels seen only in validation still get an output
                    Y = sp.csr_matrix((Y.data, Y.indices, Y.indptr), shape=(Y.shape[0], Y_val.shape[1]))
        elif (n_val := family.holdout_rows(self, X.shape[0])) > 0:  # the neural family's refit: at least a minimum
            order = np.random.default_rng(int(self.random_state)).permutation(X.shape[0])
            val_rows, train_rows = np.sort(order[:n_val]), np.sort(order[n_val:])
            X, Y, X_val, Y_val = X[train_rows], Y[train_rows], X[val_rows], Y[val_rows]
            held_out = True
        # fitted on the training rows only: the validation rows are transformed with their statistics
        preprocessor = fit_preprocessor(self.preprocess, X)
        X = preprocessor(X)
        X_val = None if X_val is None else preprocessor(X_val)
        return X, Y, X_val, Y_val, targets, preprocessor, held_out

    # -- prediction ---------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this XCClassifier is not fitted yet; call fit(X, Y) first")

    def _features(self, X: Any) -> sp.csr_matrix:
        """``X`` checked and transformed by the fitted preprocessing (what the model was trained on)."""
        self._check_fitted()
        X = checked_features(X, "X", n_features=self.n_features_in_, owner=type(self).__name__)
        return self._preprocessor()(X)

    def _preprocessor(self) -> FeaturePreprocessor:
        # a model fitted (or unpickled) from before preprocessing existed has none: it saw X as given
        return getattr(self, "preprocess_", None) or from_saved(None, {}, self.n_features_in_)

    def _set_classes(self, names: Any, multilabel: bool) -> None:
        """``classes_`` (the label names, or the ids 0..C-1 when there are none) and ``multilabel_``."""
        self.classes_ = np.arange(self.n_labels_) if names is None else classes_array(names)
        self._named = names is not None  # saved with the model; ids-only models save none
        self.multilabel_ = bool(multilabel)

    def predict(self, X: Any, *, batch_size: int | None = None) -> sp.csr_matrix | np.ndarray:
        """Predicted label sets: CSR 0/1 float32 indicator, shape (n, n_labels); column ``j`` is ``classes_[j]``.

        A model fitted on a 1-D vector of classes (``multilabel_`` False) returns one class per row instead,
        a 1-D array of ``classes_`` values: the best-scored label (the top-1 of :meth:`predict_topk`), as a
        scikit-learn classifier does. :meth:`predict_labels` gives the label sets as names.

        ``batch_size``: rows scored at a time (None: :class:`~sparsexc._params.PredictParams`' default); the
        result does not depend on it.
        """
        X = self._features(X)
        settings = PredictParams.from_arguments(batch_size=batch_size)
        if not getattr(self, "multilabel_", True):
            return self.classes_[self._family().topk(self.model_, X, settings.replace(k=1))[0][:, 0]]
        return self._family().sets(self.model_, X, settings)

    def predict_labels(self, X: Any, *, batch_size: int | None = None) -> list[tuple[Any, ...]]:
        """Predicted label sets as names: per row a tuple of ``classes_`` values, in ``classes_`` order.

        The spelling of ``MultiLabelBinarizer.inverse_transform(clf.predict(X))``: label ids for a model fitted
        without names. A model fitted on a 1-D vector of classes gives one-element tuples. ``batch_size`` as
        for :meth:`predict`.
        """
        X = self._features(X)
        settings = PredictParams.from_arguments(batch_size=batch_size)
        if not getattr(self, "multilabel_", True):
            return [
                (c,)
                for c in self.classes_[self._family().topk(self.model_, X, settings.replace(k=1))[0][:, 0]].tolist()
            ]
        sets = self._family().sets(self.model_, X, settings).tocsr()
        sets.sort_indices()
        names = self.classes_.tolist()
        return [
            tuple(names[j] for j in sets.indices[sets.indptr[i] : sets.indptr[i + 1]]) for i in range(sets.shape[0])
        ]

    def predict_topk(
        self, X: Any, k: int | None = None, *, batch_size: int | None = None, beam: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best labels per row: (indices int64 (n, k'), scores float32 (n, k')), best first, with
        ``k' = min(k, n_labels_)`` (a model of fewer labels ranks them all, so P@5 over data sets of any size
        needs no special case); the scores are those of :meth:`decision_function`.

        ``k``, ``batch_size`` (rows scored at a time; the result does not depend on it) and ``beam`` (a tree
        model's beam width; neural models ignore it) are the fields of :class:`~sparsexc._params.PredictParams`,
        whose defaults (5, 1024, 10) apply when they are None.
        """
        settings = PredictParams.from_arguments(k=k, batch_size=batch_size, beam=beam)
        X = self._features(X)
        return self._family().topk(self.model_, X, settings)

    def _dense(self, X: Any, what: str) -> np.ndarray:
        X = self._features(X)
        entries = X.shape[0] * self.n_labels_
        if entries > MAX_DENSE_ENTRIES:
            raise ConfigurationError(
                f"{what} would return a dense {X.shape[0]} x {self.n_labels_} array ({entries:,} "
                f"entries, limit {MAX_DENSE_ENTRIES:,}); use predict_topk(X, k) or predict on "
                "fewer rows at a time"
            )
        return self._family().scores(self.model_, X, PredictParams())

    def predict_proba(self, X: Any) -> np.ndarray:
        """Label probabilities of the head, dense float32 (n, n_labels); refuses when too large to densify.

        A tree model (``model="tree"``, logistic loss only) gives the path probabilities of each row's best 100
        labels (its candidates, beam 10) and 0 for the others; a ridge model (``model="ridge"``) its Platt
        probabilities of every label (on multi-class data normalised to sum to 1 per row)."""
        self._check_fitted()
        if not self._family().probabilistic(self.model_):
            raise ConfigurationError(
                f"{self._family().describe(self._fitted_settings())} does not output probabilities; use decision_function"
            )
        return self._dense(X, "predict_proba")

    def decision_function(self, X: Any) -> np.ndarray:
        """The head's label scores (its ``scores``), dense float32 (n, n_labels), higher ranks first;
        refuses when too large to densify.

        Not the pre-link logits of scikit-learn's ``decision_function``: these are the scores the head ranks
        by and reports, per head (z = W h + b, see ``docs/heads/README.md``; each head's ``score_meaning``, as
        :func:`sparsexc.heads.describe_scores` lists them; a test checks that this list is that one):

        * ``label-embedding``: cos(o, e_j) in [-1, 1], o = W h + b the projected input, e_j label j's
          embedding (no :meth:`predict_proba`);
        * ``nce``: logits xi_j, estimates of log p(j|x) (self-normalised at the NCE optimum) (no
          :meth:`predict_proba`);
        * ``negative-sampling``: corrected logits xi_j + log p_n(j|x), defined up to a per-row constant (no
          :meth:`predict_proba`);
        * ``sampled-softmax``: logits xi_j, defined up to a per-row constant (no :meth:`predict_proba`);
        * ``sdlgm``: softmax(a): the probability of each label being the first pick (probabilities, as
          :meth:`predict_proba`);
        * ``sigmoid``: sigmoid(z): the probability of each label, independently (probabilities, as
          :meth:`predict_proba`);
        * ``softmax``: softmax(z): a distribution over the labels (probabilities, as :meth:`predict_proba`);
        * ``sparsemax``: sparsemax(z): a distribution over the labels with exact zeros (probabilities, as
          :meth:`predict_proba`);

        :meth:`predict_topk` reports these scores too. A tree model (``model="tree"``) gives the path scores
        of each row's candidates (its best 100 labels, beam 10) and 0 for the other labels; a ridge model
        (``model="ridge"``) its probabilities (as :meth:`predict_proba`).

        A model fitted on a 1-D vector of two classes returns scikit-learn's binary form instead: shape (n,),
        the score of ``classes_[1]`` minus that of ``classes_[0]`` (positive where :meth:`predict` says
        ``classes_[1]``).
        """
        scores = self._dense(X, "decision_function")
        if not getattr(self, "multilabel_", True) and self.n_labels_ == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def score(self, X: Any, y: Any) -> float:
        """Precision at 1 on (X, y): the share of rows whose best-scored label is one of theirs.

        ``y`` takes the forms of :meth:`fit`'s ``Y`` (named ``y`` as in scikit-learn's ``score``). An indicator
        may have fewer label columns than the model (never more); label ids must be below ``n_labels_``.
        Label names the model never saw in ``fit`` are allowed: it cannot predict them, so they count as
        misses (a row of unseen labels only scores 0). For a model fitted on a 1-D vector of classes this is
        the accuracy of :meth:`predict`.
        """
        X = self._features(X)
        Y = encode_targets(
            y, self.classes_.tolist() if getattr(self, "_named", False) else None, self.n_labels_, "y", strict=False
        )
        if X.shape[0] != Y.shape[0]:
            raise ConfigurationError(f"X has {X.shape[0]} rows but y has {Y.shape[0]}")
        return float(evaluate(Y, self._family().topk(self.model_, X, PredictParams(k=1)), ks=(1,))["P@1"])

    # -- persistence --------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save to the folder ``path``: ``model.safetensors`` (weights) and ``config.json`` (everything else).

        Inside a process group rank 0 writes. A label-sharded head's output layer is gathered whole on rank 0
        first (every rank must call ``save`` then), so the folder loads in one process like any other.

        Label names (``classes_`` of a model fitted with names) are saved in ``config.json`` as ``"classes"``.

        Raises
        ------
        ValueError
            When a label name is not a string, an integer, a finite float or a boolean (JSON holds no other
            name faithfully); nothing is written then.
        """
        self._check_fitted()
        # checked on every rank before the collective below: names JSON cannot hold fail here, not midway
        classes = saveable_names(self.classes_.tolist()) if getattr(self, "_named", False) else None
        saved = self._family().state(self.model_)  # a collective for label-sharded models; None on ranks > 0
        if saved is None:
            return
        state, model_config = saved
        preprocessor = self._preprocessor()
        state = {**state, **preprocess_arrays(preprocessor)}
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params(deep=False).items()}
        config = {
            "library": "sparsexc",
            "estimator": type(self).__name__,
            "params": params,  # the model's settings only: the run plumbing is fit's (RunParams)
            # the run that made the model (fit's RunParams), for the record; never read back
            "training_run": getattr(self, "_training_run", None),
            "family": self.model_choice_.family,  # the fitted family: which code reads "model" and the weights
            # with model="auto": what was chosen and why (checked on load); else the family given
            "model_choice": self.model_choice_.to_dict(),
            "model": model_config,
            "n_features": self.n_features_in_,
            "n_labels": self.n_labels_,
            # the label names (classes_), or null for label ids 0..C-1; multilabel False: fitted on 1-D classes
            "classes": classes,
            "multilabel": bool(getattr(self, "multilabel_", True)),
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "tuned": self.tuned_,
            # how long it trained and how it chose (sparsexc.train.budget); null for the tree family
            "budget": None if (budget := getattr(self, "budget_", None)) is None else budget.to_dict(),
            # the feature transform; its vectors are the weights file's "preprocess.*" tensors
            "preprocess": preprocessor.config(),
        }
        write_model_dir(path, state, config)

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | None = None) -> XCClassifier:
        """Load a folder written by :meth:`save` (safetensors + JSON only; no pickle is ever read).

        ``device`` (default: the saved ``device`` setting, or the CPU where that device is not present here):
        "auto", "cpu", "mps", "cuda" or "cuda:N".
        Folders written before the run plumbing moved to :meth:`fit` (``checkpoint_dir``, ``checkpoint_every``,
        ``resume``, ``log_path`` among the ``"params"``) load without them, so refitting a loaded model never
        touches that run's files.

        Every field of ``config.json`` and every tensor's name, shape and dtype in the weights' header are
        checked before the model is built (see ``docs/model-files.md``); non-finite weights are refused.

        Raises
        ------
        FileNotFoundError
            No such folder.
        sparsexc.estimator.serialization.ModelFormatError
            (a ValueError) A damaged or inconsistent folder; the message names the file and the field or tensor.
        """
        with open_model_dir(path) as files:  # reads the config and the weights' header only
            plan = check_classifier_files(cls, files)
            est = plan.estimator
            est.model_choice_ = plan.choice
            family = est._family()  # the fitted one
            # before the weights: a bad argument costs no reading (a family that places no tensors, the tree,
            # resolves no device unless one is asked for: no torch)
            target = load_device(device, est.device) if family.uses_device or device is not None else None
            state_dict = files.arrays()
        est.preprocess_ = loaded_preprocessor(plan, state_dict, files.weights_path)  # takes its arrays out
        est.model_ = family.build(plan.model_config, state_dict, target, plan.tuned, path)
        del state_dict
        est.n_features_in_ = plan.n_features
        est.n_labels_ = plan.n_labels
        est._set_classes(plan.classes, plan.multilabel)
        est.history_ = plan.history
        est.best_epoch_ = plan.best_epoch
        est.budget_ = plan.budget
        epochs, patience = (
            (est.epochs, est.patience) if plan.budget is None else (plan.budget.epochs, plan.budget.patience)
        )
        est.fit_summary_ = fit_summary(
            plan.history, plan.best_epoch, epochs if epochs is not None else len(plan.history), patience, est.val_metric
        )
        est.tuned_ = plan.tuned
        return est


def _check_targets(Y: sp.csr_matrix) -> None:
    """Refuse a ``Y`` without any positive (every loss would be 0: nothing is learnt); warn when all positives
    belong to one label (the model can only learn to rank it first)."""
    if Y.nnz == 0:
        raise ConfigurationError(
            f"Y holds no positive label: all {Y.shape[0]} rows have an empty label set, so there is "
            "nothing to learn; check that the labels were read (the label columns or ids)"
        )
    labels, counts = np.unique(Y.indices, return_counts=True)
    if len(labels) == 1:
        warnings.warn(
            f"Y's positives all belong to one label (label {int(labels[0])}, in {int(counts[0])} of "
            f"{Y.shape[0]} rows; Y has {Y.shape[1]} label column(s)): the model can only learn to rank it "
            "first; check that the labels were read as intended",
            UserWarning,
            stacklevel=3,
        )


def _label_width(Y: Any) -> int:
    """Number of label columns implied by Y (its width, or max id + 1 for lists)."""
    if sp.issparse(Y) or isinstance(Y, np.ndarray):
        return int(Y.shape[1]) if np.ndim(Y) == 2 else 0
    return int(as_label_matrix(Y, name="Y").shape[1])
