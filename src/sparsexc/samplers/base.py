"""The sampler protocol: a distribution p_n(y|x) over the C labels that can be fitted, sampled and scored.

Samplers supply the negatives of the sampled heads (``negative-sampling``, ``sampled-softmax``) and the
bias correction ``log p_n(y|x)`` added to their logits at prediction. They are ``torch.nn.Module`` s so
that their fitted state (tensors) travels in the owning head's ``state_dict`` and their settings (a
:class:`sparsexc._params.Params` dataclass) in its JSON config; every buffer has a shape fixed by
``(in_dim, n_labels, params)``, so a fresh sampler can ``load_state_dict`` a fitted one.

Randomness: :meth:`Sampler.sample` draws from ``generator`` when one is given, else from torch's global
generator (which the ``Trainer`` seeds and checkpoints, so training resumes bit for bit).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from sparsexc._params import Params
from sparsexc._sparse import as_features, as_label_matrix
from sparsexc.core.registry import Registry

__all__ = ["SAMPLERS", "Sampler", "as_input", "build_sampler", "get_sampler", "list_samplers", "register_sampler"]

# the settings base class under a second name: inside Sampler, the class attribute ``Params`` shadows it
_AnyParams = Params

# label columns per chunk of the generic log_prob_all (B x chunk x path tensors stay small)
LOG_PROB_ALL_CHUNK = 4096


def as_input(x: Any, in_dim: int, name: str = "x_batch", device: torch.device | str | None = None) -> torch.Tensor:
    """``x`` as a torch tensor of width ``in_dim``: dense (B, in_dim) or ``torch.sparse_csr``.

    scipy sparse matrices become ``sparse_csr`` tensors, numpy arrays dense tensors, both on ``device`` (the
    CPU when None); torch tensors pass through.
    """
    if sp.issparse(x):
        X = as_features(x, name=name)
        with warnings.catch_warnings():  # torch flags every sparse CSR tensor as "beta"
            warnings.simplefilter("ignore", UserWarning)
            x = torch.sparse_csr_tensor(
                torch.from_numpy(X.indptr.astype(np.int64)),
                torch.from_numpy(X.indices.astype(np.int64)),
                torch.from_numpy(X.data),
                size=X.shape,
                check_invariants=False,
            ).to(device)
    elif isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"{name} must be a 2-D tensor, array or sparse matrix (B, {in_dim}); got {type(x).__name__}")
    if x.shape[1] != in_dim:
        raise ValueError(f"{name} has {x.shape[1]} columns; the sampler expects in_dim={in_dim}")
    return x


class Sampler(nn.Module):
    r"""Base class of label samplers: a conditional distribution :math:`p_n(y \mid x)` over C labels.

    Parameters
    ----------
    in_dim : int
        Width of the inputs ``x`` (the head's hidden vectors: the raw features for the linear model).
    n_labels : int
        Number of labels C.
    params : the sampler's ``Params`` dataclass, a dict of its fields, or None for the defaults.

    Methods to implement: :meth:`fit` (when the distribution is learnt), :meth:`_sample`, :meth:`_log_prob`;
    :meth:`_log_prob_all` has a generic version chunked over labels.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    needs_fit: ClassVar[bool] = True
    uses_features: ClassVar[bool] = False  # whether fit reads X (then X must have in_dim columns)
    params: _AnyParams  # an instance of the class's Params (subclasses narrow the annotation)
    fitted: torch.Tensor  # buffer: 0-d bool

    def __init__(self, in_dim: int, n_labels: int, params: _AnyParams | dict | None = None) -> None:
        super().__init__()
        if int(in_dim) != in_dim or in_dim < 1 or int(n_labels) != n_labels or n_labels < 1:
            raise ValueError(
                f"{type(self).__name__}: in_dim and n_labels must be positive integers; "
                f"got in_dim={in_dim!r}, n_labels={n_labels!r}"
            )
        self.in_dim, self.n_labels = int(in_dim), int(n_labels)
        self.params = params if isinstance(params, self.Params) else self.Params.from_dict(params)
        # a buffer, so a loaded sampler knows it was fitted
        self.register_buffer("fitted", torch.tensor(not self.needs_fit))

    # -- public API ---------------------------------------------------------------------------------------
    def fit(self, X: Any, Y: Any) -> Sampler:
        """Fit on training features ``X`` (N, in_dim) and labels ``Y`` (N, C); return ``self``."""
        X, Y = self._check_fit_data(X, Y)
        with torch.no_grad():
            self._fit(X, Y)
        self.fitted.fill_(True)
        return self

    def sample(
        self, x_batch: Any, n: int, *, rows: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Draw ``n`` labels i.i.d. from :math:`p_n(\cdot \mid x)` for each row.

        Parameters
        ----------
        x_batch : (B, in_dim) tensor (dense or sparse CSR), numpy array or scipy sparse matrix
        n : int >= 1
        rows : LongTensor (R,), optional
            Draw for the rows ``x_batch[rows]`` (repeats allowed) instead of every row.
        generator : torch.Generator, optional
            Source of randomness; torch's global generator when None.

        Returns
        -------
        labels : LongTensor (R, n), ids in [0, C)
        log_prob : (R, n) tensor, :math:`\log p_n(\text{labels} \mid x)`
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n (labels to draw per row) must be a positive integer; got {n!r}")
        x, rows = self._prepare(x_batch, rows)
        with torch.no_grad():
            return self._sample(x, rows, int(n), generator)

    def log_prob(self, x_batch: Any, labels: torch.Tensor, *, rows: torch.Tensor | None = None) -> torch.Tensor:
        r""":math:`\log p_n(y \mid x)` of ``labels`` (R, m) (LongTensor, ids in [0, C)) for the rows
        ``x_batch[rows]`` (all rows, R = B, when ``rows`` is None); returns (R, m)."""
        x, rows = self._prepare(x_batch, rows)
        labels = self._check_labels(labels, rows.numel(), x.device)
        with torch.no_grad():
            return self._log_prob(x, rows, labels)

    def log_prob_all(self, x_batch: Any) -> torch.Tensor:
        r""":math:`\log p_n(y \mid x)` of every label for every row: (B, C)."""
        x, _ = self._prepare(x_batch, None)
        with torch.no_grad():
            return self._log_prob_all(x)

    def config(self) -> dict[str, Any]:
        """JSON settings that rebuild the sampler before ``load_state_dict``."""
        return {"name": self.name, "in_dim": self.in_dim, "n_labels": self.n_labels, "params": self.params.to_dict()}

    # -- hooks ----------------------------------------------------------------------------------------------
    def _fit(self, X: sp.csr_matrix, Y: sp.csr_matrix) -> None:
        raise NotImplementedError

    def _sample(
        self, x: torch.Tensor, rows: torch.Tensor, n: int, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _log_prob(self, x: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _log_prob_all(self, x: torch.Tensor) -> torch.Tensor:
        # generic: score the labels in chunks of LOG_PROB_ALL_CHUNK columns
        B = x.shape[0]
        rows = torch.arange(B, device=x.device)
        parts = []
        for start in range(0, self.n_labels, LOG_PROB_ALL_CHUNK):
            ids = torch.arange(start, min(start + LOG_PROB_ALL_CHUNK, self.n_labels), device=x.device)
            parts.append(self._log_prob(x, rows, ids.expand(B, -1)))
        return torch.cat(parts, dim=1)

    # -- checks -------------------------------------------------------------------------------------------
    def _check_fit_data(self, X: Any, Y: Any) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        X = as_features(X, name="X")
        Y = as_label_matrix(Y, name="Y")
        if self.uses_features and X.shape[1] != self.in_dim:
            raise ValueError(f"{type(self).__name__}.fit: X has {X.shape[1]} columns; in_dim={self.in_dim}")
        if Y.shape[1] != self.n_labels:
            raise ValueError(f"{type(self).__name__}.fit: Y has {Y.shape[1]} columns; n_labels={self.n_labels}")
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"{type(self).__name__}.fit: X has {X.shape[0]} rows but Y has {Y.shape[0]}")
        return X, Y

    def _prepare(self, x_batch: Any, rows: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if not bool(self.fitted):
            raise ValueError(f"{type(self).__name__} is not fitted; call fit(X, Y) first")
        x = as_input(x_batch, self.in_dim, device=self.fitted.device)  # numpy / scipy input: to the buffers' device
        B = x.shape[0]
        if rows is None:
            return x, torch.arange(B, device=x.device)
        rows = torch.as_tensor(rows, device=x.device)
        if rows.dim() != 1 or rows.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                f"rows must be a 1-D integer tensor of row positions; got shape {tuple(rows.shape)}, dtype {rows.dtype}"
            )
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= B):
            raise ValueError(f"rows must lie in [0, {B}) (the rows of x_batch)")
        return x, rows.long()

    def _check_labels(self, labels: Any, n_rows: int, device: torch.device) -> torch.Tensor:
        labels = torch.as_tensor(labels, device=device)  # a list or numpy array would land on the CPU
        if labels.dim() != 2 or labels.shape[0] != n_rows or labels.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                f"labels must be an integer tensor of shape ({n_rows}, m); got shape "
                f"{tuple(labels.shape)}, dtype {labels.dtype}"
            )
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.n_labels):
            raise ValueError(f"labels must lie in [0, {self.n_labels}) (n_labels)")
        return labels.long()


def _unknown_sampler(name: object, names: list[str]) -> str:
    return f"sampler={name!r} is not allowed; choose one of {', '.join(map(repr, names))}"


SAMPLERS: Registry[type[Sampler]] = Registry("sampler", Sampler, _unknown_sampler)


def register_sampler(cls: type[Sampler]) -> type[Sampler]:
    """Class decorator: make ``cls`` available under ``cls.name`` (``ValueError`` if another sampler has it)."""
    return SAMPLERS.register(cls)


def list_samplers() -> list[str]:
    """Names of the registered samplers, sorted."""
    return SAMPLERS.names()


def get_sampler(name: str) -> type[Sampler]:
    """The sampler class registered as ``name``; a ``ValueError`` (:class:`~sparsexc.core.registry.UnknownNameError`)
    listing the names otherwise."""
    return SAMPLERS.get(name)


def build_sampler(config: dict[str, Any]) -> Sampler:
    """Rebuild a sampler from :meth:`Sampler.config` (before ``load_state_dict``)."""
    return get_sampler(config["name"])(int(config["in_dim"]), int(config["n_labels"]), config.get("params"))
