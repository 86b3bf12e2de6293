"""Typed parameter dataclasses that round-trip to JSON (in the style of PECOS' parameter classes).

Every configurable piece of sparsexc (encoder, trainer, each head) takes one frozen-in-spirit dataclass
derived from :class:`Params`. ``from_dict`` is the single place where user-supplied settings (estimator
``head_params``, CLI config files, saved ``config.json``) are validated: unknown keys and wrong types raise a
``ValueError`` that names the key and lists the allowed ones, and per-class ``validate`` checks values.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import types
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

from sparsexc.errors import ConfigurationError

__all__ = ["ACTIVATIONS", "LR_SCHEDULES", "OPTIMIZERS", "PRECISIONS", "EncoderParams", "Params", "TrainParams"]

P = TypeVar("P", bound="Params")

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "adagrad", "sgd")
LR_SCHEDULES: tuple[str, ...] = ("constant", "linear", "cosine", "step")
ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "tanh", "sigmoid", "elu", "leaky_relu")
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16")  # TrainParams.precision: autocast dtype of forward + loss


def _check_choice(owner: str, name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigurationError(
            f"{owner}: {name}={value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}"
        )


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


@dataclasses.dataclass
class Params:
    """Base class: a dataclass whose fields are plain JSON types (numbers, strings, tuples, None).

    Subclasses override :meth:`validate` to check values (choices, ranges); it runs after every construction.
    """

    _owner: ClassVar[str] = "Params"

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            setattr(self, field.name, _coerce(type(self).__name__, field.name, hints[field.name], value))
        self.validate()

    def validate(self) -> None:
        """Check the values; raise ``ValueError`` naming the field and its allowed values."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-able dict (tuples become lists)."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls: type[P], d: dict[str, Any] | None) -> P:
        """Build from a mapping; missing keys take their defaults.

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
        allowed = cls.field_names()
        unknown = [k for k in d if k not in allowed]
        if unknown:
            raise ConfigurationError(
                f"{cls.__name__}: unknown key {unknown[0]!r}; allowed keys are: "
                + (", ".join(allowed) if allowed else "(none)")
            )
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls: type[P], text: str) -> P:
        return cls.from_dict(json.loads(text))

    def replace(self: P, **changes: Any) -> P:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


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
    """

    hidden_sizes: tuple[int, ...] = ()
    activation: str = "relu"
    dropout: float = 0.0
    sparse_gradients: bool = False

    def validate(self) -> None:
        for i, h in enumerate(self.hidden_sizes):
            if h < 1:
                raise ConfigurationError(f"EncoderParams: hidden_sizes[{i}]={h} must be a positive integer")
        _check_choice("EncoderParams", "activation", self.activation, ACTIVATIONS)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigurationError(f"EncoderParams: dropout={self.dropout} must lie in [0, 1)")


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
    checkpoint_every : int or None
        Steps between checkpoints (one is also written at every epoch end when a checkpoint folder is set).
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
    log_path : str or None
        JSON-lines file, one line of metrics per epoch.
    eval_batch_size : int
        Rows per batch when scoring validation data.
    precision : {"float32", "bfloat16"}
        "bfloat16": the forward pass and the loss run under ``torch.autocast(device type, torch.bfloat16)``
        (matrix products in bfloat16; the heads' losses from float32 logits; weights, gradients and optimiser
        state stay float32). "float32" (default): no autocast.
    """

    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    step_size: int = 10
    step_gamma: float = 0.1
    grad_clip: float | None = None
    patience: int | None = None
    val_metric: str = "P@1"
    tune_metric: str = "micro-F1"
    checkpoint_every: int | None = None
    seed: int = 0
    device: str = "auto"
    progress: bool = False
    progress_bar: bool = True
    log_path: str | None = None
    eval_batch_size: int = 1024
    precision: str = "float32"

    def validate(self) -> None:
        owner = "TrainParams"
        _check_choice(owner, "precision", self.precision, PRECISIONS)
        for name in ("epochs", "batch_size", "eval_batch_size", "step_size"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{owner}: {name}={getattr(self, name)} must be a positive integer")
        _check_choice(owner, "optimizer", self.optimizer, OPTIMIZERS)
        _check_choice(owner, "lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if not self.lr > 0:
            raise ConfigurationError(f"{owner}: lr={self.lr} must be positive")
        if self.weight_decay < 0 or self.momentum < 0 or self.warmup_steps < 0:
            raise ConfigurationError(f"{owner}: weight_decay, momentum and warmup_steps must be >= 0")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigurationError(f"{owner}: grad_clip={self.grad_clip} must be positive or None")
        if self.patience is not None and self.patience < 1:
            raise ConfigurationError(f"{owner}: patience={self.patience} must be a positive integer or None")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise ConfigurationError(
                f"{owner}: checkpoint_every={self.checkpoint_every} must be a positive integer or None"
            )
        if not (self.device in ("auto", "cpu", "mps") or self.device.startswith("cuda")):
            raise ConfigurationError(f"{owner}: device={self.device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
