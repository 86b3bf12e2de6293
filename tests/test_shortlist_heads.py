"""The candidate part of the head protocol (``sparsexc.heads.candidates``): over every label it is the head's
full-label loss, scores, top-k and sets; over a shortlist its sparsemax loss has the gradient finite differences
give, and it equals the full loss of the candidates' columns alone (independent references)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sparsexc.core.labels import LabelBatch
from sparsexc.errors import ConfigurationError
from sparsexc.heads import SigmoidHead, SoftmaxHead, SparsemaxHead, get_head, list_heads
from sparsexc.heads.candidates import Candidates
from sparsexc.models import shortlist_heads
from sparsexc.ops import sparsemax

HEADS = ("sigmoid", "softmax", "sparsemax")


def _data(seed: int, B: int = 7, d: int = 5, C: int = 11, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, d, generator=g, dtype=dtype)
    Y = (torch.rand(B, C, generator=g) < 0.25).numpy()
    Y[0, :] = False  # a row with no label
    Y[1, :] = False
    Y[1, 3] = True
    labels = LabelBatch.from_csr(sp.csr_matrix(Y.astype(np.float32)))
    return hidden, labels


def _head(name: str, d: int = 5, C: int = 11, dtype=torch.float64):
    torch.manual_seed(3)
    head = get_head(name)(d, C)
    head.to(dtype)
    with torch.no_grad():
        head.output.bias.normal_()  # a non-zero bias: the candidates' biases must be gathered too
    return head


def _all_labels(B: int, C: int) -> Candidates:
    ids = torch.arange(C).expand(B, C).clone()
    return Candidates(ids, torch.ones(B, C, dtype=torch.bool))


def _random_candidates(labels: LabelBatch, seed: int, extra: int = 3) -> Candidates:
    """Each row's positives and ``extra`` random other labels, as a LabelBatch, padded."""
    rng = np.random.default_rng(seed)
    Y = labels.to_csr().toarray() > 0
    rows = []
    for i in range(Y.shape[0]):
        others = rng.choice(np.flatnonzero(~Y[i]), size=extra, replace=False)
        rows.append(sorted({*np.flatnonzero(Y[i]).tolist(), *others.tolist()}))
    M = sp.lil_matrix(Y.shape, dtype=np.float32)
    for i, r in enumerate(rows):
        M[i, r] = 1
    return Candidates.from_batch(LabelBatch.from_csr(M.tocsr()))


def test_the_heads_that_score_a_shortlist():
    assert shortlist_heads() == HEADS
    assert all(get_head(n).supports_candidates == (n in HEADS) for n in list_heads())


@pytest.mark.parametrize("name", HEADS)
def test_candidate_loss_over_every_label_is_the_full_loss(name):
    head = _head(name)
    hidden, labels = _data(0)
    full = head.loss(hidden, labels)
    every = head.candidate_loss(hidden, labels, _all_labels(labels.n_rows, labels.n_labels))
    torch.testing.assert_close(every, full, rtol=1e-12, atol=1e-12)
    # the same gradients with respect to the weights
    g_full = torch.autograd.grad(full, [head.output.weight, head.output.bias])
    g_every = torch.autograd.grad(
        head.candidate_loss(hidden, labels, _all_labels(labels.n_rows, labels.n_labels)),
        [head.output.weight, head.output.bias],
    )
    for a, b in zip(g_every, g_full, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", HEADS)
def test_candidate_loss_equals_the_loss_of_the_candidate_columns(name):
    """Reference: the loss written out by hand on each row's candidate logits alone."""
    head = _head(name)
    hidden, labels = _data(1)
    cands = _random_candidates(labels, 1)
    got = head.candidate_loss(hidden, labels, cands)
    z_full = hidden @ head.output.weight.T + head.output.bias
    Y = labels.to_csr().toarray() > 0
    per_row = []
    for i in range(labels.n_rows):
        ids = cands.ids[i][cands.mask[i]]
        z, y = z_full[i, ids], torch.from_numpy(Y[i, ids.numpy()])
        if name == "sigmoid":
            per_row.append(torch.nn.functional.softplus(z).sum() - z[y].sum())
        elif y.any():
            q = y.double() / y.sum()
            if name == "softmax":
                per_row.append(-(q * torch.log_softmax(z, 0)).sum())
            else:  # the sparsemax loss: -q.z + 1/2 sum_S (z^2 - tau^2) + 1/2 |q|^2
                p = sparsemax(z[None], dim=1)[0]
                S = p > 0
                tau = (z[S].sum() - 1) / S.sum()
                per_row.append(-(q * z).sum() + 0.5 * (z[S] ** 2 - tau**2).sum() + 0.5 * (q**2).sum())
    expected = torch.stack(per_row).sum() / (labels.n_rows if name == "sigmoid" else len(per_row))
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_gradcheck_of_the_candidate_sparsemax_loss():
    head = _head("sparsemax")
    hidden, labels = _data(2)
    cands = _random_candidates(labels, 2)
    hidden.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda h: head.candidate_loss(h, labels, cands), (hidden,), eps=1e-6, atol=1e-7)
    params = (head.output.weight, head.output.bias)
    got = torch.autograd.grad(head.candidate_loss(hidden.detach(), labels, cands), params)
    for p, g in zip(params, got, strict=True):  # central differences, entry by entry
        numeric = torch.zeros_like(p)
        flat, nflat = p.data.view(-1), numeric.view(-1)
        for j in range(flat.numel()):
            torch.set_grad_enabled(False)
            keep = float(flat[j])
            flat[j] = keep + 1e-6
            up = float(head.candidate_loss(hidden.detach(), labels, cands))
            flat[j] = keep - 1e-6
            down = float(head.candidate_loss(hidden.detach(), labels, cands))
            flat[j] = keep
            nflat[j] = (up - down) / 2e-6
            torch.set_grad_enabled(True)
        torch.testing.assert_close(g, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", HEADS)
def test_topk_scores_and_sets_over_every_label_are_the_full_heads(name):
    head = _head(name, dtype=torch.float32)
    hidden, _ = _data(4, B=9, dtype=torch.float32)
    every = _all_labels(9, 11)
    idx, val = head.candidate_topk(hidden, every, 4)
    full_idx, full_val = head.topk(hidden, 4)
    assert torch.equal(idx, full_idx)
    torch.testing.assert_close(val, full_val.float())
    z = head.candidate_logits(hidden, every)
    torch.testing.assert_close(head.candidate_probabilities(z, every), head.scores(hidden))
    for value in head.tuning_candidates()[::7]:
        head.set_tuned_value(value)
        got = head.candidate_predict_sets(hidden, every).to_csr().toarray()
        assert np.array_equal(got, head.predict_sets(hidden).to_csr().toarray())


@pytest.mark.parametrize("name", HEADS)
def test_tuning_over_every_label_is_the_full_tuning(name):
    head = _head(name, dtype=torch.float32)
    hidden, labels = _data(5, B=40, dtype=torch.float32)
    batches = [(hidden[:25], _rows(labels, 0, 25)), (hidden[25:], _rows(labels, 25, 40))]
    full = head.tune_batches(batches, "example-F1")
    got = head.tune_candidate_batches([(h, y, _all_labels(h.shape[0], 11)) for h, y in batches], "example-F1")
    assert got[head.tuned_key] == full[head.tuned_key]
    assert got["example-F1"] == pytest.approx(full["example-F1"], abs=1e-12)


def test_a_positive_outside_the_shortlist_counts_as_missed():
    head = SigmoidHead(2, 4, {"threshold": None})
    with torch.no_grad():
        head.output.weight.zero_()
        head.output.bias.copy_(torch.tensor([5.0, 5.0, -5.0, 5.0]))
    hidden = torch.zeros(1, 2)
    labels = LabelBatch.from_csr(sp.csr_matrix(np.array([[1, 0, 0, 1]], dtype=np.float32)))
    cands = Candidates(torch.tensor([[0, 1]]), torch.ones(1, 2, dtype=torch.bool))  # label 3 not listed
    out = head.tune_candidate_batches([(hidden, labels, cands)], "example-F1")
    # at any threshold below sigmoid(5) the set is {0, 1}: tp 1, |pred| 2, |y| 2 -> F1 0.5
    assert out["example-F1"] == pytest.approx(0.5)


def _rows(labels: LabelBatch, start: int, stop: int) -> LabelBatch:
    return LabelBatch.from_csr(labels.to_csr()[start:stop])


def test_a_head_that_cannot_or_a_sharded_layer_is_refused():
    from sparsexc.models.shortlist import check_shortlist_head

    with pytest.raises(ConfigurationError, match="'sigmoid', 'softmax', 'sparsemax'"):
        check_shortlist_head(get_head("negative-sampling"))
    with pytest.raises(ConfigurationError, match="shard_labels"):
        check_shortlist_head(SoftmaxHead, SoftmaxHead.Params(shard_labels=True))


def test_sparsemax_sets_over_a_shortlist_are_the_support():
    head = SparsemaxHead(2, 6, {"scale": 2.0})
    with torch.no_grad():
        head.output.weight.zero_()
        head.output.bias.copy_(torch.tensor([0.0, 1.0, 0.9, 3.0, 0.2, -1.0]))
    cands = Candidates(torch.tensor([[1, 2, 4, 0]]), torch.tensor([[True, True, True, False]]))
    sets = head.candidate_predict_sets(torch.zeros(1, 2), cands).to_csr().toarray()[0]
    # sparsemax(2 * [1.0, 0.9, 0.2]) = [0.6, 0.4, 0]: labels 1 and 2 (label 3, the best, is not a candidate)
    assert sets.tolist() == [0, 1, 1, 0, 0, 0]


@pytest.mark.parametrize("name", HEADS)
def test_the_union_product_and_the_per_row_gather_agree(name, monkeypatch):
    """Both ways of candidate_logits (one product over the batch's distinct candidates, or each row's weight
    rows gathered) give the logits of the full layer, and the same gradients."""
    import sparsexc.heads.candidates as module

    head = _head(name)
    hidden, labels = _data(6)
    cands = _random_candidates(labels, 6)
    full = hidden @ head.output.weight.T + head.output.bias
    results = []
    for factor in (0, 1000):  # 0: always gather per row; 1000: always the union product
        monkeypatch.setattr(module, "UNION_FACTOR", factor)
        z = head.candidate_logits(hidden, cands)
        expected = torch.where(cands.mask, torch.gather(full, 1, cands.ids), float("-inf"))
        torch.testing.assert_close(z, expected.detach(), rtol=1e-12, atol=1e-12)
        loss = head.candidate_loss(hidden, labels, cands)
        results.append(torch.autograd.grad(loss, [head.output.weight, head.output.bias]))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
