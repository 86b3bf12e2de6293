"""TreeSampler: normalisation, sampling frequencies, brute-force paths, padding, fitting, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from sparsexc.samplers import TreeSampler, build_sampler
from sparsexc.samplers._pca import whitened_pca
from sparsexc.samplers._tree_fit import PAD_LOGIT


def _random_tree(C: int, in_dim: int = 5, dim: int = 3, seed: int = 0) -> TreeSampler:
    """A tree with random parameters and a random label order (no fitting): tests the structure alone."""
    g = torch.Generator().manual_seed(seed)
    tree = TreeSampler(in_dim, C, {"dim": dim}).double()
    L = 1 << tree.depth
    tree.projection.copy_(torch.randn(dim, in_dim, generator=g, dtype=torch.float64))
    tree.node_weight.copy_(torch.randn(L, dim, generator=g, dtype=torch.float64))
    tree.node_bias.copy_(torch.randn(L, generator=g, dtype=torch.float64))
    slots = torch.randperm(C, generator=g)  # label i sits at slot slots[i]; slots >= C are padding
    tree.leaf_label.fill_(-1)
    tree.leaf_label[slots] = torch.arange(C)
    tree.label_leaf.copy_(slots)
    # padding must be unreachable: every node whose right subtree is all padding always goes left
    for v in range(L - 1, 0, -1):
        lo, hi = _leaf_range(v, tree.depth)
        mid = (lo + hi) // 2
        if bool((tree.leaf_label[mid:hi] < 0).all()):
            tree.node_weight[v] = 0
            tree.node_bias[v] = -PAD_LOGIT
        elif bool((tree.leaf_label[lo:mid] < 0).all()):
            tree.node_weight[v] = 0
            tree.node_bias[v] = PAD_LOGIT
    tree.fitted.fill_(True)
    return tree


def _leaf_range(v: int, depth: int) -> tuple[int, int]:
    level = v.bit_length() - 1
    size = 1 << (depth - level)
    start = (v - (1 << level)) * size
    return start, start + size


def _brute_log_prob(tree: TreeSampler, x: np.ndarray, label: int) -> float:
    """Eq. 7 by walking the path explicitly in numpy."""
    xt = tree.projection.numpy() @ x + tree.offset.numpy()
    node = int(tree.label_leaf[label]) + (1 << tree.depth)
    total = 0.0
    while node > 1:
        parent, zeta = node // 2, (1.0 if node % 2 else -1.0)
        s = float(tree.node_weight[parent].numpy() @ xt + tree.node_bias[parent])
        total += -np.logaddexp(0.0, -zeta * s)
        node = parent
    return total


@settings(max_examples=25, deadline=None)
@given(C=st.integers(1, 40), seed=st.integers(0, 10_000))
def test_probabilities_sum_to_one_and_match_the_path_formula(C, seed):
    tree = _random_tree(C, seed=seed)
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    lp = tree.log_prob_all(x)
    assert lp.shape == (4, C)
    np.testing.assert_allclose(lp.exp().sum(dim=1).numpy(), 1.0, rtol=1e-12)
    labels = torch.arange(C).expand(4, -1)
    np.testing.assert_allclose(tree.log_prob(x, labels).numpy(), lp.numpy(), rtol=1e-12, atol=1e-12)
    for y in range(0, C, max(1, C // 5)):
        assert lp[2, y].item() == pytest.approx(_brute_log_prob(tree, x[2].numpy(), y), abs=1e-10)


def test_sampled_frequencies_match_log_prob_chi_square():
    tree = _random_tree(6, seed=3)  # depth 3 with two padding leaves
    tree.node_weight.mul_(0.3)  # flatter, so that every expected count is large
    x = torch.randn(1, 5, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    n = 200_000
    labels, log_prob = tree.sample(x, n, generator=torch.Generator().manual_seed(11))
    counts = np.bincount(labels.numpy().ravel(), minlength=6)
    expected = tree.log_prob_all(x)[0].exp().numpy() * n
    assert counts.sum() == n and expected.min() > 50
    p_value = stats.chisquare(counts, expected).pvalue
    assert p_value > 1e-3, (counts, expected)
    # the returned log-probabilities are those of the drawn labels
    np.testing.assert_allclose(log_prob.numpy(), tree.log_prob(x, labels).numpy(), rtol=1e-12)


def test_padding_is_never_sampled_and_every_label_is():
    tree = _random_tree(5, seed=1)  # 8 leaves, 3 of them padding
    tree.node_weight.mul_(0.1)  # flatter, so every real label is drawn often
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    labels, log_prob = tree.sample(x, 20_000, generator=torch.Generator().manual_seed(2))
    assert int(labels.min()) >= 0 and int(labels.max()) < 5
    assert set(np.unique(labels.numpy())) == set(range(5))
    assert torch.isfinite(log_prob).all()


def test_sampling_is_deterministic_given_a_seed_or_the_global_generator():
    tree = _random_tree(9)
    x = torch.randn(3, 5, dtype=torch.float64)
    a = tree.sample(x, 50, generator=torch.Generator().manual_seed(4))
    b = tree.sample(x, 50, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    torch.manual_seed(5)
    c = tree.sample(x, 50)
    torch.manual_seed(5)
    d = tree.sample(x, 50)
    assert torch.equal(c[0], d[0])
    rows = torch.tensor([2, 0, 2])
    e = tree.sample(x, 7, rows=rows, generator=torch.Generator().manual_seed(1))[0]
    assert e.shape == (3, 7)


def _clustered(n=600, C=12, F=40, seed=0):
    """Rows drawn from C clusters in feature space; label = cluster (plus a second label sometimes)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(C, F)) * 2
    y = rng.integers(0, C, n)
    X = centres[y] + rng.normal(size=(n, F))
    extra = rng.random(n) < 0.3
    rows = np.concatenate([np.arange(n), np.flatnonzero(extra)])
    cols = np.concatenate([y, (y[extra] + 1) % C])
    Y = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n, C))
    Y.data[:] = 1
    return sp.csr_matrix(X.astype(np.float32)), Y, y


@pytest.mark.parametrize("split", ["eq9", "median"])
def test_fitted_tree_is_normalised_beats_uniform_and_is_deterministic(split):
    X, Y, y = _clustered()
    tree = TreeSampler(40, 12, {"split": split}).fit(X, Y)
    again = TreeSampler(40, 12, {"split": split}).fit(X, Y)
    for key, value in tree.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    lp = tree.log_prob_all(X).double()
    np.testing.assert_allclose(lp.exp().sum(1).numpy(), 1.0, rtol=1e-5)
    mean_true = lp[torch.arange(len(y)), torch.from_numpy(y)].mean().item()
    assert mean_true > -np.log(12) + 1.0  # far better than uniform on separable clusters
    assert sorted(tree.leaf_label[tree.leaf_label >= 0].tolist()) == list(range(12))
    assert bool((tree.leaf_label[tree.label_leaf] == torch.arange(12)).all())


@pytest.mark.parametrize("reg_scaling", ["constant", "node_size"])
def test_root_newton_solves_the_regularised_node_objective(reg_scaling):
    # two labels -> a single node: its (w, b) must maximise sum log sigma(zeta (w.x + b)) - lambda (|w|^2 + b^2),
    # lambda = reg, or reg * (rows in the node) with reg_scaling="node_size"
    rng = np.random.default_rng(0)
    n, F = 300, 6
    X = rng.normal(size=(n, F))
    side = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    Y = sp.csr_matrix((np.ones(n), (np.arange(n), side)), shape=(n, 2))
    tree_reg = 0.3 if reg_scaling == "constant" else 2e-3
    reg = tree_reg if reg_scaling == "constant" else tree_reg * n
    tree = TreeSampler(
        F, 2, {"dim": 3, "reg": tree_reg, "reg_scaling": reg_scaling, "tol": 1e-10, "newton_steps": 100}
    ).double()
    tree.fit(sp.csr_matrix(X.astype(np.float32)), Y)
    Z = sp.csr_matrix(X.astype(np.float32)) @ tree.projection.numpy().T + tree.offset.numpy()
    zeta = np.where(tree.label_leaf[side].numpy() % 2 == 1, 1.0, -1.0)

    def negative_objective(theta):
        s = Z @ theta[:3] + theta[3]
        return np.sum(np.logaddexp(0, -zeta * s)) + reg * np.sum(theta**2)

    ref = optimize.minimize(negative_objective, np.zeros(4), method="BFGS", options={"gtol": 1e-9}).x
    got = np.concatenate([tree.node_weight[1].numpy(), [tree.node_bias[1].item()]])
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_node_size_regulariser_generalises_better_than_an_unregularised_fit():
    # many labels with a handful of rows each: a weakly regularised tree (constant reg 1e-3) overfits its deep nodes,
    # the node-size-scaled penalty keeps held-out rows' log-likelihood finite and better
    from sparsexc.datasets.synthetic import latent_hierarchy

    splits = latent_hierarchy(3000, 1024, 8, branching=4, noise=1.0, seed=3)
    X, Y, Xh, Yh = splits.train.X, splits.train.Y, splits.test.X, splits.test.Y
    held_out = torch.from_numpy(Yh.indices.astype(np.int64))[:, None]
    scores = {}
    for name, params in {
        "unregularised": {"reg": 1e-3},
        "node_size": {"reg": 3e-2, "reg_scaling": "node_size"},
    }.items():
        tree = TreeSampler(X.shape[1], Y.shape[1], {"dim": 8, "split": "median", **params}).double().fit(X, Y)
        lp_all = tree.log_prob_all(Xh[:50]).double()
        np.testing.assert_allclose(lp_all.exp().sum(1).numpy(), 1.0, rtol=1e-6)
        scores[name] = tree.log_prob(Xh, held_out).double().mean().item()
    assert np.isfinite(scores["node_size"])
    assert scores["node_size"] > scores["unregularised"] + 0.5, scores
    assert scores["node_size"] > -np.log(1024), scores  # and better than uniform


def test_whitened_pca_has_zero_mean_unit_variance_and_matches_sklearn_directions():
    rng = np.random.default_rng(1)
    X = sp.random(400, 30, density=0.2, random_state=2, format="csr") @ sp.diags(rng.uniform(0.5, 3, 30))
    P, c = whitened_pca(sp.csr_matrix(X), 5)
    Z = np.asarray(X @ P) + c
    np.testing.assert_allclose(Z.mean(0), 0, atol=1e-10)
    np.testing.assert_allclose(Z.var(0, ddof=1), 1, rtol=1e-8)
    D = X.toarray() - X.toarray().mean(0)
    top = np.linalg.svd(D, full_matrices=False)[2][:5]  # independent: numpy SVD of the centred matrix
    cos = np.abs(np.sum(top * (P / np.linalg.norm(P, axis=0)).T, axis=1))
    np.testing.assert_allclose(cos, 1, atol=1e-8)


def test_sparse_and_dense_inputs_agree_and_state_round_trips():
    X, Y, _ = _clustered(n=200, C=7, F=10)
    tree = TreeSampler(10, 7, {"dim": 4}).fit(X, Y)
    dense = torch.from_numpy(X.toarray())
    np.testing.assert_allclose(tree.log_prob_all(X).numpy(), tree.log_prob_all(dense).numpy(), rtol=1e-5, atol=1e-6)
    clone = build_sampler(tree.config())
    clone.load_state_dict(tree.state_dict())
    assert torch.equal(clone.log_prob_all(dense), tree.log_prob_all(dense))


@pytest.mark.parametrize(
    "params",
    [{"dim": 0}, {"split": "kmeans"}, {"reg": -1.0}, {"tol": 0.0}, {"no_such": 1}, {"reg_scaling": "per_label"}],
)
def test_bad_params_raise_value_error(params):
    with pytest.raises(ValueError, match=next(iter(params))):
        TreeSampler(4, 5, params)


def test_bad_calls_raise_value_error():
    with pytest.raises(ValueError, match="not fitted"):
        TreeSampler(4, 5).sample(torch.zeros(2, 4), 3)
    tree = _random_tree(5, in_dim=4)
    x = torch.zeros(2, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="positive integer"):
        tree.sample(x, 0)
    with pytest.raises(ValueError, match="in_dim=4"):
        tree.sample(torch.zeros(2, 3), 2)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        tree.log_prob(x, torch.tensor([[5], [0]]))
    with pytest.raises(ValueError, match="shape"):
        tree.log_prob(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="rows must lie"):
        tree.sample(x, 2, rows=torch.tensor([2]))
    with pytest.raises(ValueError, match="Y has 3 columns"):
        TreeSampler(4, 5).fit(sp.csr_matrix(np.ones((3, 4))), sp.csr_matrix(np.eye(3)))
    with pytest.raises(ValueError, match="sampler="):
        build_sampler({"name": "nope", "in_dim": 2, "n_labels": 2})
