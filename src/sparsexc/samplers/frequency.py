"""The frequency sampler: p_n(y) proportional to (training count of y + smoothing) ** power, whatever x."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from sparsexc._params import NON_NEGATIVE, POSITIVE, Params, setting
from sparsexc.samplers.base import Sampler, register_sampler
from sparsexc.samplers.uniform import _dtype

__all__ = ["FrequencySampler", "FrequencySamplerParams"]


@dataclasses.dataclass
class FrequencySamplerParams(Params):
    """Parameters of :class:`FrequencySampler`.

    power : float >= 0
        Exponent on the smoothed counts (1: empirical frequency; 0: uniform; word2vec uses 0.75).
    smoothing : float > 0
        Added to every count so that labels unseen in training keep a positive probability (the
        authors' code uses count + 1).
    """

    power: float = setting(1.0, "Exponent on the smoothed label counts (0: uniform).", range=NON_NEGATIVE)
    smoothing: float = setting(1.0, "Added to every label count.", range=POSITIVE)


@register_sampler
class FrequencySampler(Sampler):
    r""":math:`p_n(y) = (c_y + s)^a / \sum_{y'} (c_{y'} + s)^a`, with :math:`c_y` the number of training rows
    with label y, :math:`s` = ``smoothing`` and :math:`a` = ``power``; independent of x.

    Draws use the inverse CDF (``searchsorted`` on the cumulative probabilities, float64), O(log C) each.
    """

    name = "frequency"
    Params = FrequencySamplerParams
    params: FrequencySamplerParams
    label_log_prob: torch.Tensor  # buffer (C,), float64
    cdf: torch.Tensor  # buffer (C,), float64: cumulative probabilities, the last one 1

    def __init__(self, in_dim: int, n_labels: int, params: FrequencySamplerParams | dict | None = None) -> None:
        super().__init__(in_dim, n_labels, params)
        self.register_buffer(
            "label_log_prob", torch.full((self.n_labels,), -np.log(self.n_labels), dtype=torch.float64)
        )
        self.register_buffer("cdf", torch.linspace(1.0 / self.n_labels, 1.0, self.n_labels, dtype=torch.float64))

    def _fit(self, X, Y) -> None:
        counts = np.bincount(Y.indices, minlength=self.n_labels).astype(np.float64)
        log_w = self.params.power * np.log(counts + self.params.smoothing)
        log_p = log_w - np.logaddexp.reduce(log_w)
        p = np.exp(log_p)
        cdf = np.cumsum(p)
        cdf /= cdf[-1]
        self.label_log_prob.copy_(torch.from_numpy(log_p))
        self.cdf.copy_(torch.from_numpy(cdf))

    def _sample(self, x, rows, n, generator):
        u = torch.rand(rows.numel(), n, generator=generator, dtype=torch.float64, device=x.device)
        labels = torch.searchsorted(self.cdf, u, right=True).clamp_(max=self.n_labels - 1)
        return labels, self.label_log_prob[labels].to(_dtype(x))

    def _log_prob(self, x, rows, labels):
        return self.label_log_prob[labels].to(_dtype(x))

    def _log_prob_all(self, x):
        return self.label_log_prob.to(_dtype(x)).expand(x.shape[0], -1).clone()
