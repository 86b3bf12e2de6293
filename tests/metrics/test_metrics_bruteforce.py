"""Property tests: the vectorised metrics against per-row brute force, for every score form.

Scores are small integers, so ties are frequent and the lower-label-id rule is exercised on every example.
"""

from __future__ import annotations

import _metrics_bruteforce as brute
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sparsexc import metrics
from sparsexc._sparse import as_label_matrix

SETTINGS = settings(max_examples=60, deadline=None)


def _csr_from_mask(S: np.ndarray, stored: np.ndarray) -> sp.csr_matrix:
    """CSR holding exactly the ``stored`` entries of S, explicit zeros included (they count as predicted)."""
    rows, cols = np.nonzero(stored)
    indptr = np.concatenate(([0], np.cumsum(stored.sum(axis=1))))
    return sp.csr_matrix((S[rows, cols], cols, indptr), shape=S.shape)


def _topk_from_mask(S: np.ndarray, stored: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(indices, scores) listing the stored entries in a random order, padded with -1 (and junk scores)."""
    width = int(stored.sum(axis=1).max(initial=0)) + 1
    indices = np.full((S.shape[0], width), -1, dtype=np.int64)
    values = rng.normal(size=(S.shape[0], width)) * 100  # padding scores must be ignored
    for i in range(S.shape[0]):
        labels = rng.permutation(np.flatnonzero(stored[i]))
        slots = rng.permutation(width)[: labels.size]  # padding may sit anywhere in the row
        indices[i, slots] = labels
        values[i, slots] = S[i, labels]
    return indices, values


@st.composite
def problems(draw):
    n_samples = draw(st.integers(1, 6))
    n_labels = draw(st.integers(1, 7))
    Y = [draw(st.sets(st.integers(0, n_labels - 1), max_size=n_labels)) for _ in range(n_samples)]
    S = np.array(
        draw(st.lists(st.integers(-2, 2), min_size=n_samples * n_labels, max_size=n_samples * n_labels)),
        dtype=np.float64,
    ).reshape(n_samples, n_labels)
    stored = np.array(
        draw(st.lists(st.booleans(), min_size=n_samples * n_labels, max_size=n_samples * n_labels)), dtype=bool
    ).reshape(n_samples, n_labels)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = np.round(rng.uniform(0.5, 4.0, size=n_labels), 2)
    return Y, S, stored, rng, w


def _forms(Y, S, stored, rng):
    """(scores in some form, the same predictions as per-row dicts) for every form."""
    n_samples, n_labels = S.shape
    everything = np.ones_like(stored)
    full = [{label: S[i, label] for label in range(n_labels)} for i in range(n_samples)]
    partial = [{label: S[i, label] for label in np.flatnonzero(stored[i])} for i in range(n_samples)]
    return {
        "dense": (S, full),
        "csr-all-stored": (_csr_from_mask(S, everything), full),
        "topk-all": (_topk_from_mask(S, everything, rng), full),
        "csr-partial": (_csr_from_mask(S, stored), partial),
        "topk-partial": (_topk_from_mask(S, stored, rng), partial),
    }


def _Y_csr(Y, n_labels):
    return as_label_matrix([sorted(y) for y in Y], n_labels=n_labels)


@SETTINGS
@given(problems(), st.integers(1, 8), st.sampled_from(["zero", "exclude"]))
def test_top_k_metrics_match_brute_force_for_every_form(problem, k, empty_rows):
    Y, S, stored, rng, w = problem
    Y_csr = _Y_csr(Y, S.shape[1])
    for form, (scores, preds) in _forms(Y, S, stored, rng).items():
        got = {
            "P": metrics.precision_at_k(Y_csr, scores, k, empty_rows=empty_rows),
            "R": metrics.recall_at_k(Y_csr, scores, k, empty_rows=empty_rows),
            "nDCG": metrics.ndcg_at_k(Y_csr, scores, k, empty_rows=empty_rows),
            "PSP": metrics.psp_at_k(Y_csr, scores, w, k),
            "PSP-raw": metrics.psp_at_k(Y_csr, scores, w, k, normalize=False),
            "PSnDCG": metrics.psndcg_at_k(Y_csr, scores, w, k),
            "PSnDCG-raw": metrics.psndcg_at_k(Y_csr, scores, w, k, normalize=False),
        }
        want = {
            "P": brute.precision_at_k(Y, preds, k, empty_rows),
            "R": brute.recall_at_k(Y, preds, k, empty_rows),
            "nDCG": brute.ndcg_at_k(Y, preds, k, empty_rows),
            "PSP": brute.psp_at_k(Y, preds, w, k),
            "PSP-raw": brute.psp_at_k(Y, preds, w, k, normalize=False),
            "PSnDCG": brute.psndcg_at_k(Y, preds, w, k),
            "PSnDCG-raw": brute.psndcg_at_k(Y, preds, w, k, normalize=False),
        }
        for name in want:
            assert got[name] == pytest.approx(want[name], abs=1e-12), (form, name)


@SETTINGS
@given(problems())
def test_full_ranking_metrics_match_brute_force_for_every_form(problem):
    Y, S, stored, rng, _ = problem
    n_labels = S.shape[1]
    Y_lists = [sorted(y) for y in Y]
    for form, (scores, preds) in _forms(Y, S, stored, rng).items():
        # Label lists do not fix the width; dense/CSR scores do, top-k do not: pass a CSR then.
        Y_arg = Y_lists if not isinstance(scores, tuple) else _Y_csr(Y, n_labels)
        assert metrics.label_ranking_average_precision(Y_arg, scores) == pytest.approx(
            brute.lrap(Y, preds, n_labels), abs=1e-12
        ), form
        assert metrics.coverage(Y_arg, scores) == pytest.approx(brute.coverage(Y, preds, n_labels), abs=1e-12), form
        assert metrics.mean_average_precision(Y_arg, scores) == pytest.approx(
            brute.mean_average_precision(Y, preds, n_labels), abs=1e-12
        ), form


@settings(max_examples=30, deadline=None)
@given(problems(), st.lists(st.integers(1, 6), min_size=1, max_size=3))
def test_evaluate_matches_the_single_metric_functions(problem, ks):
    Y, S, stored, rng, w = problem
    Y_csr = _Y_csr(Y, S.shape[1])
    label_sets = stored  # any 0/1 matrix will do as predicted sets
    for form, (scores, _) in _forms(Y, S, stored, rng).items():
        table = metrics.evaluate(Y_csr, scores, ks=ks, inv_propensity=w, label_sets=label_sets)
        for k in ks:
            assert table[metrics.PRECISION_AT.format(k=k)] == metrics.precision_at_k(Y_csr, scores, k), form
            assert table[metrics.RECALL_AT.format(k=k)] == metrics.recall_at_k(Y_csr, scores, k), form
            assert table[metrics.NDCG_AT.format(k=k)] == metrics.ndcg_at_k(Y_csr, scores, k), form
            assert table[metrics.PSP_AT.format(k=k)] == metrics.psp_at_k(Y_csr, scores, w, k), form
            assert table[metrics.PSNDCG_AT.format(k=k)] == metrics.psndcg_at_k(Y_csr, scores, w, k), form
        assert table[metrics.MICRO_F1] == metrics.micro_f1(Y_csr, label_sets)
        assert table[metrics.MACRO_F1] == metrics.macro_f1(Y_csr, label_sets)
        assert table[metrics.MACRO_F1_PAPER] == metrics.macro_f1_paper(Y_csr, label_sets)
        assert table[metrics.EXAMPLE_F1] == metrics.example_f1(Y_csr, label_sets)
        assert table[metrics.JACCARD] == metrics.jaccard(Y_csr, label_sets)
        assert table[metrics.HAMMING] == metrics.hamming_loss(Y_csr, label_sets)


@SETTINGS
@given(problems())
def test_set_metrics_match_brute_force(problem):
    Y, _, stored, _, _ = problem
    n_labels = stored.shape[1]
    P = [set(np.flatnonzero(row).tolist()) for row in stored]
    want = brute.set_metrics(Y, P, n_labels)
    Y_csr = _Y_csr(Y, n_labels)
    got = metrics.evaluate(Y_csr, None, label_sets=[sorted(p) for p in P])
    assert got.keys() == want.keys()
    for name in want:
        assert got[name] == pytest.approx(want[name], abs=1e-12), name


@SETTINGS
@given(problems())
def test_perfect_ranking_scores_one_on_propensity_metrics(problem):
    Y, _, _, _, w = problem
    n_labels = len(w)
    Y_csr = _Y_csr(Y, n_labels)
    assume(Y_csr.nnz > 0)  # with no true label anywhere there is nothing to rank (hand-worked tests cover it)
    # Scores = w on the true labels and -1 elsewhere: the true labels come first, heaviest first.
    S = np.where(Y_csr.toarray() > 0, w[None, :], -1.0)
    for k in (1, 2, 3, 5):
        assert metrics.psp_at_k(Y_csr, S, w, k) == pytest.approx(1.0)
        assert metrics.psndcg_at_k(Y_csr, S, w, k) == pytest.approx(1.0)
