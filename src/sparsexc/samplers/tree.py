r"""The auxiliary model of Bamler & Mandt (2020): a balanced probabilistic binary tree over the labels.

:math:`\log p_n(y \mid x) = \sum_{(\nu, \zeta) \in \pi_y} \log\sigma(\zeta (w_\nu^\top \tilde x + b_\nu))` (Eq. 7),
with :math:`\pi_y` the root-to-leaf path of ``y`` (:math:`\zeta = +1` going right) and :math:`\tilde x` the input
reduced by a whitened PCA to ``dim`` components. Sampling walks down the tree with one Bernoulli draw per
level and scoring a label walks up its path: both cost O(dim * log C) per draw. Fitting: see
:mod:`sparsexc.samplers._tree_fit`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F

from sparsexc._params import NON_NEGATIVE, POSITIVE, POSITIVE_INT, Params, setting
from sparsexc.samplers._pca import whitened_pca
from sparsexc.samplers._tree_fit import REG_SCALINGS, SPLITS, fit_tree
from sparsexc.samplers.base import Sampler, register_sampler

__all__ = ["TreeSampler", "TreeSamplerParams", "tree_depth"]

# intermediate entries per chunk of rows in log_prob_all (node scores and path sums, B x 2**depth each)
_ALL_CHUNK_ENTRIES = 1 << 24


def tree_depth(n_labels: int) -> int:
    """Depth of the balanced tree over ``n_labels`` leaves: ceil(log2 C), at least 1."""
    return max(1, math.ceil(math.log2(n_labels)))


@dataclasses.dataclass
class TreeSamplerParams(Params):
    """Parameters of :class:`TreeSampler` (defaults: the paper's).

    dim : int >= 1
        PCA components k of the reduced input (16 in the paper).
    reg : float >= 0
        :math:`\\lambda_n`, the L2 penalty :math:`\\lambda_n(\\|w\\|^2 + b^2)` of each node (0.1 in the paper).
    reg_scaling : {"constant", "node_size"}
        "constant": :math:`\\lambda_n` = ``reg`` at every node (the paper); "node_size": :math:`\\lambda_n` =
        ``reg`` times the number of training rows that reach the node (the authors' ``--frequency_reg``), so
        penalty and data term shrink together down the tree and nodes with a handful of rows stay near
        :math:`\\sigma(0) = 1/2` instead of overfitting them (use a small ``reg`` such as 1e-3 with it).
    split : {"eq9", "median"}
        "eq9": alternate Newton ascent with the discrete reassignment of Eq. 9 until no label changes side
        (the paper); "median": keep the initial median split along the node's dominant direction and only
        fit (w, b) (what the authors' code does in effect).
    max_rounds : int >= 1
        Most Newton/reassignment rounds per level.
    newton_steps : int >= 1
        Most Newton steps per round.
    tol : float > 0
        Newton stops when every node's step norm is below this.
    standardize : bool
        Divide every feature by its standard deviation before the PCA (the authors' notebook does).
    seed : int
        Seeds the ARPACK start vector of the PCA on large sparse inputs (the fit is otherwise deterministic).
    """

    dim: int = setting(16, "PCA components of the reduced input.", range=POSITIVE_INT)
    reg: float = setting(0.1, "L2 penalty lambda_n of each node.", range=NON_NEGATIVE)
    reg_scaling: str = setting(
        "constant", "constant, or node_size: reg times the rows reaching the node.", choices=REG_SCALINGS
    )
    split: str = setting("eq9", "eq9 (the paper's reassignment) or median.", choices=SPLITS)
    max_rounds: int = setting(10, "Most Newton/reassignment rounds per level.", range=POSITIVE_INT)
    newton_steps: int = setting(20, "Most Newton steps per round.", range=POSITIVE_INT)
    tol: float = setting(1e-6, "Newton stops when every node's step norm is below this.", range=POSITIVE)
    standardize: bool = setting(False, "Divide every feature by its standard deviation before the PCA.")
    seed: int = setting(0, "Seeds the ARPACK start vector of the PCA.")


@register_sampler
class TreeSampler(Sampler):
    r"""Probabilistic label tree :math:`p_n(y \mid x)` fitted to the data (the adversarial proposal).

    Buffers (all saved in the owner's ``state_dict``): ``projection`` (dim, in_dim) and ``offset`` (dim,), the
    whitened PCA :math:`\tilde x = P x + c`; ``node_weight`` (L, dim) and ``node_bias`` (L,), heap-indexed
    (row 0 unused, ``L = 2**depth``); ``leaf_label`` (L,), the label at each leaf (-1 = padding, probability 0);
    ``label_leaf`` (C,), its inverse.

    ``reg == 0`` is allowed but makes Newton ill-posed on separable nodes; keep it positive.
    """

    name = "tree"
    Params = TreeSamplerParams
    uses_features = True
    params: TreeSamplerParams
    # buffers (see above)
    projection: torch.Tensor
    offset: torch.Tensor
    node_weight: torch.Tensor
    node_bias: torch.Tensor
    leaf_label: torch.Tensor
    label_leaf: torch.Tensor

    def __init__(self, in_dim: int, n_labels: int, params: TreeSamplerParams | dict | None = None) -> None:
        super().__init__(in_dim, n_labels, params)
        k = self.params.dim
        self.depth = tree_depth(self.n_labels)
        L = 1 << self.depth
        self.register_buffer("projection", torch.zeros(k, self.in_dim))
        self.register_buffer("offset", torch.zeros(k))
        self.register_buffer("node_weight", torch.zeros(L, k))
        self.register_buffer("node_bias", torch.zeros(L))
        leaf_label = torch.full((L,), -1, dtype=torch.long)
        leaf_label[: self.n_labels] = torch.arange(self.n_labels)
        self.register_buffer("leaf_label", leaf_label)
        self.register_buffer("label_leaf", torch.arange(self.n_labels))

    def _fit(self, X, Y) -> None:
        p = self.params
        P, c = whitened_pca(X, p.dim, standardize=p.standardize, seed=p.seed)
        Z = np.asarray(X @ P) + c
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # many small tensors: intra-op threads cost more than they give (7x on 2 busy cores)
        try:
            # the fit runs on the CPU (numpy inputs) whatever the model's device; copied to the buffers below
            with torch.device("cpu"):
                weight, bias, leaf_label = fit_tree(
                    Z,
                    Y,
                    self.depth,
                    reg=p.reg,
                    split=p.split,
                    max_rounds=p.max_rounds,
                    newton_steps=p.newton_steps,
                    tol=p.tol,
                    reg_scaling=p.reg_scaling,
                )
        finally:
            torch.set_num_threads(threads)
        self.projection.copy_(torch.from_numpy(P.T))
        self.offset.copy_(torch.from_numpy(c))
        self.node_weight.copy_(weight)
        self.node_bias.copy_(bias)
        self.leaf_label.copy_(leaf_label)
        real = torch.nonzero(self.leaf_label >= 0).squeeze(1)  # on the buffers' device: index_put_ needs one
        self.label_leaf[self.leaf_label[real]] = real

    # -- evaluation ---------------------------------------------------------------------------------------
    def reduce(self, x: torch.Tensor) -> torch.Tensor:
        r"""The whitened PCA features :math:`\tilde x` (B, dim) of inputs ``x`` (B, in_dim), dense or sparse CSR."""
        return x.to(self.projection.dtype) @ self.projection.t() + self.offset

    def _node_logits(self, nodes: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        """:math:`w_\\nu^\\top \\tilde x + b_\\nu` for heap ids ``nodes`` (R, m) and inputs ``xt`` (R, dim)."""
        return torch.einsum("rmk,rk->rm", self.node_weight[nodes], xt) + self.node_bias[nodes]

    def _sample(self, x, rows, n, generator):
        xt = self.reduce(x)[rows]
        node = torch.ones(rows.numel(), n, dtype=torch.long, device=xt.device)
        log_prob = torch.zeros(rows.numel(), n, dtype=xt.dtype, device=xt.device)
        for _ in range(self.depth):
            s = self._node_logits(node, xt)
            u = torch.rand(s.shape, generator=generator, dtype=s.dtype, device=s.device)
            go_right = u < torch.sigmoid(s)  # sigmoid(-PAD_LOGIT) == 0: padding is never entered
            log_prob += F.logsigmoid(torch.where(go_right, s, -s))
            node = 2 * node + go_right
        return self.leaf_label[node - (1 << self.depth)], log_prob

    def _log_prob(self, x, rows, labels):
        xt = self.reduce(x)[rows]
        node = self.label_leaf[labels] + (1 << self.depth)
        log_prob = torch.zeros(labels.shape, dtype=xt.dtype, device=xt.device)
        for _ in range(self.depth):
            parent = node // 2
            s = self._node_logits(parent, xt)
            log_prob += F.logsigmoid(torch.where(node % 2 == 1, s, -s))
            node = parent
        return log_prob

    def _log_prob_all(self, x):
        # all leaves at once, level by level: O(B * C) instead of O(B * C * depth)
        xt = self.reduce(x)
        L = 1 << self.depth
        step = max(1, _ALL_CHUNK_ENTRIES // L)
        parts = []
        for start in range(0, xt.shape[0], step):
            chunk = xt[start : start + step]
            logits = chunk @ self.node_weight.t() + self.node_bias  # (b, L), column v = heap node v
            path = torch.zeros(chunk.shape[0], 1, dtype=xt.dtype, device=xt.device)
            for level in range(self.depth):
                s = logits[:, (1 << level) : (2 << level)]
                path = torch.stack((path + F.logsigmoid(-s), path + F.logsigmoid(s)), dim=2).flatten(1)
            parts.append(path[:, self.label_leaf])
        return torch.cat(parts)
