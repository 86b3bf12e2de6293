"""sparsemax_loss: the paper's formula, entmax's single-label loss, every target form, gradients and errors."""

from __future__ import annotations

from types import SimpleNamespace

import entmax
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sparsexc.ops import SparsemaxLoss, sparsemax, sparsemax_loss

ALGORITHMS = ["auto", "sort", "topk", "bisect"]
pytestmark = pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")


def reference_loss(z: np.ndarray, q: np.ndarray) -> np.ndarray:
    """-q.z + 1/2 sum_{j in S}(z_j^2 - tau^2) + 1/2 |q|^2, with tau from a plain sort (float64)."""
    out = []
    for row, qrow in zip(z, q):
        s = np.sort(row)[::-1]
        cumsum = np.cumsum(s)
        k = max(j for j in range(1, len(s) + 1) if 1 + j * s[j - 1] > cumsum[j - 1])
        tau = (cumsum[k - 1] - 1) / k
        support = row > tau
        out.append(-qrow @ row + 0.5 * (row[support] ** 2 - tau**2).sum() + 0.5 * qrow @ qrow)
    return np.array(out)


def _batch(seed: int, n_rows: int = 8, n_cols: int = 30):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n_rows, n_cols, generator=gen, dtype=torch.float64) * 2
    y = (torch.rand(n_rows, n_cols, generator=gen) < 0.15).double()
    y[torch.arange(n_rows), torch.randint(0, n_cols, (n_rows,), generator=gen)] = 1  # no empty row
    return z, y


def _csr_forms(y: torch.Tensor) -> dict:
    """The same multi-hot target in every accepted non-dense form."""
    csr = y.to_sparse_csr()
    indices, offsets = csr.col_indices(), csr.crow_indices()
    return {
        "tuple": (indices, offsets),
        "tuple-values": (indices, offsets, csr.values()),
        "label-batch": SimpleNamespace(indices=indices, offsets=offsets),
        "sparse-csr": csr,
        "sparse-coo": y.to_sparse(),
        "dense": y,
        "dense-bool": y.bool(),
    }


# ---------------------------------------------------------------- values
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_matches_paper_formula_for_every_target_form(algorithm):
    z, y = _batch(0)
    q = (y / y.sum(1, keepdim=True)).numpy()
    expected = reference_loss(z.numpy(), q)
    for name, target in _csr_forms(y).items():
        got = sparsemax_loss(z, target, reduction="none", algorithm=algorithm)
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-12, err_msg=name)


def test_proportion_targets_are_normalised():
    z, y = _batch(1)
    weights = y * torch.rand(y.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 5
    q = weights / weights.sum(1, keepdim=True)
    expected = reference_loss(z.numpy(), q.numpy())
    np.testing.assert_allclose(sparsemax_loss(z, weights, "none").numpy(), expected, atol=1e-12)
    csr = weights.to_sparse_csr()
    got = sparsemax_loss(z, (csr.col_indices(), csr.crow_indices(), csr.values()), "none")
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(sparsemax_loss(z, q, "none").numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_class_ids_match_entmax(algorithm):
    gen = torch.Generator().manual_seed(3)
    z = (
        torch.randn(20, 500, generator=gen, dtype=torch.float64)
        * torch.logspace(-3, 1, 20, dtype=torch.float64)[:, None]
    )
    target = torch.randint(0, 500, (20,), generator=gen)
    got = sparsemax_loss(z, target, reduction="none", algorithm=algorithm)
    oracle = entmax.SparsemaxLoss(reduction="none")(z, target)
    torch.testing.assert_close(got, oracle, atol=1e-10, rtol=1e-10)
    one_hot = torch.nn.functional.one_hot(target, 500).double()
    torch.testing.assert_close(sparsemax_loss(z, one_hot, "none", algorithm=algorithm), got)
    torch.testing.assert_close(sparsemax_loss(z, target, "sum"), oracle.sum())
    torch.testing.assert_close(sparsemax_loss(z, target), entmax.SparsemaxLoss()(z, target))


@pytest.mark.parametrize("t", [-3.0, -1.0, -0.999, -0.4, 0.0, 0.3, 0.999, 1.0, 2.5])
def test_two_classes_is_a_quarter_of_modified_huber(t):
    # papers.md 1.4: K = 2, t = z_1 - z_2, gold label 1
    modified_huber = max(0.0, 1 - t) ** 2 if t >= -1 else -4 * t  # Zhang (2004)
    z = torch.tensor([[t + 0.7, 0.7]], dtype=torch.float64)
    got = sparsemax_loss(z, torch.tensor([0]), "sum")
    assert got.item() == pytest.approx(modified_huber / 4, abs=1e-15)


def test_large_scores_keep_precision():
    z = torch.tensor([[1e8, 1e8 - 0.5, 1e8 - 3, 0.0]], dtype=torch.float64)
    expected = reference_loss((z - 1e8).numpy(), np.array([[0.0, 1.0, 0.0, 0.0]]))
    np.testing.assert_allclose(sparsemax_loss(z, torch.tensor([1]), "none").numpy(), expected, atol=1e-12)
    z32 = torch.tensor([[1e30, 0.0, -1e30]])
    assert sparsemax_loss(z32, torch.tensor([0])).item() == 0.0
    assert sparsemax_loss(z32, torch.tensor([1])).item() == pytest.approx(1e30, rel=1e-6)


def test_masked_classes_and_non_finite_rows():
    inf = float("inf")
    z = torch.tensor([[0.5, -inf, 0.2, -inf], [1.0, 0.0, -inf, 0.3], [-inf] * 4, [0.0, float("nan"), 1.0, 2.0]])
    loss = sparsemax_loss(z, torch.tensor([0, 2, 1, 0]), "none")
    np.testing.assert_allclose(
        loss[0].item(), reference_loss(np.array([[0.5, 0.2]]), np.array([[1.0, 0.0]]))[0], atol=1e-7
    )
    assert loss[1].item() == inf  # the gold class is masked out
    assert torch.isnan(loss[2:]).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_scores(dtype):
    z, y = _batch(4)
    got = sparsemax_loss(z.to(dtype), y, "none")
    assert got.dtype == dtype
    expected = reference_loss(z.to(dtype).double().numpy(), (y / y.sum(1, keepdim=True)).numpy())
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=1e-2 if dtype != torch.float32 else 1e-5, atol=1e-5)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize(
    "form", ["class-ids", "tuple", "tuple-values", "label-batch", "sparse-csr", "dense", "proportions"]
)
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_gradcheck_each_target_form(form, reduction):
    z, y = _batch(5, n_rows=5, n_cols=9)
    z.requires_grad_()
    if form == "class-ids":
        target = torch.tensor([0, 3, 8, 1, 1])
    elif form == "proportions":
        target = y * torch.rand(y.shape, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    else:
        target = _csr_forms(y)[form]
    assert torch.autograd.gradcheck(lambda x: sparsemax_loss(x, target, reduction), (z,))


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 10)), elements=st.floats(-10, 10, width=64)),
    st.integers(0, 2**31 - 1),
    st.sampled_from(ALGORITHMS),
)
def test_property_gradient_is_p_minus_q_and_loss_nonnegative(z, seed, algorithm):
    gen = torch.Generator().manual_seed(seed)
    y = torch.rand(z.shape, generator=gen, dtype=torch.float64) * (torch.rand(z.shape, generator=gen) < 0.5)
    y[:, 0] += 0.1  # every row labelled
    q = y / y.sum(1, keepdim=True)
    zt = torch.from_numpy(z).requires_grad_()
    loss = sparsemax_loss(zt, y, "none", algorithm=algorithm)
    (grad,) = torch.autograd.grad(loss.sum(), zt)
    p = sparsemax(zt.detach())
    torch.testing.assert_close(grad, p - q)
    assert (loss >= 0).all()
    np.testing.assert_allclose(loss.detach().numpy(), reference_loss(z, q.numpy()), atol=1e-9)
    # zero exactly when sparsemax(z) = q: aim the target at the projection itself
    at_p = sparsemax_loss(zt.detach(), p, "none", algorithm=algorithm)
    assert (at_p <= 1e-12).all()
    far = (p - q).abs().amax(dim=1) > 1e-3
    assert (loss.detach()[far] > 0).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 12), st.floats(1.0, 50.0), st.integers(0, 2**31 - 1))
def test_property_zero_loss_with_a_margin_of_one(n_cols, margin, seed):
    z = torch.randn(1, n_cols, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    gold = seed % n_cols
    others = torch.cat([z[0, :gold], z[0, gold + 1 :]]).max()
    z[0, gold] = others + margin  # z_gold >= 1 + max of the others: p = one-hot(gold) = q
    assert sparsemax_loss(z, torch.tensor([gold])).item() == 0.0
    z[0, gold] = others + 0.999  # inside the margin: the loss is positive
    assert sparsemax_loss(z, torch.tensor([gold])).item() > 0


# ---------------------------------------------------------------- empty rows and reductions
def test_empty_rows_are_refused_or_ignored():
    z, y = _batch(7, n_rows=6)
    y[[1, 4]] = 0
    with pytest.raises(ValueError, match=r"without any label \(first ones: \[1, 4\]\).*ignore_empty=True"):
        sparsemax_loss(z, y)
    csr = y.to_sparse_csr()
    with pytest.raises(ValueError, match="ignore_empty"):
        sparsemax_loss(z, (csr.col_indices(), csr.crow_indices()))

    zg = z.clone().requires_grad_()
    per_row = sparsemax_loss(zg, y, "none", ignore_empty=True)
    assert per_row[1].item() == 0 and per_row[4].item() == 0
    keep = [0, 2, 3, 5]
    expected = reference_loss(z[keep].numpy(), (y[keep] / y[keep].sum(1, keepdim=True)).numpy())
    np.testing.assert_allclose(per_row[keep].detach().numpy(), expected, atol=1e-12)
    mean = sparsemax_loss(zg, (csr.col_indices(), csr.crow_indices()), "mean", ignore_empty=True)
    assert mean.item() == pytest.approx(expected.sum() / 4)  # empty rows are not in the denominator
    (grad,) = torch.autograd.grad(mean, zg)
    assert (grad[[1, 4]] == 0).all() and (grad[keep] != 0).any()
    all_empty = sparsemax_loss(zg, torch.zeros_like(y), "mean", ignore_empty=True)
    assert all_empty.item() == 0


def test_reductions_and_module():
    z, y = _batch(8)
    per_row = sparsemax_loss(z, y, "none")
    torch.testing.assert_close(sparsemax_loss(z, y, "sum"), per_row.sum())
    torch.testing.assert_close(sparsemax_loss(z, y, "mean"), per_row.mean())
    torch.testing.assert_close(SparsemaxLoss("sum", algorithm="topk", k=2)(z, y), per_row.sum())


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "target, error, message",
    [
        (torch.tensor([0, 1, 5]), ValueError, r"class ids must lie in \[0, 5\)"),
        (torch.tensor([0, 1]), ValueError, "one entry per row"),
        (torch.tensor([0.0, 1.0, 2.0]), TypeError, "integer tensor"),
        (torch.ones(3, 4), ValueError, "shape of z"),
        (-torch.ones(3, 5), ValueError, "non-negative"),
        (torch.full((3, 5), float("nan")), ValueError, "finite"),
        ((torch.tensor([0, 0, 1]), torch.tensor([0, 2, 3, 3])), ValueError, "repeated within a row"),
        ((torch.tensor([0, 9]), torch.tensor([0, 1, 2, 2])), ValueError, r"label ids must lie in \[0, 5\)"),
        ((torch.tensor([0, 1]), torch.tensor([0, 1, 2])), ValueError, "n_rows \\+ 1 = 4"),
        ((torch.tensor([0, 1]), torch.tensor([0, 2, 1, 2])), ValueError, "never decrease"),
        ((torch.tensor([0, 1]),), TypeError, "CSR target"),
        ("labels", TypeError, "target must be"),
    ],
)
def test_target_errors(target, error, message):
    with pytest.raises(error, match=message):
        sparsemax_loss(torch.zeros(3, 5), target)


def test_argument_errors():
    with pytest.raises(ValueError, match="reduction must be one of"):
        sparsemax_loss(torch.zeros(2, 3), torch.tensor([0, 1]), reduction="elementwise_mean")
    with pytest.raises(ValueError, match="2-d floating-point"):
        sparsemax_loss(torch.zeros(3), torch.tensor([0]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        SparsemaxLoss(reduction="avg")
