r"""Cosine-proximity regression onto PMI label embeddings (Chollet, 2016).

Each label j has a unit vector :math:`e_j \in \mathbb{R}^d` (:func:`sparsexc.embeddings.pmi_embeddings` of
the training labels, computed in :meth:`LabelEmbeddingHead.prepare`, or given). The model emits
:math:`o = W h + b \in \mathbb{R}^d`; the target of a row with labels :math:`y` is
:math:`t = \sum_{j \in y} e_j / \lVert \sum_{j \in y} e_j \rVert` and the loss is
:math:`1 - \cos(o, t)`. Labels are scored by :math:`\cos(o, e_j)` and ranked (nearest labels on the sphere).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from sparsexc._optional import import_optional, require
from sparsexc._params import NON_NEGATIVE, POSITIVE_INT, Params, Range, setting
from sparsexc.core.labels import LabelBatch
from sparsexc.core.layers import OutputLayer
from sparsexc.core.topk import topk_lower_id_ties
from sparsexc.embeddings.pmi import DIAGONAL_MODES, pmi_embeddings
from sparsexc.errors import ConfigurationError
from sparsexc.heads.protocol import ScalarTunedHead
from sparsexc.heads.registry import register_head

__all__ = ["ANN_MODES", "COSINE_GRID", "LabelEmbeddingHead", "LabelEmbeddingHeadParams", "topk_recall"]

ANN_MODES: tuple[str, ...] = ("exact", "hnsw")
# candidate cosine thresholds for set prediction (0.5 until tuned)
COSINE_GRID: tuple[float, ...] = tuple(np.round(np.arange(0.1, 0.96, 0.02), 2).tolist())
EPS = 1e-8  # norms are clamped to at least EPS, so a zero output or target has cosine 0 with everything
# exact top-k scores at most this many (row, label) pairs at a time (16 MB of float32)
TOPK_CHUNK_ENTRIES = 2**22


@dataclasses.dataclass
class LabelEmbeddingHeadParams(Params):
    """Parameters of :class:`LabelEmbeddingHead`.

    embedding_dim : int
        d, the width of the label embeddings and of the model's output.
    alpha, positive, shift, diagonal, embedding_seed, svd_iter
        The PMI and SVD options of :func:`sparsexc.embeddings.pmi_embeddings` (``alpha`` = smoothing exponent,
        ``embedding_seed`` = its ``seed``, ``svd_iter`` = its ``n_iter``).
    trainable : bool
        False (default, as in the paper): the embeddings stay fixed. True: they are trained too, starting from
        PMI (their rows are re-normalised at every use). The loss can then also be lowered by moving the
        labels together, so watch for collapse.
    ann : {"exact", "hnsw"}
        Top-k retrieval: exact cosine scores of all labels (chunked), or hnswlib's approximate nearest
        neighbours (needs the ``ann`` extra: ``pip install "sparsexc[ann]"``; without hnswlib, building these
        params raises :class:`sparsexc._optional.MissingDependencyError`, an ``ImportError``, so ``fit`` stops
        before it reads the data).
    hnsw_m, hnsw_ef_construction, hnsw_ef
        hnswlib's graph degree, build-time and query-time beam widths (the query beam is at least k).
    threshold : float or None
        Sets are ``{j : cos(o, e_j) > threshold}``. None (default): tuned on validation data over
        0.10, 0.12, ..., 0.94 (0.5 until tuned); a number in [-1, 1) fixes it.
    """

    embedding_dim: int = setting(128, "d, the width of the label embeddings and of the output.", range=POSITIVE_INT)
    alpha: float = setting(
        1.0, "PMI smoothing exponent of the context counts (1 = no smoothing).", range=Range(0, 1, low_open=True)
    )
    positive: bool = setting(False, "Keep only positive PMI values (PPMI).")
    shift: float = setting(0.0, "Subtracted from every PMI value (SPPMI: log k); a finite number.")
    diagonal: str = setting("pmi", "pmi keeps the self-pairs M_ii, zero drops them.", choices=DIAGONAL_MODES)
    embedding_seed: int = setting(0, "Seed of the randomised SVD.", range=NON_NEGATIVE)
    svd_iter: int = setting(7, "Power iterations of the randomised SVD.", range=NON_NEGATIVE)
    trainable: bool = setting(False, "Train the label embeddings too, starting from PMI (watch for collapse).")
    ann: str = setting(
        "exact", "Top-k retrieval: exact cosine scores, or hnswlib's approximate search.", choices=ANN_MODES
    )
    hnsw_m: int = setting(16, "hnswlib's graph degree M.", range=POSITIVE_INT)
    hnsw_ef_construction: int = setting(200, "hnswlib's build-time beam width.", range=POSITIVE_INT)
    hnsw_ef: int = setting(100, "hnswlib's query-time beam width (at least k).", range=POSITIVE_INT)
    threshold: float | None = setting(
        None,
        "Cosine threshold of the set rule cos(o, e_j) > threshold; None: tuned.",
        range=Range(-1, 1, high_open=True),
    )

    def validate(self) -> None:
        owner = type(self).__name__
        if not np.isfinite(self.shift):  # no Range states finiteness
            raise ConfigurationError(f"{owner}: shift={self.shift} must be a finite number")
        if self.ann == "hnsw":  # checked with the settings, not at the first top-k after training
            require("hnswlib", f"{owner}: ann='hnsw'")


def _normalise(x: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` divided by max(||row||, EPS)."""
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(EPS)


def _import_hnswlib() -> Any:
    return import_optional("hnswlib", "LabelEmbeddingHeadParams: ann='hnsw'")


def topk_recall(approx_ids: torch.Tensor | np.ndarray, exact_ids: torch.Tensor | np.ndarray) -> float:
    """Recall@k of an approximate top-k against the exact one: mean over rows of |approx ∩ exact| / k."""
    a, e = np.asarray(approx_ids), np.asarray(exact_ids)
    if a.shape != e.shape or a.ndim != 2:
        raise ValueError(f"approx_ids and exact_ids must be 2-D of the same shape; got {a.shape} and {e.shape}")
    if a.size == 0:
        return 1.0
    hits = [np.intersect1d(a[i], e[i]).size for i in range(a.shape[0])]
    return float(np.mean(hits) / a.shape[1])


@register_head
class LabelEmbeddingHead(ScalarTunedHead):
    r"""Cosine-proximity regression onto unit label embeddings; decoding by the nearest labels.

    Output :math:`o = W h + b \in \mathbb{R}^d` (an :class:`OutputLayer`, so ``hidden`` may be dense or the
    raw sparse features). For a row with labels :math:`y`, :math:`t = \mathrm{normalise}(\sum_{j \in y} e_j)`
    and the loss is :math:`1 - \cos(o, t) = 1 - \langle o, t \rangle / (\max(\lVert o \rVert, \epsilon)
    \max(\lVert \sum e_j \rVert, \epsilon))`, averaged over the rows that have at least one label. Rows with
    no label carry no target direction and are skipped (a batch of only such rows has loss 0); a row whose
    embeddings sum to the zero vector has constant loss 1 and no gradient.

    Scores are :math:`\cos(o, e_j) \in [-1, 1]` (not probabilities); the predicted set is
    :math:`\{j : \cos(o, e_j) > \tau\}`, :math:`\tau` tuned on validation data.

    The embeddings are the (C, d) tensor ``embeddings`` (a buffer, or a parameter with ``trainable=True``), so
    they are saved with the model's weights. :meth:`prepare` computes them from the training labels unless
    they were given to the constructor.

    Parameters
    ----------
    in_dim, n_labels, params
        As for every head; see :class:`LabelEmbeddingHeadParams`.
    embeddings : array or tensor (n_labels, embedding_dim), optional
        Fixed label embeddings (rows are normalised); :meth:`prepare` then leaves them alone.
    """

    name = "label-embedding"
    score_meaning = "cos(o, e_j) in [-1, 1], o = W h + b the projected input, e_j label j's embedding"
    Params = LabelEmbeddingHeadParams
    params: LabelEmbeddingHeadParams
    probabilistic = False
    # the cosine loss is scale-free in o; a 3x step trained faster in the first epochs on bibtex (validation
    # P@1 after epoch 1: linear 0.506 vs 0.430 at 1e-3, one hidden layer 0.443 vs 0.402; similar by epoch 10)
    default_lr_scale = 3.0
    tuned_key = "threshold"
    tuning_grid = COSINE_GRID
    default_tuned = 0.5

    def __init__(
        self,
        in_dim: int,
        n_labels: int,
        params: LabelEmbeddingHeadParams | dict | None = None,
        embeddings: np.ndarray | torch.Tensor | None = None,
    ) -> None:
        super().__init__(in_dim, n_labels, params)
        dim = self.params.embedding_dim
        self.output = OutputLayer(in_dim, dim)
        self.embeddings_given = embeddings is not None
        # placeholder until prepare() (or load_state_dict) fills it: the first d unit basis vectors, cycled
        start = torch.zeros(n_labels, dim)
        start[torch.arange(n_labels), torch.arange(n_labels) % dim] = 1.0
        if embeddings is not None:
            start = self._check_embeddings(embeddings)
        if self.params.trainable:
            self.embeddings = torch.nn.Parameter(start)
        else:
            self.register_buffer("embeddings", start)
        self._index: Any = None
        self._index_key: tuple | None = None

    def _check_embeddings(self, embeddings: np.ndarray | torch.Tensor) -> torch.Tensor:
        E = torch.as_tensor(np.asarray(embeddings) if not isinstance(embeddings, torch.Tensor) else embeddings)
        expected = (self.n_labels, self.params.embedding_dim)
        if E.ndim != 2 or tuple(E.shape) != expected:
            raise ConfigurationError(
                f"embeddings must have shape (n_labels, embedding_dim) = {expected}; got {tuple(E.shape)}"
            )
        E = E.detach().to(torch.float32)
        if not bool(torch.isfinite(E).all()):
            raise ConfigurationError("embeddings must be finite")
        return _normalise(E).clone()

    # -- training ---------------------------------------------------------------------------------------
    def prepare(self, X: sp.csr_matrix, Y: sp.csr_matrix) -> None:
        """Compute the PMI embeddings of the training labels ``Y`` (unless embeddings were given)."""
        if self.embeddings_given:
            return
        p = self.params
        E = pmi_embeddings(
            Y,
            p.embedding_dim,
            alpha=p.alpha,
            positive=p.positive,
            shift=p.shift,
            diagonal=p.diagonal,
            seed=p.embedding_seed,
            n_iter=p.svd_iter,
        )
        if E.shape[0] != self.n_labels:
            raise ValueError(f"Y has {E.shape[0]} label columns; the head has n_labels={self.n_labels}")
        with torch.no_grad():
            self.embeddings.copy_(torch.from_numpy(E))

    def unit_embeddings(self) -> torch.Tensor:
        """The label embeddings with unit rows, (C, d) (a no-op copy-free view when they are fixed)."""
        return _normalise(self.embeddings) if self.params.trainable else self.embeddings

    def targets(self, labels: LabelBatch) -> torch.Tensor:
        r"""Unnormalised targets :math:`\sum_{j \in y_i} e_j`, dense (B, d)."""
        E = self.unit_embeddings()
        out = E.new_zeros(labels.n_rows, E.shape[1])
        return out.index_add(0, labels.row_ids(), E[labels.indices])

    def loss(self, hidden: torch.Tensor, labels: LabelBatch) -> torch.Tensor:
        o = self.output(hidden)
        has_labels = labels.sizes() > 0
        n_rows = int(has_labels.sum())
        if n_rows == 0:
            return o.sum() * 0.0  # keeps the graph; no target direction in this batch
        t = self.targets(labels).to(o.dtype)
        cosine = (_normalise(o) * _normalise(t)).sum(dim=1)
        return (1.0 - cosine)[has_labels].sum() / n_rows

    # -- inference --------------------------------------------------------------------------------------
    def directions(self, hidden: torch.Tensor) -> torch.Tensor:
        """The unit output directions o / ||o||, dense (B, d)."""
        return _normalise(self.output(hidden))

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        E = self.unit_embeddings()
        return self.directions(hidden).to(E.dtype) @ E.t()

    def topk(self, hidden: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The k nearest labels by cosine, best first (ties -> lower id): exact, or hnswlib with ``ann="hnsw"``."""
        if self.params.ann == "hnsw":
            return self.topk_hnsw(hidden, k)
        return self.topk_exact(hidden, k)

    def topk_exact(self, hidden: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact top-k, scoring the labels in chunks so no (B, C) matrix is formed for large C."""
        q = self.directions(hidden)
        E = self.unit_embeddings().to(q.dtype)
        k = min(int(k), self.n_labels)
        chunk = max(k, TOPK_CHUNK_ENTRIES // max(q.shape[0], 1))
        best_ids = torch.zeros(q.shape[0], 0, dtype=torch.long, device=q.device)
        best_val = q.new_zeros(q.shape[0], 0)
        for start in range(0, self.n_labels, chunk):
            part = q @ E[start : start + chunk].t()
            # earlier labels (lower ids) come first, so positional tie-breaking = lower id first
            pos, val = topk_lower_id_ties(torch.cat([best_val, part], dim=1), k)
            ids = torch.cat(
                [best_ids, torch.arange(start, start + part.shape[1], device=q.device).expand(q.shape[0], -1)], 1
            )
            best_ids, best_val = torch.gather(ids, 1, pos), val
        return best_ids, best_val

    def hnsw_index(self) -> Any:
        """The hnswlib index of the current unit embeddings (inner-product space), built on first use and rebuilt
        when the embeddings change (in-place updates, ``load_state_dict``, training)."""
        E = self.unit_embeddings().detach()
        key = (
            self.embeddings._version,
            self.embeddings.data_ptr(),
            self.params.hnsw_m,
            self.params.hnsw_ef_construction,
        )
        if self._index is None or self._index_key != key:
            hnswlib = _import_hnswlib()
            index = hnswlib.Index(space="ip", dim=E.shape[1])  # unit vectors: inner product = cosine
            index.init_index(
                max_elements=self.n_labels,
                M=self.params.hnsw_m,
                ef_construction=self.params.hnsw_ef_construction,
                random_seed=self.params.embedding_seed,
            )
            index.set_num_threads(1)  # a single-threaded build is deterministic
            index.add_items(E.cpu().numpy().astype(np.float32), np.arange(self.n_labels))
            self._index, self._index_key = index, key
        return self._index

    def topk_hnsw(self, hidden: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Approximate top-k by hnswlib; the returned labels are re-scored exactly and sorted (ties -> lower id)."""
        k = min(int(k), self.n_labels)
        q = self.directions(hidden)
        if k == 0 or q.shape[0] == 0:
            return topk_lower_id_ties(q.new_zeros(q.shape[0], self.n_labels), k)
        index = self.hnsw_index()
        index.set_ef(max(self.params.hnsw_ef, k))
        ids_np, _ = index.knn_query(q.detach().cpu().numpy().astype(np.float32), k=k)
        ids = torch.from_numpy(ids_np.astype(np.int64)).to(q.device)
        values = (q.unsqueeze(1) * self.unit_embeddings().to(q.dtype)[ids]).sum(dim=2)
        # sort by (score desc, id asc): order ids first, then a stable sort on the scores
        by_id = torch.argsort(ids, dim=1)
        ids, values = torch.gather(ids, 1, by_id), torch.gather(values, 1, by_id)
        order = torch.sort(-values, dim=1, stable=True).indices
        return torch.gather(ids, 1, order), torch.gather(values, 1, order)

    def set_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.scores(hidden)
