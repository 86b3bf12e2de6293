"""The fixed-L ablation of SDLGM's learned level (``fixed_level=True``): the sampler, the head and SparseVAE
give exactly L0 non-zeros, the loss drops the level terms, gradients are checked, the setting reaches the
estimator."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sparsexc.estimator import XCClassifier
from sparsexc.estimator.vae import GaussianVAE, SparseVAE
from sparsexc.heads import LabelBatch, SparseLatentHead
from sparsexc.latent import fixed_length_logits, mode_mask, selection_kl, sequential_kl, two_step_sample

ROWS = [[0, 2], [1], [], [0, 1, 2, 4], [3]]
C, L0 = 6, 3


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _labels() -> LabelBatch:
    Y = np.zeros((len(ROWS), C), np.float32)
    for i, r in enumerate(ROWS):
        Y[i, r] = 1
    return LabelBatch.from_csr(sp.csr_matrix(Y))


def _head(**params) -> SparseLatentHead:
    torch.manual_seed(0)
    return SparseLatentHead(4, C, {"max_labels": L0, "fixed_level": True, **params}).double()


def _hidden(n: int = len(ROWS)) -> torch.Tensor:
    return torch.randn(n, 4, generator=_gen(1), dtype=torch.float64)


def test_fixed_logits_give_level_l0_in_every_draw_and_exactly_l0_non_zeros():
    a = torch.randn(7, 10, generator=_gen(2), dtype=torch.float64)
    c = fixed_length_logits(a, L0)
    assert c.shape == (7, L0) and torch.all(c[:, -1] == 0) and torch.all(torch.isinf(c[:, :-1]))
    for seed in range(5):
        soft = two_step_sample(c, a, 0.7, 0.7, generator=_gen(seed))
        assert torch.all(soft.lengths == L0)
        assert torch.equal(soft.length, torch.nn.functional.one_hot(soft.lengths - 1, L0).double())
        # survival 1 for every pick: the mask is the sum of L0 softmaxes, row sums exactly L0 up to rounding
        assert torch.allclose(soft.mask.sum(1), torch.full((7,), float(L0), dtype=torch.float64))
        hard = two_step_sample(c, a, 0.7, 0.7, hard=True, generator=_gen(seed))
        assert torch.all((hard.mask != 0).sum(1) == L0) and torch.all(hard.mask.sum(1) == L0)
    assert torch.all(mode_mask(c, a).sum(1) == L0)
    # q(L >= j) = 1 for every j: the selection KL sums all L0 per-pick terms
    order = two_step_sample(c, a, 0.7, 0.7, generator=_gen(0)).order
    prior = torch.zeros(10, dtype=torch.float64)
    assert torch.allclose(selection_kl(a, prior, order, c), sequential_kl(a, prior, order).sum(1))
    with pytest.raises(ValueError, match="max_active"):
        fixed_length_logits(a, 0)


def test_fixed_mask_gradcheck_in_the_selection_logits():
    a = torch.randn(3, 6, generator=_gen(3), dtype=torch.float64, requires_grad=True)
    c = fixed_length_logits(a.detach(), L0)
    assert torch.autograd.gradcheck(lambda a_: two_step_sample(c, a_, 0.8, 0.6, generator=_gen(8)).mask, (a,))


def test_fixed_head_has_no_level_layer_and_drops_the_level_terms():
    head = _head(kl_weight=0.7, length_weight=0.3)
    assert head.levels is None and not any(name.startswith("levels") for name, _ in head.named_parameters())
    h = _hidden()
    torch.manual_seed(5)
    terms = head.loss_terms(h, _labels())
    assert torch.all(terms["kl_level"] == 0) and torch.all(terms["level_nll"] == 0)
    assert torch.all(terms["nll"] > 0) and torch.all(terms["kl_labels"] >= 0)
    head.eval()
    torch.manual_seed(5)
    expected = (terms["nll"] + 0.7 * terms["kl_labels"]).mean()
    assert head.loss(h, _labels()).item() == pytest.approx(expected.item(), rel=1e-12)
    probs = head.level_probabilities(h)
    assert torch.all(probs[:, -1] == 1) and torch.all(probs[:, :-1] == 0)


def test_fixed_head_loss_gradcheck_and_gradients_reach_the_label_layer():
    head = _head(temperature=0.8)
    labels = _labels()

    def f(h):
        torch.manual_seed(3)  # the same noise at every evaluation
        return head.loss(h, labels)

    h = _hidden().requires_grad_(True)
    head.eval()  # no step counting during gradcheck's evaluations
    assert torch.autograd.gradcheck(f, (h,))
    f(h).backward()
    assert head.labels.weight.grad is not None and head.labels.weight.grad.abs().sum() > 0


def test_fixed_head_predicts_exactly_l0_labels_the_top_scores():
    head = _head()
    h = torch.randn(20, 4, generator=_gen(4), dtype=torch.float64)
    head.eval()
    sets = head.predict_sets(h).to_csr().toarray().astype(bool)
    scores = head.scores(h).detach().numpy()
    assert np.all(sets.sum(1) == L0)
    for i in range(20):
        assert set(np.flatnonzero(sets[i])) == set(np.argsort(-scores[i], kind="stable")[:L0])


def test_estimator_takes_fixed_level_and_gives_l0_labels_per_row():
    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.random((120, 12)).astype(np.float32))
    Y = sp.csr_matrix((rng.random((120, 8)) < 0.3).astype(np.float32))
    clf = XCClassifier(
        head="sdlgm", head_params={"max_labels": 4, "fixed_level": True}, epochs=2, random_state=0, device="cpu"
    ).fit(X, Y)
    assert np.all(np.diff(clf.predict(X).indptr) == 4)


def test_sparse_vae_fixed_level_gives_exactly_l0_non_zeros_and_round_trips(tmp_path):
    X = np.random.default_rng(0).random((60, 6)).astype(np.float32)
    vae = SparseVAE(8, 3, fixed_level=True, hidden_size=16, epochs=2, batch_size=16).fit(X)
    assert not any(k.startswith("length") for k in vae.network_.state_dict())
    assert all(h["kl_length"] == 0 for h in vae.history_)
    codes = vae.transform(X)
    assert np.all(np.diff(codes.indptr) == 3)
    vae.save(tmp_path / "m")
    again = SparseVAE.load(tmp_path / "m")
    assert again.params.fixed_level and np.array_equal(again.transform(X).toarray(), codes.toarray())
    with pytest.raises(ValueError, match="fixed_level"):
        GaussianVAE(4, fixed_level=True)
