"""Training checkpoints (tensors via ``torch.save``, loaded with ``weights_only=True``), written with
:func:`sparsexc._atomic.atomic_write` (temp file, fsync, rename; the user's umask; a killed write's temporary is
removed by the next write of that file)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from sparsexc._atomic import atomic_write  # re-exported: files get the umask, stale temporaries are removed
from sparsexc.errors import ModelFormatError
from sparsexc.train.optim import SplitOptimizer

__all__ = [
    "CHECKPOINT_FILE",
    "SHARD_DIR",
    "STATE_FILE",
    "atomic_write",
    "has_label_shards",
    "load_checkpoint",
    "load_label_shards",
    "prune_label_shards",
    "save_checkpoint",
    "save_label_shards",
]

CHECKPOINT_FILE = "checkpoint.pt"
STATE_FILE = "checkpoint.json"  # human-readable mirror of the state stored inside checkpoint.pt
CHECKPOINT_FORMAT = 1


def save_checkpoint(directory: str | os.PathLike[str], tensors: dict[str, Any], state: dict[str, Any]) -> None:
    """Write ``checkpoint.pt`` (tensors + the JSON state as a string) atomically, then its JSON mirror.

    The state lives inside the tensor file so the two can never disagree after a kill; ``checkpoint.json``
    is only for people and tools that want to look without torch.
    """
    state = {"format": CHECKPOINT_FORMAT, **state}
    text = json.dumps(state, sort_keys=True)
    payload = {**tensors, "state_json": text}
    atomic_write(Path(directory) / CHECKPOINT_FILE, lambda fh: torch.save(payload, fh))
    atomic_write(Path(directory) / STATE_FILE, lambda fh: fh.write(text.encode("utf-8")))


def load_checkpoint(directory: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Return ``(tensors, state)`` of the checkpoint in ``directory``, or None when there is none."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        state = json.loads(payload.pop("state_json"))
    except Exception as exc:  # a truncated or foreign file: say which and why
        raise ModelFormatError(f"{path}: not a readable sparsexc checkpoint ({exc})") from exc
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ModelFormatError(
            f"{path}: checkpoint format {state.get('format')!r}; this version reads {CHECKPOINT_FORMAT}"
        )
    return payload, state


# -- label-sharded models: one file per shard, an index in the state ----------------------------------------
SHARD_DIR = "label_shards"


def _sharded_param_ranges(model: torch.nn.Module) -> dict[str, tuple[int, int, int]]:
    # state-dict name -> (start, stop, n_labels) of every tensor held by a ShardedOutputLayer
    from sparsexc.distributed.sharded import sharded_layers

    return {
        prefix + name: (layer.start, layer.stop, layer.n_labels)
        for prefix, layer in sharded_layers(model).items()
        for name in ("weight", "bias")
        if getattr(layer, name) is not None
    }


def _optimizer_parts(
    optimizer_state: dict[str, Any], optimizer: torch.optim.Optimizer
) -> tuple[dict[str, Any], list[tuple[dict[str, Any], torch.optim.Optimizer]]]:
    """A copy of ``optimizer_state`` whose per-parameter ``state`` dicts may be edited, and its plain torch
    optimisers with their state dicts: itself, or the children of a
    :class:`sparsexc.train.optim.SplitOptimizer` (state ``{"optimizers": [...]}``)."""
    if "optimizers" in optimizer_state:
        if not isinstance(optimizer, SplitOptimizer):
            raise ModelFormatError(
                f"the optimiser state is a SplitOptimizer's (key 'optimizers'); the optimizer is a {type(optimizer).__name__}"
            )
        children = [{**child, "state": dict(child["state"])} for child in optimizer_state["optimizers"]]
        return {**optimizer_state, "optimizers": children}, list(zip(children, optimizer.optimizers))
    copy = {**optimizer_state, "state": dict(optimizer_state["state"])}
    return copy, [(copy, optimizer)]


def _optimizer_names(
    model: torch.nn.Module, optimizer_state: dict[str, Any], optimizer: torch.optim.Optimizer
) -> dict[str, int]:
    # parameter name -> its integer key in optimizer.state_dict()["state"] (of a plain torch optimiser)
    if "param_groups" not in optimizer_state:
        raise ValueError(f"label-sharded checkpoints need a plain torch optimiser; got {type(optimizer).__name__}")
    by_id = {id(p): name for name, p in model.named_parameters()}
    names = {}
    for group, packed in zip(optimizer.param_groups, optimizer_state["param_groups"]):
        for p, key in zip(group["params"], packed["params"]):
            names[by_id[id(p)]] = key
    return names


def has_label_shards(model: torch.nn.Module) -> bool:
    """Whether ``model`` holds :class:`sparsexc.distributed.ShardedOutputLayer` s (even a one-shard one):
    its checkpoints then keep those tensors in per-shard files (:func:`save_label_shards`)."""
    return bool(_sharded_param_ranges(model))


def save_label_shards(
    directory: str | os.PathLike[str],
    tensors: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Move the label-sharded tensors out of a checkpoint's ``tensors`` into this rank's shard file.

    A collective (every rank calls it). Rank r of S writes ``label_shards/step-<step>/shard-<r>-of-<S>.pt``
    (atomically) holding, for the labels ``[start, stop)`` it owns, the rows of every sharded weight in
    ``model``, ``best_model`` and the optimiser state; then all ranks wait for each other. Returns the
    remaining (replicated) tensors, for rank 0's ``checkpoint.pt``, and the index to store in its state.
    Nothing is ever gathered on one rank. The shard files of a step are complete before ``checkpoint.pt``
    names them, and the folders of older steps are removed by :func:`prune_label_shards` after it is
    written, so a kill at any moment leaves a consistent checkpoint.
    """
    from sparsexc.distributed.context import all_gather_objects, rank, world_size

    ranges = _sharded_param_ranges(model)
    tensors = dict(tensors)
    mine: dict[str, Any] = {"model": {}, "optimizer": {}}
    tensors["model"] = {k: v for k, v in tensors["model"].items() if k not in ranges}
    mine["model"] = {k: v.detach().cpu() for k, v in model.state_dict().items() if k in ranges}
    if tensors.get("best_model") is not None:
        mine["best_model"] = {k: v for k, v in tensors["best_model"].items() if k in ranges}
        tensors["best_model"] = {k: v for k, v in tensors["best_model"].items() if k not in ranges}
    opt, parts = _optimizer_parts(tensors["optimizer"], optimizer)
    for part, part_optimizer in parts:
        for name, key in _optimizer_names(model, part, part_optimizer).items():
            if name in ranges and key in part["state"]:
                mine["optimizer"][name] = part["state"].pop(key)
    tensors["optimizer"] = opt
    S, r = world_size(), rank()
    folder = f"{SHARD_DIR}/step-{int(step):09d}"
    name = f"shard-{r}-of-{S}.pt"
    atomic_write(Path(directory) / folder / name, lambda fh: torch.save(mine, fh))
    all_gather_objects(None)  # the barrier: every shard file is written
    # shard i of a tensor over C labels holds rows shard_bounds(C, S, i)
    index = {
        "folder": folder,
        "n_shards": S,
        "files": [f"shard-{i}-of-{S}.pt" for i in range(S)],
        "n_labels": {k: v[2] for k, v in ranges.items()},
        "best_model": "best_model" in mine,
    }
    return tensors, index


def prune_label_shards(directory: str | os.PathLike[str], index: dict[str, Any]) -> None:
    """Remove the shard folders of older checkpoints (rank 0, after ``checkpoint.pt`` names ``index``)."""
    import shutil

    root = Path(directory) / SHARD_DIR
    keep = Path(directory) / index["folder"]
    for folder in root.glob("step-*"):
        if folder != keep:
            shutil.rmtree(folder, ignore_errors=True)


def _pick(*keys: str) -> Callable[[dict[str, Any]], torch.Tensor]:
    # the tensor at ``file[keys[0]][keys[1]]...`` of a shard file (bound now, not when the loop moves on)
    def get(file: dict[str, Any]) -> torch.Tensor:
        value: Any = file
        for key in keys:
            value = value[key]
        return value

    return get


def load_label_shards(
    directory: str | os.PathLike[str],
    tensors: dict[str, Any],
    index: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
) -> dict[str, Any]:
    """Put back into ``tensors`` (from :func:`load_checkpoint`) the rows of the sharded tensors that this
    rank's ``model`` holds, re-sharding from the files of any number of ranks.

    Each sharded tensor's rows ``[start, stop)`` (this rank's layer; all rows when ``model`` does not
    shard that tensor) are cut from the overlapping shard files (memory-mapped, so only those rows are
    read); optimiser state tensors with rows are cut the same way, scalars (Adam's ``step``) are copied.
    """
    from sparsexc.distributed.context import shard_bounds

    current = _sharded_param_ranges(model)
    files: dict[int, dict[str, Any]] = {}

    def shard(i: int) -> dict[str, Any]:
        if i not in files:
            path = Path(directory) / index["folder"] / index["files"][i]
            try:
                files[i] = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except Exception as exc:
                raise ModelFormatError(f"{path}: missing or unreadable label shard of the checkpoint ({exc})") from exc
        return files[i]

    def rows(get: Callable[[dict[str, Any]], torch.Tensor], n_labels: int, start: int, stop: int) -> torch.Tensor:
        parts = []
        for i in range(index["n_shards"]):
            a, b = shard_bounds(n_labels, index["n_shards"], i)
            lo, hi = max(start, a), min(stop, b)
            if lo < hi:
                value = get(shard(i))
                if value.dim() == 0:  # a scalar (Adam's step): the same in every shard
                    return value.clone()
                parts.append(value[lo - a : hi - a].clone())
        if not parts:  # this rank holds no label (C < S): an empty slice shaped like the stored tensor
            value = get(shard(0))
            return value.clone() if value.dim() == 0 else value[:0].clone()
        return torch.cat(parts)

    tensors = dict(tensors)
    tensors["model"] = dict(tensors["model"])
    opt, parts = _optimizer_parts(tensors["optimizer"], optimizer)
    keys = {
        name: (part, key)
        for part, part_optimizer in parts
        for name, key in _optimizer_names(model, part, part_optimizer).items()
    }
    if index.get("best_model"):
        tensors["best_model"] = dict(tensors["best_model"])
    for name, n_labels in index["n_labels"].items():
        start, stop = current.get(name, (0, n_labels, n_labels))[:2]
        tensors["model"][name] = rows(_pick("model", name), n_labels, start, stop)
        if index.get("best_model"):
            tensors["best_model"][name] = rows(_pick("best_model", name), n_labels, start, stop)
        first = shard(0)["optimizer"].get(name)
        if first is not None and name in keys:
            part, key = keys[name]
            part["state"][key] = {
                k: (
                    rows(_pick("optimizer", name, k), n_labels, start, stop)
                    if isinstance(v, torch.Tensor) and v.dim() > 0
                    else v
                )
                for k, v in first.items()
            }
    tensors["optimizer"] = opt
    return tensors
