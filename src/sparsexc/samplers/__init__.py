"""sparsexc.samplers: label distributions p_n(y|x) to draw negatives from and to correct sampled heads.

All samplers share :class:`Sampler`'s interface: ``fit(X, Y)``, ``sample(x_batch, n) -> (labels, log_prob)``,
``log_prob(x_batch, labels)`` and ``log_prob_all(x_batch)``; they are looked up by name (``"uniform"``,
``"frequency"``, ``"tree"``) with :func:`get_sampler` / :func:`build_sampler`.
"""

from sparsexc.samplers.base import Sampler, build_sampler, get_sampler, list_samplers, register_sampler
from sparsexc.samplers.frequency import FrequencySampler, FrequencySamplerParams
from sparsexc.samplers.tree import TreeSampler, TreeSamplerParams
from sparsexc.samplers.uniform import UniformSampler, UniformSamplerParams

__all__ = [
    "FrequencySampler",
    "FrequencySamplerParams",
    "Sampler",
    "TreeSampler",
    "TreeSamplerParams",
    "UniformSampler",
    "UniformSamplerParams",
    "build_sampler",
    "get_sampler",
    "list_samplers",
    "register_sampler",
]
