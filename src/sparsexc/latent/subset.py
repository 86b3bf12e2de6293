"""Subsets of k out of D items: exact Gumbel-top-k draws, their relaxation, Plackett-Luce probabilities and KLs.

Gumbel-top-k (Vieira 2014; Kool, van Hoof & Welling 2019): the indices of the k largest perturbed keys
:math:`r = a + g` (:math:`g` i.i.d. standard Gumbel) are an exact draw, *in order*, of k items without
replacement from :math:`\\mathrm{softmax}(a)`, i.e. of the first k places of a Plackett-Luce ranking:

.. math::
    q(\\pi_1, \\dots, \\pi_k) = \\prod_{j=1}^{k}
        \\frac{e^{a_{\\pi_j}}}{\\sum_{m \\notin \\{\\pi_1..\\pi_{j-1}\\}} e^{a_m}} .

The unordered subset has probability :math:`\\sum_{\\text{orders}} q(\\pi)` (k! terms).

The relaxation (Plötz & Roth 2018, "Neural nearest neighbors networks"; Xie & Ermon 2019, "Reparameterizable
subset sampling via continuous relaxations") is k successive softmaxes of the same keys, each damping the
items already (softly) taken:

.. math::
    r^{(1)} = a + g, \\quad p^{(j)} = \\mathrm{softmax}(r^{(j)} / \\tau), \\quad
    r^{(j+1)} = r^{(j)} + \\log(1 - p^{(j)}),

and the relaxed k-hot vector is :math:`\\sum_{j \\le k} p^{(j)}`. As :math:`\\tau \\to 0`, :math:`p^{(j)}`
tends to the one-hot of the j-th largest key, so the relaxed k-hot tends to the exact Gumbel-top-k indicator
drawn with the same noise; as :math:`\\tau \\to \\infty` every entry tends to k/D.
"""

from __future__ import annotations

import itertools
import math

import torch

from sparsexc.latent.gumbel import _check_tau, sample_gumbel, straight_through

__all__ = [
    "gumbel_topk",
    "plackett_luce_log_prob",
    "relaxed_topk",
    "sequential_kl",
    "subset_log_prob",
    "successive_softmax",
    "topk_mask",
]

MAX_BRUTE_FORCE_K = 8  # subset_log_prob sums k! orders


def _check_k(k: int, n_items: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n_items:
        raise ValueError(f"k={k!r} must be an integer in 1..{n_items} (the number of items)")
    return k


def _keys(logits: torch.Tensor, generator: torch.Generator | None, gumbels: torch.Tensor | None) -> torch.Tensor:
    if gumbels is None:
        gumbels = sample_gumbel(logits.shape, generator, logits.dtype, logits.device)
    elif gumbels.shape != logits.shape:
        raise ValueError(f"gumbels has shape {tuple(gumbels.shape)}; logits have {tuple(logits.shape)}")
    return logits + gumbels


def gumbel_topk(
    logits: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
    gumbels: torch.Tensor | None = None,
) -> torch.Tensor:
    """An exact draw of k items without replacement from ``softmax(logits)`` along the last axis, in order.

    Returns a LongTensor ``(..., k)``: the indices of the k largest keys ``logits + g``, largest first.
    """
    k = _check_k(k, logits.shape[-1])
    keys = _keys(logits.detach(), generator, gumbels)
    return torch.topk(keys, k, dim=-1).indices


def successive_softmax(
    logits: torch.Tensor,
    k: int,
    tau: float = 1.0,
    generator: torch.Generator | None = None,
    gumbels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k relaxed picks :math:`p^{(1)}, \\dots, p^{(k)}` of the successive-softmax relaxation.

    Parameters
    ----------
    logits : tensor (..., D)
    k : int, 1..D
    tau : float, > 0
    generator, gumbels : the noise source, or explicit standard Gumbel noise of ``logits``' shape

    Returns
    -------
    picks : tensor (k, ..., D)
        ``picks[j]`` is the relaxed one-hot of the (j+1)-th pick; each lies on the simplex.
    order : LongTensor (..., k)
        The exact Gumbel-top-k draw made with the same noise (indices of the k largest keys, in order).
    """
    tau = _check_tau(tau)
    k = _check_k(k, logits.shape[-1])
    keys = _keys(logits, generator, gumbels)
    order = torch.topk(keys.detach(), k, dim=-1).indices
    tiny = torch.finfo(logits.dtype).tiny
    picks = []
    current = keys
    for j in range(k):
        p = torch.softmax(current / tau, dim=-1)
        picks.append(p)
        if j + 1 < k:
            # damp what was taken; the clamp keeps log finite when a pick is (numerically) one-hot
            current = current + torch.log(torch.clamp_min(1.0 - p, tiny))
    return torch.stack(picks), order


def topk_mask(scores: torch.Tensor, k: torch.Tensor | int) -> torch.Tensor:
    """Boolean mask of the ``k_i`` largest entries of each row of ``scores`` (B, D); ties to the lower index.

    ``k`` is an int or a LongTensor (B,) of per-row sizes in 0..D.
    """
    n_rows, n_items = scores.shape
    k = torch.as_tensor(k, device=scores.device).long().expand(n_rows)
    if bool(((k < 0) | (k > n_items)).any()):
        raise ValueError(f"k must lie in 0..{n_items} for every row; got {k.tolist()}")
    order = torch.sort(-scores.detach(), dim=1, stable=True).indices
    ranks = torch.arange(n_items, device=scores.device).expand(n_rows, n_items)
    return torch.zeros(n_rows, n_items, dtype=torch.bool, device=scores.device).scatter_(1, order, ranks < k[:, None])


def relaxed_topk(
    logits: torch.Tensor,
    k: int,
    tau: float = 1.0,
    hard: bool = False,
    generator: torch.Generator | None = None,
    gumbels: torch.Tensor | None = None,
) -> torch.Tensor:
    """A relaxed k-hot sample :math:`\\sum_{j \\le k} p^{(j)}` of a k-subset drawn from ``softmax(logits)``.

    With ``hard=True`` (straight-through) the forward value is the exact Gumbel-top-k indicator made with the
    same noise and the gradient is that of the relaxed sample. ``logits`` is (B, D) or (D,).
    """
    picks, order = successive_softmax(logits, k, tau, generator, gumbels)
    soft = picks.sum(dim=0)
    if not hard:
        return soft
    exact = torch.zeros_like(soft).scatter_(-1, order, 1.0)
    return straight_through(exact, soft)


def plackett_luce_log_prob(logits: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Log-probability of the ordered picks ``order`` (..., k) under Plackett-Luce with ``logits`` (..., D).

    :math:`\\sum_j a_{\\pi_j} - \\log \\sum_{m \\text{ not yet picked}} e^{a_m}`; differentiable in ``logits``.
    """
    taken = torch.zeros(logits.shape, dtype=torch.bool, device=logits.device)
    total = logits.new_zeros(logits.shape[:-1])
    for j in range(order.shape[-1]):
        remaining = logits.masked_fill(taken, -math.inf)
        index = order[..., j : j + 1]
        total = total + logits.gather(-1, index).squeeze(-1) - torch.logsumexp(remaining, dim=-1)
        taken = taken.scatter(-1, index, True)
    return total


def subset_log_prob(logits: torch.Tensor, subset: torch.Tensor) -> torch.Tensor:
    """Log-probability that the first k Plackett-Luce picks form the unordered set ``subset`` (..., k).

    Brute force: log-sum-exp over the k! orders (k <= 8); a reference for tests and tiny problems.
    """
    k = subset.shape[-1]
    if k > MAX_BRUTE_FORCE_K:
        raise ValueError(f"subset_log_prob sums over k! orders; k={k} exceeds {MAX_BRUTE_FORCE_K}")
    terms = [plackett_luce_log_prob(logits, subset[..., list(perm)]) for perm in itertools.permutations(range(k))]
    return torch.logsumexp(torch.stack(terms), dim=0)


def sequential_kl(q_logits: torch.Tensor, p_logits: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Per-pick KL of two Plackett-Luce models along the picks ``order`` (B, k).

    ``KL[:, j]`` is :math:`\\mathrm{KL}(q(\\cdot \\mid \\pi_{<j}) \\,\\|\\, p(\\cdot \\mid \\pi_{<j}))`, both
    softmaxes restricted to the items not in :math:`\\pi_1..\\pi_{j-1}`. By the chain rule of KL,
    :math:`E_{\\pi \\sim q}[\\sum_{j \\le k} \\mathrm{KL}_j] = \\mathrm{KL}(q(\\pi_{1..k}) \\| p(\\pi_{1..k}))`
    (ordered), an upper bound of the KL of the unordered subsets (data processing inequality).
    ``p_logits`` broadcasts against ``q_logits`` (B, D), e.g. a (D,) prior. Returns (B, k), differentiable
    in both logits (the picks are treated as given).
    """
    p_logits = p_logits.expand_as(q_logits)
    taken = torch.zeros(q_logits.shape, dtype=torch.bool, device=q_logits.device)
    # a finite "minus infinity": -inf - (-inf) would be NaN and poison the gradient even where masked out
    removed = torch.finfo(q_logits.dtype).min / 4
    out = []
    for j in range(order.shape[-1]):
        log_q = torch.log_softmax(q_logits.masked_fill(taken, removed), dim=-1)
        log_p = torch.log_softmax(p_logits.masked_fill(taken, removed), dim=-1)
        terms = torch.where(taken, torch.zeros_like(log_q), log_q.exp() * (log_q - log_p))
        out.append(terms.sum(dim=-1))
        taken = taken.scatter(-1, order[..., j : j + 1], True)
    return torch.stack(out, dim=-1)
