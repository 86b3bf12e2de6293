"""Reading back a run folder written by ``sparsexc train`` (its model, its run.json, its training history)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparsexc.cli._files import read_json
from sparsexc.cli._training import MODEL_DIR, RUN_FILE, TRAIN_LOG
from sparsexc.errors import SparsexcError

__all__ = ["RunFolderError", "load_history", "load_model", "load_run", "svmlight_zero_based"]


class RunFolderError(SparsexcError, ValueError):
    """A run folder's file is damaged (not JSON, a field missing or of the wrong type); the message names the
    file and the line or field. A ValueError: the CLI reports it in one line, exit code 2."""


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The run.json of ``run_dir``; a folder without one is an error saying what the folder should be."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {RUN_FILE} here; give the --out folder of 'sparsexc train'")
    run = read_json(path)
    if not isinstance(run, dict) or not isinstance(run.get("data"), dict):
        raise RunFolderError(f"{path}: field 'data' (the data source) is missing; the file is not a sparsexc run file")
    return run


def load_model(run_dir: str | Path) -> Any:
    """The XCClassifier saved in ``run_dir/model`` (or in ``run_dir`` itself when it is a model folder)."""
    from sparsexc.estimator import XCClassifier

    run_dir = Path(run_dir)
    model_dir = run_dir / MODEL_DIR if (run_dir / MODEL_DIR).is_dir() else run_dir
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir}: no saved model (expected {run_dir / MODEL_DIR}/config.json)")
    return XCClassifier.load(model_dir)


def svmlight_zero_based(run_dir: str | Path) -> bool | str:
    """Whether the run's training files (headerless svmlight) had 0-based feature ids, as recorded in its
    run.json; ``"auto"`` when unknown (a model folder alone, or other formats)."""
    path = Path(run_dir) / RUN_FILE
    run = read_json(path) if path.is_file() else {}
    value = run.get("svmlight_zero_based") if isinstance(run, dict) else None
    return value if isinstance(value, bool) else "auto"


def load_history(run_dir: str | Path) -> tuple[list[dict[str, Any]], Path]:
    """The per-epoch records of ``run_dir`` and the file they came from: ``train_log.jsonl`` (one JSON object
    per line), or, when a run has none, the ``history`` in its saved model's ``config.json``.

    Every record must be an object with an integer ``epoch`` >= 1 and a number ``train_loss``; anything else
    is a :class:`RunFolderError` naming the file and line (or list position).
    """
    run_dir = Path(run_dir)
    log = run_dir / TRAIN_LOG
    if log.is_file():
        records = []
        for number, line in enumerate(log.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise RunFolderError(f"{log}: line {number}: not valid JSON: {exc.msg}") from None
        source = log
    else:
        config = run_dir / MODEL_DIR / "config.json"
        if not config.is_file():
            raise FileNotFoundError(f"{run_dir}: no training history ({TRAIN_LOG}, or {MODEL_DIR}/config.json)")
        saved = read_json(config)
        history = saved.get("history") if isinstance(saved, dict) else None
        if not isinstance(history, list):
            raise RunFolderError(f"{config}: field 'history' is missing or not a list")
        if not history:  # a model trained without epochs (model "tree"): nothing to show, not an error
            return [], config
        records, source = [(f"history[{i}]", record) for i, record in enumerate(history)], config
    out = []
    for where, record in records:
        if not isinstance(record, dict):
            raise RunFolderError(f"{source}: {where}: not a JSON object")
        epoch, loss = record.get("epoch"), record.get("train_loss")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise RunFolderError(f"{source}: {where}: field 'epoch' must be an integer >= 1; got {epoch!r}")
        if isinstance(loss, bool) or not isinstance(loss, (int, float)):
            raise RunFolderError(f"{source}: {where}: field 'train_loss' must be a number; got {loss!r}")
        out.append(record)
    if not out:
        raise RunFolderError(f"{source}: holds no epoch")
    return out, source
