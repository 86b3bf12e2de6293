r"""An encoder + head model whose output layer is scored only on a shortlist of labels from a label tree.

The shortlist of a row is the ``size`` best labels of a fitted :class:`~sparsexc.tree.LabelTreeModel` (the
matcher) by path score, found by beam search on the row's raw features
(:meth:`LabelTreeModel.predict_topk <sparsexc.tree.LabelTreeModel.predict_topk>` with ``k = size``). At
training the head's loss runs over each row's candidates, its positives :math:`\cup` its shortlist (the tree's
hard negatives) :math:`\cup` ``negatives`` labels drawn uniformly from all C (fresh at every step); at
prediction over its shortlist alone: top-k, scores and sets come from the shortlisted labels, every other label
scores 0. A step costs the tree's search, O(beam x branching x depth) per row, plus O((size + negatives) x d)
for the output layer, a prediction O(size x d), not O(C x d).

Why the uniform negatives: a label's output row is trained only on the rows where it is a candidate. A label
the tree seldom shortlists (most rare labels: on delicious those with under 50 training positives are each a
candidate of about 1% of the rows) meets few negatives, and fewer still because the tree, fitted on the
training rows, shortlists their positives better than a new row's (24% of such a label's training candidates
are positives, 6% of its shortlistings in held-out rows). Its score drifts up, and a head whose loss moves only
the labels inside its support (sparsemax) never pulls it back: such labels were the wrong top-1s. Uniform draws
give every label negative rows in proportion to the data, the remedy of sampled-softmax training
(``benchmarks/shortlist_diagnosis.py`` measures it; ``docs/shortlist.md`` has the numbers).

The head's scores combine with the matcher's (``path_weight``). A candidate's logit becomes
:math:`z_j + w \log s_j`, :math:`s_j` the label's path score in the tree (the product of node probabilities on
its path) and :math:`w \ge 0`, so every rule (top-k, the head's probabilities, its sets) reads the head's
score shifted by the matcher's, as PECOS's XR models and probabilistic label trees multiply matcher and
ranker probabilities (:math:`w = 1` for a sigmoid-like head is that product's logarithm, up to the head's own
link). The head is trained without it (its loss sees its own logits); :meth:`ShortlistModel.tune` chooses
:math:`w` from :data:`PATH_WEIGHTS` jointly with the head's set rule on the validation rows (the pair with
the best set metric; ties to the smaller :math:`w`, so :math:`w = 0`, the head alone, when nothing is gained).
``docs/shortlist.md`` has what it changed on bibtex, delicious and debian-deps, and over seeds.

The matcher is fitted in :meth:`ShortlistModel.prepare` (the Trainer calls it once before training) on the
training rows, unless it is fitted already. Its arrays are part of the model's ``state_dict`` (keys
``shortlist.<array>``, as :meth:`LabelTreeModel.to_arrays` names them), so checkpoints and model files carry
it and :meth:`load_state_dict` rebuilds it; :meth:`ShortlistModel.config` holds its settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from sparsexc._params import FitParams
from sparsexc.core.labels import LabelBatch
from sparsexc.errors import ConfigurationError
from sparsexc.heads import Head, build_head, get_head, list_heads
from sparsexc.heads.candidates import Candidates, CandidateScoring
from sparsexc.heads.tuning import RowCounts
from sparsexc.models.batch import FeatureBatch
from sparsexc.models.encoder import SparseEncoder
from sparsexc.models.model import MAX_BATCH_SCORES, XCModel
from sparsexc.tree import LabelTreeModel, LabelTreeParams

__all__ = ["PATH_WEIGHTS", "PREFIX", "ShortlistModel", "shortlist_heads"]

PREFIX = "shortlist."  # state_dict keys of the matcher's arrays
DEFAULT_NEGATIVES = FitParams.shortlist_negatives  # uniform negatives per training row (FitParams' default)
# the weights w of the matcher's log path score tried by tune (ties to the first). On 90% of bibtex's and
# delicious' training rows, tuned on the other 10%, the sparsemax head chose 0.2 and 0.1 (its test example-F1
# +2.0 and +0.6 points; every w in 0.1-2 lifted test P@1 over w = 0, by 0.1-1.8 points; 3 did not on delicious)
PATH_WEIGHTS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
# path scores below this (a label the search reached with probability ~0) are floored before the log, so that
# every shortlisted label keeps a finite logit
PATH_FLOOR = float(np.finfo(np.float32).tiny)


def shortlist_heads() -> tuple[str, ...]:
    """The registered heads that can be trained and scored over a shortlist (``supports_candidates``)."""
    return tuple(name for name in list_heads() if get_head(name).supports_candidates)


def check_shortlist_head(head_cls: type[Head], params: Any = None) -> None:
    """Refuse a head that cannot score a shortlist, naming those that can (a ConfigurationError)."""
    if not head_cls.supports_candidates:
        raise ConfigurationError(
            f"shortlist='tree' needs a head that scores a shortlist of labels; head {head_cls.name!r} cannot. "
            f"Choose one of {', '.join(map(repr, shortlist_heads()))}, or shortlist='none'"
        )
    if params is not None and getattr(params, "shard_labels", False):
        raise ConfigurationError(
            "shortlist='tree' scores each row's shortlisted labels from a whole output layer: "
            "shard_labels=True is not supported with it (use shortlist='none' to shard the labels)"
        )


class ShortlistModel(XCModel):
    """``head(encoder(X))`` scored over each row's shortlist from a label tree (see the module docstring).

    Parameters
    ----------
    encoder : SparseEncoder
    head : Head
        A head with ``supports_candidates`` (sigmoid, softmax, sparsemax), whose output layer is whole.
    matcher : LabelTreeModel
        The label tree; fitted in :meth:`prepare` when it is not yet.
    size : int >= 1
        Shortlisted labels per row (capped at C).
    beam : int >= 1
        Beam width of the search at training (and the prediction default when a method gets ``beam=None``).
    negatives : int >= 0
        Labels drawn uniformly (with replacement, from torch's generator) and added to each training row's
        candidates at every step; 0: the shortlist and the positives only. Prediction never uses them.
    path_weight : float >= 0 or None
        The weight :math:`w` of the matcher's log path score added to the head's logits at prediction (see the
        module docstring); None (default): tuned by :meth:`tune` (0 until then); 0: the head alone.

    Attributes
    ----------
    path_weight_ : float
        The weight in use: ``path_weight``, or the tuned one.
    """

    def __init__(
        self,
        encoder: SparseEncoder,
        head: Head,
        matcher: LabelTreeModel,
        size: int = 100,
        beam: int = 10,
        negatives: int = DEFAULT_NEGATIVES,
        path_weight: float | None = None,
    ) -> None:
        check_shortlist_head(type(head), head.params)
        for name, value, least in (
            ("shortlist_size", size, 1),
            ("beam", beam, 1),
            ("shortlist_negatives", negatives, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ConfigurationError(f"{name}={value!r}: must be an integer >= {least}")
        if path_weight is not None and (
            isinstance(path_weight, bool)
            or not isinstance(path_weight, (int, float, np.integer, np.floating))
            or not np.isfinite(path_weight)
            or path_weight < 0
        ):
            raise ConfigurationError(f"shortlist_path_weight={path_weight!r}: must be a finite number >= 0, or None")
        super().__init__(encoder, head)
        self.matcher = matcher
        self.size, self.beam, self.negatives = int(size), int(beam), int(negatives)
        self.path_weight = None if path_weight is None else float(path_weight)
        self.path_weight_ = self.path_weight if self.path_weight is not None else 0.0
        self._tree_config: dict[str, Any] | None = _tree_config(matcher) if _fitted(matcher) else None
        self._train_shortlist: tuple[tuple[int, int], np.ndarray] | None = None  # set by prepare
        self.register_state_dict_post_hook(_save_matcher)
        self.register_load_state_dict_pre_hook(_load_matcher)

    @property
    def candidate_head(self) -> CandidateScoring:
        assert isinstance(self.head, CandidateScoring)  # checked in __init__
        return self.head

    # -- training ----------------------------------------------------------------------------------------
    def prepare(self, X: sp.csr_matrix, Y: sp.csr_matrix) -> None:
        """Fit the matcher on the training rows (unless fitted), then the head's :meth:`Head.prepare`."""
        if not _fitted(self.matcher):
            self.matcher.fit(X, Y)
            self._tree_config = _tree_config(self.matcher)
        # searched once for all training rows; a batch the Trainer cut from X takes its rows' (FeatureBatch.rows)
        self._train_shortlist = (X.shape, self.shortlist(X, self.beam).astype(np.int32))
        super().prepare(X, Y)

    def loss(self, features: FeatureBatch, labels: LabelBatch) -> torch.Tensor:
        """The head's loss over each row's positives, shortlisted labels and ``negatives`` uniform draws
        (``candidate_loss``); the shortlists of the rows of the matrix given to :meth:`prepare`
        (``features.rows``) are looked up, others searched."""
        kept = self._train_shortlist
        if features.rows is not None and kept is not None and kept[0][1] == features.n_features:
            shortlist = kept[1][features.rows].astype(np.int64)
        else:
            shortlist = self.shortlist(_to_csr(features), self.beam)
        if self.negatives:
            # torch's CPU generator: seeded by the Trainer (per step and rank when data parallel), checkpointed
            drawn = torch.randint(0, self.n_labels, (shortlist.shape[0], self.negatives), device="cpu").numpy()
            shortlist = np.concatenate([shortlist, drawn], axis=1)  # _union drops the repeats
        candidates = Candidates.from_batch(_union(shortlist, labels.to_csr(), features.indices.device))
        return self.candidate_head.candidate_loss(self.hidden(features), labels, candidates)

    # -- the shortlist -----------------------------------------------------------------------------------
    def shortlist(self, X_rows: sp.csr_matrix, beam: int | None = None) -> np.ndarray:
        """Each row's ``min(size, C)`` best labels by the matcher's path score, int64 (n, m), increasing ids."""
        return self.scored_shortlist(X_rows, beam)[0]

    def scored_shortlist(self, X_rows: sp.csr_matrix, beam: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`shortlist` and, in the same places, the labels' log path scores (float32, floored at
        ``log(PATH_FLOOR)``)."""
        if not _fitted(self.matcher):
            raise ConfigurationError("this shortlist model's matcher is not fitted: train the model first")
        m = min(self.size, self.n_labels)
        idx, scores = self.matcher.predict_topk(X_rows, m, beam=int(beam if beam is not None else self.beam))
        order = np.argsort(idx, axis=1, kind="stable")
        log_path = np.log(np.maximum(np.take_along_axis(scores, order, axis=1), PATH_FLOOR)).astype(np.float32)
        return np.take_along_axis(idx, order, axis=1), log_path

    def _shortlist_batches(
        self, X: sp.spmatrix, batch_size: int, beam: int | None
    ) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per batch of rows: (rows, hidden, shortlisted ids (B, m), their log path scores (B, m))."""
        X = self._check_X(X)
        device = self.device
        step = max(1, min(int(batch_size), MAX_BATCH_SCORES // min(self.size, self.n_labels)))
        for start in range(0, max(X.shape[0], 1), step):
            rows = slice(start, start + step)
            X_rows = X[rows]
            ids, log_path = self.scored_shortlist(X_rows, beam)
            hidden = self.encoder(FeatureBatch.from_csr(X_rows, device))
            yield rows, hidden, torch.from_numpy(ids).to(device), torch.from_numpy(log_path).to(device)

    def _candidate_batches(
        self, X: sp.spmatrix, batch_size: int, beam: int | None
    ) -> Iterator[tuple[slice, torch.Tensor, Candidates]]:
        """Per batch of rows: (rows, hidden, the shortlist as candidates, offset by ``path_weight_`` x log path)."""
        weight = self.path_weight_
        for rows, hidden, ids, log_path in self._shortlist_batches(X, batch_size, beam):
            offset = weight * log_path if weight else None
            yield rows, hidden, Candidates(ids, torch.ones_like(ids, dtype=torch.bool), offset)

    # -- batched inference over the shortlist ------------------------------------------------------------
    def predict_topk(
        self, X: sp.spmatrix, k: int = 5, batch_size: int = 1024, *, beam: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of each row's shortlist (k capped at C); when k exceeds the shortlist, the remaining places hold
        the lowest unlisted label ids with score 0 (no label outside the shortlist is scored)."""
        k = min(int(k), self.n_labels)
        n = self._check_X(X).shape[0]
        indices = np.zeros((n, k), dtype=np.int64)
        scores = np.zeros((n, k), dtype=np.float32)
        with self._inference():
            for rows, hidden, candidates in self._candidate_batches(X, batch_size, beam):
                idx, val = self.candidate_head.candidate_topk(hidden, candidates, k)
                width = idx.shape[1]
                indices[rows, :width] = idx.cpu().numpy()
                scores[rows, :width] = val.float().cpu().numpy()
                if width < k:
                    indices[rows, width:] = _fill_unlisted(candidates.ids.cpu().numpy(), k - width)
        return indices, scores

    def predict_sets(self, X: sp.spmatrix, batch_size: int = 1024, *, beam: int | None = None) -> sp.csr_matrix:
        """The head's set rule over each row's shortlist: CSR 0/1 float32 (n, C)."""
        parts = []
        with self._inference():
            for _, hidden, candidates in self._candidate_batches(X, batch_size, beam):
                parts.append(self.candidate_head.candidate_predict_sets(hidden, candidates).to_csr())
        return sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=np.float32)

    def predict_scores(self, X: sp.spmatrix, batch_size: int = 1024, *, beam: int | None = None) -> np.ndarray:
        """Dense float32 (n, C): the head's scores of each row's shortlist, 0 for every other label."""
        n = self._check_X(X).shape[0]
        out = np.zeros((n, self.n_labels), dtype=np.float32)
        head = self.candidate_head
        with self._inference():
            for rows, hidden, candidates in self._candidate_batches(X, batch_size, beam):
                p = head.candidate_probabilities(head.candidate_logits(hidden, candidates), candidates)
                block = out[rows]
                np.put_along_axis(block, candidates.ids.cpu().numpy(), p.float().cpu().numpy(), axis=1)
        return out

    def tune(
        self,
        X_val: sp.spmatrix,
        Y_val: sp.spmatrix,
        metric: str = "micro-F1",
        batch_size: int = 1024,
        *,
        beam: int | None = None,
    ) -> dict[str, Any]:
        """Tune the head's set rule over each validation row's shortlist, jointly with ``path_weight`` when it
        is None: every pair (w in :data:`PATH_WEIGHTS`, the rule's value in its grid) is counted in one pass over
        the rows, and the pair with the highest ``metric`` kept (ties to the smaller w, then to the rule's first
        value). A fixed ``path_weight`` or a fixed rule value is the only one tried. Returns the head's tuned
        value, ``path_weight`` and the metric at them."""
        X_val, Y_val = self._check_X(X_val), sp.csr_matrix(Y_val)
        if Y_val.shape[0] != X_val.shape[0]:
            raise ValueError(f"X_val has {X_val.shape[0]} rows but Y_val has {Y_val.shape[0]}")
        head = self.candidate_head
        weights = PATH_WEIGHTS if self.path_weight is None else (self.path_weight,)
        counts = [RowCounts(head.candidate_grid(), metric) for _ in weights]
        with self._inference():
            for rows, hidden, ids, log_path in self._shortlist_batches(X_val, batch_size, beam):
                labels = LabelBatch.from_csr(Y_val[rows], self.device)
                candidates = Candidates(ids, torch.ones_like(ids, dtype=torch.bool))
                z = head.candidate_logits(hidden, candidates).detach()
                for weight, count in zip(weights, counts):
                    head.add_candidate_counts(count, z + weight * log_path if weight else z, candidates, labels)
        best = [count.best() for count in counts]
        at = max(range(len(weights)), key=lambda i: (best[i][1], -i))  # the highest metric, ties to the first
        value, score = best[at]
        self.path_weight_ = float(weights[at])
        head.set_tuned_value(value)
        return {head.tuned_key: value, "path_weight": self.path_weight_, metric: score}

    def tuned_state(self) -> dict[str, Any]:
        """The head's tuned values and ``path_weight`` (the weight in use)."""
        return {**super().tuned_state(), "path_weight": self.path_weight_}

    def load_tuned_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`tuned_state`: ``path_weight`` here, the rest the head's."""
        state = dict(state)
        if "path_weight" in state:
            self.path_weight_ = float(state.pop("path_weight"))
        super().load_tuned_state(state)

    # -- configuration -----------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """:meth:`XCModel.config` and ``"shortlist"``: ``size``, ``beam``, ``negatives``, ``path_weight`` (the
        setting: a number or None), ``tuned`` (``{"path_weight": the weight in use}``) and the matcher's ``tree``
        (params, sizes, depths; its arrays are in the ``state_dict``)."""
        tree = self._tree_config if self._tree_config is not None else {"params": self.matcher.params.to_dict()}
        entry = {
            "size": self.size,
            "beam": self.beam,
            "negatives": self.negatives,
            "path_weight": self.path_weight,
            "tuned": {"path_weight": self.path_weight_},
            "tree": dict(tree),
        }
        return {**super().config(), "shortlist": entry}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ShortlistModel:
        """The architecture of :meth:`config` with fresh weights and an unfitted matcher (its arrays come with
        :meth:`load_state_dict`). A config without ``negatives`` (saved before they existed) trained with none;
        one without ``path_weight`` predicted with the head alone (``path_weight`` 0)."""
        encoder = SparseEncoder(int(config["encoder"]["n_features"]), config["encoder"]["params"])
        shortlist = config["shortlist"]
        matcher = LabelTreeModel(LabelTreeParams.from_saved(shortlist["tree"]["params"]))
        sizes = int(shortlist["size"]), int(shortlist["beam"]), int(shortlist.get("negatives", 0))
        path_weight = shortlist.get("path_weight", 0.0)
        model = cls(encoder, build_head(config["head"]), matcher, *sizes, path_weight=path_weight)
        model.load_tuned_state({"path_weight": shortlist.get("tuned", {}).get("path_weight", model.path_weight_)})
        if "depths" in shortlist["tree"]:
            model._tree_config = dict(shortlist["tree"])
        return model


def _fitted(matcher: LabelTreeModel) -> bool:
    return hasattr(matcher, "weights_")


def _tree_config(matcher: LabelTreeModel) -> dict[str, Any]:
    """What :meth:`LabelTreeModel.from_arrays` needs beside the arrays."""
    return {
        "params": matcher.params.to_dict(),
        "n_features": int(matcher.n_features_),
        "n_labels": int(matcher.n_labels_),
        "depths": [int(tree.depth) for tree in matcher.trees_],
    }


def _save_matcher(module: ShortlistModel, state: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    if _fitted(module.matcher):
        for name, array in module.matcher.to_arrays().items():
            state[prefix + PREFIX + name] = torch.from_numpy(array)


def _load_matcher(module: ShortlistModel, state: dict[str, Any], prefix: str, *args: Any) -> None:
    head = prefix + PREFIX
    arrays = {k[len(head) :]: state.pop(k).cpu().numpy() for k in [k for k in state if k.startswith(head)]}
    if not arrays:
        return
    if module._tree_config is None:
        raise ConfigurationError("cannot load a shortlist matcher without its configuration (model config 'shortlist')")
    module.matcher = LabelTreeModel.from_arrays(module._tree_config, arrays, "the model's state")


def _to_csr(features: FeatureBatch) -> sp.csr_matrix:
    """A feature batch as scipy CSR on the CPU (what the matcher searches)."""
    return sp.csr_matrix(
        (
            features.values.detach().cpu().numpy(),
            features.indices.cpu().numpy(),
            features.offsets.cpu().numpy(),
        ),
        shape=(features.n_rows, features.n_features),
    )


def _union(shortlist: np.ndarray, Y_rows: sp.csr_matrix, device: torch.device) -> LabelBatch:
    """Per row, its shortlist ∪ its positives, sorted: a LabelBatch of C = ``Y_rows.shape[1]`` labels."""
    n, C = Y_rows.shape
    m = shortlist.shape[1]
    keys = np.concatenate(
        [
            (np.repeat(np.arange(n, dtype=np.int64), m) * C + shortlist.ravel()),
            np.repeat(np.arange(n, dtype=np.int64), np.diff(Y_rows.indptr)) * C + Y_rows.indices.astype(np.int64),
        ]
    )
    keys = np.unique(keys)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // C, minlength=n), out=offsets[1:])
    return LabelBatch(torch.from_numpy(keys % C).to(device), torch.from_numpy(offsets).to(device), int(C))


def _fill_unlisted(ids: np.ndarray, count: int) -> np.ndarray:
    """Per row the ``count`` lowest label ids not in its (sorted) shortlist ``ids``, int64 (n, count)."""
    out = np.empty((ids.shape[0], count), dtype=np.int64)
    for i, row in enumerate(ids):
        used = set(row.tolist())
        out[i] = [j for j in range(len(used) + count) if j not in used][:count]
    return out
