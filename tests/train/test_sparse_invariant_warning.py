"""Training with sparse gradients gives no "Sparse invariant checks are implicitly disabled ... SEGFAULT" warning
(issue 17): torch's Adagrad builds sparse tensors from a gradient's own indices without saying whether to check
them, and torch warned once per process on every negative-sampling run. Each case runs in a fresh process, as
the warning is given once per process; the caller's own choice of checks is kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from sparsexc._params import TrainParams
from sparsexc.train.optim import build_optimizer

_FIT = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np, scipy.sparse as sp, torch
    from sparsexc.estimator import XCClassifier

    rng = np.random.default_rng(0)
    X = sp.random(60, 20, density=0.2, format="csr", random_state=0, dtype=np.float32)
    Y = sp.csr_matrix((np.ones(60, dtype=np.float32), rng.integers(0, 6, 60), np.arange(61)), shape=(60, 6))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        XCClassifier(epochs=1, hidden_sizes=(), verbose=0, **json.loads(sys.argv[1])).fit(X, Y)
    print(json.dumps({"warnings": [str(w.message) for w in caught],
                      "checks": torch.sparse.check_sparse_tensor_invariants.is_enabled()}))
""")


def _fit_in_a_fresh_process(settings: dict) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _FIT, json.dumps(settings)],
        capture_output=True,
        check=False,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    "settings",
    [
        {"head": "negative-sampling"},  # Adagrad on sampled (sparse) gradients
        # the SplitOptimizer's Adagrad (sparse rows, with the lazy weight decay)
        {"head": "sigmoid", "sparse_gradients": True, "optimizer": "adagrad", "weight_decay": 0.01},
    ],
)
def test_sparse_gradient_training_gives_no_invariant_warning(settings):
    outcome = _fit_in_a_fresh_process(settings)
    assert not [w for w in outcome["warnings"] if "Sparse invariant" in w], outcome["warnings"]
    assert outcome["checks"] is False  # torch's default, unchanged


@pytest.mark.parametrize("enabled", [True, False])
def test_the_callers_choice_of_checks_is_kept(enabled):
    checks = torch.sparse.check_sparse_tensor_invariants
    w = torch.nn.Parameter(torch.zeros(4, 2))
    optimizer = build_optimizer([w], TrainParams(optimizer="adagrad", lr=0.1))
    with checks(enable=enabled):
        w.grad = torch.sparse_coo_tensor([[1, 3]], torch.ones(2, 2), (4, 2), check_invariants=True)
        optimizer.step()
        assert checks.is_enabled() is enabled


def test_adagrad_is_still_torchs_adagrad():
    w = torch.nn.Parameter(torch.zeros(4, 2))
    optimizer = build_optimizer([w], TrainParams(optimizer="adagrad", lr=0.1))
    assert type(optimizer) is torch.optim.Adagrad  # torch's own, with a step pre-hook
    reference = torch.nn.Parameter(torch.zeros(4, 2))
    plain = torch.optim.Adagrad([reference], lr=0.1)
    for q, opt in ((w, optimizer), (reference, plain)):
        q.grad = torch.sparse_coo_tensor([[1, 3]], torch.ones(2, 2), (4, 2), check_invariants=True)
        opt.step()
    torch.testing.assert_close(w.detach(), reference.detach(), rtol=0, atol=0)
