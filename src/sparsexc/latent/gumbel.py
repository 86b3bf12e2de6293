"""Gumbel noise and the Gumbel-Softmax (Concrete) relaxation of a categorical variable.

Jang, Gu & Poole (2017) and Maddison, Mnih & Teh (2017): with :math:`g_j` i.i.d. standard Gumbel,
:math:`\\arg\\max_j (a_j + g_j)` is an exact draw from :math:`\\mathrm{Categorical}(\\mathrm{softmax}(a))`
(the Gumbel-max trick), and :math:`y = \\mathrm{softmax}((a + g) / \\tau)` is its relaxation: a point of the
simplex that tends to that one-hot draw as :math:`\\tau \\to 0` and to the uniform vector as
:math:`\\tau \\to \\infty`. It is a differentiable function of ``a`` for fixed noise (reparameterisation).
The straight-through variant returns the one-hot draw in the forward pass and the relaxed gradient backward.

All noise comes from a ``torch.Generator`` (``None`` = torch's global generator, which the Trainer seeds and
checkpoints), so draws are reproducible.
"""

from __future__ import annotations

import torch

__all__ = ["gumbel_argmax", "gumbel_softmax", "sample_gumbel", "straight_through"]


def _check_tau(tau: float) -> float:
    tau = float(tau)
    if not tau > 0.0:
        raise ValueError(f"tau={tau} must be a positive temperature")
    return tau


def sample_gumbel(
    shape: torch.Size | tuple[int, ...],
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Standard Gumbel noise :math:`g = -\\log E`, :math:`E \\sim \\mathrm{Exponential}(1)`.

    (The same construction as ``torch.nn.functional.gumbel_softmax``; ``exponential_`` never returns 0.)
    """
    exp = torch.empty(shape, dtype=dtype, device=device).exponential_(generator=generator)
    return -exp.log()


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """``hard`` in the forward pass, the gradient of ``soft`` in the backward pass: hard - sg(soft) + soft."""
    return hard - soft.detach() + soft


def gumbel_argmax(
    logits: torch.Tensor,
    dim: int = -1,
    generator: torch.Generator | None = None,
    gumbels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Exact categorical draws by the Gumbel-max trick: LongTensor of argmax indices along ``dim``."""
    if gumbels is None:
        gumbels = sample_gumbel(logits.shape, generator, logits.dtype, logits.device)
    return torch.argmax(logits.detach() + gumbels, dim=dim)


def gumbel_softmax(
    logits: torch.Tensor,
    tau: float = 1.0,
    hard: bool = False,
    dim: int = -1,
    generator: torch.Generator | None = None,
    gumbels: torch.Tensor | None = None,
) -> torch.Tensor:
    """A Gumbel-Softmax (Concrete) sample :math:`y = \\mathrm{softmax}((a + g)/\\tau)` along ``dim``.

    Parameters
    ----------
    logits : tensor
        Unnormalised log-probabilities :math:`a` (any shape).
    tau : float
        Temperature, > 0.
    hard : bool
        Straight-through: return the one-hot of :math:`\\arg\\max(a + g)` (the exact categorical draw made
        with the same noise) with the gradient of the relaxed sample.
    dim : int
        The category axis.
    generator : torch.Generator or None
        Source of the noise (None = torch's global generator).
    gumbels : tensor or None
        Explicit standard Gumbel noise of ``logits``' shape (for gradient checks and shared noise).

    Returns
    -------
    tensor of ``logits``' shape: rows on the simplex (relaxed) or one-hot (``hard``).
    """
    tau = _check_tau(tau)
    if gumbels is None:
        gumbels = sample_gumbel(logits.shape, generator, logits.dtype, logits.device)
    elif gumbels.shape != logits.shape:
        raise ValueError(f"gumbels has shape {tuple(gumbels.shape)}; logits have {tuple(logits.shape)}")
    soft = torch.softmax((logits + gumbels) / tau, dim=dim)
    if not hard:
        return soft
    index = soft.argmax(dim=dim, keepdim=True)  # softmax is monotone: the argmax of a + g
    one_hot = torch.zeros_like(soft).scatter_(dim, index, 1.0)
    return straight_through(one_hot, soft)
