"""Checks of a saved XCClassifier's ``config.json``, field by field and against the weights' header, before
any model is built with the sizes it names (see :meth:`sparsexc.estimator.XCClassifier.load`)."""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from sparsexc._params import EncoderParams, RunParams
from sparsexc._preprocess import FeaturePreprocessor, check_saved, from_saved
from sparsexc.errors import ConfigurationError
from sparsexc.estimator._families import ModelChoice, get_family
from sparsexc.estimator.serialization import ModelFiles, ModelFormatError, TensorInfo
from sparsexc.train.budget import TrainingBudget

if TYPE_CHECKING:
    import torch
    from sklearn.base import BaseEstimator

# torch, the heads and the network are imported by the checks of a neural model's files only: a label-tree
# model's folder is checked and loaded without torch

__all__ = [
    "DEVICES",
    "MAX_SIZE",
    "PREPROCESS_PREFIX",
    "LoadPlan",
    "check_classifier_files",
    "check_device",
    "check_neural_model",
    "load_device",
    "loaded_preprocessor",
    "preprocess_arrays",
]

MAX_SIZE = 2**31 - 1  # largest n_features, n_labels, layer width a config may name
DEVICES = "'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'"
_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:\d{1,4})?)\Z")
# the weights file's tensors of the feature preprocessing (sparsexc._preprocess): "preprocess.idf", ...
PREPROCESS_PREFIX = "preprocess."


@dataclasses.dataclass
class LoadPlan:
    """What :func:`check_classifier_files` validated: the estimator (settings only) and the model to build."""

    estimator: Any
    model_config: dict[str, Any]
    n_features: int
    n_labels: int
    history: list[dict[str, Any]]
    best_epoch: int | None
    tuned: dict[str, Any]
    classes: list[Any] | None = None  # label names; None: label ids 0..n_labels-1
    multilabel: bool = True  # False: fitted on a 1-D vector of classes
    preprocess: dict[str, Any] | None = None  # the saved preprocessing; None: saved before it existed ("none")
    choice: ModelChoice | None = None  # the family the model is, and why (model="auto": the saved choice)
    budget: TrainingBudget | None = None  # the training budget (sparsexc.train.budget); None: tree, or older


def check_device(value: Any, what: str) -> str:
    """``value`` if it names a device sparsexc runs on; a ValueError naming ``what`` and the choices otherwise."""
    if not isinstance(value, str) or not _DEVICE.match(value):
        raise ConfigurationError(f"{what}={value!r} is not a device; use {DEVICES}")
    return value


def _available(device: torch.device) -> bool:
    import torch

    if device.type == "cuda":
        return torch.cuda.is_available() and (device.index is None or device.index < torch.cuda.device_count())
    if device.type == "mps":
        return bool(torch.backends.mps.is_available())
    return device.type == "cpu"


def load_device(requested: Any, saved: str) -> torch.device:
    """The device a loaded model goes to: ``requested`` (which must exist here), else the ``saved`` setting
    when it exists here, else the CPU."""
    import torch

    from sparsexc.train.trainer import resolve_device

    if requested is not None:
        device = resolve_device(check_device(requested, "device"))
        if not _available(device):
            raise ConfigurationError(f"device={requested!r} is not available on this machine; use 'cpu' or 'auto'")
        return device
    try:
        device = resolve_device(saved)
    except (ValueError, RuntimeError):
        return torch.device("cpu")
    return device if _available(device) else torch.device("cpu")


# -- field checks -------------------------------------------------------------------------------------------
class _Fields:
    """Field readers that raise :class:`ModelFormatError` naming the config file and the field's path."""

    def __init__(self, where: Any) -> None:
        self.where = where

    def error(self, field: str, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.where}: field {field!r} {message}")

    def mapping(self, value: Any, field: str, none_ok: bool = False) -> dict[str, Any]:
        if value is None and none_ok:
            return {}
        if not isinstance(value, dict):
            raise self.error(field, f"must be an object; got {_short(value)}")
        return value

    def get(self, d: dict[str, Any], key: str, field: str) -> Any:
        if key not in d:
            raise self.error(field, "is missing")
        return d[key]

    def size(self, value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIZE:
            raise self.error(field, f"must be an integer in 1..{MAX_SIZE}; got {_short(value)}")
        return value

    def finite(self, value: Any, field: str) -> None:
        """Every number inside ``value`` (nested objects and lists) must be finite."""
        stack = [(value, field)]
        while stack:
            item, name = stack.pop()
            if isinstance(item, float) and not math.isfinite(item):
                raise self.error(name, f"is {item!r}; a finite number is needed")
            if isinstance(item, dict):
                stack.extend((v, f"{name}.{k}") for k, v in item.items())
            elif isinstance(item, list):
                stack.extend((v, f"{name}[{i}]") for i, v in enumerate(item))

    def numbers(self, value: Any, field: str) -> dict[str, float]:
        """An object of finite numbers (tuned values)."""
        value = self.mapping(value, field, none_ok=True)
        for key, v in value.items():
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise self.error(f"{field}.{key}", f"must be a finite number; got {_short(v)}")
        return value


def _classes(config: dict[str, Any], n_labels: int, f: _Fields) -> tuple[list[Any] | None, bool]:
    """The saved label names (absent or null in folders saved without names: label ids) and ``multilabel``."""
    multilabel = config.get("multilabel", True)
    if not isinstance(multilabel, bool):
        raise f.error("multilabel", f"must be true or false; got {_short(multilabel)}")
    classes = config.get("classes")
    if classes is None:
        if not multilabel:
            raise f.error(
                "classes", "is missing; a model fitted on a 1-D vector of classes (multilabel false) saves them"
            )
        return None, multilabel
    if not isinstance(classes, list):
        raise f.error("classes", f"must be a list of label names or null; got {_short(classes)}")
    if len(classes) != n_labels:
        raise f.error("classes", f"holds {len(classes)} label names but n_labels is {n_labels}")
    seen: dict[Any, int] = {}
    for i, name in enumerate(classes):
        if not isinstance(name, (str, int, float)) or (isinstance(name, float) and not math.isfinite(name)):
            raise f.error(f"classes[{i}]", f"must be a string, a number or a boolean; got {_short(name)}")
        j = seen.setdefault(name, i)  # as in fit, names that compare equal (1 and 1.0) are one label
        if j != i:
            raise f.error(
                f"classes[{i}]",
                f"repeats {_short(name)} (classes[{j}] is {_short(classes[j])}); label names are distinct",
            )
    return classes, multilabel


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _estimator(cls: type[BaseEstimator], config: dict[str, Any], f: _Fields) -> Any:
    params = dict(f.mapping(f.get(config, "params", "params"), "params"))
    for key in RunParams.field_names():  # folders saved while the run plumbing was a parameter (now fit's)
        params.pop(key, None)
    params.setdefault("model", "neural")  # saved before the model families: the neural model, then the only one
    if "preprocess" not in config:  # saved before preprocessing existed: the model was trained on X as given
        params.setdefault("preprocess", "none")
    if params.get("shortlist") == "tree":  # saved before the uniform negatives existed: trained with none
        params.setdefault("shortlist_negatives", 0)
        params.setdefault("shortlist_path_weight", 0.0)  # saved before the path weight: the head alone
    allowed = cls._get_param_names()
    unknown = [k for k in params if k not in allowed]
    if unknown:
        raise f.error(f"params.{unknown[0]}", f"is not a setting of {cls.__name__}; allowed: {', '.join(allowed)}")
    f.finite(params, "params")
    if "device" in params:
        try:
            check_device(params["device"], "device")
        except ValueError as exc:
            raise f.error("params.device", f"is not usable: {exc}") from None
    if isinstance(params.get("hidden_sizes"), list):
        params["hidden_sizes"] = tuple(params["hidden_sizes"])
    est = cls(**params)
    try:
        est._check_settings()
    except (ValueError, TypeError) as exc:
        raise f.error("params", f"holds an invalid setting: {exc}") from None
    for i, h in enumerate(est.hidden_sizes):
        f.size(h, f"params.hidden_sizes[{i}]")
    return est


def _model_config(config: dict[str, Any], f: _Fields) -> tuple[dict[str, Any], str, tuple[int, ...]]:
    model = f.mapping(f.get(config, "model", "model"), "model")
    encoder = f.mapping(f.get(model, "encoder", "model.encoder"), "model.encoder")
    head = f.mapping(f.get(model, "head", "model.head"), "model.head")
    n_features = f.size(f.get(encoder, "n_features", "model.encoder.n_features"), "model.encoder.n_features")
    encoder_params = f.mapping(f.get(encoder, "params", "model.encoder.params"), "model.encoder.params")
    f.finite(encoder_params, "model.encoder.params")
    try:
        sizes = EncoderParams.from_dict(encoder_params).hidden_sizes
    except ValueError as exc:
        raise f.error("model.encoder.params", f"is invalid: {exc}") from None
    for i, h in enumerate(sizes):
        f.size(h, f"model.encoder.params.hidden_sizes[{i}]")
    from sparsexc.heads import get_head

    name = f.get(head, "name", "model.head.name")
    try:
        head_cls = get_head(name)
    except KeyError as exc:
        raise f.error("model.head.name", f"names no head: {exc.args[0]}") from None
    for key in ("in_dim", "n_labels"):
        f.size(f.get(head, key, f"model.head.{key}"), f"model.head.{key}")
    head_params = f.mapping(head.get("params"), "model.head.params", none_ok=True)
    f.finite(head_params, "model.head.params")
    try:
        head_cls.Params.from_dict(head_params)
    except ValueError as exc:
        raise f.error("model.head.params", f"is invalid for head {name!r}: {exc}") from None
    f.numbers(head.get("tuned"), "model.head.tuned")
    unknown = (
        sorted(set(model) - {"encoder", "head"})
        or sorted(set(encoder) - {"n_features", "params"})
        or sorted(set(head) - {"name", "in_dim", "n_labels", "params", "tuned"})
    )
    if unknown:
        raise f.error("model", f"holds the unknown key {unknown[0]!r}")
    return model, name, sizes + (n_features,)


def _check_consistent(plan: LoadPlan, head: str, sizes: tuple[int, ...], f: _Fields) -> None:
    model = plan.model_config
    checks = [
        ("n_features", plan.n_features, "model.encoder.n_features", model["encoder"]["n_features"]),
        ("n_labels", plan.n_labels, "model.head.n_labels", model["head"]["n_labels"]),
        ("params.head", plan.estimator.head, "model.head.name", head),
        (
            "params.hidden_sizes",
            list(plan.estimator.hidden_sizes),
            "model.encoder.params.hidden_sizes",
            list(sizes[:-1]),
        ),
    ]
    for field, value, other, expected in checks:
        if value != expected:
            raise f.error(field, f"is {_short(value)} but {other} is {_short(expected)}")


def _check_header(
    model_config: dict[str, Any], header: dict[str, TensorInfo], files: ModelFiles, sizes: tuple[int, ...], f: _Fields
) -> None:
    """Compare the tensors the config implies with the weights' header, building the model on the meta
    device (no memory); sizes larger than the file's number of values are refused before that."""
    import torch

    from sparsexc.models import XCModel

    budget = sum(info.numel for info in header.values())
    named = [
        ("model.encoder.n_features", sizes[-1]),
        ("model.head.n_labels", model_config["head"]["n_labels"]),
        ("model.head.in_dim", model_config["head"]["in_dim"]),
    ]
    named += [(f"model.encoder.params.hidden_sizes[{i}]", h) for i, h in enumerate(sizes[:-1])]
    for field, value in named:
        if value > budget:
            raise f.error(field, f"is {value}, but {files.weights_path.name} holds only {budget} values in all")
    try:
        with torch.device("meta"):
            expected = {k: (v.dtype, tuple(v.shape)) for k, v in XCModel.from_config(model_config).state_dict().items()}
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise f.error("model", f"describes no valid model: {exc}") from None
    where = files.weights_path
    missing, extra = sorted(set(expected) - set(header)), sorted(set(header) - set(expected))
    if missing:
        raise ModelFormatError(
            f"{where}: tensor {missing[0]!r} is missing (the model of {files.config_path.name} "
            f"has {len(expected)} tensors)"
        )
    if extra:
        raise ModelFormatError(
            f"{where}: unexpected tensor {extra[0]!r} (not part of the model of {files.config_path.name})"
        )
    for name, (dtype, shape) in expected.items():
        info = header[name]
        if info.shape != shape:
            raise ModelFormatError(
                f"{where}: tensor {name!r} has shape {list(info.shape)}, but the model of "
                f"{files.config_path.name} needs {list(shape)}"
            )
        if info.dtype != dtype:
            raise ModelFormatError(f"{where}: tensor {name!r} is {info.dtype}, the model needs {dtype}")


def check_classifier_files(cls: type, files: ModelFiles) -> LoadPlan:
    """Validate every field of a saved XCClassifier config and its agreement with the weights' header.

    Nothing with the config's sizes is allocated: the expected tensors come from a model built on the
    ``meta`` device, after every size has been checked against the number of values in the file.

    Raises
    ------
    ModelFormatError
        Naming the file and the field (``params.lr``, ``model.head.n_labels``, ...) or the tensor.
    """
    config, f = files.config, _Fields(files.config_path)
    if f.get(config, "estimator", "estimator") != cls.__name__:
        raise f.error("estimator", f"is {_short(config['estimator'])}; this folder holds no {cls.__name__}")
    history = config.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise f.error("history", "must be a list of objects (one per epoch)")
    best = config.get("best_epoch")
    if best is not None and (isinstance(best, bool) or not isinstance(best, int) or best < 0):
        raise f.error("best_epoch", f"must be an integer >= 0 or null; got {_short(best)}")
    tuned = f.numbers(config.get("tuned", {}), "tuned")
    estimator = _estimator(cls, config, f)
    family = config.get("family", "neural")  # absent in folders saved before the model families
    requested = get_family(estimator.model)
    choice = ModelChoice(family, {}, "given") if family == requested.name else None
    choice = choice or requested.saved_choice(estimator, config, family, f)
    if choice is None:
        raise f.error("family", f"is {_short(family)} but params.model is {_short(estimator.model)}")
    plan = LoadPlan(
        estimator,
        {},
        f.size(f.get(config, "n_features", "n_features"), "n_features"),
        f.size(f.get(config, "n_labels", "n_labels"), "n_labels"),
        history,
        best,
        tuned,
    )
    plan.classes, plan.multilabel = _classes(config, plan.n_labels, f)
    plan.preprocess = _check_preprocess(config, files, plan, f)
    if config.get("budget") is not None:  # absent in folders saved before the budget rules
        try:
            plan.budget = TrainingBudget.from_dict(config["budget"])
        except ValueError as exc:
            raise f.error("budget", str(exc)) from None
    plan.choice = choice
    # the chosen family checks its part as fitted: with the settings the choice applied
    fitted_plan = dataclasses.replace(plan, estimator=choice.applied_to(estimator))
    plan.model_config = get_family(choice.family).check_files(fitted_plan, config, files, f)
    return plan


def check_neural_model(plan: LoadPlan, config: dict[str, Any], files: ModelFiles, f: _Fields) -> dict[str, Any]:
    """The neural family's part of :func:`check_classifier_files`: the config's ``"model"`` (encoder + head)
    and its agreement with ``plan`` and the weights' header; returns the checked model config."""
    model_config, head, sizes = _model_config(config, f)
    plan.model_config = model_config
    _check_consistent(plan, head, sizes, f)
    _check_header(model_config, files.header, files, sizes, f)
    return model_config


# -- the feature preprocessing ------------------------------------------------------------------------------
def _check_preprocess(config: dict[str, Any], files: ModelFiles, plan: LoadPlan, f: _Fields) -> dict[str, Any] | None:
    """Check the config's ``"preprocess"`` (absent in folders saved before it existed) against the estimator's
    ``preprocess`` setting and its ``preprocess.*`` tensors in the weights' header (float32 vectors of
    ``n_features``); those tensors are then taken out of ``files.header``, which the model family checks."""
    saved = config.get("preprocess")
    names = check_saved(saved)
    if isinstance(names, str):
        raise f.error("preprocess", names)
    if saved is not None:
        setting = plan.estimator.preprocess
        if saved["requested"] != setting:
            raise f.error(
                "preprocess.requested", f"is {_short(saved['requested'])} but params.preprocess is {_short(setting)}"
            )
        if setting != "auto" and saved["transform"] != setting:
            raise f.error(
                "preprocess.transform", f"is {_short(saved['transform'])} but params.preprocess is {_short(setting)}"
            )
    ours = {name: info for name, info in files.header.items() if name.startswith(PREPROCESS_PREFIX)}
    expected = {PREPROCESS_PREFIX + name for name in names}
    where = files.weights_path
    for name in sorted(expected - set(ours)):
        raise ModelFormatError(f"{where}: tensor {name!r} is missing (the preprocessing of {files.config_path.name})")
    for name in sorted(set(ours) - expected):
        raise ModelFormatError(
            f"{where}: unexpected tensor {name!r} (not part of the preprocessing of {files.config_path.name})"
        )
    for name, info in ours.items():
        if info.dtype_name != "float32" or info.shape != (plan.n_features,):
            raise ModelFormatError(
                f"{where}: tensor {name!r} is {info.dtype_name} {list(info.shape)}; the preprocessing needs float32 "
                f"[{plan.n_features}] (n_features)"
            )
    files.header = {name: info for name, info in files.header.items() if name not in ours}
    return saved


def preprocess_arrays(preprocessor: FeaturePreprocessor) -> dict[str, tuple[np.ndarray, np.dtype]]:
    """The fitted vectors of ``preprocessor`` as the weights file's ``preprocess.*`` entries (float32)."""
    return {
        PREPROCESS_PREFIX + name: (np.ascontiguousarray(a, dtype=np.float32), np.dtype(np.float32))
        for name, a in preprocessor.arrays.items()
    }


def loaded_preprocessor(plan: LoadPlan, weights: dict[str, np.ndarray], where: Any) -> FeaturePreprocessor:
    """The saved preprocessing from the checked ``plan`` and the loaded ``weights``, whose ``preprocess.*``
    entries are removed from ``weights`` (the rest are the model's)."""
    arrays = {
        name[len(PREPROCESS_PREFIX) :]: weights.pop(name)
        for name in [n for n in weights if n.startswith(PREPROCESS_PREFIX)]
    }
    try:
        return from_saved(plan.preprocess, arrays, plan.n_features)
    except ValueError as exc:
        raise ModelFormatError(f"{where}: the preprocessing's tensors are invalid: {exc}") from None
