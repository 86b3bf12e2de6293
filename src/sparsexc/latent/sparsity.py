"""The two-step sampling of a sparse code with a learned number of non-zeros (our SDLGM reconstruction).

Only the abstract of Xu et al. (IJCNN 2021, arXiv 2304.00935) is available; this is OUR design consistent with
it (see ``docs/sdlgm.md``). Per row, given length logits :math:`c \\in R^{L_0}` and selection logits
:math:`a \\in R^D`:

1. sparsity level :math:`L \\sim q(L \\mid x) = \\mathrm{softmax}(c)` over :math:`\\{1, \\dots, L_0\\}`, relaxed as a
   Gumbel-Softmax one-hot :math:`\\tilde\\ell` (first Gumbel-Softmax);
2. active set: the first L picks of a Plackett-Luce ranking from :math:`\\mathrm{softmax}(a)` (Gumbel-top-k),
   relaxed by successive softmaxes :math:`p^{(1)}, \\dots, p^{(L_0)}` (second Gumbel-Softmax family).

The relaxed mask is :math:`m = \\sum_l \\tilde\\ell_l \\sum_{j \\le l} p^{(j)} = \\sum_j s_j p^{(j)}` with the
relaxed survival :math:`s_j = \\sum_{l \\ge j} \\tilde\\ell_l` (a soft "L >= j"); it tends to the exact indicator
of the first L picks as both temperatures go to 0. One pass of L0 softmaxes serves every level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sparsexc.latent.gumbel import gumbel_softmax, straight_through
from sparsexc.latent.subset import sequential_kl, successive_softmax, topk_mask

__all__ = [
    "SparseSample",
    "fixed_length_logits",
    "length_kl",
    "mode_lengths",
    "mode_mask",
    "selection_kl",
    "two_step_sample",
]


@dataclass
class SparseSample:
    """One draw of the two-step sampler for a batch of B rows.

    Attributes
    ----------
    mask : tensor (B, D)
        The relaxed mask (entries in [0, 1] up to rounding; row sums close to L), or with ``hard=True`` the
        exact 0/1 indicator carrying the relaxed gradient (straight-through).
    length : tensor (B, L0)
        The relaxed one-hot of the level (column l-1 stands for L = l); one-hot with ``hard=True``.
    lengths : LongTensor (B,)
        The exact level drawn with the same noise (1..L0).
    order : LongTensor (B, L0)
        The exact Plackett-Luce picks drawn with the same noise, in order.
    """

    mask: torch.Tensor
    length: torch.Tensor
    lengths: torch.Tensor
    order: torch.Tensor


def _check_shapes(length_logits: torch.Tensor, selection_logits: torch.Tensor) -> tuple[int, int]:
    if length_logits.dim() != 2 or selection_logits.dim() != 2 or length_logits.shape[0] != selection_logits.shape[0]:
        raise ValueError(
            f"length_logits (B, L0) and selection_logits (B, D) must be 2-d with the same rows; got "
            f"{tuple(length_logits.shape)} and {tuple(selection_logits.shape)}"
        )
    max_active, dim = length_logits.shape[1], selection_logits.shape[1]
    if max_active > dim:
        raise ValueError(f"max_active L0={max_active} exceeds the number of dimensions D={dim}")
    return max_active, dim


def two_step_sample(
    length_logits: torch.Tensor,
    selection_logits: torch.Tensor,
    tau_length: float,
    tau_select: float,
    hard: bool = False,
    generator: torch.Generator | None = None,
) -> SparseSample:
    """Draw the level and the active set (relaxed, or straight-through with ``hard=True``).

    Parameters
    ----------
    length_logits : tensor (B, L0), logits of q(L | x) over 1..L0
    selection_logits : tensor (B, D), Plackett-Luce logits of the active dimensions (D >= L0)
    tau_length, tau_select : temperatures of the two relaxations (> 0)
    hard : bool, straight-through (exact forward values, relaxed gradients)
    generator : torch.Generator or None (None = torch's global generator)
    """
    max_active, _ = _check_shapes(length_logits, selection_logits)
    soft_length = gumbel_softmax(length_logits, tau_length, generator=generator)
    lengths = soft_length.argmax(dim=1) + 1  # = argmax(c + g): the exact draw of L
    picks, order = successive_softmax(selection_logits, max_active, tau_select, generator=generator)
    # s_j = sum_{l >= j} ell_l, a reverse cumulative sum over the levels
    survival = soft_length.flip(1).cumsum(1).flip(1)
    soft_mask = torch.einsum("jbd,bj->bd", picks, survival)
    if not hard:
        return SparseSample(soft_mask, soft_length, lengths, order)
    ranks = torch.arange(max_active, device=order.device).expand_as(order)
    exact = torch.zeros_like(soft_mask).scatter_(1, order, (ranks < lengths[:, None]).to(soft_mask.dtype))
    one_hot = torch.zeros_like(soft_length).scatter_(1, (lengths - 1)[:, None], 1.0)
    return SparseSample(straight_through(exact, soft_mask), straight_through(one_hot, soft_length), lengths, order)


def fixed_length_logits(like: torch.Tensor, max_active: int) -> torch.Tensor:
    """Level logits of the point mass :math:`q(L = L_0 \\mid x) = 1`: (B, L0), :math:`-\\infty` except the last column.

    The fixed-L ablation of the learned level (``fixed_level=True``): fed to :func:`two_step_sample`, the relaxed
    level is exactly one-hot at L0 whatever the noise (:math:`\\exp(-\\infty) = 0`), so every survival
    :math:`s_j = 1` and the mask is :math:`\\sum_{j \\le L_0} p^{(j)}`; :func:`mode_mask` gives the top-L0 and
    :func:`selection_kl` sums all L0 picks. A constant: no gradient flows into it. :func:`length_kl` is not
    defined for it (0 times infinity); with a point-mass prior at L0 the level KL is 0. ``like`` gives the rows,
    the dtype and the device.
    """
    if max_active < 1:
        raise ValueError(f"max_active={max_active} must be >= 1")
    logits = like.new_full((like.shape[0], max_active), -math.inf)
    logits[:, -1] = 0.0
    return logits


def length_kl(length_logits: torch.Tensor, prior_logits: torch.Tensor | None = None) -> torch.Tensor:
    """:math:`\\mathrm{KL}(q(L \\mid x) \\,\\|\\, p(L))` per row, exact (L0 terms); p uniform when ``prior_logits`` is None."""
    log_q = torch.log_softmax(length_logits, dim=1)
    if prior_logits is None:
        log_p = log_q.new_full(log_q.shape, -math.log(log_q.shape[1]))
    else:
        log_p = torch.log_softmax(prior_logits.expand_as(length_logits), dim=1)
    return (log_q.exp() * (log_q - log_p)).sum(dim=1)


def selection_kl(
    selection_logits: torch.Tensor,
    prior_logits: torch.Tensor,
    order: torch.Tensor,
    length_logits: torch.Tensor,
) -> torch.Tensor:
    """:math:`E_{q(L|x)}[\\sum_{j \\le L} \\mathrm{KL}_j]` per row, for the sampled picks ``order``.

    ``KL_j`` is the per-pick KL of :func:`sparsexc.latent.subset.sequential_kl` between the Plackett-Luce
    models of ``selection_logits`` and ``prior_logits`` (broadcast, e.g. (D,) or zeros for the uniform prior).
    The expectation over L is exact: :math:`\\sum_j \\mathrm{KL}_j \\, q(L \\ge j \\mid x)`. With ``order`` an
    exact draw from q, it is an unbiased estimate of the KL of the (ordered) first-L picks given L, averaged
    over L: an upper bound on the KL of the unordered active sets.
    """
    per_pick = sequential_kl(selection_logits, prior_logits, order)
    q_length = torch.softmax(length_logits, dim=1)
    at_least = q_length.flip(1).cumsum(1).flip(1)  # q(L >= j)
    return (per_pick * at_least).sum(dim=1)


def mode_lengths(length_logits: torch.Tensor) -> torch.Tensor:
    """The most probable level per row, LongTensor (B,) in 1..L0 (ties to the smaller level)."""
    return torch.argmax(length_logits, dim=1) + 1


def mode_mask(length_logits: torch.Tensor, selection_logits: torch.Tensor) -> torch.Tensor:
    """The deterministic code support: the top-L* dimensions of ``selection_logits`` with L* the mode of q(L|x)."""
    _check_shapes(length_logits, selection_logits)
    return topk_mask(selection_logits, mode_lengths(length_logits))
