r"""Top-down fitting of the balanced probabilistic label tree (Bamler & Mandt 2020, Sec. 3.2).

Layout: a heap of depth ``D`` with ``L = 2**D`` leaf slots; node 1 is the root, node ``v`` has children
``2v`` (left, :math:`\zeta = -1`) and ``2v + 1`` (right, :math:`\zeta = +1`). ``label_at_slot[j]`` is the label
at leaf ``L + j`` (-1 for padding). The node at level ``l`` with block index ``i`` (heap id ``2**l + i``) owns
the contiguous slots ``[i * 2**(D-l), (i + 1) * 2**(D-l))``; its left child owns the first half. Padding sits at
the end of every block, so a child is all padding exactly when its parent's block has at most half real labels.

Each node (level by level, all nodes of a level at once) maximises over :math:`\theta = (w, b)`

.. math:: L_\nu = \sum_{(x, y): y \in Y_\nu} \log\sigma(\zeta_y (w^\top \tilde x + b)) - \lambda_n (\|w\|^2 + b^2)

by Newton ascent (step norm capped at 1, as the authors' code), alternating with the discrete update of Eq. 9:
:math:`\Delta_y = w^\top \sum_{x \in D_y} \tilde x + n_y b`, the larger half of :math:`\Delta` goes right
(the ``"median"`` variant keeps the initial split: sort by :math:`e_y^\top w_0`, the authors' code in effect).
Initialisation: :math:`w_0` = the dominant eigenvector of the covariance of the per-label feature sums
:math:`e_y = \sum_{x \in D_y} \tilde x` in the node, :math:`b_0 = -\text{mean}_{(x,y)} \tilde x^\top w_0`.
Nodes whose right child holds only padding get :math:`w = 0, b = -` ``PAD_LOGIT`` (always left).

The Newton sums run over the distinct (row, node) pairs of a level with the counts of the row's labels on
each side (:math:`\sigma(s)\sigma(-s)` does not depend on the side), so a multi-label row costs once per node.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["PAD_LOGIT", "REG_SCALINGS", "SPLITS", "fit_tree"]

PAD_LOGIT = 1.0e4  # sigmoid(-1e4) == 0 exactly in float32/float64: padding is never drawn
SPLITS: tuple[str, ...] = ("eq9", "median")
# "constant": lambda_n = reg at every node (the paper); "node_size": lambda_n = reg * (training rows in the
# node), the authors' --frequency_reg, so deep nodes with few rows are not fitted more sharply than the root
REG_SCALINGS: tuple[str, ...] = ("constant", "node_size")


def _block_sort(label_at_slot: torch.Tensor, key: torch.Tensor, block: int) -> torch.Tensor:
    """Reorder the slots of every block of ``block`` consecutive slots by ascending ``key`` (stable)."""
    order = torch.sort(key, stable=True).indices
    blocks = torch.div(torch.arange(key.numel()), block, rounding_mode="floor")
    order = order[torch.sort(blocks[order], stable=True).indices]
    return label_at_slot[order]


def _slot_of(label_at_slot: torch.Tensor, n_labels: int) -> torch.Tensor:
    slots = torch.nonzero(label_at_slot >= 0).squeeze(1)
    out = torch.empty(n_labels, dtype=torch.long)
    out[label_at_slot[slots]] = slots
    return out


def _dominant_directions(E: torch.Tensor, node: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """Top eigenvector (sign: largest-magnitude entry positive) of each node's covariance of the rows of E."""
    k = E.shape[1]
    count = torch.bincount(node, minlength=n_nodes).to(E.dtype).clamp_(min=1.0)
    mean = torch.zeros(n_nodes, k, dtype=E.dtype).index_add_(0, node, E) / count[:, None]
    order = torch.sort(node, stable=True).indices
    centred = (E - mean[node])[order]
    cov = _SegmentGram(centred, node[order], n_nodes)(torch.ones(E.shape[0], dtype=E.dtype))
    vectors = torch.linalg.eigh(cov).eigenvectors[:, :, -1]
    sign = torch.sign(torch.gather(vectors, 1, vectors.abs().argmax(dim=1, keepdim=True)))
    return vectors * torch.where(sign == 0, torch.ones_like(sign), sign)


class _SegmentGram:
    r"""Weighted Gram matrices :math:`G_a = \sum_{u \in a} c_u z_u z_u^\top` of units sorted by node ``a``.

    One sparse (A d x U) matrix with entry :math:`c_u z_{ui}` at (a d + i, u) times the dense Z (U x d):
    O(U d^2) work and no (U, d, d) intermediate. Its pattern depends only on the level, so it is built once.
    """

    def __init__(self, Zu: torch.Tensor, node: torch.Tensor, n_nodes: int) -> None:
        U, d = Zu.shape
        counts = np.bincount(node.numpy(), minlength=n_nodes)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        # row (a, i) lists the units of node a; the data of unit u, coordinate i sits at position
        # d * starts[a] + i * counts[a] + (u - starts[a])
        unit = np.arange(U)
        a = node.numpy()
        base = d * starts[a] + (unit - starts[a])
        self.position = torch.from_numpy((base[:, None] + np.arange(d)[None, :] * counts[a][:, None]).ravel())
        indptr = np.concatenate([[0], np.cumsum(np.repeat(counts, d))])
        indices = np.empty(U * d, dtype=np.int64)
        indices[self.position.numpy()] = np.repeat(unit, d)
        self.matrix = sp.csr_matrix((np.zeros(U * d), indices, indptr), shape=(n_nodes * d, U))
        self.indicator = sp.csr_matrix((np.ones(U), unit, np.concatenate([[0], np.cumsum(counts)])), shape=(n_nodes, U))
        self.Z = Zu.numpy()
        self.n_nodes, self.d = n_nodes, d

    def node_sums(self, values: torch.Tensor) -> torch.Tensor:
        """Per-node sums of the rows of ``values`` (U, m) -> (A, m) (faster than ``index_add_`` on CPU)."""
        return torch.from_numpy(np.asarray(self.indicator @ values.numpy()))

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        data = np.empty(self.Z.size)
        data[self.position.numpy()] = (self.Z * weight.numpy()[:, None]).ravel()
        self.matrix.data = data
        return torch.from_numpy(np.asarray(self.matrix @ self.Z)).view(self.n_nodes, self.d, self.d)


def _newton(
    theta: torch.Tensor,
    Zu: torch.Tensor,
    node: torch.Tensor,
    n_right: torch.Tensor,
    n_left: torch.Tensor,
    fit: torch.Tensor,
    reg: torch.Tensor,
    steps: int,
    tol: float,
) -> torch.Tensor:
    r"""Newton ascent on :math:`\sum_u [n_R \log\sigma(s_u) + n_L \log\sigma(-s_u)] - \lambda_\nu \|\theta\|^2` per node.

    ``reg`` holds each node's :math:`\lambda_\nu` (A,). Only the nodes flagged in ``fit`` move. A node stops once its step norm is below ``tol``; when at least
    half of the moving nodes have stopped, the units of the others are compacted, so the few nodes that need
    many (norm-capped) steps do not keep the whole level busy.
    """
    theta = theta.clone()
    d = theta.shape[1]
    eye = torch.eye(d, dtype=theta.dtype)
    ids = torch.arange(theta.shape[0])
    keep = fit.clone()
    gram: _SegmentGram | None = None
    for _ in range(steps):
        if not bool(keep.all()):
            if not bool(keep.any()):
                break
            remap = torch.full((ids.numel(),), -1, dtype=torch.long)
            remap[keep] = torch.arange(int(keep.sum()))
            unit_keep = keep[node]
            Zu, node, n_right, n_left = Zu[unit_keep], remap[node[unit_keep]], n_right[unit_keep], n_left[unit_keep]
            ids = ids[keep]
            gram = None
        if gram is None:
            gram = _SegmentGram(Zu, node, ids.numel())
        th = theta[ids]
        s = (Zu * th[node]).sum(dim=1)
        p = torch.sigmoid(s)
        grad = gram.node_sums((n_right * (1.0 - p) - n_left * p)[:, None] * Zu)
        lam = reg[ids]
        grad -= 2.0 * lam[:, None] * th
        H = gram((n_right + n_left) * p * (1.0 - p)) + 2.0 * lam[:, None, None] * eye
        step = torch.cholesky_solve(grad[:, :, None], torch.linalg.cholesky(H)).squeeze(2)
        norm = torch.linalg.vector_norm(step, dim=1)
        step *= torch.clamp(1.0 / norm.clamp(min=1e-300), max=1.0)[:, None]  # the authors' cap on the step
        theta[ids] = th + step
        moving = norm >= tol
        keep = moving if 2 * int(moving.sum()) <= ids.numel() else torch.ones_like(moving)
        if not bool(moving.any()):
            break
    return theta


def fit_tree(
    Z: np.ndarray,
    Y: sp.csr_matrix,
    depth: int,
    *,
    reg: float,
    split: str,
    max_rounds: int,
    newton_steps: int,
    tol: float,
    reg_scaling: str = "constant",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fit the tree on reduced features ``Z`` (N, k) and labels ``Y`` (N, C); see the module docstring.

    ``reg_scaling="node_size"`` multiplies ``reg`` by the number of training rows of each node (at least 1;
    see ``REG_SCALINGS``).

    Returns
    -------
    node_weight : float64 (L, k), row v = w of heap node v (row 0 unused)
    node_bias : float64 (L,)
    label_at_slot : int64 (L,), the label of each leaf slot, -1 for padding
    """
    N, k = Z.shape
    C = Y.shape[1]
    L = 1 << depth
    coo = Y.tocoo()
    pair_row = torch.from_numpy(coo.row.astype(np.int64))
    pair_label = torch.from_numpy(coo.col.astype(np.int64))
    E = torch.from_numpy(np.asarray(Y.T.tocsr().astype(np.float64) @ Z))  # (C, k): e_y = sum_{x in D_y} x~
    n_y = torch.bincount(pair_label, minlength=C).to(torch.float64)
    Z1 = torch.cat(
        [torch.from_numpy(np.ascontiguousarray(Z, dtype=np.float64)), torch.ones(N, 1, dtype=torch.float64)], 1
    )

    node_weight = torch.zeros(L, k, dtype=torch.float64)
    node_bias = torch.zeros(L, dtype=torch.float64)
    label_at_slot = torch.cat([torch.arange(C), torch.full((L - C,), -1, dtype=torch.long)])
    label_ids = torch.arange(C)
    for level in range(depth):
        n_nodes, block = 1 << level, L >> level
        half = block // 2
        n_real = (label_at_slot >= 0).view(n_nodes, block).sum(dim=1)
        active = n_real > half
        heap_ids = n_nodes + torch.arange(n_nodes)
        node_bias[heap_ids[~active]] = -PAD_LOGIT  # right child is all padding: always go left
        if not bool(active.any()):
            continue
        act_index = torch.full((n_nodes,), -1, dtype=torch.long)
        act_index[active] = torch.arange(int(active.sum()))
        A = int(active.sum())

        # labels of active nodes; their node never changes within the level, only their side
        label_node = act_index[torch.div(_slot_of(label_at_slot, C), block, rounding_mode="floor")]
        in_act = label_node >= 0
        act_labels, act_label_node = label_ids[in_act], label_node[in_act]
        w0 = _dominant_directions(E[act_labels], act_label_node, A)
        init_key = torch.zeros(C, dtype=torch.float64)
        init_key[act_labels] = (E[act_labels] * w0[act_label_node]).sum(dim=1)
        label_at_slot = _block_sort(label_at_slot, _slot_key(label_at_slot, init_key), block)
        data = torch.zeros(A, dtype=torch.float64).index_add_(0, act_label_node, n_y[act_labels])
        bias0 = -torch.zeros(A, dtype=torch.float64).index_add_(0, act_label_node, init_key[act_labels]) / data.clamp(
            min=1.0
        )
        theta = torch.cat([w0, bias0[:, None]], dim=1)

        # distinct (row, node) units of the level's pairs
        pair_node = label_node[pair_label]
        keep = pair_node >= 0
        rows, pnode, plabel = pair_row[keep], pair_node[keep], pair_label[keep]
        units, unit_of_pair = torch.unique(pnode * N + rows, return_inverse=True)
        unit_node = torch.div(units, N, rounding_mode="floor")
        Zu = Z1[units - unit_node * N]
        n_units = units.numel()
        n_all = torch.bincount(unit_of_pair, minlength=n_units).double()
        node_reg = torch.full((A,), float(reg), dtype=torch.float64)
        if reg_scaling == "node_size":
            node_reg *= torch.bincount(unit_node, minlength=A).double().clamp(min=1.0)  # a node without rows keeps reg
        refit = torch.ones(A, dtype=torch.bool)
        for round_ in range(max_rounds):
            right = (_slot_of(label_at_slot, C) % block) >= half
            n_right = torch.zeros(n_units, dtype=torch.float64).index_add_(0, unit_of_pair, right[plabel].double())
            theta = _newton(theta, Zu, unit_node, n_right, n_all - n_right, refit, node_reg, newton_steps, tol)
            if split == "median" or round_ == max_rounds - 1:
                break
            delta = torch.zeros(C, dtype=torch.float64)  # Eq. 9: gain of moving y to the right
            delta[act_labels] = (E[act_labels] * theta[act_label_node, :k]).sum(1) + n_y[act_labels] * theta[
                act_label_node, k
            ]
            new_order = _block_sort(label_at_slot, _slot_key(label_at_slot, delta), block)
            moved = ((_slot_of(new_order, C) % block) >= half) != right
            if not bool(moved.any()):
                break
            label_at_slot = new_order
            refit = torch.zeros(A, dtype=torch.bool)
            refit[label_node[moved]] = True  # only nodes whose split changed are fitted again
        node_weight[heap_ids[active]] = theta[:, :k]
        node_bias[heap_ids[active]] = theta[:, k]
    return node_weight, node_bias, label_at_slot


def _slot_key(label_at_slot: torch.Tensor, label_key: torch.Tensor) -> torch.Tensor:
    """Per-slot sort key: the label's key, +inf for padding (padding stays at the end of its block)."""
    key = torch.full(label_at_slot.shape, float("inf"), dtype=torch.float64)
    real = label_at_slot >= 0
    key[real] = label_key[label_at_slot[real]]
    return key
