"""sparsemax_attention: same shapes and mask semantics as torch's scaled_dot_product_attention."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.functional import scaled_dot_product_attention as sdpa

from sparsexc.ops import SparsemaxAttention, sparsemax, sparsemax_attention


def _qkv(seed: int, batch=(2, 3), n_queries=5, n_keys=7, dim=4, dim_v=6):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(*batch, n_queries, dim, generator=gen, dtype=torch.float64)
    k = torch.randn(*batch, n_keys, dim, generator=gen, dtype=torch.float64)
    v = torch.randn(*batch, n_keys, dim_v, generator=gen, dtype=torch.float64)
    return q, k, v


def _sdpa_weights(q, k, **kwargs):
    """Softmax weights as torch computes them: SDPA applied to identity values."""
    eye = torch.eye(k.shape[-2], dtype=k.dtype).expand(*k.shape[:-1], k.shape[-2])
    return sdpa(q, k, eye, **kwargs)


@pytest.mark.parametrize("case", ["plain", "bool-mask", "float-mask", "causal", "causal-rect", "scale"])
def test_same_scores_and_masks_as_sdpa(case):
    # sparsemax is shift invariant, so sparsemax(log softmax weights) = sparsemax(masked scaled scores):
    # this pins our scores, scale, mask and causal conventions to SDPA's.
    q, k, v = _qkv(0, n_queries=7 if case != "causal-rect" else 4)
    gen = torch.Generator().manual_seed(1)
    ours, theirs = {}, {}
    if case == "bool-mask":
        mask = torch.rand(7, 7, generator=gen) < 0.7
        mask[:, 0] = True
        ours["mask"] = theirs["attn_mask"] = mask
    elif case == "float-mask":
        mask = torch.randn(3, 7, 7, generator=gen, dtype=torch.float64)
        mask[..., 2] = float("-inf")
        ours["mask"] = theirs["attn_mask"] = mask
    elif case in ("causal", "causal-rect"):
        ours["causal"] = theirs["is_causal"] = True
    elif case == "scale":
        ours["scale"] = theirs["scale"] = 2.5
    out, weights = sparsemax_attention(q, k, v, return_weights=True, **ours)
    expected = sparsemax(torch.log(_sdpa_weights(q, k, **theirs)), dim=-1)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(out, expected @ v)
    assert out.shape == sdpa(q, k, v, **theirs).shape
    if case in ("bool-mask", "causal"):
        allowed = ours["mask"] if case == "bool-mask" else torch.ones(7, 7, dtype=torch.bool).tril()
        assert (weights[..., ~allowed] == 0).all()


def test_formula_and_shapes_without_batch_dims():
    q, k, v = _qkv(2, batch=(), n_queries=3, n_keys=9, dim=5, dim_v=2)
    out, weights = sparsemax_attention(q, k, v, return_weights=True)
    torch.testing.assert_close(weights, sparsemax(q @ k.T / math.sqrt(5), dim=-1))
    assert out.shape == (3, 2) == sdpa(q, k, v).shape
    assert (weights == 0).any()  # sparse


def test_key_mask_is_a_padding_mask():
    q, k, v = _qkv(3)
    key_mask = torch.tensor([[True] * 5 + [False] * 2, [True] * 7])
    out, weights = sparsemax_attention(q, k, v, return_weights=True, key_mask=key_mask)
    expected_out, expected_w = sparsemax_attention(q, k, v, key_mask[:, None, None, :], return_weights=True)
    torch.testing.assert_close(weights, expected_w)
    torch.testing.assert_close(out, expected_out)
    assert (weights[0, ..., 5:] == 0).all()
    # same as dropping the padded keys
    torch.testing.assert_close(out[0], sparsemax_attention(q[0], k[0, :, :5], v[0, :, :5]))


def test_fully_masked_queries_give_zeros_and_finite_gradients():
    q, k, v = _qkv(4)
    q.requires_grad_()
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[2] = False
    out, weights = sparsemax_attention(q, k, v, mask, return_weights=True)
    assert (weights[..., 2, :] == 0).all() and (out[..., 2, :] == 0).all()
    torch.testing.assert_close(weights[..., [0, 1, 3, 4], :].sum(-1), torch.ones(2, 3, 4, dtype=torch.float64))
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and (q.grad[..., 2, :] == 0).all()


def test_gradcheck():
    q, k, v = _qkv(5, batch=(2,), n_queries=3, n_keys=4, dim=3, dim_v=2)
    mask = torch.tensor([[True, True, False, True], [True, True, True, True], [False, True, True, True]])
    for t in (q, k, v):
        t.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b, c: sparsemax_attention(a, b, c, mask, causal=False), (q, k, v))
    assert torch.autograd.gradcheck(lambda a, b, c: sparsemax_attention(a, b, c, causal=True, scale=3.0), (q, k, v))


def test_module_matches_function():
    q, k, v = _qkv(6)
    key_mask = torch.tensor([[True] * 6 + [False], [True] * 7])
    module = SparsemaxAttention(causal=True, scale=0.7)
    got = module(q, k, v, key_mask=key_mask, return_weights=True)
    expected = sparsemax_attention(q, k, v, causal=True, scale=0.7, return_weights=True, key_mask=key_mask)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    assert "causal=True" in repr(module)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(key=torch.zeros(2, 3, 7, 5)), ValueError, "share the embedding size"),
        (dict(value=torch.zeros(2, 3, 6, 6)), ValueError, "S = 7 keys"),
        (dict(mask=torch.ones(4, 7, dtype=torch.bool)), ValueError, "does not broadcast"),
        (dict(mask=torch.ones(5, 7, dtype=torch.long)), TypeError, "bool"),
        (dict(key_mask=torch.ones(2, 6, dtype=torch.bool)), ValueError, "key_mask must be a bool"),
        (dict(key_mask=torch.ones(2, 7)), ValueError, "key_mask must be a bool"),
    ],
)
def test_errors(kwargs, error, message):
    q, k, v = _qkv(7)
    args = dict(query=q, key=k, value=v)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        sparsemax_attention(**args)
