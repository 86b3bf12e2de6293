r"""Scoring a head over each row's candidate labels only (a shortlist), never over all C labels.

A shortlist model (:class:`sparsexc.models.ShortlistModel`) gives every row a set of candidate labels: at
training its positives, the labels a label tree shortlists and labels drawn uniformly, at prediction the
shortlist alone. A head whose scores are an affine map per label, :math:`z_j = w_j^\top h + b_j`, computes them
for the candidates alone by gathering those rows of its output layer (:func:`sparsexc.ops.affine.pair_logits_of`),
so a step costs O(B M d) for M candidates per row, not O(B C d). The candidates are held padded, (B, M) with M
the largest row's count; a padding slot has the logit :math:`-\infty`, which every candidate rule below treats
as "not a label": probability 0 and never in a set.

:class:`CandidateScoring` is the part of the head protocol that does this, written once; a head that mixes it
in supplies three maps of the padded logits: :meth:`~CandidateScoring.candidate_loss_from`,
:meth:`~CandidateScoring.candidate_probabilities` and :meth:`~CandidateScoring.candidate_sets`. With every
label a candidate, each equals the head's full-label counterpart (tested in ``tests/test_shortlist_heads.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from sparsexc.core.labels import LabelBatch
from sparsexc.core.topk import topk_lower_id_ties
from sparsexc.distributed.sharded import ShardedOutputLayer
from sparsexc.errors import ConfigurationError
from sparsexc.heads._label_sharded import full_precision
from sparsexc.heads.protocol import ScalarTunedHead
from sparsexc.heads.tuning import RowCounts
from sparsexc.ops.affine import pair_logits_of

__all__ = ["UNION_FACTOR", "CandidateScoring", "Candidates"]

# the batch's distinct candidates are scored by one (B, |U|) product when |U| <= UNION_FACTOR x M (see
# CandidateScoring.candidate_logits). Measured on one CPU thread, sparsemax loss + backward, B = 256, M = 100,
# d = 512: the per-row gather 0.15-0.17 s whatever C; the union product 0.011 s at |U| = 159, 0.024 s at 983,
# 0.054 s at 2,000 (C = 19,000; every label, 0.24 s): it grows about 0.027 s per 1,000 labels of U, so the
# gather wins from |U| of about 60 M on
UNION_FACTOR = 40


@dataclass
class Candidates:
    """Each row's candidate labels, padded to the widest row.

    Attributes
    ----------
    ids : LongTensor (B, M)
        Label ids, increasing along each row (so a lower slot is a lower id); padding slots hold 0.
    mask : BoolTensor (B, M)
        Which slots hold a candidate.
    offset : FloatTensor (B, M) or None
        Added to the head's logits of the candidates (:meth:`CandidateScoring.candidate_logits`) before every
        rule: a shortlist model's weighted log path scores of the label tree (its ``path_weight``); None: nothing.
    """

    ids: torch.Tensor
    mask: torch.Tensor
    offset: torch.Tensor | None = None

    @classmethod
    def from_batch(cls, batch: LabelBatch) -> Candidates:
        """The padded form of a :class:`LabelBatch` of candidate sets (sorted ids per row)."""
        sizes = batch.sizes()
        width = int(sizes.max()) if sizes.numel() else 0
        slot = torch.arange(width, device=batch.device)
        mask = slot[None, :] < sizes[:, None]
        ids = torch.zeros(batch.n_rows, width, dtype=torch.long, device=batch.device)
        ids[mask] = batch.indices  # row-major order of the mask is the CSR order
        return cls(ids, mask)

    @property
    def sizes(self) -> torch.Tensor:
        """Candidates per row, LongTensor (B,)."""
        return self.mask.sum(dim=1)

    def targets(self, labels: LabelBatch) -> torch.Tensor:
        """BoolTensor (B, M): which candidates are positives of their row (padding slots are False)."""
        n_labels = max(int(labels.n_labels), 1)
        rows = torch.arange(self.ids.shape[0], device=self.ids.device)[:, None]
        keys = rows * n_labels + self.ids
        positive = labels.row_ids() * n_labels + labels.indices
        return torch.isin(keys, positive) & self.mask

    def label_ids(self, slots: torch.Tensor) -> torch.Tensor:
        """The label ids at the (B, k) slot positions ``slots``."""
        return torch.gather(self.ids, 1, slots)


class CandidateScoring(ScalarTunedHead):
    """A :class:`ScalarTunedHead` whose output layer ``self.output`` is affine per label, scored over candidates.

    Mixed in before the head's own base (``class SigmoidHead(CandidateScoring, LabelShardedHead)``). The head
    supplies :meth:`candidate_loss_from`, :meth:`candidate_probabilities` and :meth:`candidate_sets` (maps of
    the padded (B, M) logits); everything else is here. A label-sharded output layer is refused.
    """

    supports_candidates: ClassVar[bool] = True
    output: Any  # the head's OutputLayer (or, refused here, a ShardedOutputLayer)

    # -- what a head supplies ----------------------------------------------------------------------------
    def candidate_loss_from(self, logits: torch.Tensor, target: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        """The head's loss over the candidates: padded logits (B, M) (:math:`-\\infty` at padding), ``target``
        (B, M) bool the positives among them, ``labels`` the full positive sets (their sizes)."""
        raise NotImplementedError

    def candidate_probabilities(self, logits: torch.Tensor, candidates: Candidates) -> torch.Tensor:
        """The head's scores of the candidates, (B, M); 0 at padding."""
        raise NotImplementedError

    def candidate_sets(self, logits: torch.Tensor, candidates: Candidates, value: float) -> torch.Tensor:
        """The head's set rule at the setting ``value`` over the candidates: BoolTensor (B, M), False at padding."""
        raise NotImplementedError

    # -- written once ------------------------------------------------------------------------------------
    def candidate_logits(self, hidden: torch.Tensor, candidates: Candidates) -> torch.Tensor:
        r"""Logits :math:`z_{ij} = w_{c_{ij}}^\top h_i + b_{c_{ij}}` of every row's candidates, (B, M), at least
        float32 (also under bfloat16 autocast), :math:`-\infty` at padding. Only the candidates' rows of the output
        weights are read.

        Two ways to the same numbers: when the batch's distinct candidates U are few (at most
        :data:`UNION_FACTOR` x M, as when rows share their shortlists), one product :math:`H W_U^\top` (B, |U|)
        and a gather per row; else each row's own M weight rows are gathered (``pair_logits_of``,
        O(B M d)), as for the linear model's sparse features always."""
        layer = self.output
        if isinstance(layer, ShardedOutputLayer):
            raise ConfigurationError(f"head {self.name!r}: a shortlist needs a whole output layer (shard_labels=False)")
        ids = candidates.ids
        # float32 at least (as the full heads' losses): the products run outside autocast
        with torch.autocast(device_type=ids.device.type, enabled=False):
            if hidden.layout == torch.sparse_csr:
                z = pair_logits_of(layer.weight, layer.bias, hidden, torch.arange(ids.shape[0], device=ids.device), ids)
            else:
                h = full_precision(hidden)
                union, slots = torch.unique(ids, return_inverse=True)
                if union.numel() <= UNION_FACTOR * max(ids.shape[1], 1):
                    z = torch.gather(layer.forward_subset(h, union), 1, slots)
                else:
                    z = pair_logits_of(layer.weight, layer.bias, h, torch.arange(ids.shape[0], device=ids.device), ids)
        z = full_precision(z)
        if candidates.offset is not None:
            z = z + candidates.offset.to(z.dtype)
        return z.masked_fill(~candidates.mask, float("-inf"))

    def candidate_loss(self, hidden: torch.Tensor, labels: LabelBatch, candidates: Candidates) -> torch.Tensor:
        """Mean training loss over each row's candidates (which must hold its positives)."""
        return self.candidate_loss_from(self.candidate_logits(hidden, candidates), candidates.targets(labels), labels)

    def candidate_topk(self, hidden: torch.Tensor, candidates: Candidates, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The k best candidates per row by logit (the order of every head's scores), ties to the lower id:
        (label ids (B, k), scores (B, k)), k capped at M. Padding ranks last with score 0."""
        z = self.candidate_logits(hidden, candidates)
        slots, _ = topk_lower_id_ties(z, k)
        scores = torch.gather(self.candidate_probabilities(z, candidates), 1, slots)
        return candidates.label_ids(slots), scores

    def candidate_predict_sets(self, hidden: torch.Tensor, candidates: Candidates) -> LabelBatch:
        """Predicted sets: the head's rule, at its tuned value, over the candidates (a subset of them)."""
        z = self.candidate_logits(hidden, candidates)
        chosen = self.candidate_sets(z, candidates, self.tuned_value)
        sizes = chosen.sum(dim=1)
        offsets = torch.zeros(chosen.shape[0] + 1, dtype=torch.long, device=chosen.device)
        torch.cumsum(sizes, 0, out=offsets[1:])
        return LabelBatch(candidates.ids[chosen], offsets, int(self.n_labels))

    def tune_candidate_batches(
        self, batches: Iterable[tuple[torch.Tensor, LabelBatch, Candidates]], metric: str = "micro-F1"
    ) -> dict[str, Any]:
        """Tune the set rule's value over the candidates, as :meth:`ScalarTunedHead.tune_batches` does over all
        labels: per-row counts at every grid value; a positive outside a row's candidates counts as missed."""
        key = self.tuned_key
        if getattr(self.params, key) is not None:
            return {key: self.tuned_value}
        counts = RowCounts(self.tuning_candidates(), metric)
        for hidden, labels, candidates in batches:
            self.add_candidate_counts(counts, self.candidate_logits(hidden, candidates).detach(), candidates, labels)
        best, value = counts.best()
        self.set_tuned_value(best)
        return {key: best, metric: value}

    def candidate_grid(self) -> list[float]:
        """The values the set rule is tuned over: the fixed one alone when the params fix it, else the grid."""
        fixed = getattr(self.params, self.tuned_key)
        return [float(fixed)] if fixed is not None else [float(v) for v in self.tuning_candidates()]

    def add_candidate_counts(
        self, counts: RowCounts, logits: torch.Tensor, candidates: Candidates, labels: LabelBatch
    ) -> None:
        """Add a batch's per-row counts to ``counts``: at each of its grid values, the rule over the candidates'
        padded ``logits`` (B, M); a positive outside a row's candidates counts as missed."""
        target = candidates.targets(labels)
        tp, pred = [], []
        for value in counts.grid:
            chosen = self.candidate_sets(logits, candidates, value)
            tp.append((chosen & target).sum(dim=1).cpu().numpy())
            pred.append(chosen.sum(dim=1).cpu().numpy())
        counts.add(np.stack(tp, axis=1), np.stack(pred, axis=1), labels.sizes().cpu().numpy())
