"""``SparseVAE``: unsupervised sparse codes with a learned number of non-zeros L <= L0 (SDLGM reconstruction).

``GaussianVAE`` is the dense baseline with the same encoder, decoder and training loop (no level, no selection).
An estimator (its own fit loop, save/load), so it lives beside :class:`~sparsexc.estimator.XCClassifier`, above
the training code it reuses; the maths (the network and its ELBO, :mod:`sparsexc.latent._vae_network`; the
relaxations and sparsity sampler of :mod:`sparsexc.latent`) stays in ``latent/``. What is ours rather than
the paper's is listed in ``docs/sdlgm.md``.

Example
-------
>>> vae = SparseVAE(latent_dim=64, max_active=5, epochs=20).fit(X)      # X dense or CSR
>>> codes = vae.transform(X)            # CSR, at most 5 non-zeros per row
>>> X_hat = vae.inverse_transform(codes)
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from sparsexc._params import NON_NEGATIVE, POSITIVE, POSITIVE_INT, redeclare, setting
from sparsexc._safetensors import ModelFormatError
from sparsexc._sparse import as_features
from sparsexc.estimator.serialization import read_model_dir, write_model_dir
from sparsexc.latent._vae_network import LIKELIHOODS, VAENetwork
from sparsexc.latent.schedules import RelaxationParams
from sparsexc.models.batch import FeatureBatch
from sparsexc.train.trainer import epoch_order

__all__ = ["GaussianVAE", "SparseVAE", "VAEParams"]


@dataclasses.dataclass
class VAEParams(RelaxationParams):
    """Settings of :class:`SparseVAE` / :class:`GaussianVAE` (``max_active=None``: dense).

    latent_dim : D, the number of code dimensions.
    max_active : L0, the largest number of non-zeros per code (1..D), or None for the dense VAE.
    hidden_size : width of the encoder's and the decoder's hidden ReLU layer.
    likelihood : "bernoulli" (x in [0, 1]; the default) or "gaussian" (learned per-feature scale, floored at
        0.05; in our runs on digits it collapsed to the mean even at kl_weight=0.1).
    epochs, batch_size, lr : Adam training (lr 3e-3: at 1e-3 the sparse model sat near the collapsed solution
        for the first ~30 epochs on digits).
    kl_weight : beta on the three KL terms. 1 is the ELBO; the default 0.1 is OUR choice (a beta-VAE): at
        beta = 1 the sparse posterior collapsed on digits (KL -> 0, reconstruction = the mean image), since
        naming L of D active dimensions costs about log C(D, L) nats of KL.
    kl_warmup_steps : the KL weight rises linearly from 0 to ``kl_weight`` over this many steps (0: none).
    fixed_level : L = L0 for every row (SparseVAE only): the ablation of the learned level.
    schedule, temperature, min_temperature, anneal_rate, anneal_steps, straight_through : see
        :class:`sparsexc.latent.schedules.RelaxationParams` (default: exponential from 0.5 to 0.2).
    random_state : seeds the weights, the row order and the Gumbel/Gaussian noise.
    """

    latent_dim: int = setting(64, "D, the number of code dimensions.", range=POSITIVE_INT)
    max_active: int | None = setting(
        5, "L0, the most non-zeros per code (1..latent_dim); None: the dense VAE.", range=POSITIVE_INT
    )
    hidden_size: int = setting(256, "Width of the encoder's and the decoder's hidden ReLU layer.", range=POSITIVE_INT)
    likelihood: str = setting("bernoulli", "bernoulli (x in [0, 1]) or gaussian.", choices=LIKELIHOODS)
    epochs: int = setting(30, "Passes over the rows.", range=POSITIVE_INT)
    batch_size: int = setting(128, "Rows per Adam step.", range=POSITIVE_INT)
    lr: float = setting(3e-3, "Adam's learning rate.", range=POSITIVE)
    kl_weight: float = setting(0.1, "beta on the KL terms (1 = the ELBO).", range=NON_NEGATIVE)
    kl_warmup_steps: int = setting(0, "Steps over which the KL weight rises from 0 (0: none).", range=NON_NEGATIVE)
    random_state: int = setting(0, "Seeds the weights, the row order and the noise.")
    # OUR defaults: exponential from 0.5 to 0.2
    temperature: float = redeclare(RelaxationParams, "temperature", 0.5)
    min_temperature: float = redeclare(RelaxationParams, "min_temperature", 0.2)

    def validate(self) -> None:
        # the upper bound of max_active is another field: no constraint of one field states it
        if self.max_active is not None and self.max_active > self.latent_dim:
            raise ValueError(f"VAEParams: max_active={self.max_active} must lie in 1..latent_dim={self.latent_dim}")
        if self.fixed_level and self.max_active is None:
            raise ValueError("VAEParams: fixed_level needs a sparse code (max_active); the dense VAE has no level")
        super().validate()


def _network(p: VAEParams, n_features: int) -> VAENetwork:
    """The network of the settings ``p`` for ``n_features`` inputs (fit, load and its size check share it)."""
    return VAENetwork(n_features, p.latent_dim, p.max_active, p.hidden_size, p.likelihood, p.fixed_level)


class _VAEBase:
    """fit / transform / inverse_transform / save / load shared by the sparse and the dense VAE."""

    dense_codes: ClassVar[bool] = False

    def __init__(self, **settings: Any) -> None:
        self.params = VAEParams.from_dict(settings)

    # -- training -----------------------------------------------------------------------------------------
    def fit(self, X: Any) -> _VAEBase:
        """Train on the rows of ``X`` (dense array or CSR, (n, d)) by minimising the mean negative ELBO."""
        p = self.params
        X = as_features(X, name="X")
        if X.shape[0] == 0:
            raise ValueError("X has no rows to fit")
        if p.likelihood == "bernoulli" and X.nnz and not (X.data.min() >= 0.0 and X.data.max() <= 1.0):
            raise ValueError(
                "likelihood='bernoulli' needs X in [0, 1] (scale it, e.g. X / X.max()), or use likelihood='gaussian'"
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(p.random_state)
            self.network_ = _network(p, X.shape[1])
        generator = torch.Generator().manual_seed(p.random_state)
        optimizer = torch.optim.Adam(self.network_.parameters(), lr=p.lr)
        schedule = p.temperature_schedule()
        self.history_: list[dict[str, float]] = []
        self.network_.train()
        step = 0
        for epoch in range(p.epochs):
            order = epoch_order(p.random_state, epoch, X.shape[0])
            sums: dict[str, float] = {}
            for start in range(0, X.shape[0], p.batch_size):
                rows = X[order[start : start + p.batch_size]]
                tau = schedule(step)
                terms = self.network_.elbo_terms(_batch(rows), _dense(rows), tau, tau, p.straight_through, generator)
                beta = p.kl_weight * min(1.0, (step + 1) / p.kl_warmup_steps) if p.kl_warmup_steps else p.kl_weight
                terms["loss"] = terms["nll"] + beta * sum(v for k, v in terms.items() if k.startswith("kl_"))
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].mean().backward()
                optimizer.step()
                step += 1
                for key, value in terms.items():  # per-row terms, summed for the epoch means
                    sums[key] = sums.get(key, 0.0) + float(value.detach().sum())
            self.history_.append(
                {"epoch": epoch + 1, "temperature": tau, **{k: v / X.shape[0] for k, v in sums.items()}}
            )
        self.network_.eval()
        self.n_features_in_ = int(X.shape[1])
        return self

    # -- inference ----------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X) first")

    def _codes(self, X: Any, batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Codes (n, D) and supports (bool (n, D), None when dense) of the rows of X, in batches."""
        self._check_fitted()
        X = as_features(X, name="X", n_features=self.n_features_in_)
        D = self.params.latent_dim
        device = next(self.network_.parameters()).device
        codes = [torch.zeros(0, D, device=device)]  # cat needs one part
        supports = [torch.zeros(0, D, dtype=torch.bool, device=device)]
        with torch.no_grad():
            for start in range(0, X.shape[0], batch_size):
                code, support = self.network_.code(_batch(X[start : start + batch_size]))
                codes.append(code)
                supports.append(support if support is not None else code != 0)
        return torch.cat(codes), (None if self.dense_codes else torch.cat(supports))

    def transform(self, X: Any) -> sp.csr_matrix | np.ndarray:
        """Deterministic codes: CSR float32 (n, D) with at most L0 stored entries per row for the sparse VAE
        (the top-L* dimensions of the selection logits, L* the mode of q(L|x), valued by the posterior means);
        dense (n, D) posterior means for the dense VAE."""
        codes, support = self._codes(X)
        if support is None:
            return codes.numpy()
        return _support_csr(codes.numpy(), support.numpy())

    def inverse_transform(self, codes: Any) -> np.ndarray:
        """The decoder's mean of p(x | z) for codes (n, D) (CSR or dense): dense float32 (n, d)."""
        self._check_fitted()
        Z = codes.toarray() if sp.issparse(codes) else np.asarray(codes)
        if Z.ndim != 2 or Z.shape[1] != self.params.latent_dim:
            raise ValueError(f"codes must have shape (n, latent_dim={self.params.latent_dim}); got {Z.shape}")
        with torch.no_grad():
            return self.network_.decode(torch.as_tensor(Z, dtype=torch.float32)).numpy()

    def reconstruct(self, X: Any) -> np.ndarray:
        """``inverse_transform(transform(X))``: dense float32 (n, d)."""
        with torch.no_grad():
            return self.network_.decode(self._codes(X)[0]).numpy()

    def reconstruction_error(self, X: Any) -> float:
        """Mean squared error per entry between X and :meth:`reconstruct` (X)."""
        X = as_features(X, name="X", n_features=getattr(self, "n_features_in_", None))
        return float(np.mean((X.toarray() - self.reconstruct(X)) ** 2))

    # -- persistence --------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``model.safetensors`` and ``config.json`` into the folder ``path`` (no pickle)."""
        self._check_fitted()
        config = {
            "library": "sparsexc",
            "estimator": type(self).__name__,
            "params": self.params.to_dict(),
            "n_features": self.n_features_in_,
            "history": self.history_,
        }
        write_model_dir(path, self.network_.state_dict(), config)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> _VAEBase:
        """Load a folder written by :meth:`save`."""
        state, config = read_model_dir(path)  # checksum, header, finiteness: see docs/model-files.md
        where = os.path.join(os.fspath(path), "config.json")
        if config.get("estimator") != cls.__name__:
            raise ModelFormatError(f"{where}: estimator: holds a {config.get('estimator')!r}, not a {cls.__name__}")
        try:
            p = VAEParams.from_dict(config.get("params"))
        except ValueError as exc:
            raise ModelFormatError(f"{where}: params: {exc}") from None
        n_features, history = config.get("n_features"), config.get("history", [])
        if isinstance(n_features, bool) or not isinstance(n_features, int) or not 1 <= n_features < 2**31:
            raise ModelFormatError(f"{where}: n_features: expected an integer in 1..2^31-1, found {n_features!r}")
        if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
            raise ModelFormatError(f"{where}: history: expected a list of objects (one per epoch)")
        # the config's sizes are compared with the tensors on a meta skeleton first: nothing is allocated for
        # sizes that the file does not hold
        try:
            with torch.device("meta"):
                skeleton = _network(p, n_features)
        except (ValueError, RuntimeError) as exc:
            raise ModelFormatError(f"{where}: params: {exc}") from None
        want = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
        have = {k: tuple(v.shape) for k, v in state.items()}
        if want != have:
            diff = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
            raise ModelFormatError(
                f"{os.path.join(os.fspath(path), 'model.safetensors')}: tensors do not match "
                f"config.json: {diff[0]} expected {want.get(diff[0])}, found {have.get(diff[0])}"
            )
        est = cls.__new__(cls)
        est.params = p
        est.network_ = _network(p, n_features)
        est.network_.load_state_dict(state, strict=True)
        est.network_.eval()
        est.n_features_in_ = n_features
        est.history_ = history
        return est


class SparseVAE(_VAEBase):
    """Sparse VAE with a learned per-row number of non-zeros L <= ``max_active`` (our SDLGM reconstruction).

    Parameters: see :class:`VAEParams`; ``transform`` returns CSR codes with at most ``max_active`` non-zeros
    per row (the top-L* dimensions of the selection logits, L* the mode of q(L | x), valued by the posterior
    means).
    """

    def __init__(self, latent_dim: int = 64, max_active: int = 5, **settings: Any) -> None:
        if max_active is None:
            raise ValueError("max_active must be an integer in 1..latent_dim; use GaussianVAE for dense codes")
        super().__init__(latent_dim=latent_dim, max_active=max_active, **settings)


class GaussianVAE(_VAEBase):
    """The dense baseline: the same encoder/decoder and training, codes z = v ~ N(mu(x), sigma^2(x))."""

    dense_codes = True

    def __init__(self, latent_dim: int = 8, **settings: Any) -> None:
        if settings.get("max_active") is not None:
            raise ValueError("GaussianVAE has dense codes; max_active must be None (use SparseVAE)")
        super().__init__(latent_dim=latent_dim, **{**settings, "max_active": None})


def _batch(rows: sp.csr_matrix) -> torch.Tensor:
    return FeatureBatch.from_csr(rows).to_sparse_csr()


def _dense(rows: sp.csr_matrix) -> torch.Tensor:
    return torch.from_numpy(rows.toarray())


def _support_csr(codes: np.ndarray, support: np.ndarray) -> sp.csr_matrix:
    """The entries of ``codes`` on the boolean ``support`` as CSR (stored even where a value is exactly 0)."""
    rows, cols = np.nonzero(support)
    indptr = np.concatenate([[0], np.cumsum(support.sum(axis=1))]).astype(np.int64)
    return sp.csr_matrix((codes[rows, cols].astype(np.float32), cols, indptr), shape=codes.shape)
