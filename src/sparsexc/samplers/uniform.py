"""The uniform sampler: p_n(y|x) = 1/C, the baseline proposal of plain negative sampling."""

from __future__ import annotations

import dataclasses
import math

import torch

from sparsexc._params import Params
from sparsexc.samplers.base import Sampler, register_sampler

__all__ = ["UniformSampler", "UniformSamplerParams"]


@dataclasses.dataclass
class UniformSamplerParams(Params):
    """The uniform sampler has no settings."""


@register_sampler
class UniformSampler(Sampler):
    r""":math:`p_n(y \mid x) = 1 / C` for every label; ``fit`` only checks its arguments."""

    name = "uniform"
    Params = UniformSamplerParams
    needs_fit = False

    def _fit(self, X, Y) -> None:  # nothing to learn
        return None

    def _sample(self, x, rows, n, generator):
        labels = torch.randint(self.n_labels, (rows.numel(), n), generator=generator, device=x.device)
        return labels, torch.full(labels.shape, -math.log(self.n_labels), dtype=_dtype(x), device=x.device)

    def _log_prob(self, x, rows, labels):
        return torch.full(labels.shape, -math.log(self.n_labels), dtype=_dtype(x), device=x.device)

    def _log_prob_all(self, x):
        return torch.full((x.shape[0], self.n_labels), -math.log(self.n_labels), dtype=_dtype(x), device=x.device)


def _dtype(x: torch.Tensor) -> torch.dtype:
    return x.dtype if x.dtype.is_floating_point else torch.get_default_dtype()
