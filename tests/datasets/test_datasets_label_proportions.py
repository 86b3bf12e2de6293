"""label_proportion_documents(): the sparsemax paper's synthetic label-proportion generator."""

from __future__ import annotations

import numpy as np
import pytest

from sparsexc.datasets import label_proportion_documents


def test_seeded_shapes_and_proportions():
    X, Y, Q = label_proportion_documents(300, 7, 150.0, random_proportions=True, seed=3)
    X2, _, Q2 = label_proportion_documents(300, 7, 150.0, random_proportions=True, seed=3)
    X3, _, _ = label_proportion_documents(300, 7, 150.0, random_proportions=True, seed=4)
    assert (X != X2).nnz == 0 and (Q != Q2).nnz == 0 and (X != X3).nnz > 0
    assert X.shape == (300, 7) and Y.shape == Q.shape == (300, 7)  # vocabulary size defaults to K
    assert X.dtype == Y.dtype == Q.dtype == np.float32
    np.testing.assert_allclose(np.asarray(Q.sum(axis=1)).ravel(), 1.0, rtol=1e-6)
    assert np.array_equal(Y.indices, Q.indices) and set(np.unique(Y.data)) == {1.0}
    assert np.diff(Y.indptr).min() >= 1
    assert np.all(X.data == np.round(X.data)) and X.data.min() > 0  # word counts
    # Poisson(length) document lengths: mean within 5 standard errors
    lengths = np.asarray(X.sum(axis=1)).ravel()
    assert abs(lengths.mean() - 150.0) < 5 * np.sqrt(150.0 / 300)


def test_uniform_proportions_and_label_count():
    _, Y, Q = label_proportion_documents(2000, 10, 50.0, mean_labels=1.0, seed=0)
    sizes = np.diff(Y.indptr)
    # uniform over the label set
    np.testing.assert_allclose(Q.data, np.repeat(1.0 / sizes, sizes), rtol=1e-6)
    # m ~ Poisson(1) conditioned on m >= 1: P(m = 1) = e^-1 / (1 - e^-1) = 0.582
    assert abs(np.mean(sizes == 1) - 0.582) < 0.04


def test_words_follow_the_labels_topics():
    # Long single-label documents: same label -> near-identical word frequencies, other labels -> further apart.
    X, Y, _ = label_proportion_documents(400, 5, 20000.0, n_features=30, mean_labels=0.01, seed=2)
    single = np.diff(Y.indptr) == 1  # mean_labels ~ 0: almost always one label after the redraws
    assert single.mean() > 0.95
    freq = (X.toarray() / X.sum(axis=1))[single]
    label = Y[single].indices
    same, other = [], []
    for c in range(5):
        rows = freq[label == c]
        centre = rows.mean(axis=0)
        same.append(np.abs(rows - centre).sum(axis=1).mean())
        other.append(np.abs(freq[label != c] - centre).sum(axis=1).mean())
    assert max(same) < 0.5 * min(other)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_samples": 0}, "n_samples"),
        ({"n_labels": 2.5}, "n_labels"),
        ({"length": 0}, "length"),
        ({"n_features": 0}, "n_features"),
        ({"mean_labels": -1.0}, "mean_labels"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"n_samples": 10, "n_labels": 4, "length": 20.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        label_proportion_documents(args.pop("n_samples"), args.pop("n_labels"), args.pop("length"), **args)
