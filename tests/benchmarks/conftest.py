"""Shared set-up of the benchmark tests: the benchmark scripts are files, not a package, so they are loaded
by path."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import scipy.sparse as sp

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
# the scripts import their shared module as `_harness`, as `python benchmarks/<name>.py` would find it
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))


def _load(name: str) -> ModuleType:
    """The module ``benchmarks/<name>.py``, imported under the name ``<name>_bench``."""
    spec = importlib.util.spec_from_file_location(f"{name}_bench", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str], ModuleType]:
    """A loader: ``load_benchmark("peers")`` is the module ``benchmarks/peers.py``."""
    return _load


def _toy_run(method: str, seed: int, hits: float) -> dict:
    """One finished run of ``benchmarks/adversarial_sampling.py`` with a single evaluation point."""
    point = {"train_seconds": 60.0, "train_wall_seconds": 60.0, "step": 10, "epochs": 1.0}
    point.update({"P@1": hits, "P@3": 0.1, "P@5": 0.1, "hits@1_first_label": hits})
    point.update({"log_likelihood_first_label": -5.0, "log_likelihood_first_label_se": 0.05})
    return {"method": method, "seed": seed, "lr": 0.01, "prepare_seconds": 1.0, "curve": [point], "final": point}


def _toy_part(hits: dict, **dataset: object) -> dict:
    """A part file of the adversarial-sampling benchmark on a toy set: two seeds of each method of ``hits``
    (method -> its hits@1 and P@1), ``dataset`` entries added to the part's data set record."""
    runs = [_toy_run(m, s, h) for s in (0, 1) for m, h in hits.items()]
    d = {"name": "toy", "n_labels": 100, "n_train": 1000, "labels_per_row": 1.0, "features": "toy", "dim": 3}
    return {
        "date": "2026-12-05T00:00:00Z",
        "environment": {"torch_threads": 1},
        "dataset": {**d, "n_test_eval": 1000, **dataset},
        "load_average_before": [0.0],
        "runs": runs,
    }


@pytest.fixture
def toy_adversarial_part() -> Callable[..., dict]:
    """The builder of a toy adversarial-sampling part file (see :func:`_toy_part`)."""
    return _toy_part


def _stub_run(method: str, budget: float) -> dict:
    """What a stubbed ``train_curve`` of the adversarial-sampling benchmark returns: one fixed evaluation point."""
    point = {"train_seconds": budget, "hits@1_first_label": 0.5, "log_likelihood_first_label": -1.0}
    point.update({"P@1": 0.5, "P@3": 0.4, "P@5": 0.3})
    return {"method": method, "prepare_seconds": 0.0, "curve": [point], "final": point}


@pytest.fixture
def stub_adversarial_run() -> Callable[[str, float], dict]:
    """The result of a stubbed adversarial-sampling training run (see :func:`_stub_run`)."""
    return _stub_run


def _run_args(adv: ModuleType, methods: list[str], **settings: object) -> argparse.Namespace:
    """The arguments of ``run_datasets`` (``--part train`` / ``tuned``) for the toy set: ``methods``, and the
    toy defaults below with ``settings`` replacing them."""
    base: dict[str, object] = {
        "datasets": "toy",
        "seeds": "0",
        "dim": 3,
        "budget": 1.0,
        "softmax_budget": 1.0,
        "batch_size": 2,
        "eval_rows": 4,
        "eval_sample": adv.FIRST_ROWS,
        "eval_fractions": "1",
        "tree_split": "median",
        "tree_reg": 0.1,
        "tree_reg_scaling": "constant",
        "quick": False,
        "protocol": adv.MULTI,
        "plateau": False,
    }
    return argparse.Namespace(**{**base, "methods": ",".join(methods), **settings})


@pytest.fixture
def adversarial_run_args() -> Callable[..., argparse.Namespace]:
    """The builder of ``run_datasets``' arguments for the toy set (see :func:`_run_args`)."""
    return _run_args


def _tune_args(adv: ModuleType, methods: list[str], **settings: object) -> argparse.Namespace:
    """The arguments of the tuning stages (``run_tuning``, ``run_stop_tuning``, ``run_adopt``) for the toy set:
    ``methods``, and the toy defaults below (the rate stage, multi-label) with ``settings`` replacing them."""
    base: dict[str, object] = {
        "datasets": "toy",
        "tune": "lr",
        "dim": 3,
        "budget": 60.0,
        "softmax_budget": 60.0,
        "batch_size": 2,
        "val_rows": 2,
        "val_seed": 0,
        "tune_seed": 0,
        "tune_eval_fractions": "1",
        "tree_split": "median",
        "tree_reg": 0.1,
        "tree_reg_scaling": "constant",
        "protocol": adv.MULTI,
    }
    return argparse.Namespace(**{**base, "methods": ",".join(methods), **settings})


@pytest.fixture
def adversarial_tune_args() -> Callable[..., argparse.Namespace]:
    """The builder of the tuning stages' arguments for the toy set (see :func:`_tune_args`)."""
    return _tune_args


def _page_of_one_part(adv: ModuleType, folder: Path, part: str, data: dict) -> list[str]:
    """The adversarial-sampling page's lines after writing the part ``part`` (its JSON ``data``) into ``folder``
    (the module's results folder) and rendering the report."""
    adv.write_json(folder / f"adversarial_sampling_{part}.json", data)
    adv.write_report()
    return (folder / "adversarial_sampling.md").read_text().splitlines()


@pytest.fixture
def page_of_one_part() -> Callable[..., list[str]]:
    """The page rendered from one written part (see :func:`_page_of_one_part`)."""
    return _page_of_one_part


def _tuning_settings(adv: ModuleType) -> dict:
    """The ``settings`` of a toy tuning file of the adversarial-sampling benchmark (60 s runs, the module's grids and
    rules, lambda untuned)."""
    return {
        "val_seed": 0,
        "seed": 0,
        "budget": 60.0,
        "softmax_budget": 150.0,
        "grids": adv.LR_GRIDS,
        "rule": adv.SELECTION_RULE,
        "untuned": "lambda",
        "setting_grids": adv.SETTING_GRIDS,
        "setting_rule": adv.SETTING_RULE,
    }


@pytest.fixture
def adversarial_tuning_settings() -> Callable[[ModuleType], dict]:
    """The builder of a toy tuning file's settings (see :func:`_tuning_settings`)."""
    return _tuning_settings


def _protocol_toy() -> dict:
    """Six training rows, row i's features all i; row 2 has no label; indices stored unsorted; three test rows."""
    C = 9
    rows = [[7, 3, 5], [1], [], [8, 0], [4, 6, 2], [5]]
    indptr = np.cumsum([0, *map(len, rows)])
    Y = sp.csr_matrix((np.ones(indptr[-1], np.float32), np.concatenate(rows).astype(np.int32), indptr), shape=(6, C))
    X = np.arange(6, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)
    Y_test = sp.csr_matrix(np.eye(3, C, dtype=np.float32) + np.eye(3, C, k=2, dtype=np.float32))
    return {"name": "toy", "X": X, "Y": Y, "X_test": -X[:3], "Y_test": Y_test, "features": "toy features"}


@pytest.fixture
def protocol_toy() -> Callable[[], dict]:
    """The builder of the toy set of the training protocols' tests (see :func:`_protocol_toy`)."""
    return _protocol_toy
