"""sparsexc.latent: discrete latent variables with reparameterised relaxations (issue 7, SDLGM reconstruction).

* :mod:`~sparsexc.latent.gumbel` - Gumbel noise, Gumbel-Softmax (relaxed and straight-through);
* :mod:`~sparsexc.latent.subset` - exact Gumbel-top-k subsets, their successive-softmax relaxation,
  Plackett-Luce probabilities and per-pick KLs;
* :mod:`~sparsexc.latent.schedules` - temperature annealing;
* :mod:`~sparsexc.latent.sparsity` - the two-step sampler of a sparse code with a learned level L <= L0;
* :mod:`~sparsexc.latent._vae_network` - the networks and per-row ELBO terms of the VAEs.

The estimators built on them, ``SparseVAE`` (unsupervised sparse codes) and the dense ``GaussianVAE``
baseline, have their own training loop and model files, so they live above this toolkit, in
:mod:`sparsexc.estimator.vae`.

See ``docs/sdlgm.md`` for the model and which parts are our choices rather than the paper's.
"""

from sparsexc.latent.gumbel import gumbel_argmax, gumbel_softmax, sample_gumbel, straight_through
from sparsexc.latent.schedules import SCHEDULES, RelaxationParams, TemperatureSchedule
from sparsexc.latent.sparsity import (
    SparseSample,
    fixed_length_logits,
    length_kl,
    mode_lengths,
    mode_mask,
    selection_kl,
    two_step_sample,
)
from sparsexc.latent.subset import (
    gumbel_topk,
    plackett_luce_log_prob,
    relaxed_topk,
    sequential_kl,
    subset_log_prob,
    successive_softmax,
    topk_mask,
)

__all__ = [
    "SCHEDULES",
    "RelaxationParams",
    "SparseSample",
    "TemperatureSchedule",
    "fixed_length_logits",
    "gumbel_argmax",
    "gumbel_softmax",
    "gumbel_topk",
    "length_kl",
    "mode_lengths",
    "mode_mask",
    "plackett_luce_log_prob",
    "relaxed_topk",
    "sample_gumbel",
    "selection_kl",
    "sequential_kl",
    "straight_through",
    "subset_log_prob",
    "successive_softmax",
    "topk_mask",
    "two_step_sample",
]
