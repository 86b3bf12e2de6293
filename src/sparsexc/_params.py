"""Typed parameter dataclasses that round-trip to JSON (in the style of PECOS' parameter classes).

Every configurable piece of sparsexc (encoder, trainer, each head, each sampler) takes one dataclass derived
from :class:`Params`, and every setting is declared once, as a field made by :func:`setting`: its default,
its constraint (allowed values and/or a :class:`Range`) and a one-line help live in the field's metadata.
Everything else reads them: validation (:meth:`Params.__post_init__`), the estimator's parameters and their
documentation (``sparsexc.estimator``), the options of ``sparsexc train`` and ``sparsexc predict`` and
train's ``--print-config`` (``sparsexc.cli._settings``). Model settings (:data:`ESTIMATOR_SETTINGS`) are the
estimator's parameters; run plumbing (:class:`RunParams`) goes to ``fit`` and prediction settings
(:class:`PredictParams`) to the prediction methods.

``from_dict`` is the single place where user-supplied settings (estimator ``head_params``, CLI config files,
saved ``config.json``) are validated: unknown keys and wrong types raise a ``ValueError`` that names the key
and lists the allowed ones. A field may hold another :class:`Params` (nested settings, e.g. a sampled head's
``tree`` sampler settings), given as a mapping; old flat spellings of nested keys are accepted through
:attr:`Params.aliases`.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import os
import types
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

from sparsexc.errors import ConfigurationError

__all__ = [
    "ACTIVATIONS",
    "ESTIMATOR_SETTINGS",
    "LR_SCHEDULES",
    "MODEL_FAMILIES",
    "NON_NEGATIVE",
    "OPTIMIZERS",
    "POSITIVE",
    "POSITIVE_INT",
    "PRECISIONS",
    "PREPROCESS_CHOICES",
    "UNIT_INTERVAL",
    "EncoderParams",
    "FitParams",
    "Params",
    "PredictParams",
    "Range",
    "RunParams",
    "TrainParams",
    "redeclare",
    "setting",
]

P = TypeVar("P", bound="Params")

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "adagrad", "sgd")
LR_SCHEDULES: tuple[str, ...] = ("constant", "linear", "cosine", "step")
ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "tanh", "sigmoid", "elu", "leaky_relu")
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16")  # TrainParams.precision: autocast dtype of forward + loss
# FitParams.preprocess: "auto" (the rule of sparsexc._preprocess) or one of the feature transforms
PREPROCESS_CHOICES: tuple[str, ...] = ("auto", "none", "tfidf", "l2", "standardize")


# -- constraints ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Range:
    """An interval of allowed numbers: ``low <= x <= high``, either bound open (strict) or absent."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: Any) -> bool:
        if self.low is not None and not (value > self.low if self.low_open else value >= self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def requirement(self, integer: bool) -> str:
        """What the range asks, as the end of "x=3 must ..." ("be a positive integer", "lie in [0, 1)")."""
        low, high = self.low, self.high
        if high is None and low is not None:
            if integer and low == 1 and not self.low_open:
                return "be a positive integer"
            if low == 0:
                return "be positive" if self.low_open else "be >= 0"
            return f"be {'>' if self.low_open else '>='} {low:g}"
        if low is None and high is not None:
            return f"be {'<' if self.high_open else '<='} {high:g}"
        return f"lie in {'(' if self.low_open else '['}{low:g}, {high:g}{')' if self.high_open else ']'}"


POSITIVE_INT = Range(1)
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)
UNIT_INTERVAL = Range(0, 1, high_open=True)  # [0, 1)

Choices = tuple[str, ...] | Callable[[], tuple[str, ...]]


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    choices: Choices | None = None,
    range: Range | None = None,
    default_factory: Any = dataclasses.MISSING,
    **extra: Any,
) -> Any:
    """A dataclass field declaring one setting: default, constraint and one-line help in its metadata.

    Parameters
    ----------
    default, default_factory
        As for :func:`dataclasses.field` (a nested :class:`Params` needs ``default_factory``).
    help : str
        One line for the estimator's documentation and the CLI's ``--help``.
    choices : tuple of str, or a callable returning one
        The allowed values (a callable for registries that fill up at import time).
    range : Range
        The allowed interval of a number (of every item, for a tuple of numbers).
    **extra
        Where the estimator and the CLI differ from the plain field (see ``sparsexc.cli._settings``):
        ``estimator_default`` (the estimator's default when it is not the component's), ``estimator_name``
        (the estimator parameter's name when it is not the field's), ``from_estimator`` (the estimator
        parameter the value is derived from, when it is not set directly), ``cli_flag`` (the option name),
        ``cli_off`` (the negative flag of a boolean option), ``cli_required`` (the option must be given),
        ``cli_from`` (no option: the CLI derives the value, e.g. a path inside ``--out``), ``chosen_from_data``
        (the estimator's default None means chosen from the data, :mod:`sparsexc.train.budget`).
    """
    metadata = {"help": help, "choices": choices, "range": range, **extra}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def redeclare(base: type[Params], name: str, default: Any) -> Any:
    """The setting ``name`` of ``base`` declared again in a subclass with another ``default``.

    Help and constraint stay those of ``base``'s field (declaring a field again would otherwise drop them).
    """
    field = next(f for f in dataclasses.fields(base) if f.name == name)
    return dataclasses.field(default=default, metadata=field.metadata)


def choices_of(field: dataclasses.Field) -> tuple[str, ...] | None:
    """The allowed values declared for ``field`` (a registry's names are read now), or None."""
    choices = field.metadata.get("choices")
    return choices() if callable(choices) else choices


def _check_choice(owner: str, name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigurationError(
            f"{owner}: {name}={value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}"
        )


def _check_field(owner: str, field: dataclasses.Field, hint: Any, value: Any) -> None:
    """Check ``value`` against the field's declared choices and range (None passes where allowed)."""
    if value is None:
        return
    allowed = choices_of(field)
    if allowed is not None:
        _check_choice(owner, field.name, value, allowed)
    bounds: Range | None = field.metadata.get("range")
    if bounds is None:
        return
    optional = type(None) in get_args(hint)
    integer = int in get_args(hint) or hint is int or get_args(hint)[:1] == (int, ...)
    items = enumerate(value) if isinstance(value, tuple) else [(None, value)]
    for i, item in items:
        if item not in bounds:
            name = field.name if i is None else f"{field.name}[{i}]"
            tail = " or None" if optional else ""
            raise ConfigurationError(f"{owner}: {name}={item} must {bounds.requirement(integer)}{tail}")


# -- type coercion ----------------------------------------------------------------------------------------
def _is_params(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, Params)


def _coerce(owner: str, name: str, hint: Any, value: Any) -> Any:
    """Return ``value`` converted to the annotated type, or raise a ValueError naming the field."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = get_args(hint)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigurationError(f"{owner}: {name} must not be None")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(owner, name, arg, value)
            except ValueError as exc:
                errors.append(str(exc))
        raise ConfigurationError(errors[0] if errors else f"{owner}: bad value for {name}: {value!r}")
    if _is_params(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise ConfigurationError(f"{owner}: {name} must be a mapping of {hint.__name__} settings; got {value!r}")
        try:
            return hint.from_dict(value)
        except ValueError as exc:
            raise ConfigurationError(f"{owner}: {name}: {exc}") from None
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigurationError(f"{owner}: {name} must be a list of values; got {value!r}")
        args = get_args(hint)
        item = args[0] if args else Any
        return tuple(_coerce(owner, f"{name}[{i}]", item, v) for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigurationError(f"{owner}: {name} must be a mapping; got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigurationError(f"{owner}: {name} must be true or false; got {value!r}")
        return value
    if hint is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigurationError(f"{owner}: {name} must be an integer; got {value!r}")
    if hint is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        raise ConfigurationError(f"{owner}: {name} must be a number; got {value!r}")
    if hint is str:
        if not isinstance(value, str):
            raise ConfigurationError(f"{owner}: {name} must be a string; got {value!r}")
        return value
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)``, once per class: a class's annotations do not change after it is made, and
    resolving them (string annotations, evaluated) was most of a settings object's construction, which the tree's
    cross-validation repeats for every fold and C (``replace``)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = get_type_hints(cls)
    return hints


# -- the base class ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class Params:
    """Base class: a dataclass whose fields are plain JSON types (numbers, strings, tuples, None) or nested
    :class:`Params`.

    Construction coerces every field to its annotated type, checks the constraints declared with
    :func:`setting` (choices, ranges) and then runs :meth:`validate` (checks that involve more than one field
    or a rule no constraint states).
    """

    # old key -> "field.key" of a nested Params: flat spellings that from_dict still reads
    aliases: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        owner = type(self).__name__
        hints = _type_hints(type(self))
        for field in dataclasses.fields(self):
            value = _coerce(owner, field.name, hints[field.name], getattr(self, field.name))
            _check_field(owner, field, hints[field.name], value)
            setattr(self, field.name, value)
        self.validate()

    def validate(self) -> None:
        """Check what the fields' constraints cannot; raise ``ValueError`` naming the field."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def settings(cls) -> Iterator[tuple[dataclasses.Field, Any]]:
        """``(field, type hint)`` of every field, in declaration order."""
        hints = _type_hints(cls)
        for field in dataclasses.fields(cls):
            yield field, hints[field.name]

    @classmethod
    def from_arguments(cls: type[P], **given: Any) -> P:
        """Build from a function's keyword arguments named as the fields; None takes the field's default.

        A bad value raises a ConfigurationError that names the argument as the caller wrote it
        (``k must be a positive integer; got 0``), not the class.
        """
        given = {name: value for name, value in given.items() if value is not None}
        try:
            return cls(**given)
        except ConfigurationError:
            hints = _type_hints(cls)
            for field in dataclasses.fields(cls):
                if field.name not in given:
                    continue
                value = given[field.name]
                try:
                    cls(**{field.name: value})
                except ConfigurationError as exc:
                    bounds: Range | None = field.metadata.get("range")
                    if bounds is None:
                        raise ConfigurationError(str(exc).removeprefix(f"{cls.__name__}: ")) from None
                    integer = int in (hints[field.name], *get_args(hints[field.name]))
                    raise ConfigurationError(
                        f"{field.name} must {bounds.requirement(integer)}; got {value!r}"
                    ) from None
            raise

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-able dict (tuples become lists, nested Params dicts)."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Params):
                value = value.to_dict()
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls: type[P], d: dict[str, Any] | Params | None) -> P:
        """Build from a mapping; missing keys take their defaults; :attr:`aliases` are read as their new keys.

        ``d`` may also be an instance of the class, returned as it is; any other object that is not a dict raises.

        Raises
        ------
        ValueError
            On an unknown key (the message lists the allowed keys), a wrong type or a bad value.
        """
        if d is None:
            d = {}
        if isinstance(d, cls):
            return d
        if not isinstance(d, dict):
            raise ConfigurationError(f"{cls.__name__} must be given as a dict; got {type(d).__name__}")
        d, renamed = cls._unalias(d)
        allowed = cls.field_names()
        unknown = [k for k in d if k not in allowed]
        if unknown:
            raise ConfigurationError(
                f"{cls.__name__}: unknown key {unknown[0]!r}; allowed keys are: "
                + (", ".join(allowed) if allowed else "(none)")
            )
        try:
            return cls(**d)
        except ValueError as exc:
            if not renamed:
                raise
            said = ", ".join(f"{old!r} (now {new!r})" for old, new in renamed)
            raise ConfigurationError(f"{exc} [given as {said}]") from None

    @classmethod
    def _unalias(cls, d: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """``d`` with old flat keys moved into their nested mappings, and the (old, new) spellings met."""
        if not any(k in cls.aliases for k in d):
            return d, []
        out: dict[str, Any] = {k: v for k, v in d.items() if k not in cls.aliases}
        renamed = []
        for old, value in d.items():
            if old not in cls.aliases:
                continue
            new = cls.aliases[old]
            outer, inner = new.split(".", 1)
            nested = out.get(outer, {})
            nested = nested.to_dict() if isinstance(nested, Params) else dict(nested)
            nested[inner] = value
            out[outer] = nested
            renamed.append((old, new))
        return out, renamed

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls: type[P], text: str) -> P:
        return cls.from_dict(json.loads(text))

    def replace(self: P, **changes: Any) -> P:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


# -- the estimator's components ---------------------------------------------------------------------------
@dataclasses.dataclass
class EncoderParams(Params):
    """Settings of :class:`sparsexc.models.SparseEncoder`.

    ``hidden_sizes=()`` is the linear model: the encoder passes the sparse features through and the head's
    output layer (``n_labels x n_features``) is the full-rank linear model. With hidden sizes
    ``(h1, ..., hk)`` the encoder computes ``a(... a(X W1 + b1) ...)`` with activation ``a`` and dropout
    after each hidden layer (so ``dropout`` has no effect on the linear model).

    ``sparse_gradients=True`` gives the weights indexed by feature id sparse gradients: the linear model's
    output weight (stored transposed, ``n_features x n_labels``, and computed with
    ``embedding_bag(..., sparse=True)``) or the first hidden layer's ``EmbeddingBag``. A step then reads and
    updates only the rows of the features present in the batch, instead of the whole matrix; the loss and
    the gradient are the same as with dense gradients. The optimiser must accept sparse gradients (see
    :func:`sparsexc.train.optim.build_optimizer`: "adam" becomes lazy Adam, ``torch.optim.SparseAdam``, on
    those weights). Saved models and checkpoints store the weights in the dense layout either way.

    The estimator's defaults differ from this class's where marked ``estimator_default`` (a one-hidden-layer
    network with dropout, :class:`sparsexc.estimator.XCClassifier`); this class's are the linear model's.
    """

    hidden_sizes: tuple[int, ...] = setting(
        (), "Hidden layer sizes, e.g. 512,256 ('' = linear model).", range=POSITIVE_INT, estimator_default=(1024,)
    )
    activation: str = setting("relu", "Hidden activation.", choices=ACTIVATIONS)
    dropout: float = setting(0.0, "Dropout rate after each hidden layer.", range=UNIT_INTERVAL, estimator_default=0.6)
    sparse_gradients: bool = setting(
        False,
        "Row-sparse gradients for the feature-indexed weights (large linear models; 'adam' becomes lazy Adam).",
        cli_off="dense-gradients",
    )


@dataclasses.dataclass
class TrainParams(Params):
    """Settings of :class:`sparsexc.train.Trainer`.

    Attributes
    ----------
    epochs, batch_size : int
        Passes over the training rows and rows per optimiser step.
    optimizer : {"adam", "adamw", "adagrad", "sgd"}
    lr, weight_decay : float
        Learning rate; L2 penalty (decoupled for AdamW, added to the gradient otherwise).
    momentum : float
        Used by SGD only.
    lr_schedule : {"constant", "linear", "cosine", "step"}
        Multiplier of ``lr`` per step after ``warmup_steps`` of linear warm-up: 1; linear decay to 0 at the
        last step; half a cosine to 0; times ``step_gamma`` every ``step_size`` epochs.
    grad_clip : float or None
        Largest L2 norm of the whole gradient (``torch.nn.utils.clip_grad_norm_``).
    patience : int or None
        Stop after this many epochs without improving ``val_metric`` (needs validation data); the best
        weights are restored at the end whenever validation data is given.
    val_metric : str
        A key of ``sparsexc.metrics.evaluate`` (higher is better), ``"P@1"`` by default.
    tune_metric : str
        Set metric the head's set-prediction parameter is tuned for after training (``"micro-F1"``).
    seed : int
        Seeds the data order and torch (initial weights are seeded by whoever builds the model).
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
    progress : bool
        Report on stderr: one line per epoch (loss, validation metric, seconds, a mark when best so far) and
        how training ended (see :mod:`sparsexc.train.progress`).
    progress_bar : bool
        With ``progress``: also a tqdm bar (loss, examples/s) during each epoch, but only when stderr is a
        terminal or a notebook (a bar's redraws would fill a log file).
    eval_batch_size : int
        Rows per batch when scoring validation data.
    precision : {"float32", "bfloat16"}
        "bfloat16": the forward pass and the loss run under ``torch.autocast(device type, torch.bfloat16)``
        (matrix products in bfloat16; the heads' losses from float32 logits; weights, gradients and optimiser
        state stay float32). "float32" (default): no autocast.

    The estimator's defaults differ from this class's where marked ``estimator_default``: ``epochs`` and
    ``patience`` are None there, chosen from the number of training rows (:func:`sparsexc.train.budget.resolve_budget`:
    at least 20 epochs and 1000 steps, patience at least 5 epochs and 400 steps; 30 and None here, for the
    Trainer used alone); ``optimizer`` and ``lr`` default to None there, the head's choice (see
    :data:`sparsexc.estimator.classifier.DEFAULT_LR`).
    """

    epochs: int = setting(
        30,
        "Most epochs (early stopping may end sooner); the estimator's default is chosen from the data: at least "
        "20 epochs and 1000 steps, and small data refits on all rows (docs/getting-started.md, Training budget).",
        range=POSITIVE_INT,
        estimator_default=None,
        chosen_from_data=True,
    )
    batch_size: int = setting(128, "Mini-batch size (rows per optimiser step).", range=POSITIVE_INT)
    optimizer: str = setting("adam", "Optimiser.", choices=OPTIMIZERS, estimator_default=None)
    lr: float = setting(1e-3, "Learning rate.", range=POSITIVE, estimator_default=None)
    weight_decay: float = setting(
        0.0, "Weight decay (decoupled for adamw, added to the gradient otherwise).", range=NON_NEGATIVE
    )
    momentum: float = setting(0.0, "Momentum (sgd only).", range=NON_NEGATIVE)
    lr_schedule: str = setting("constant", "Learning-rate schedule.", choices=LR_SCHEDULES)
    warmup_steps: int = setting(0, "Steps of linear learning-rate warm-up before the schedule.", range=NON_NEGATIVE)
    step_size: int = setting(10, "Epochs between the 'step' schedule's decays.", range=POSITIVE_INT)
    step_gamma: float = setting(0.1, "Factor of each decay of the 'step' schedule.")
    grad_clip: float | None = setting(None, "Clip the gradient norm to this value.", range=POSITIVE)
    patience: int | None = setting(
        None,
        "Epochs without validation gain before stopping; the estimator's default is chosen from the data: at "
        "least 5 epochs and 400 steps.",
        range=POSITIVE_INT,
        estimator_default=None,
        chosen_from_data=True,
    )
    val_metric: str = setting("P@1", "Validation metric for early stopping, e.g. P@1.")
    tune_metric: str = setting("micro-F1", "Set metric the head's set threshold is tuned for after training.")
    seed: int = setting(
        0, "Random seed (the estimator's random_state).", estimator_name="random_state", cli_flag="seed"
    )
    device: str = setting("auto", "auto, cpu, cuda, cuda:N ...")
    progress: bool = setting(False, "Report each epoch on stderr.", from_estimator="verbose")
    progress_bar: bool = setting(
        True, "With progress: a bar during each epoch on a terminal.", from_estimator="verbose"
    )
    eval_batch_size: int = setting(1024, "Rows per batch when scoring validation data.", range=POSITIVE_INT)
    precision: str = setting(
        "float32", "float32, or bfloat16 autocast for the forward pass and loss.", choices=PRECISIONS
    )

    def validate(self) -> None:
        if not (self.device in ("auto", "cpu", "mps") or self.device.startswith("cuda")):
            raise ConfigurationError(f"TrainParams: device={self.device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


# The model families (FitParams.model). The built-in ones are named here, as _params imports nothing above it;
# sparsexc.estimator._families.register_family adds a new family's name (tests keep the two equal).
MODEL_FAMILIES: list[str] = ["auto", "neural", "ridge", "tree"]


SHORTLISTS: tuple[str, ...] = ("none", "tree")  # FitParams.shortlist


def _model_families() -> tuple[str, ...]:
    """The model families' names (read when asked, so a family registered later is allowed)."""
    return tuple(MODEL_FAMILIES)


@dataclasses.dataclass
class FitParams(Params):
    """The estimator's own settings of ``fit`` (beyond the encoder, head and trainer).

    ``model`` chooses the model family (:mod:`sparsexc.estimator._families`): "auto" (the default: the family
    and its settings chosen from the training data, unless settings of one family are given;
    :mod:`sparsexc.estimator._auto`), "neural" (the encoder + head trained by mini-batches) or "tree" (the
    label-tree linear model, :class:`sparsexc.tree.LabelTreeModel`, configured by the estimator's ``tree_params``).

    ``shortlist="tree"`` (neural family only) trains and scores the head over each row's shortlist: the
    ``shortlist_size`` best labels of a label tree (:class:`sparsexc.tree.LabelTreeModel`, configured by
    ``tree_params``, fitted on the training rows) by path score, plus at training its positives and
    ``shortlist_negatives`` labels drawn uniformly at every step; at prediction the head's logits plus
    ``shortlist_path_weight`` times the tree's log path score (see ``docs/shortlist.md``,
    :class:`sparsexc.models.ShortlistModel`).

    ``preprocess`` is the feature transform fitted on the training rows and saved with the model
    (:mod:`sparsexc._preprocess`).
    """

    model: str = setting(
        "auto",
        "Model family: auto (chosen from the training data and the settings given, see docs/getting-started.md), "
        "neural (encoder + head) or tree (label-tree linear model, settings in tree params).",
        choices=_model_families,
    )

    validation_fraction: float = setting(
        0.1,
        "Share of the training rows held out for validation (early stopping, tuning the set threshold; 0 disables); "
        "at least min(100 rows, a quarter of them) when the neural model is refitted on all rows.",
        range=UNIT_INTERVAL,
    )
    shortlist: str = setting(
        "none",
        "Labels a neural head scores per row: none (all) or tree (a label tree's shortlist; tree params).",
        choices=SHORTLISTS,
    )
    shortlist_size: int = setting(
        100, "Labels in each row's shortlist (shortlist=tree): the tree's best by path score.", range=POSITIVE_INT
    )
    shortlist_negatives: int = setting(
        300,
        "Labels drawn uniformly at every step and added to each training row's candidates (shortlist=tree), so "
        "that labels the tree seldom shortlists still meet negative rows; 0: none. Prediction never uses them.",
        range=NON_NEGATIVE,
    )
    shortlist_path_weight: float | None = setting(
        None,
        "Weight w of the tree's log path score added to the head's logits at prediction (shortlist=tree): "
        "z + w log(path score); None: tuned with the set rule on the validation rows; 0: the head alone.",
        range=NON_NEGATIVE,
    )

    preprocess: str = setting(
        "auto",
        "Feature preprocessing, fitted on the training rows and saved in the model: auto (chosen from X, see "
        "docs/getting-started.md), none, tfidf (smooth idf then unit L2 rows), l2 (unit L2 rows) or standardize "
        "(per-feature mean and std; centred only when X is at least half full).",
        choices=PREPROCESS_CHOICES,
    )


@dataclasses.dataclass
class RunParams(Params):
    """Run plumbing: where one training run writes, how often, and whether it resumes; not model settings.

    They change no weight (a run with checkpoints trains the same model as one without, and a resumed run the
    same as an uninterrupted one), so they are not parameters of the estimator: they are keyword arguments of
    :meth:`sparsexc.estimator.XCClassifier.fit` (scikit-learn's fit parameters) and of
    :class:`sparsexc.train.Trainer` (``resume`` of its ``fit``). A saved model therefore never carries them,
    and a loaded (then cloned, refitted) model never writes into or resumes from the files of the run that made
    it. ``sparsexc train`` takes ``--checkpoint-every`` and ``--resume`` and derives the paths from ``--out``
    (``cli_from``). A path may be given as any ``os.PathLike``; it is kept as a string.
    """

    checkpoint_dir: str | None = setting(None, "Folder of the resumable checkpoint.", cli_from="OUT/checkpoints")
    checkpoint_every: int | None = setting(
        None, "Checkpoint every N steps, and at every epoch end (the CLI: into OUT/checkpoints).", range=POSITIVE_INT
    )
    resume: bool = setting(False, "Continue from the checkpoint in the checkpoint folder (the CLI: OUT/checkpoints).")
    log_path: str | None = setting(None, "JSON-lines file of per-epoch metrics.", cli_from="OUT/train_log.jsonl")

    def __post_init__(self) -> None:
        for name in ("checkpoint_dir", "log_path"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                setattr(self, name, os.fspath(value))
        super().__post_init__()


@dataclasses.dataclass
class PredictParams(Params):
    """Settings of prediction: :meth:`sparsexc.estimator.XCClassifier.predict_topk` (and the other prediction
    methods' batches) and ``sparsexc predict``.

    They change what is asked of a fitted model, not the model, so they are arguments of the prediction
    methods (None takes the default declared here), never estimator parameters. The scores do not depend on
    ``batch_size``; it bounds the memory of one batch (``batch_size x n_labels`` scores). ``beam`` is the
    label-tree model's beam width (``model="tree"``); neural models score every label and ignore it.
    """

    k: int = setting(5, "Labels per row.", range=POSITIVE_INT, cli_flag="top_k", cli_required=True)
    batch_size: int = setting(1024, "Rows scored per batch (memory: rows x labels scores).", range=POSITIVE_INT)
    beam: int = setting(
        10,
        "Beam width of a label-tree model's search (nodes kept per level; wider: slower, misses fewer "
        "labels); ignored by neural models.",
        range=POSITIVE_INT,
    )


# the Params whose fields are parameters of sparsexc.estimator.XCClassifier of the same name (or the field's
# ``estimator_name``); the estimator's other parameters are head, head_params and verbose. RunParams are
# arguments of fit, PredictParams of the prediction methods.
ESTIMATOR_SETTINGS: tuple[type[Params], ...] = (EncoderParams, TrainParams, FitParams)
