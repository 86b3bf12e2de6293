"""The networks and per-row ELBO terms behind :class:`sparsexc.estimator.vae.SparseVAE` and ``GaussianVAE``.

Generative model (OUR reconstruction of SDLGM; see ``docs/sdlgm.md``):
:math:`L \\sim \\mathrm{Uniform}\\{1..L_0\\}`, active set :math:`S \\mid L` = the first L picks of a uniform
Plackett-Luce ranking of the D dimensions (a uniform L-subset), values :math:`v \\sim N(0, I_D)`,
code :math:`z = 1_S \\odot v`, observation :math:`x \\sim p_\\theta(x \\mid z)` (Gaussian with a learned
per-feature scale, or Bernoulli). The dense baseline drops L and S (:math:`z = v`, a plain VAE).

Amortised posterior: :math:`q(L \\mid x) = \\mathrm{softmax}(c(x))`, :math:`q(S \\mid x, L)` = first L
Plackett-Luce picks from :math:`\\mathrm{softmax}(a(x))`, :math:`q(v \\mid x) = N(\\mu(x), \\mathrm{diag}\\,
\\sigma^2(x))`. Per row, the negative ELBO (1 Monte Carlo draw, reparameterised through both relaxations):

.. math::
    -\\log p(x \\mid z) + \\beta\\,[\\mathrm{KL}(q(L|x) \\| p(L))
    + E_{q(L|x)} \\textstyle\\sum_{j \\le L} \\mathrm{KL}_j + \\mathrm{KL}(q(v|x) \\| N(0, I))] .
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sparsexc.core.layers import OutputLayer
from sparsexc.latent.sparsity import fixed_length_logits, length_kl, mode_mask, selection_kl, two_step_sample

__all__ = ["LIKELIHOODS", "VAENetwork"]

LIKELIHOODS: tuple[str, ...] = ("gaussian", "bernoulli")
_LOG_2PI = math.log(2.0 * math.pi)
# floor of the Gaussian decoder's per-feature log standard deviation: a constant feature (e.g. a blank pixel)
# would otherwise drive its scale to 0 and the likelihood to +infinity
MIN_LOG_SCALE = math.log(0.05)


class VAENetwork(nn.Module):
    """Encoder (one hidden ReLU layer; sparse or dense input), latent heads and decoder (one hidden ReLU layer).

    ``max_active=None`` makes the dense Gaussian VAE (no level, no selection). ``fixed_level=True`` fixes
    L = L0 for every row (no level layer; q(L|x) = p(L) = the point mass at L0, level KL 0): the ablation of
    the learned level.
    """

    def __init__(
        self,
        n_features: int,
        latent_dim: int,
        max_active: int | None,
        hidden_size: int,
        likelihood: str,
        fixed_level: bool = False,
    ) -> None:
        super().__init__()
        self.n_features, self.latent_dim, self.max_active = int(n_features), int(latent_dim), max_active
        self.likelihood, self.fixed_level = likelihood, bool(fixed_level)
        self.encoder_in = OutputLayer(n_features, hidden_size)  # accepts torch.sparse_csr batches as they are
        self.mean = nn.Linear(hidden_size, latent_dim)
        self.log_var = nn.Linear(hidden_size, latent_dim)
        if max_active is not None:
            if not self.fixed_level:
                self.length = nn.Linear(hidden_size, max_active)
            self.selection = nn.Linear(hidden_size, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden_size), nn.ReLU(), nn.Linear(hidden_size, n_features))
        if likelihood == "gaussian":
            self.log_scale = nn.Parameter(torch.zeros(n_features))

    @property
    def sparse(self) -> bool:
        return self.max_active is not None

    def encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = torch.relu(self.encoder_in(x))
        out = {"mean": self.mean(h), "log_var": self.log_var(h)}
        if self.max_active is not None:  # sparse
            length = fixed_length_logits(h, self.max_active) if self.fixed_level else self.length(h)
            out["length"], out["selection"] = length, self.selection(h)
        return out

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of p(x | z): the decoder output (Gaussian) or its sigmoid (Bernoulli)."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def code(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Deterministic code (B, D) and its support (bool (B, D); None for the dense VAE).

        The support is the top-L* dimensions of a(x) with L* the mode of q(L|x); the code is mu(x) there, 0 elsewhere.
        """
        enc = self.encode(x)
        if not self.sparse:
            return enc["mean"], None
        support = mode_mask(enc["length"], enc["selection"])
        return enc["mean"] * support.to(enc["mean"].dtype), support

    def negative_log_likelihood(self, decoded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) per row, summed over the features; ``decoded`` is the raw decoder output."""
        if self.likelihood == "bernoulli":
            return nn.functional.binary_cross_entropy_with_logits(decoded, target, reduction="none").sum(dim=1)
        s = self.log_scale.clamp(min=MIN_LOG_SCALE)
        return (0.5 * (target - decoded) ** 2 * torch.exp(-2.0 * s) + s + 0.5 * _LOG_2PI).sum(dim=1)

    def elbo_terms(
        self,
        x: torch.Tensor,
        target: torch.Tensor,
        tau_length: float,
        tau_select: float,
        hard: bool,
        generator: torch.Generator | None,
    ) -> dict[str, torch.Tensor]:
        """Per-row terms of the negative ELBO from one reparameterised draw (see the module docstring)."""
        enc = self.encode(x)
        mean, log_var = enc["mean"], enc["log_var"]
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        values = mean + torch.exp(0.5 * log_var) * eps
        terms = {"kl_values": 0.5 * (mean**2 + log_var.exp() - 1.0 - log_var).sum(dim=1)}
        if self.sparse:
            draw = two_step_sample(enc["length"], enc["selection"], tau_length, tau_select, hard, generator)
            # the relaxed mask may exceed 1 on near-ties (successive softmax); the code itself is m * v
            z = draw.mask * values
            # fixed level: q(L|x) = p(L) = the point mass at L0
            terms["kl_length"] = mean.new_zeros(mean.shape[0]) if self.fixed_level else length_kl(enc["length"])
            uniform = torch.zeros(self.latent_dim, dtype=mean.dtype, device=mean.device)
            terms["kl_selection"] = selection_kl(enc["selection"], uniform, draw.order, enc["length"])
        else:
            z = values
        terms["nll"] = self.negative_log_likelihood(self.decoder(z), target)
        return terms
