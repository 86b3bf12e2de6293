"""What the sampled heads share: sampler settings, the sampler itself, positive pairs and the set rule."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from sparsexc._params import POSITIVE, POSITIVE_INT, Params, setting
from sparsexc.core.labels import LabelBatch
from sparsexc.errors import ConfigurationError
from sparsexc.heads._label_sharded import LabelShardedHead, full_precision, output_layer
from sparsexc.heads.pairs import pair_logits
from sparsexc.heads.softmax import T_GRID
from sparsexc.ops.sparse_grad import mark_sparse_gradient
from sparsexc.samplers import (
    FrequencySampler,
    FrequencySamplerParams,
    Sampler,
    TreeSampler,
    TreeSamplerParams,
    UniformSampler,
    get_sampler,
    list_samplers,
)

__all__ = ["POSITIVES", "SampledHead", "SampledHeadParams", "binary_pair_loss"]

# the settings base class under a second name: inside SampledHead, the class attribute ``Params`` shadows it
_AnyParams = Params

POSITIVES: tuple[str, ...] = ("all", "one")
AUTO = "auto"  # SampledHeadParams.sampler: decided in prepare, from the head's inputs


@dataclasses.dataclass
class SampledHeadParams(Params):
    """Settings shared by the sampled heads.

    sampler : {"auto", "tree", "uniform", "frequency"}
        The proposal :math:`p_n(y|x)` the negatives are drawn from (fitted in ``prepare``). "auto" (default)
        is decided in ``prepare``: "tree" (the adversarial sampler, which conditions on the head's inputs)
        when those inputs are the features themselves (the linear model, ``hidden_sizes=()``: the head's
        ``in_dim`` equals the number of features), else "frequency" (behind hidden layers, whose vectors
        change while training, so no fixed auxiliary model fits them). The decided name replaces "auto" in
        the head's parameters, so a saved model names it.
    num_negatives : int >= 1
        Negatives drawn per positive pair and step.
    positives : {"all", "one"}
        "all": every positive label of a row is a training pair; "one": one positive per row and step,
        drawn uniformly from the row's labels.
    tree : TreeSamplerParams
        The tree sampler's settings (:class:`sparsexc.samplers.TreeSamplerParams`), a mapping such as
        ``{"dim": 4, "reg_scaling": "node_size"}``; used when ``sampler`` is (or "auto" decides) "tree".
    frequency : FrequencySamplerParams
        The frequency sampler's settings (:class:`sparsexc.samplers.FrequencySamplerParams`): ``power``,
        ``smoothing``.
    threshold : float or None
        The ``t`` of the set rule ``{j : softmax(scores)_j > t / C}``; None: tuned on validation data.
    shard_labels : bool
        Split the output layer by label over the ranks of the running ``torch.distributed`` group. Every rank
        draws the same positives and negatives (torch's generator is seeded alike on every rank) and scores
        the pairs whose label it holds; the (P, 1 + n) logits are assembled by all-reduce, so the loss equals
        the unsharded head's at the same seed. No effect in one process. See ``docs/distributed.md``.
    sparse_gradients : bool or None
        Read the positive and sampled labels' rows of the output layer with sparse gradients
        (:func:`sparsexc.ops.affine.pair_logits_of`): the weight and bias become
        :class:`~sparsexc.models.sparse_output.SparseGradientParameter` s, a step's backward and optimiser update
        touch only the O(P (1 + n)) gathered rows instead of all C, and the step time no longer grows with C.
        Adagrad and plain SGD give exactly the dense result; "adam" becomes lazy Adam
        (``torch.optim.SparseAdam``: a row's moments and weights change only at steps that sample it),
        ``weight_decay`` is lazy (it acts on the gathered rows only) and SGD momentum is refused (see
        :func:`sparsexc.train.build_optimizer`).
        Prediction (``scores``, ``topk``) is dense as before; saved weights have the same layout. With
        ``shard_labels`` each rank's shard gets the sparse gradient of the pairs it holds.
        None (default): True.
    """

    sampler: str = setting(
        AUTO,
        "Proposal the negatives are drawn from (auto: tree for the linear model, else frequency).",
        choices=lambda: (AUTO, *list_samplers()),
    )
    num_negatives: int = setting(10, "Negatives drawn per positive pair and step.", range=POSITIVE_INT)
    positives: str = setting("all", "Training pairs per row: all its labels, or one drawn per step.", choices=POSITIVES)
    # setting() returns a dataclasses.Field, which ruff cannot tell for a non-builtin annotation
    tree: TreeSamplerParams = setting(default_factory=TreeSamplerParams, help="The tree sampler's settings.")  # noqa: RUF009
    frequency: FrequencySamplerParams = setting(  # noqa: RUF009
        default_factory=FrequencySamplerParams, help="The frequency sampler's settings."
    )
    threshold: float | None = setting(None, "t of the set rule softmax(scores)_j > t / C; None: tuned.", range=POSITIVE)
    shard_labels: bool = setting(False, "Split the output layer by label over the ranks of the process group.")
    sparse_gradients: bool | None = setting(
        None, "Sparse gradients for the sampled rows of the output layer (None: true)."
    )

    # the flat keys used before the sampler settings were nested (saved models, head_params, --head-param)
    aliases: ClassVar[dict[str, str]] = {
        "tree_dim": "tree.dim",
        "tree_reg": "tree.reg",
        "tree_split": "tree.split",
        "tree_standardize": "tree.standardize",
        "sampler_seed": "tree.seed",
        "frequency_power": "frequency.power",
    }


def binary_pair_loss(margins: torch.Tensor, penalty: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
    r"""The binary loss of the positive (column 0) against the n sampled labels of each pair, (P, 1 + n) inputs:

    .. math:: \sum_{\text{pairs}} \Big[\mathrm{softplus}(-m_0) + \pi_0
              + \frac{1}{n}\sum_{j \ge 1} \big(\mathrm{softplus}(m_j) + \pi_j\big)\Big] \Big/ \#\{\text{rows with a label}\},

    the form shared by negative sampling (margins = logits) and NCE (margins = logits - log p_n)."""
    positive_term = F.softplus(-margins[:, 0]) + penalty[:, 0]
    negative_term = (F.softplus(margins[:, 1:]) + penalty[:, 1:]).mean(dim=1)
    return (positive_term + negative_term).sum() / int((labels.sizes() > 0).sum())


def _feature_sampler_error(sampler: str, inputs: str) -> ConfigurationError:
    return ConfigurationError(
        f"sampler={sampler!r} conditions on the head's inputs, which here are {inputs}: use the linear model "
        "(hidden_sizes=()) with the tree sampler, or sampler='auto' / 'uniform' / 'frequency' with a hidden layer"
    )


def _make_sampler(in_dim: int, n_labels: int, p: SampledHeadParams) -> Sampler:
    if p.sampler == "tree":
        return TreeSampler(in_dim, n_labels, p.tree)
    if p.sampler == "frequency":
        return FrequencySampler(in_dim, n_labels, p.frequency)
    return UniformSampler(in_dim, n_labels)


class SampledHead(LabelShardedHead):
    """Base of heads trained on sampled labels: an :class:`OutputLayer` (or this rank's
    :class:`sparsexc.distributed.ShardedOutputLayer`) plus a :class:`Sampler` (replicated on every rank).

    Subclasses implement ``loss`` and ``local_logits``; the set rule is ``{j : softmax(scores)_j > t / C}`` with t
    tuned on the softmax head's grid, since both heads' scores are logits defined up to a per-row constant.
    """

    Params = SampledHeadParams
    params: SampledHeadParams
    probabilistic = False
    tuned_key = "threshold"
    tuning_grid = T_GRID
    default_tuned = 1.0

    def __init__(self, in_dim: int, n_labels: int, params: SampledHeadParams | dict | None = None) -> None:
        super().__init__(in_dim, n_labels, params)
        self.output = output_layer(in_dim, n_labels, self.params.shard_labels)
        if self.sparse_gradients:
            self.output.weight = mark_sparse_gradient(self.output.weight)
            if self.output.bias is not None:  # output_layer always builds one
                self.output.bias = mark_sparse_gradient(self.output.bias)
        # "auto": no sampler until prepare sees the data (an unfitted sampler cannot be used anyway)
        self.sampler = None if self.params.sampler == AUTO else _make_sampler(in_dim, n_labels, self.params)

    @property
    def ready_sampler(self) -> Sampler:
        """``self.sampler``, which ``sampler="auto"`` builds only in :meth:`prepare`.

        Raises
        ------
        ValueError
            When there is no sampler yet (``sampler="auto"`` before :meth:`prepare`).
        """
        if self.sampler is None:
            raise ValueError(f"{type(self).__name__} has no sampler yet (sampler='auto'); call prepare(X, Y) first")
        return self.sampler

    @property
    def sparse_gradients(self) -> bool:
        """Whether training reads the output layer with sparse gradients (``sparse_gradients``, None resolved)."""
        chosen = self.params.sparse_gradients
        return True if chosen is None else bool(chosen)

    def prepare(self, X: sp.csr_matrix, Y: sp.csr_matrix) -> None:
        """Fit the sampler on the training data (deterministic, so a resumed run refits the same one);
        with ``sampler="auto"``, first decide which (see :class:`SampledHeadParams`)."""
        if self.params.sampler == AUTO:
            # a copy: the caller's params object may be shared with other heads
            self.params = dataclasses.replace(self.params, sampler="tree" if X.shape[1] == self.in_dim else "frequency")
            device = self.output.weight.device  # prepare runs after the model moved to its device
            self.sampler = _make_sampler(self.in_dim, self.n_labels, self.params).to(device)
        sampler = self.ready_sampler
        if sampler.uses_features and X.shape[1] != self.in_dim:
            raise _feature_sampler_error(
                self.params.sampler,
                f"{self.in_dim}-d hidden vectors, not the {X.shape[1]} features it could be fitted on",
            )
        sampler.fit(X, Y)
        self.init_output(X, Y)

    def init_output(self, X: sp.csr_matrix, Y: sp.csr_matrix) -> None:
        """Set the output layer's starting values from the training data and the fitted sampler (the last step
        of :meth:`prepare`; none here). A caller that loads an already fitted sampler instead of calling
        ``prepare`` calls this."""

    def set_biases(self, values: np.ndarray) -> None:
        """Set the output biases to ``values`` (C,), all labels' values: this rank keeps its own slice."""
        start, stop = self.label_range
        bias = self.output.bias
        assert bias is not None  # output_layer always builds the layer with a bias
        with torch.no_grad():
            bias.copy_(torch.from_numpy(values[start:stop]).to(bias))

    @classmethod
    def check_encoder(cls, params: _AnyParams, hidden_sizes: tuple[int, ...]) -> None:
        """A sampler that conditions on the features (tree) needs the linear model: refused otherwise."""
        params = SampledHeadParams.from_dict(params)  # the head's own settings, returned as they are
        if params.sampler != AUTO and get_sampler(params.sampler).uses_features and tuple(hidden_sizes):
            raise _feature_sampler_error(params.sampler, f"the hidden vectors of hidden_sizes={tuple(hidden_sizes)}")

    def positive_pairs(self, labels: LabelBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows, positive labels) of the training pairs of a batch, LongTensors (P,).

        "all": every stored label; "one": one label per labelled row, drawn uniformly with torch's generator.
        Rows with no label have no pair.
        """
        if self.params.positives == "all":
            return labels.row_ids(), labels.indices
        sizes = labels.sizes()
        rows = torch.nonzero(sizes > 0).squeeze(1)
        pick = (torch.rand(rows.numel(), dtype=torch.float64, device=rows.device) * sizes[rows]).long()
        pick = torch.minimum(pick, sizes[rows] - 1)
        return rows, labels.indices[labels.offsets[rows] + pick]

    def sampled_logits(
        self, hidden: torch.Tensor, labels: LabelBatch
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Logits and log-proposal of each positive pair's positive (column 0) and its n negatives.

        Returns None when the batch has no positive pair, else ``(rows, negatives, logits, log_q)`` with
        ``rows`` (P,), ``negatives`` (P, n) and ``logits``, ``log_q`` (P, 1 + n).
        """
        rows, positives = self.positive_pairs(labels)
        if rows.numel() == 0:
            return None
        sampler = self.ready_sampler
        negatives, neg_log_q = sampler.sample(hidden, self.params.num_negatives, rows=rows)
        pos_log_q = sampler.log_prob(hidden, positives[:, None], rows=rows)
        # float32 under bfloat16 autocast; a split layer assembles the pairs' logits over the shards
        pair_labels = torch.cat([positives[:, None], negatives], dim=1)
        logits = full_precision(pair_logits(self.output, hidden, rows, pair_labels))
        return rows, negatives, logits, torch.cat([pos_log_q, neg_log_q], dim=1).to(logits.dtype)

    def empty_loss(self) -> torch.Tensor:
        """Zero that keeps the graph: the loss of a batch without any positive pair."""
        bias = self.output.bias
        assert bias is not None  # output_layer always builds the layer with a bias
        return bias.sum() * 0.0
