"""synthetic(): seeded, Zipf label frequencies, learnable, and a million labels in little memory."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from sparsexc.datasets import describe, synthetic


def _same(a, b):
    return a.shape == b.shape and (a != b).nnz == 0


def test_same_seed_same_data_and_other_seed_differs():
    first = synthetic(300, 50, 40, seed=7)
    second = synthetic(300, 50, 40, seed=7)
    other = synthetic(300, 50, 40, seed=8)
    for part in ("train", "test"):
        assert _same(getattr(first, part).X, getattr(second, part).X)
        assert _same(getattr(first, part).Y, getattr(second, part).Y)
    assert not _same(first.train.Y, other.train.Y)


def test_shapes_split_and_row_normalisation():
    data = synthetic(1000, 64, 30, seed=1, test_size=0.25, nnz_per_sample=12)
    assert data.train.X.shape == (750, 64) and data.test.X.shape == (250, 64)
    assert data.train.Y.shape == (750, 30) and data.n_labels == 30
    X = data.train.X
    assert X.dtype == np.float32
    np.testing.assert_allclose(np.sqrt(X.multiply(X).sum(axis=1)).A1, 1.0, rtol=1e-5)
    assert np.diff(X.indptr).max() <= 12
    assert np.diff(data.train.Y.indptr).min() >= 1  # every row has a label
    assert set(np.unique(data.train.Y.data)) == {1.0}


def test_label_frequencies_follow_zipf():
    # One label per row, so label counts are a multinomial sample of p_r ∝ (r+1)^-power.
    n, n_labels, power = 40000, 50, 1.2
    data = synthetic(n, 100, n_labels, labels_per_sample=1.0, power=power, seed=3, test_size=0.5)
    counts = np.sort(np.asarray(data.train.Y.sum(0)).ravel() + np.asarray(data.test.Y.sum(0)).ravel())[::-1]
    p = np.arange(1, n_labels + 1, dtype=float) ** -power
    expected = n * p / p.sum()
    # Top ranks: within 5 standard deviations of the multinomial count.
    top = slice(0, 10)
    assert np.all(np.abs(counts[top] - expected[top]) < 5 * np.sqrt(expected[top]) + 1)
    slope = np.polyfit(np.log(np.arange(1, 11)), np.log(counts[:10]), 1)[0]
    assert abs(slope + power) < 0.1


def test_features_carry_the_labels():
    # A class-centroid scorer fitted on train beats the most-popular-label baseline on test by far.
    data = synthetic(3000, 500, 40, labels_per_sample=2.0, noise=0.2, power=0.5, seed=11)
    centroids = (data.train.X.T @ data.train.Y).toarray()  # (n_features, n_labels)
    centroids /= np.linalg.norm(centroids, axis=0, keepdims=True) + 1e-12
    top1 = np.asarray(data.test.X @ centroids).argmax(axis=1)
    Y_test = data.test.Y.toarray()
    precision_at_1 = Y_test[np.arange(len(top1)), top1].mean()
    baseline = Y_test[:, np.asarray(data.train.Y.sum(0)).ravel().argmax()].mean()
    assert precision_at_1 > 0.8
    assert precision_at_1 > baseline + 0.4


def test_a_million_labels_is_fast_and_small():
    tracemalloc.start()
    try:
        start = time.perf_counter()
        data = synthetic(2000, 20000, 1_000_000, seed=5)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data.train.Y.shape == (1600, 1_000_000)
    assert elapsed < 10.0
    # O(C) tables (cdf, permutation: 16 MB) and O(n) draws; a dense (n, C) array would be 8 GB.
    assert peak < 100e6, f"peak traced memory {peak / 1e6:.0f} MB"
    stats = describe(data.train)
    assert 2.0 < stats["label_cardinality"] <= 3.5
    assert stats["labels_without_rows"] > 990_000  # a power-law tail: most labels never drawn


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_labels": 0}, "n_labels"),
        ({"labels_per_sample": 0.5}, "labels_per_sample"),
        ({"noise": 1.5}, "noise"),
        ({"test_size": 1.0}, "test_size"),
        ({"power": -1}, "power"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    args = {"n_samples": 10, "n_features": 5, "n_labels": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        synthetic(**args)
