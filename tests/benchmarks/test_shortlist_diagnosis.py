"""benchmarks/shortlist_diagnosis.py: the shortlist's recall and per-band positive shares, and a tiny run."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp


@pytest.fixture(scope="module")
def diag(load_benchmark):
    return load_benchmark("shortlist_diagnosis")


def test_recall_and_the_bands_by_hand(diag, monkeypatch):
    Y = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]], dtype=np.float32))
    short = np.array([[0, 2], [2, 3], [1, 3]])
    assert diag.recall(short, Y) == pytest.approx(2 / 4)  # row 0 holds label 0, row 1 label 2, row 2 none
    monkeypatch.setattr(diag, "BANDS", (0, 2))
    low, high = diag.bands(short, Y, short[:1], Y[:1])
    # labels 1, 2, 3 have under 2 positives: shortlisted 1 + 2 + 2 = 5 times with 1 hit; 1 positive is added
    assert (low["labels"], high["labels"]) == (3, 1)
    assert low["positive_share_train_shortlist"] == pytest.approx(1 / 5)
    assert low["positive_share_train_candidates"] == pytest.approx(2 / 6)
    assert high["positive_share_train_shortlist"] == pytest.approx(1 / 1)  # label 0: shortlisted in row 0
    assert low["per_row_train"] == pytest.approx(5 / 3) and low["per_row_holdout"] == pytest.approx(1.0)


def _tiny_set(diag, monkeypatch, X, Y, shortlist_size):
    """The script reads the set ``tiny`` as (X, Y), shortlists ``shortlist_size`` labels, trains small models."""
    monkeypatch.setattr(diag, "load_data", lambda name: {"X_train": X, "Y_train": Y})
    monkeypatch.setattr(diag, "SHORTLIST_SIZE", shortlist_size)
    monkeypatch.setattr(diag, "classifier", _small)


def test_a_tiny_run(diag, monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    X = sp.random(300, 20, density=0.3, random_state=0, format="csr", dtype=np.float32)
    S = X @ rng.normal(size=(20, 16))
    Y = sp.csr_matrix((np.quantile(S, 0.85, axis=1, keepdims=True) < S).astype(np.float32))
    _tiny_set(diag, monkeypatch, X, Y, shortlist_size=5)
    argv = ["--datasets", "tiny", "--negatives", "0,4", "--heads", "sparsemax,sigmoid", "--out", str(tmp_path)]
    assert diag.main(argv) == 0
    page = (tmp_path / "shortlist_diagnosis.md").read_text()
    assert "## tiny — 270 fit / 30 hold-out rows, 16 labels" in page and "5-label shortlist" in page
    assert "| sparsemax over the shortlist, 4 uniform negatives |" in page and "cut to the shortlist" in page
    assert "| sigmoid over the shortlist, 0 uniform negatives |" in page and "sets cut to the shortlist" in page


def test_seeds_repeat_every_system(diag, monkeypatch, tmp_path):
    X = sp.random(120, 20, density=0.3, random_state=1, format="csr", dtype=np.float32)
    Y = sp.csr_matrix((X @ np.random.default_rng(1).normal(size=(20, 8)) > 0.3).astype(np.float32))
    _tiny_set(diag, monkeypatch, X, Y, shortlist_size=4)
    argv = ["--datasets", "tiny", "--negatives", "2", "--seeds", "0,1", "--out", str(tmp_path)]
    assert diag.main(argv) == 0
    page = (tmp_path / "shortlist_diagnosis.md").read_text()
    for seed in (0, 1):
        assert f"| sparsemax, every label (seed {seed}) |" in page
        assert f"| sparsemax over the shortlist, 2 uniform negatives (seed {seed}) |" in page


def _small(head, seed, **extra):
    from sparsexc import XCClassifier

    return XCClassifier(head=head, hidden_sizes=(8,), epochs=2, verbose=0, random_state=seed, **extra)
