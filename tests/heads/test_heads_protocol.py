"""Heads: losses against brute-force formulas, gradcheck, top-k/scores agreement, sets, tuning, registry."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from sparsexc._params import Params
from sparsexc.core.topk import topk_lower_id_ties
from sparsexc.heads import (
    Head,
    LabelBatch,
    LabelEmbeddingHead,
    SigmoidHead,
    SoftmaxHead,
    SparsemaxHead,
    build_head,
    get_head,
    list_heads,
    register_head,
    tune_threshold,
)
from sparsexc.heads.softmax import T_GRID


def _labels(rows: list[list[int]], n_labels: int) -> LabelBatch:
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.array([j for r in rows for j in sorted(r)], dtype=np.int64)
    Y = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(rows), n_labels))
    return LabelBatch.from_csr(Y)


ROWS = [[0, 2], [1], [], [0, 1, 2, 4], [3]]
N_ROWS = len(ROWS)
C = 5


# -- LabelBatch ------------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 6), max_size=5), min_size=1, max_size=8))
def test_label_batch_round_trips_and_pieces(rows):
    rows = [sorted(set(r)) for r in rows]
    batch = _labels(rows, 7)
    dense = np.zeros((len(rows), 7), np.float32)
    for i, r in enumerate(rows):
        dense[i, r] = 1
    np.testing.assert_array_equal(batch.to_dense().numpy(), dense)
    np.testing.assert_array_equal(batch.to_csr().toarray(), dense)
    np.testing.assert_array_equal(batch.sizes().numpy(), [len(r) for r in rows])
    np.testing.assert_array_equal(batch.row_ids().numpy(), [i for i, r in enumerate(rows) for _ in r])
    again = LabelBatch.from_mask(torch.from_numpy(dense > 0))
    assert torch.equal(again.indices, batch.indices) and torch.equal(again.offsets, batch.offsets)


# -- losses against brute force ----------------------------------------------------------------------------------
def _hidden(n_rows=N_ROWS, in_dim=4, seed=0, dtype=torch.float64):
    return torch.randn(n_rows, in_dim, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _dense_labels(rows, n_labels=C):
    Y = np.zeros((len(rows), n_labels))
    for i, r in enumerate(rows):
        Y[i, r] = 1
    return Y


def test_sigmoid_loss_matches_binary_cross_entropy_formula():
    torch.manual_seed(0)
    head = SigmoidHead(4, C).double()
    h = _hidden()
    Z = (h @ head.output.weight.T + head.output.bias).detach().numpy()
    Y = _dense_labels(ROWS)
    P = 1 / (1 + np.exp(-Z))
    expected = np.mean(np.sum(-(Y * np.log(P) + (1 - Y) * np.log(1 - P)), axis=1))  # empty row: all negative
    assert head.loss(h, _labels(ROWS, C)).item() == pytest.approx(expected, rel=1e-12)


def test_softmax_loss_matches_label_proportion_cross_entropy_and_skips_empty_rows():
    torch.manual_seed(0)
    head = SoftmaxHead(4, C).double()
    h = _hidden()
    Z = (h @ head.output.weight.T + head.output.bias).detach().numpy()
    Y = _dense_labels(ROWS)
    logp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
    per_row = [-(Y[i] / Y[i].sum() * logp[i]).sum() for i in range(len(ROWS)) if Y[i].sum() > 0]
    assert head.loss(h, _labels(ROWS, C)).item() == pytest.approx(np.mean(per_row), rel=1e-12)
    # the empty row changes nothing: the loss equals the loss of the batch without it
    keep = [i for i, r in enumerate(ROWS) if r]
    assert head.loss(h, _labels(ROWS, C)).item() == pytest.approx(
        head.loss(h[keep], _labels([ROWS[i] for i in keep], C)).item(), rel=1e-12
    )


def test_softmax_batch_of_empty_rows_has_zero_loss_and_zero_gradient():
    head = SoftmaxHead(4, C)
    h = _hidden(3, dtype=torch.float32).requires_grad_()
    loss = head.loss(h, _labels([[], [], []], C))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.count_nonzero(h.grad) == 0 and torch.count_nonzero(head.output.weight.grad) == 0


@pytest.mark.parametrize("head_cls", [SigmoidHead, SoftmaxHead, SparsemaxHead, LabelEmbeddingHead])
def test_loss_gradcheck_float64(head_cls):
    torch.manual_seed(1)
    head = head_cls(4, C).double()
    labels = _labels(ROWS, C)
    h = _hidden(seed=3).requires_grad_()
    weight, bias = head.output.weight, head.output.bias

    def f(h, weight, bias):
        head.output.weight, head.output.bias = weight, bias
        return head.loss(h, labels)

    w = weight.detach().clone().requires_grad_()
    b = bias.detach().clone().requires_grad_()
    del head.output.weight, head.output.bias  # let gradcheck pass plain tensors in place of the parameters
    assert torch.autograd.gradcheck(f, (h, w, b))


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("head_cls", [SigmoidHead, SoftmaxHead, SparsemaxHead, LabelEmbeddingHead])
def test_sparse_hidden_gives_the_dense_loss_and_gradient(head_cls):
    # the linear model: hidden = raw sparse features (torch.sparse_csr) must act as its dense copy
    torch.manual_seed(2)
    X = sp.random(5, 12, density=0.3, format="csr", dtype=np.float32, random_state=0)
    head = head_cls(12, C)
    labels = _labels(ROWS, C)
    sparse_h = torch.sparse_csr_tensor(
        torch.from_numpy(X.indptr).long(),
        torch.from_numpy(X.indices).long(),
        torch.from_numpy(X.data),
        size=X.shape,
        check_invariants=True,
    )
    loss_sparse = head.loss(sparse_h, labels)
    loss_sparse.backward()
    grad_sparse = head.output.weight.grad.clone()
    head.zero_grad()
    loss_dense = head.loss(torch.from_numpy(X.toarray()), labels)
    loss_dense.backward()
    torch.testing.assert_close(loss_sparse, loss_dense)
    torch.testing.assert_close(grad_sparse, head.output.weight.grad)


# -- scores, top-k, sets ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("head_cls", [SigmoidHead, SoftmaxHead, LabelEmbeddingHead])
def test_topk_agrees_with_scores_and_breaks_ties_by_lower_id(head_cls):
    torch.manual_seed(0)
    head = head_cls(4, 9)
    h = _hidden(6, dtype=torch.float32)
    scores = head.scores(h)
    idx, val = head.topk(h, 4)
    ref = np.argsort(-scores.detach().numpy(), axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(idx.numpy(), ref)
    np.testing.assert_array_equal(val.detach().numpy(), np.take_along_axis(scores.detach().numpy(), ref, 1))
    with torch.no_grad():  # all-equal scores: ranks are 0, 1, 2, ...
        head.output.weight.zero_()
        head.output.bias.zero_()
    np.testing.assert_array_equal(head.topk(h, 3)[0].numpy(), np.tile([0, 1, 2], (6, 1)))
    assert head.topk(h, 50)[0].shape == (6, 9)  # k is capped at C


def test_scores_are_probabilities():
    torch.manual_seed(0)
    h = _hidden(6, dtype=torch.float32)
    p = SoftmaxHead(4, 7).scores(h)
    torch.testing.assert_close(p.sum(1), torch.ones(6))
    s = SigmoidHead(4, 7).scores(h)
    assert bool(((s > 0) & (s < 1)).all())


def test_predict_sets_follow_the_documented_rules():
    torch.manual_seed(0)
    h = _hidden(8, dtype=torch.float32)
    sig = SigmoidHead(4, 6, {"threshold": 0.4})
    np.testing.assert_array_equal(sig.predict_sets(h).to_csr().toarray(), (sig.scores(h) > 0.4).numpy())
    soft = SoftmaxHead(4, 6, {"threshold": 1.5})
    np.testing.assert_array_equal(soft.predict_sets(h).to_csr().toarray(), (soft.scores(h) > 1.5 / 6).numpy())


# -- tuning ---------------------------------------------------------------------------------------------------
def test_tune_threshold_picks_the_best_grid_value():
    rng = np.random.default_rng(0)
    Y = (rng.random((40, 6)) < 0.3).astype(np.float32)
    scores = np.clip(Y * 0.5 + rng.random((40, 6)) * 0.6, 0, 1)
    grid = [0.1, 0.3, 0.45, 0.6, 0.9]
    best, value = tune_threshold(scores, sp.csr_matrix(Y), grid, "micro-F1")
    reference = [f1_score(Y, scores > t, average="micro", zero_division=0) for t in grid]  # independent metric
    assert best == grid[int(np.argmax(reference))]
    assert value == pytest.approx(max(reference))
    best_ex, _ = tune_threshold(scores, sp.csr_matrix(Y), grid, "example-F1")
    reference_ex = [f1_score(Y, scores > t, average="samples", zero_division=1) for t in grid]
    assert best_ex == grid[int(np.argmax(reference_ex))]
    with pytest.raises(ValueError, match="micro-F1"):
        tune_threshold(scores, sp.csr_matrix(Y), grid, "accuracy")


@pytest.mark.parametrize(
    "head_cls, rule", [(SigmoidHead, lambda s: s > 0.3), (SoftmaxHead, lambda p: p * 6 > T_GRID[30])]
)
def test_head_tune_sets_the_threshold_used_by_predict_sets(head_cls, rule):
    torch.manual_seed(0)
    head = head_cls(4, 6)
    h = _hidden(30, dtype=torch.float32)
    labels = LabelBatch.from_mask(rule(head.scores(h).detach()))  # reachable exactly by a grid value
    result = head.tune(h, labels)
    assert result["threshold"] == head.threshold_ and result["micro-F1"] == 1.0
    np.testing.assert_array_equal(head.predict_sets(h).to_csr().toarray(), labels.to_csr().toarray())
    fixed = head_cls(4, 6, {"threshold": 0.25})
    assert fixed.tune(h, labels) == {"threshold": 0.25}  # a user-fixed threshold is kept


# -- registry and params ---------------------------------------------------------------------------------------
def test_registry_lookup_and_errors():
    assert {"sigmoid", "softmax", "sparsemax"} <= set(list_heads())
    assert get_head("softmax") is SoftmaxHead
    with pytest.raises(KeyError, match=r"sigmoid.*softmax|softmax.*sigmoid"):
        get_head("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_head(type("Other", (Head,), {"name": "softmax"}))
    with pytest.raises(TypeError):
        register_head(int)


def test_head_params_are_validated_with_allowed_keys():
    with pytest.raises(ValueError, match=r"unknown key 'thresh'.*threshold"):
        SigmoidHead(4, 3, {"thresh": 0.5})
    with pytest.raises(ValueError, match="threshold"):
        SigmoidHead(4, 3, {"threshold": 1.5})
    with pytest.raises(ValueError, match="threshold"):
        SoftmaxHead(4, 3, {"threshold": "high"})


@pytest.mark.parametrize("head_cls", [SigmoidHead, SoftmaxHead, LabelEmbeddingHead])
def test_config_rebuilds_the_head(head_cls):
    head = head_cls(4, 6, {"threshold": 0.3})
    head.threshold_ = 0.123
    again = build_head(head.config())
    again.load_state_dict(head.state_dict())
    assert type(again) is head_cls and again.config() == head.config()
    h = _hidden(5, dtype=torch.float32)
    torch.testing.assert_close(again.scores(h), head.scores(h), rtol=0, atol=0)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 9), st.integers(1, 12), st.integers(0, 2**31 - 1), st.booleans())
def test_topk_with_ties_matches_a_stable_argsort(n_rows, n_labels, k, seed, with_ties):
    rng = np.random.default_rng(seed)
    S = (
        rng.integers(0, 3, (n_rows, n_labels)).astype(np.float32)
        if with_ties
        else rng.random((n_rows, n_labels), dtype=np.float32)
    )
    idx, val = topk_lower_id_ties(torch.from_numpy(S), k)
    ref = np.argsort(-S, axis=1, kind="stable")[:, : min(k, n_labels)]
    np.testing.assert_array_equal(idx.numpy(), ref)
    np.testing.assert_array_equal(val.numpy(), np.take_along_axis(S, ref, 1))


# -- the protocol, over every registered head (a new head cannot escape these) ----------------------------------
def _fitted_head(name: str, n_labels: int = 12, in_dim: int = 6) -> Head:
    """Head ``name`` with its default params, prepared on a small random problem (samplers, embeddings, priors)."""
    torch.manual_seed(0)
    X = sp.random(40, in_dim, density=0.5, format="csr", dtype=np.float32, random_state=1)
    Y = sp.random(40, n_labels, density=0.25, format="csr", dtype=np.float32, random_state=2)
    Y.data[:] = 1.0
    head = get_head(name)(in_dim, n_labels)
    head.prepare(X, Y)
    return head


@pytest.mark.parametrize("name", list_heads())
def test_every_head_declares_its_name_params_and_score_meaning(name):
    head_cls = get_head(name)
    assert head_cls.name == name
    assert issubclass(head_cls.Params, Params) and isinstance(head_cls.Params(), head_cls.Params)
    assert isinstance(head_cls.score_meaning, str) and head_cls.score_meaning.strip(), "declare score_meaning"
    assert isinstance(head_cls.probabilistic, bool)


@pytest.mark.parametrize("name", list_heads())
def test_every_head_follows_the_protocol(name):
    head = _fitted_head(name)
    h = _hidden(7, in_dim=6, seed=4, dtype=torch.float32).requires_grad_()
    labels = _labels([[0, 2], [1], [], [0, 1, 2, 4], [3], [11], [5, 6]], 12)
    loss = head.loss(h, labels)
    assert loss.dim() == 0 and bool(torch.isfinite(loss))
    loss.backward()
    assert h.grad is not None and bool(torch.isfinite(h.grad).all())
    head.eval()
    with torch.no_grad():
        scores = head.scores(h)
        idx, val = head.topk(h, 4)
        sets = head.predict_sets(h)
    assert scores.shape == (7, 12) and idx.shape == val.shape == (7, 4)
    assert bool((val[:, :-1] >= val[:, 1:]).all()), "top-k is best first"
    assert all(len(set(row)) == 4 and min(row) >= 0 and max(row) < 12 for row in idx.tolist())
    torch.testing.assert_close(val, torch.gather(scores, 1, idx))  # top-k reports the scores
    if head.probabilistic:
        assert bool(((scores >= 0) & (scores <= 1)).all()), "probabilistic heads score in [0, 1]"
    assert isinstance(sets, LabelBatch) and sets.n_rows == 7 and sets.n_labels == 12
    tuned = head.tune(h.detach(), labels)
    assert set(head.tuned_state()) <= set(tuned)
    again = build_head(head.config())
    again.load_state_dict(head.state_dict())
    again.eval()
    assert again.config() == head.config()
    with torch.no_grad():
        torch.testing.assert_close(again.scores(h), scores, rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("sparse", [False, True])
def test_default_tune_batches_joins_the_batches_for_tune(sparse):
    seen = {}

    class _Recorder(Head):
        def tune(self, hidden, labels, metric="micro-F1"):
            seen.update(hidden=hidden, labels=labels, metric=metric)
            return {"ok": 1}

    X = sp.random(10, 6, density=0.4, format="csr", dtype=np.float32, random_state=0)
    Y = sp.random(10, 5, density=0.4, format="csr", dtype=np.float32, random_state=1)
    Y.data[:] = 1.0
    dense = torch.from_numpy(X.toarray())
    parts = [
        (dense[a : a + 3].to_sparse_csr() if sparse else dense[a : a + 3], _labels_of(Y[a : a + 3]))
        for a in (0, 3, 6, 9)
    ]
    assert _Recorder(6, 5).tune_batches(iter(parts), "example-F1") == {"ok": 1}
    assert seen["metric"] == "example-F1" and seen["hidden"].layout == (torch.sparse_csr if sparse else torch.strided)
    hidden = seen["hidden"].to_dense() if sparse else seen["hidden"]
    np.testing.assert_array_equal(hidden.numpy(), X.toarray())
    np.testing.assert_array_equal(seen["labels"].to_csr().toarray(), Y.toarray())


def _labels_of(Y: sp.csr_matrix) -> LabelBatch:
    return LabelBatch.from_csr(Y)
