"""Reading back a run folder written by ``sparsexc train`` (its model and its run.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparsexc.cli._files import read_json
from sparsexc.cli._training import MODEL_DIR, RUN_FILE

__all__ = ["load_model", "load_run", "svmlight_zero_based"]


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The run.json of ``run_dir``; a folder without one is an error saying what the folder should be."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {RUN_FILE} here; give the --out folder of 'sparsexc train'")
    run = read_json(path)
    if not isinstance(run, dict) or not isinstance(run.get("data"), dict):
        raise ValueError(f"{path}: field 'data' (the data source) is missing; the file is not a sparsexc run file")
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
