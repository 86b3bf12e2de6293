"""SparsemaxHead: loss against an independent numpy formula, the set rule S(t z) against a brute-force
projection, scale tuning, top-k by logits, persistence, and the estimator and CLI on real data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _references import sparsemax_reference
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsexc.heads import LabelBatch, SparsemaxHead, build_head, get_head
from sparsexc.heads.sparsemax import PAPER_SCALE_GRID, SCALE_GRID
from sparsexc.metrics import micro_f1

ROWS = [[0, 2], [1], [], [0, 1, 2, 4], [3]]
N_ROWS = len(ROWS)
C = 5


def _labels(rows, n_labels=C) -> LabelBatch:
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.array([j for r in rows for j in sorted(r)], dtype=np.int64)
    Y = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(rows), n_labels))
    return LabelBatch.from_csr(Y)


def _np_loss(z: np.ndarray, rows) -> float:
    """Mean over labelled rows of -q.z + 1/2 sum_{j in S}(z_j^2 - tau^2) + 1/2 |q|^2 (the paper's formula)."""
    total, n = 0.0, 0
    p = sparsemax_reference(z)
    for i, r in enumerate(rows):
        if not r:
            continue
        q = np.zeros(z.shape[1])
        q[r] = 1.0 / len(r)
        S = p[i] > 0
        tau = (z[i][S].sum() - 1) / S.sum()
        total += -q @ z[i] + 0.5 * (z[i][S] ** 2 - tau**2).sum() + 0.5 * q @ q
        n += 1
    return total / n


def _head(seed=0, in_dim=4, n_labels=C, params=None) -> SparsemaxHead:
    torch.manual_seed(seed)
    head = SparsemaxHead(in_dim, n_labels, params).double()
    with torch.no_grad():
        head.output.weight.normal_(0, 1.5)
        head.output.bias.normal_(0, 0.5)
    return head


def _hidden(n_rows=N_ROWS, in_dim=4, seed=0):
    return torch.randn(n_rows, in_dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_registered_under_its_name():
    assert get_head("sparsemax") is SparsemaxHead


def test_loss_equals_the_papers_formula_and_skips_empty_rows():
    head, h = _head(), _hidden()
    z = head.output(h).detach().numpy()
    loss = head.loss(h, _labels(ROWS))
    assert loss.item() == pytest.approx(_np_loss(z, ROWS), rel=1e-10, abs=1e-12)


def test_loss_gradient_wrt_logits_is_sparsemax_minus_q():
    head, h = _head(seed=3), _hidden(seed=3)
    z = head.output(h).detach().requires_grad_()
    from sparsexc.ops import sparsemax_loss

    sparsemax_loss(z, _labels(ROWS), ignore_empty=True).backward()
    q = np.zeros((len(ROWS), C))
    for i, r in enumerate(ROWS):
        if r:
            q[i, r] = 1.0 / len(r)
    labelled = np.array([bool(r) for r in ROWS])
    expected = (sparsemax_reference(z.detach().numpy()) - q) * labelled[:, None] / labelled.sum()
    np.testing.assert_allclose(z.grad.numpy(), expected, atol=1e-12)


def test_batch_of_empty_rows_has_zero_loss_and_gradient():
    head, h = _head(), _hidden(n_rows=2).requires_grad_()
    loss = head.loss(h, _labels([[], []]))
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(h.grad) == 0


def test_scores_are_sparse_probabilities_and_topk_ranks_by_logits():
    head, h = _head(seed=1, n_labels=40), _hidden(n_rows=8, seed=1)
    p = head.scores(h).detach()
    np.testing.assert_allclose(p.numpy(), sparsemax_reference(head.output(h).detach().numpy()), atol=1e-12)
    torch.testing.assert_close(p.sum(1), torch.ones(8, dtype=torch.float64))
    assert (p == 0).any()  # genuinely sparse at this scale
    idx, val = head.topk(h, 10)
    z = head.output(h).detach()
    expected = torch.sort(-z, dim=1, stable=True).indices[:, :10]  # by logits, beyond the support too
    assert torch.equal(idx, expected)
    torch.testing.assert_close(val, torch.gather(p, 1, idx))
    assert bool((val[:, :-1] >= val[:, 1:]).all())


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(2, 12), st.integers(0, 2**31 - 1), st.sampled_from(PAPER_SCALE_GRID))
def test_predict_sets_are_the_support_of_sparsemax_of_t_z(n_rows, n_labels, seed, t):
    head = _head(seed=seed % 1000, n_labels=n_labels, params={"scale": t})
    h = _hidden(n_rows=n_rows, seed=seed)
    sets = head.predict_sets(h).to_csr().toarray() > 0
    expected = sparsemax_reference(t * head.output(h).detach().numpy()) > 1e-12
    np.testing.assert_array_equal(sets, expected)
    assert sets.sum(1).min() >= 1  # the support is never empty


def test_larger_scale_gives_nested_smaller_sets():
    head, h = _head(seed=2, n_labels=30), _hidden(n_rows=20, seed=2)
    z = head.set_scores(h).detach()
    previous = None
    for t in PAPER_SCALE_GRID:
        sets = head.sets_from(z, t)
        if previous is not None:
            assert bool((sets <= previous).all())  # S(t' z) is a subset of S(t z) for t' > t
        previous = sets
    assert head.sets_from(z, 1.0).sum() > head.sets_from(z, 5.0).sum()


def test_the_default_grid_is_the_paper_s_then_larger_scales():
    assert SCALE_GRID[: len(PAPER_SCALE_GRID)] == PAPER_SCALE_GRID and min(SCALE_GRID[len(PAPER_SCALE_GRID) :]) > 5.0
    assert SparsemaxHead(4, 3).tuning_candidates() == SCALE_GRID


@pytest.mark.parametrize("grid", [PAPER_SCALE_GRID, SCALE_GRID])
def test_tune_picks_the_best_scale_on_its_grid_and_keeps_a_fixed_one(grid):
    head, h = _head(seed=4, n_labels=8, params={"scale_grid": list(grid)}), _hidden(n_rows=30, seed=4)
    rng = np.random.default_rng(0)
    rows = [sorted(rng.choice(8, size=rng.integers(1, 4), replace=False).tolist()) for _ in range(30)]
    labels = _labels(rows, 8)
    Y = labels.to_csr()
    z = head.output(h).detach().numpy()
    by_scale = {t: micro_f1(Y, sp.csr_matrix((sparsemax_reference(t * z) > 1e-12).astype(np.float32))) for t in grid}
    best = max(grid, key=lambda t: (by_scale[t], -t))  # ties -> first (smallest) grid value
    result = head.tune(h, labels)
    assert result["scale"] == best == head.scale_
    assert result["micro-F1"] == pytest.approx(by_scale[best])
    assert head.tuned_state() == {"scale": best}
    fixed = _head(seed=4, n_labels=8, params={"scale": 2.5})
    assert fixed.tune(h, labels) == {"scale": 2.5} and fixed.scale_ == 2.5
    custom = _head(seed=4, n_labels=8, params={"scale_grid": [0.5, 7.0]})
    assert custom.tune(h, labels)["scale"] in (0.5, 7.0)


def test_params_are_validated():
    with pytest.raises(ValueError, match="scale"):
        SparsemaxHead(4, 3, {"scale": 0.0})
    with pytest.raises(ValueError, match="scale_grid"):
        SparsemaxHead(4, 3, {"scale_grid": []})
    with pytest.raises(ValueError, match=r"unknown key 'threshold'.*scale"):
        SparsemaxHead(4, 3, {"threshold": 0.5})
    head = SparsemaxHead(4, 3)
    with pytest.raises(ValueError, match="scale"):
        head.load_tuned_state({"threshold": 0.3})


def test_config_rebuilds_the_head_with_its_tuned_scale():
    head = _head(params={"scale_grid": [1.0, 2.0]}).float()
    head.scale_ = 2.0
    again = build_head(json.loads(json.dumps(head.config())))
    again.load_state_dict(head.state_dict())
    assert again.config() == head.config() and again.scale_ == 2.0
    h = _hidden().float()
    torch.testing.assert_close(again.scores(h), head.scores(h), rtol=0, atol=0)
    assert torch.equal(again.predict_sets(h).indices, head.predict_sets(h).indices)


@pytest.fixture(scope="module")
def bibtex():
    from sparsexc.datasets import load

    return load("bibtex")


def test_estimator_learns_bibtex_and_round_trips(bibtex, tmp_path):
    from sparsexc.estimator import XCClassifier

    train, test = bibtex.train, bibtex.test
    clf = XCClassifier(
        head="sparsemax", hidden_sizes=(), epochs=3, batch_size=64, lr=0.05, device="cpu", random_state=0
    ).fit(train.X[:2000], train.Y[:2000])
    assert "scale" in clf.tuned_ and clf.tuned_["scale"] in SCALE_GRID
    X = test.X[:500]
    idx, _ = clf.predict_topk(X, 1)
    p_at_1 = float(np.asarray(test.Y[:500][np.arange(500), idx[:, 0]]).mean())
    # the most frequent training label as a constant guess is the floor to beat by far
    freq = np.asarray(train.Y[:2000].sum(0)).ravel().argmax()
    floor = float(test.Y[:500][:, freq].mean())
    assert p_at_1 > max(0.3, 2 * floor), (p_at_1, floor)
    sets = clf.predict(X)
    assert sets.getnnz(axis=1).min() >= 1  # supports are never empty
    clf.save(tmp_path / "model")
    again = type(clf).load(tmp_path / "model")
    assert (again.predict(X) != sets).nnz == 0
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_cli_trains_the_sparsemax_head(tmp_path):
    from sparsexc.cli import main

    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--dataset",
                "bibtex",
                "--head",
                "sparsemax",
                "--head-param",
                "scale=2.0",
                "--epochs",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    config = json.loads((out / "model" / "config.json").read_text())
    assert json.dumps(config).count('"sparsemax"') >= 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 < metrics["P@1"] <= 1.0 and 0.0 < metrics["micro-F1"] <= 1.0
