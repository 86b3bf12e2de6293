"""sparsemax: against brute-force projections and the entmax package, on every algorithm path."""

from __future__ import annotations

import itertools

import entmax
import numpy as np
import pytest
import torch
from _references import sparsemax_reference
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import minimize

import sparsexc.ops._simplex as simplex
from sparsexc.ops import AUTO_BISECT_MAX_K, AUTO_SORT_MAX_K, AUTO_TOPK_K, Sparsemax, sparsemax

# every way to run the projection; small k forces topk's doubling
PATHS = [
    dict(algorithm="auto"),
    dict(algorithm="sort"),
    dict(algorithm="topk"),
    dict(algorithm="topk", k=1),
    dict(algorithm="topk", k=3),
    dict(algorithm="bisect"),
]
PATH_IDS = ["auto", "sort", "topk", "topk-k1", "topk-k3", "bisect"]


# ---------------------------------------------------------------- independent references
def reference_enumerate(z: np.ndarray) -> np.ndarray:
    """The projection from its KKT conditions: try every support S (tiny K only)."""
    z = np.asarray(z, dtype=np.float64)
    found = []
    for size in range(1, len(z) + 1):
        for support in itertools.combinations(range(len(z)), size):
            s = list(support)
            tau = (z[s].sum() - 1) / size
            rest = np.setdiff1d(np.arange(len(z)), s)
            if np.all(z[s] > tau) and np.all(z[rest] <= tau):
                found.append(np.maximum(z - tau, 0))
    assert len(found) >= 1
    return found[0]


def reference_qp(z: np.ndarray) -> np.ndarray:
    """argmin |p - z|^2 over the simplex by SLSQP (tiny K only)."""
    z = np.asarray(z, dtype=np.float64)
    # same minimiser as |p - z|^2 / 2, written as 1/2 |p|^2 - z.p (better scaled for SLSQP)
    res = minimize(
        lambda p: 0.5 * (p**2).sum() - z @ p,
        np.full(len(z), 1 / len(z)),
        jac=lambda p: p - z,
        bounds=[(0, None)] * len(z),
        constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1, "jac": lambda p: np.ones_like(p)}],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 500},
    )
    # status 8 ("positive directional derivative in line search") is SLSQP stalling AT the optimum when
    # the start is already within ftol; accept it only with a feasible point, the tolerance check follows
    assert res.success or (res.status == 8 and abs(res.x.sum() - 1) < 1e-9 and res.x.min() > -1e-9), res.message
    return res.x


# ---------------------------------------------------------------- agreement with the references
@pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)
def test_matches_enumeration_and_qp_on_tiny_inputs(path):
    gen = torch.Generator().manual_seed(0)
    z = (
        torch.randn(40, 5, generator=gen, dtype=torch.float64)
        * torch.tensor([0.1, 1.0, 3.0, 10.0]).repeat(10)[:, None].double()
    )
    p = sparsemax(z, **path).numpy()
    for row, got in zip(z.numpy(), p):
        np.testing.assert_allclose(got, reference_enumerate(row), atol=1e-12)
    for row, got in zip(z.numpy(), p):
        np.testing.assert_allclose(got, reference_qp(row), atol=1e-8)


@pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)
@pytest.mark.parametrize("n_cols", [1, 2, 7, 64, 65, 300, 2000])
@pytest.mark.parametrize("scale", [0.001, 1.0, 30.0])
def test_matches_plain_sort_reference_and_entmax(path, n_cols, scale):
    gen = torch.Generator().manual_seed(n_cols)
    z = torch.randn(9, n_cols, generator=gen, dtype=torch.float64) * scale
    p = sparsemax(z, **path)
    np.testing.assert_allclose(p.numpy(), sparsemax_reference(z.numpy()), atol=1e-12)
    np.testing.assert_allclose(p.numpy(), entmax.sparsemax(z, dim=-1).numpy(), atol=1e-12)


@pytest.mark.parametrize(
    "flat_scale, flat_rows", [(0.001, slice(0, None, 2)), (0.001, slice(None)), (1e-6, slice(0, None, 3))]
)
def test_auto_covers_topk_and_the_search_behind_it(flat_scale, flat_rows):
    # K above the bisect limit; flat rows have supports far larger than the first top-k (with 1e-6, the
    # whole row: a dense support), sharp rows not
    assert AUTO_SORT_MAX_K < 300 < AUTO_BISECT_MAX_K < 5000  # so the other tests run every auto regime
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(12, 5000, generator=gen, dtype=torch.float64)
    flat = torch.zeros(12, dtype=torch.bool)
    flat[flat_rows] = True
    z[flat] *= flat_scale
    z.requires_grad_()
    p = sparsemax(z)
    support = (p > 0).sum(dim=1)
    assert (support[flat] > AUTO_TOPK_K).all() and (support[~flat] < AUTO_TOPK_K).all()
    np.testing.assert_allclose(p.detach().numpy(), sparsemax_reference(z.detach().numpy()), atol=1e-12)
    v = torch.randn(z.shape, generator=gen, dtype=torch.float64)
    (grad,) = torch.autograd.grad(p, z, v)
    s = (p > 0).double()
    torch.testing.assert_close(grad, s * (v - (s * v).sum(1, keepdim=True) / s.sum(1, keepdim=True)))


def test_bisect_falls_back_to_sorting_when_it_does_not_settle(monkeypatch):
    monkeypatch.setattr(simplex, "_MAX_PIVOT_STEPS", 1)
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(6, 500, generator=gen, dtype=torch.float64) * 0.01
    np.testing.assert_allclose(sparsemax(z, algorithm="bisect").numpy(), sparsemax_reference(z.numpy()), atol=1e-12)


# ---------------------------------------------------------------- special values, on every path
def _special_rows(dtype: torch.dtype) -> torch.Tensor:
    inf, nan = float("inf"), float("nan")
    gen = torch.Generator().manual_seed(3)
    rows = [
        torch.randn(8, generator=gen),
        torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, -2.0, 0.5, 1.0]),  # ties in the support
        torch.tensor([0.5, 0.5, 0.0, 0.0, -0.5, -0.5, 0.5, 0.0]),  # ties at the threshold too
        torch.full((8,), 3.0),  # all equal
        torch.randn(8, generator=gen) * 1e30,  # huge
        torch.tensor([1e30, 1e30, 0.0, -1e30, 1e30, 5.0, 1e29, 0.0]),  # huge ties
        torch.randn(8, generator=gen) * 1e-30,  # tiny: uniform
        torch.tensor([0.3, -inf, 0.1, -inf, 0.2, -inf, -inf, 0.25]),  # masking
        torch.tensor([-inf, -inf, 7.0, -inf, -inf, -inf, -inf, -inf]),  # one unmasked entry
        torch.full((8,), -inf),  # all masked
        torch.tensor([0.1, nan, 0.3, 0.2, 0.0, 1.0, -1.0, 2.0]),  # NaN
        torch.tensor([0.1, inf, 0.3, inf, 0.0, -inf, -1.0, 2.0]),  # +inf entries share the mass
    ]
    return torch.stack(rows).to(dtype)


def _expected_special(z: torch.Tensor) -> np.ndarray:
    z = z.double().numpy()
    out = np.zeros_like(z)
    for i, row in enumerate(z):
        if np.isnan(row).any():
            out[i] = np.nan
        elif np.isposinf(row).any():
            out[i] = np.isposinf(row) / np.isposinf(row).sum()
        elif np.isneginf(row).all():
            out[i] = 0
        else:
            finite = np.isfinite(row)
            shifted = row[finite] - row[finite].max()
            out[i, finite] = sparsemax_reference(shifted[None])[0]
    return out


@pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_special_values_on_every_path(path, dtype):
    z = _special_rows(dtype)
    p = sparsemax(z, **path)
    assert p.dtype == dtype
    tol = {torch.float64: 1e-12, torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 8e-3}[dtype]
    np.testing.assert_allclose(p.double().numpy(), _expected_special(z), atol=tol)
    # half precision is projected in float32 and rounded once
    if dtype in (torch.float16, torch.bfloat16):
        torch.testing.assert_close(p, sparsemax(z.float(), **path).to(dtype), atol=0, rtol=0, equal_nan=True)


@pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)
@pytest.mark.parametrize("n_cols", [600, 5000])
def test_special_values_in_a_wide_batch(path, n_cols):
    # the same rows inside a batch of long rows, where auto uses bisect, or topk + bisect
    z = torch.randn(12, n_cols, generator=torch.Generator().manual_seed(4)) * 0.01
    z[:, :8] = _special_rows(torch.float32) + 1  # raise them above the noise
    z[9, :] = float("-inf")
    z[8, 8:] = float("-inf")
    p = sparsemax(z, **path)
    np.testing.assert_allclose(p.double().numpy(), _expected_special(z), atol=1e-6)


@pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2])
def test_any_dim(path, dim):
    z = torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    p = sparsemax(z, dim, **path)
    expected = torch.from_numpy(sparsemax_reference(z.movedim(dim, -1).numpy())).movedim(-1, dim)
    torch.testing.assert_close(p, expected, atol=1e-12, rtol=0)
    assert p.shape == z.shape
    torch.testing.assert_close(p.sum(dim), torch.ones_like(p.sum(dim)))


def test_empty_inputs():
    assert sparsemax(torch.zeros(0, 5)).shape == (0, 5)
    assert sparsemax(torch.zeros(3, 0)).shape == (3, 0)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)
@pytest.mark.parametrize("dim", [0, -1])
def test_gradcheck(path, dim):
    z = torch.randn(6, 7, generator=torch.Generator().manual_seed(6), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: sparsemax(x, dim, **path), (z,))
    assert torch.autograd.gradgradcheck(lambda x: sparsemax(x, dim, **path), (z,))


@pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)
def test_gradcheck_wide_rows(path):
    # flat rows have wide supports (dense backward), sharp ones few (listed support)
    z = torch.randn(4, 400, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    z[:2] *= 0.001
    z.requires_grad_()
    assert torch.autograd.gradcheck(lambda x: sparsemax(x, **path), (z,), fast_mode=True)


@pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)
def test_backward_is_the_support_jacobian(path):
    z = _special_rows(torch.float64)[:9].clone().requires_grad_()  # finite-max rows, with -inf masking
    v = torch.randn(z.shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    (grad,) = torch.autograd.grad(sparsemax(z, **path), z, v)
    p = sparsemax(z.detach(), algorithm="sort")
    s = (p > 0).double()
    expected = s * (v - (s * v).sum(1, keepdim=True) / s.sum(1, keepdim=True))  # J = diag(s) - s s^T / |S|
    torch.testing.assert_close(grad, expected)


def test_gradients_of_special_rows():
    z = _special_rows(torch.float32).requires_grad_()
    sparsemax(z).sum().backward()
    grad = z.grad
    assert torch.isnan(grad[10]).all()  # NaN row
    assert (grad[9] == 0).all() and (grad[11] == 0).all()  # all -inf; +inf (locally constant)
    assert torch.isfinite(grad[:9]).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_gradient(dtype):
    z = torch.randn(3, 10, generator=torch.Generator().manual_seed(9)).to(dtype).requires_grad_()
    v = torch.randn(3, 10, generator=torch.Generator().manual_seed(10)).to(dtype)
    (grad,) = torch.autograd.grad(sparsemax(z), z, v)
    assert grad.dtype == dtype
    z32 = z.detach().float().requires_grad_()
    (grad32,) = torch.autograd.grad(sparsemax(z32), z32, v.float())
    torch.testing.assert_close(grad, grad32.to(dtype))


# ---------------------------------------------------------------- properties (hypothesis)
rows_strategy = arrays(
    np.float64, st.tuples(st.integers(1, 4), st.integers(1, 12)), elements=st.floats(-20, 20, allow_nan=False, width=64)
)


@settings(max_examples=60, deadline=None)
@given(rows_strategy, st.sampled_from(range(len(PATHS))))
def test_property_simplex_and_support(z, which):
    p = sparsemax(torch.from_numpy(z), **PATHS[which])
    assert torch.all(p >= 0)
    torch.testing.assert_close(p.sum(-1), torch.ones(z.shape[0], dtype=torch.float64))
    # support size = k(z) of Algorithm 1 = number of positive entries
    for row, prow in zip(z, p):
        s = np.sort(row)[::-1]
        k = max(j for j in range(1, len(s) + 1) if 1 + j * s[j - 1] > s[:j].sum())
        assert int((prow > 1e-12).sum()) == k or np.isclose(1 + k * s[k - 1], s[:k].sum())


@settings(max_examples=60, deadline=None)
@given(rows_strategy, st.floats(-1e3, 1e3), st.sampled_from(range(len(PATHS))), st.randoms(use_true_random=False))
def test_property_translation_invariance_and_permutation_equivariance(z, shift, which, rnd):
    zt = torch.from_numpy(z)
    p = sparsemax(zt, **PATHS[which])
    torch.testing.assert_close(sparsemax(zt + shift, **PATHS[which]), p, atol=1e-9, rtol=0)
    perm = list(range(z.shape[1]))
    rnd.shuffle(perm)
    torch.testing.assert_close(sparsemax(zt[:, perm], **PATHS[which]), p[:, perm], atol=1e-12, rtol=0)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.integers(2, 10), elements=st.integers(-6, 6).map(float)), st.sampled_from(range(len(PATHS)))
)
def test_property_hardmax_limit(z, which):
    # sparsemax(z / eps) is the uniform distribution on the argmax set A exactly once eps <= gap * |A|
    top = z.max()
    argmax = z == top
    if argmax.all():
        return
    gap = top - z[~argmax].max()
    hard = argmax / argmax.sum()
    eps = gap * argmax.sum()
    p_at = sparsemax(torch.from_numpy(z / (0.999 * eps)), **PATHS[which]).numpy()
    np.testing.assert_allclose(p_at, hard, atol=1e-12)
    p_before = sparsemax(torch.from_numpy(z / (1.01 * eps)), **PATHS[which]).numpy()
    assert (p_before[~argmax] > 0).any()


# ---------------------------------------------------------------- module and errors
def test_module_matches_function():
    z = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(11))
    m = Sparsemax(dim=1, algorithm="topk", k=2)
    assert torch.equal(m(z), sparsemax(z, 1, algorithm="topk", k=2))
    assert "algorithm='topk'" in repr(m)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(algorithm="fast"), "algorithm must be one of"),
        (dict(algorithm="sort", k=4), "k is only used by algorithm='topk'"),
        (dict(algorithm="topk", k=0), "k must be a positive int"),
        (dict(dim=2), "dim must be in"),
    ],
)
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sparsemax(torch.zeros(2, 3), **kwargs)


def test_type_errors():
    with pytest.raises(TypeError, match="floating-point"):
        sparsemax(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="0-d"):
        sparsemax(torch.tensor(1.0))
