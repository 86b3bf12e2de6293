"""A seeded synthetic multi-label data set with Zipf label frequencies and learnable label-feature structure.

Generative model (``C`` labels, ``D`` features, ``n`` rows):

1. Label popularity: the label of rank ``r`` (``r = 0..C-1``) has probability ``p_r ∝ (r + 1)^(-power)``;
   ranks are mapped to label ids by a seeded permutation, so id order says nothing about frequency.
2. Labels of row ``i``: ``k_i = 1 + Poisson(labels_per_sample - 1)`` draws from ``p`` (with replacement;
   repeats merge, so the mean number of distinct labels is a little below ``labels_per_sample`` when the
   head of ``p`` is heavy).
3. Each label ``c`` owns a prototype: ``prototype_size`` feature ids ``h(seed, c, j) mod D``
   (``j = 0..prototype_size-1``, ``h`` the SplitMix64 hash), computed on demand, never stored for all labels.
4. Features of row ``i``: ``nnz_per_sample`` draws; each is, with probability ``noise``, a uniform feature,
   otherwise a uniform element of the prototype of a uniform one of the row's labels. Counts ``t`` become
   ``log(1 + t)`` and rows are L2-normalised (like sublinear TF).

Memory is O(C) for the popularity table and permutation plus O(n * (nnz_per_sample + labels_per_sample)):
no (n, C) or (C, D) array is ever formed, so a million labels cost tens of megabytes.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp

from sparsexc.errors import ConfigurationError
from sparsexc.io.data import MultiLabelData

from .splits import Splits, seeded_split

__all__ = ["label_proportion_documents", "synthetic"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _check_arguments(integers: tuple[tuple[str, float, int], ...], power: float, test_size: float) -> None:
    """The checks every generator shares: (name, value, minimum) integers, the Zipf ``power``, ``test_size``."""
    for arg, value, low in integers:
        if int(value) != value or value < low:
            raise ConfigurationError(f"{arg} must be an integer >= {low}; got {value!r}")
    if not power >= 0:
        raise ConfigurationError(f"power must be >= 0; got {power!r}")
    if not 0.0 < test_size < 1.0:
        raise ConfigurationError(f"test_size must be a fraction in (0, 1); got {test_size!r}")


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, elementwise on uint64 (wrap-around arithmetic is intended)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def synthetic(
    n_samples: int,
    n_features: int,
    n_labels: int,
    *,
    labels_per_sample: float = 3.0,
    nnz_per_sample: int = 20,
    prototype_size: int = 8,
    noise: float = 0.2,
    power: float = 1.0,
    seed: int = 0,
    test_size: float = 0.2,
) -> Splits:
    """Generate a seeded train/test multi-label data set (see the module docstring for the model).

    Parameters
    ----------
    n_samples, n_features, n_labels : int
        Rows (train + test), feature space width ``D`` and label space width ``C`` (up to millions).
    labels_per_sample : float, >= 1
        Mean number of label draws per row.
    nnz_per_sample : int, >= 1
        Feature draws per row (an upper bound on the stored non-zeros of a row).
    prototype_size : int, >= 1
        Features per label prototype.
    noise : float in [0, 1]
        Fraction of feature draws that ignore the labels.
    power : float, >= 0
        Zipf exponent of the label frequencies (0 = uniform).
    seed : int
        Seeds everything, including the split; same arguments -> identical matrices.
    test_size : float in (0, 1)
        Fraction of rows in the test part (``seeded_split`` with this seed).

    Returns
    -------
    Splits
        ``X`` float32 CSR (rows L2-normalised), ``Y`` 0/1 CSR; names are None; ``info`` holds the arguments.
    """
    _check_arguments(
        (
            ("n_samples", n_samples, 2),
            ("n_features", n_features, 1),
            ("n_labels", n_labels, 1),
            ("nnz_per_sample", nnz_per_sample, 1),
            ("prototype_size", prototype_size, 1),
        ),
        power,
        test_size,
    )
    if not labels_per_sample >= 1:
        raise ConfigurationError(f"labels_per_sample must be >= 1; got {labels_per_sample!r}")
    if not 0.0 <= noise <= 1.0:
        raise ConfigurationError(f"noise must be in [0, 1]; got {noise!r}")
    n, D, C = int(n_samples), int(n_features), int(n_labels)
    rng = np.random.default_rng(seed)

    # Label popularity table: O(C) float64 cumulative probabilities and an O(C) rank -> id permutation.
    cdf = np.cumsum(np.arange(1, C + 1, dtype=np.float64) ** (-float(power)))
    cdf /= cdf[-1]
    rank_to_label = rng.permutation(C).astype(np.int64)

    k = 1 + rng.poisson(labels_per_sample - 1.0, size=n)
    label_draws = rank_to_label[np.minimum(np.searchsorted(cdf, rng.random(int(k.sum())), side="right"), C - 1)]
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    Y = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, label_draws)), shape=(n, C))
    Y.sum_duplicates()
    Y.data[:] = 1.0
    Y.sort_indices()

    # Feature draws: prototype element of one of the row's labels, or uniform noise.
    draw_rows = np.repeat(np.arange(n, dtype=np.int64), nnz_per_sample)
    n_draws = draw_rows.size
    row_labels = np.diff(Y.indptr)[draw_rows]
    picked = Y.indices[Y.indptr[draw_rows] + np.floor(rng.random(n_draws) * row_labels).astype(np.int64)]
    element = rng.integers(0, prototype_size, size=n_draws).astype(np.uint64)
    key = picked.astype(np.uint64) * np.uint64(prototype_size) + element
    seed_mix = _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    features = (_splitmix64(key ^ seed_mix) % np.uint64(D)).astype(np.int64)
    is_noise = rng.random(n_draws) < noise
    features[is_noise] = rng.integers(0, D, size=int(is_noise.sum()))
    X = sp.csr_matrix((np.ones(n_draws, dtype=np.float32), (draw_rows, features)), shape=(n, D))
    X.sum_duplicates()
    X.data = np.log1p(X.data).astype(np.float32)
    norms = np.sqrt(np.add.reduceat(X.data.astype(np.float64) ** 2, X.indptr[:-1]))
    X.data /= np.repeat(norms, np.diff(X.indptr)).astype(np.float32)
    X.sort_indices()

    train_rows, test_rows = seeded_split(n, test_size, seed)
    info = {
        "source": "synthetic",
        "params": {
            "n_samples": n,
            "n_features": D,
            "n_labels": C,
            "labels_per_sample": labels_per_sample,
            "nnz_per_sample": nnz_per_sample,
            "prototype_size": prototype_size,
            "noise": noise,
            "power": power,
            "seed": seed,
            "test_size": test_size,
        },
        "split": {"kind": "seeded", "seed": seed, "test_fraction": test_size},
    }
    parts = {
        part: MultiLabelData(X[r], Y[r], None, None, {"name": "synthetic", "part": part})
        for part, r in (("train", train_rows), ("test", test_rows))
    }
    return Splits("synthetic", parts["train"], parts["test"], info)


def label_proportion_documents(
    n_samples: int,
    n_labels: int,
    length: float,
    *,
    n_features: int | None = None,
    mean_labels: float = 1.0,
    random_proportions: bool = False,
    seed: int = 1,
) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Bag-of-words documents whose words come from a known mixture of label topics.

    The synthetic label-proportion task of Martins & Astudillo (2016, Figure 3), after their modified
    scikit-learn ``make_multilabel_classification``, with ``K = n_labels`` and ``V = n_features``:

    1. Once: a class prior ``pi ~ U(0,1)^K`` normalised, and per class a word distribution
       ``phi_c ~ U(0,1)^V`` normalised.
    2. Per document: the number of labels ``m ~ Poisson(mean_labels)``, redrawn until ``1 <= m <= K``;
       ``m`` distinct labels drawn from ``pi`` without replacement; label proportions ``q`` uniform over
       them (``random_proportions=False``) or ``u / sum(u)`` with ``u ~ U(0,1)^m`` (True); a length
       ``n ~ Poisson(length)``, redrawn while 0; word counts ``x ~ Multinomial(n, sum_c q_c phi_c)``.

    Parameters
    ----------
    n_samples, n_labels : int, >= 1
    length : float, > 0
        Mean document length (the x axis of the paper's Figure 3).
    n_features : int >= 1, optional
        Vocabulary size ``V``; defaults to ``n_labels``, as in the paper.
    mean_labels : float, > 0
        Poisson mean of the number of labels (1 in the paper).
    random_proportions : bool
        Random instead of uniform mixing proportions.
    seed : int
        Seeds everything; the same arguments give identical matrices.

    Returns
    -------
    X : csr_matrix (n_samples, V), float32
        Word counts.
    Y : csr_matrix (n_samples, K), float32
        0/1 label sets (the support of ``Q``).
    Q : csr_matrix (n_samples, K), float32
        The true label proportions; every row sums to 1 (up to float32 rounding).
    """
    n_features = n_labels if n_features is None else n_features
    for arg, value in (("n_samples", n_samples), ("n_labels", n_labels), ("n_features", n_features)):
        if int(value) != value or value < 1:
            raise ConfigurationError(f"{arg} must be an integer >= 1; got {value!r}")
    if not length > 0:
        raise ConfigurationError(f"length must be > 0 (a mean number of words); got {length!r}")
    if not mean_labels > 0:
        raise ConfigurationError(f"mean_labels must be > 0; got {mean_labels!r}")
    n, K, V = int(n_samples), int(n_labels), int(n_features)
    rng = np.random.default_rng(seed)
    prior = rng.random(K)
    prior /= prior.sum()
    topics = rng.random((V, K))
    topics /= topics.sum(axis=0)

    counts = np.zeros((n, V), dtype=np.float32)
    proportions = np.zeros((n, K), dtype=np.float32)
    for i in range(n):
        m = 0
        while not 1 <= m <= K:  # rejection sampling, as in the paper's generator
            m = int(rng.poisson(mean_labels))
        labels = rng.choice(K, size=m, replace=False, p=prior)
        q = rng.random(m) if random_proportions else np.ones(m)
        q /= q.sum()
        words = 0
        while words == 0:
            words = int(rng.poisson(length))
        counts[i] = rng.multinomial(words, topics[:, labels] @ q)
        proportions[i, labels] = q
    X = sp.csr_matrix(counts)
    Q = sp.csr_matrix(proportions)
    Y = Q.copy()
    Y.data[:] = 1.0
    return X, Y, Q


@functools.lru_cache(maxsize=2)  # the posterior is evaluated chunk by chunk; regenerate the model once
def _latent_label_model(
    n_labels: int, dim: int, branching: int, scales: tuple[float, ...], power: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Label vectors ``U`` (C, dim) float32 and log prior (C,) float64 of :func:`latent_hierarchy` (read-only)."""
    rng = np.random.default_rng([seed, 1])
    C = n_labels
    position = rng.permutation(C)  # where each label sits among the leaves of the latent hierarchy
    U = np.zeros((C, dim), dtype=np.float32)
    for level, scale in enumerate(scales, start=1):
        groups = min(branching**level, C)
        centres = rng.standard_normal((groups, dim)).astype(np.float32)
        U += np.float32(scale) * centres[(position.astype(np.int64) * groups) // C]
    log_w = -float(power) * np.log(np.arange(1, C + 1, dtype=np.float64))
    log_prior = np.empty(C)
    log_prior[rng.permutation(C)] = log_w - np.logaddexp.reduce(log_w)  # popularity independent of the hierarchy
    return U, log_prior


def latent_hierarchy(
    n_samples: int,
    n_labels: int,
    dim: int,
    *,
    branching: int = 16,
    scales: tuple[float, ...] | None = None,
    noise: float = 1.0,
    power: float = 1.0,
    seed: int = 0,
    test_size: float = 0.2,
) -> Splits:
    r"""A single-label data set with dense features drawn from a hierarchy of label clusters (known Bayes model).

    Labels sit at the leaves of a latent tree with ``branching`` children per node: level ``l`` (1, 2, ...)
    has ``min(branching**l, C)`` groups, each with a centre :math:`g \sim N(0, I_{dim})`; label y's vector is
    :math:`u_y = \sum_l s_l\, g_{l, a_l(y)}` (``scales`` :math:`s_l`, default one level per factor of
    ``branching`` with :math:`s_l = 0.7^{l-1}`) over its ancestors :math:`a_l(y)` (a seeded placement).
    Rows: :math:`y \sim \pi` (Zipf with exponent ``power``, ranks placed at random, so popularity is
    independent of the hierarchy), :math:`x = (u_y + \sigma \varepsilon) / c` with :math:`\varepsilon \sim N(0, I)`,
    :math:`\sigma` = ``noise`` and :math:`c = \sqrt{\sum_l s_l^2 + \sigma^2}` (unit variance per coordinate).
    The Bayes posterior is a linear softmax,
    :math:`\log p(y|x) = \log\pi_y + (c\, x^\top u_y - \|u_y\|^2 / 2) / \sigma^2 + \text{const}(x)`,
    so a linear model is well specified and a label tree can follow the coarse clusters;
    :func:`latent_hierarchy_log_posterior` evaluates it.

    Returns
    -------
    Splits
        ``X`` float32 CSR (n, dim) holding dense rows, ``Y`` one label per row; ``info["params"]`` holds the arguments.
    """
    _check_arguments(
        (("n_samples", n_samples, 2), ("n_labels", n_labels, 1), ("dim", dim, 1), ("branching", branching, 2)),
        power,
        test_size,
    )
    if not noise > 0:
        raise ConfigurationError(f"noise must be > 0; got {noise!r}")
    n, C, dim = int(n_samples), int(n_labels), int(dim)
    if scales is None:
        levels = max(1, int(np.ceil(np.log(C) / np.log(branching) - 1e-9)))
        scales = tuple(0.7**level for level in range(levels))
    if len(scales) == 0 or not all(s >= 0 for s in scales):
        raise ConfigurationError(f"scales must be a non-empty sequence of non-negative numbers; got {scales!r}")
    params = {
        "n_samples": n,
        "n_labels": C,
        "dim": dim,
        "branching": int(branching),
        "scales": [float(s) for s in scales],
        "noise": float(noise),
        "power": float(power),
        "seed": seed,
        "test_size": test_size,
    }
    U, log_prior = _latent_label_model(C, dim, int(branching), tuple(float(s) for s in scales), float(power), seed)
    rng = np.random.default_rng([seed, 2])
    cdf = np.cumsum(np.exp(log_prior))
    y = np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n), side="right"), C - 1)
    c = np.sqrt(sum(s * s for s in scales) + noise**2)
    X = ((U[y] + np.float32(noise) * rng.standard_normal((n, dim), dtype=np.float32)) / np.float32(c)).astype(
        np.float32
    )
    Y = sp.csr_matrix((np.ones(n, dtype=np.float32), (np.arange(n), y)), shape=(n, C))
    train_rows, test_rows = seeded_split(n, test_size, seed)
    info = {
        "source": "latent_hierarchy",
        "params": params,
        "split": {"kind": "seeded", "seed": seed, "test_fraction": test_size},
    }
    parts = {
        part: MultiLabelData(sp.csr_matrix(X[r]), Y[r], None, None, {"name": "latent_hierarchy", "part": part})
        for part, r in (("train", train_rows), ("test", test_rows))
    }
    return Splits("latent_hierarchy", parts["train"], parts["test"], info)


def latent_hierarchy_log_posterior(X: np.ndarray, params: dict, labels: np.ndarray | None = None) -> np.ndarray:
    """Bayes log-posterior :math:`\\log p(y|x)` of :func:`latent_hierarchy` data (``params`` = ``info["params"]``).

    Returns (n, C) for all labels, or (n, m) for the columns ``labels`` (n, m) when given (then the
    normaliser is still over all C labels). Cost O(n C dim); call it on chunks of rows for large C.
    """
    p = params
    U, log_prior = _latent_label_model(
        p["n_labels"], p["dim"], p["branching"], tuple(p["scales"]), float(p["power"]), p["seed"]
    )
    c = np.sqrt(sum(s * s for s in p["scales"]) + p["noise"] ** 2)
    X = np.asarray(X, dtype=np.float64)
    logits = (c * X @ U.T.astype(np.float64) - 0.5 * (U.astype(np.float64) ** 2).sum(1)) / p["noise"] ** 2 + log_prior
    log_post = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    return log_post if labels is None else np.take_along_axis(log_post, labels, axis=1)
