"""Small examples worked out by hand, tie-breaking, padding, empty rows, propensities and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc import metrics
from sparsexc._sparse import as_label_matrix
from sparsexc.metrics import _inputs

# Five labels, three rows. Rankings (decreasing score, ties by lower label id):
#   row 0, true {0, 3}: scores 0.1 0.5 0.2 0.9 0.0 -> ranking 3 1 2 0 4
#   row 1, true {1}:    scores 0.4 0.4 0.3 0.2 0.1 -> ranking 0 1 2 3 4 (0 and 1 tie: 0 first)
#   row 2, no labels:   scores 0.5 0.4 0.3 0.2 0.1 -> ranking 0 1 2 3 4
Y = [[0, 3], [1], []]
SCORES = np.array(
    [
        [0.1, 0.5, 0.2, 0.9, 0.0],
        [0.4, 0.4, 0.3, 0.2, 0.1],
        [0.5, 0.4, 0.3, 0.2, 0.1],
    ]
)
Y_CSR = sp.csr_matrix(([1.0] * 3, [0, 3, 1], [0, 2, 3, 3]), shape=(3, 5))
W = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # inverse propensities
C = 1 / math.log2(3)  # discount of rank 2


def _three_forms(S):
    """Dense, CSR with every entry stored, and top-k listing every label in reverse id order."""
    n, m = S.shape
    indptr = np.arange(0, n * m + 1, m)
    csr = sp.csr_matrix((S.ravel(), np.tile(np.arange(m), n), indptr), shape=S.shape)  # keeps the 0.0
    indices = np.tile(np.arange(m)[::-1], (n, 1))
    return {"dense": S, "csr": csr, "topk": (indices, np.take_along_axis(S, indices, axis=1))}


@pytest.mark.parametrize("form", ["dense", "csr", "topk"])
def test_hand_worked_ranking_metrics(form):
    scores = _three_forms(SCORES)[form]
    Y_arg = Y_CSR if form == "dense" else Y  # label lists: the scores (or top-k ids) fix the width
    # P@1: row 0 hits (label 3), rows 1 and 2 miss -> 1/3.
    assert metrics.precision_at_k(Y_arg, scores, 1) == pytest.approx(1 / 3)
    # P@3: row 0 {3,1,2} has 1 hit, row 1 {0,1,2} has 1 hit, row 2 none -> (1/3 + 1/3 + 0) / 3.
    assert metrics.precision_at_k(Y_arg, scores, 3) == pytest.approx(2 / 9)
    assert metrics.precision_at_k(Y_arg, scores, 3, empty_rows="exclude") == pytest.approx(1 / 3)
    # R@3: 1/2, 1/1, 0 -> 1.5 / 3; without the empty row 1.5 / 2.
    assert metrics.recall_at_k(Y_arg, scores, 3) == pytest.approx(0.5)
    assert metrics.recall_at_k(Y_arg, scores, 3, empty_rows="exclude") == pytest.approx(0.75)
    # nDCG@3: row 0 DCG 1 over ideal 1 + C (two true labels); row 1 DCG C (hit at rank 2) over 1.
    assert metrics.ndcg_at_k(Y_arg, scores, 3) == pytest.approx((1 / (1 + C) + C) / 3)
    # PSP@1: predicted gains 4 (row 0: label 3), 0, 0; ideal gains 4, 2, 0 -> (4/3) / (6/3).
    assert metrics.psp_at_k(Y_arg, scores, W, 1) == pytest.approx(2 / 3)
    assert metrics.psp_at_k(Y_arg, scores, W, 1, normalize=False) == pytest.approx(4 / 3)
    # PSP@3: gains 4 (row 0) and 2 (row 1, label 1) -> mean (4/3 + 2/3)/3 = 2/3; ideal (5/3 + 2/3)/3 = 7/9.
    assert metrics.psp_at_k(Y_arg, scores, W, 3, normalize=False) == pytest.approx(2 / 3)
    assert metrics.psp_at_k(Y_arg, scores, W, 3) == pytest.approx((2 / 3) / (7 / 9))
    # PSnDCG@3: row 0 4/(1+C), row 1 2C/1; ideal row 0 (4 + 1*C)/(1+C), row 1 2/1.
    raw = (4 / (1 + C) + 2 * C) / 3
    assert metrics.psndcg_at_k(Y_arg, scores, W, 3, normalize=False) == pytest.approx(raw)
    assert metrics.psndcg_at_k(Y_arg, scores, W, 3) == pytest.approx(raw / (((4 + C) / (1 + C) + 2) / 3))


@pytest.mark.parametrize("form", ["dense", "csr", "topk"])
def test_hand_worked_full_ranking_metrics(form):
    scores = _three_forms(SCORES)[form]
    Y_csr = Y_CSR
    # LRAP: row 0 ranks 3->1, 0->4: (1/1 + 2/4)/2 = 0.75; row 1: label 1 at rank 2 -> 1/2; row 2 (no labels) 1.
    assert metrics.label_ranking_average_precision(Y_csr, scores) == pytest.approx((0.75 + 0.5 + 1) / 3)
    # Coverage: deepest true label at rank 4, 2, and 0 for the empty row.
    assert metrics.coverage(Y_csr, scores) == pytest.approx(2.0)
    # MAP over labels 0, 1, 3 (2 and 4 have no positives):
    #   label 0: column 0.1 0.4 0.5 -> rows 2 1 0, positive row 0 at rank 3 -> 1/3
    #   label 1: column 0.5 0.4 0.4 -> rows 0 1 2 (1 before 2 on the tie), positive row 1 at rank 2 -> 1/2
    #   label 3: column 0.9 0.2 0.2 -> row 0 first -> 1
    assert metrics.mean_average_precision(Y_csr, scores) == pytest.approx((1 / 3 + 1 / 2 + 1) / 3)


def test_hand_worked_set_metrics():
    # true {0,1} {1} {} ; predicted {0} {1,2} {} ; 3 labels.
    T, P = [[0, 1], [1], []], [[0], [1, 2], []]
    # micro: 2 * (1 + 1) / (3 + 3)
    assert metrics.micro_f1(T, P) == pytest.approx(2 / 3)
    # per-label F1: label 0 -> 1, label 1 (tp 1, true 2, pred 1) -> 2/3, label 2 (only predicted) -> 0
    assert metrics.macro_f1(T, P) == pytest.approx(5 / 9)
    # paper: P_l = 1, 1, 0 -> 2/3; R_l = 1, 1/2, 0 (0/0) -> 1/2; F = 2 (2/3)(1/2) / (2/3 + 1/2) = 4/7
    assert metrics.macro_f1_paper(T, P) == pytest.approx(4 / 7)
    # example F1: 2/3, 2/3 and the empty/empty row 1 (or 0, or left out)
    assert metrics.example_f1(T, P) == pytest.approx(7 / 9)
    assert metrics.example_f1(T, P, zero_division=0.0) == pytest.approx(4 / 9)
    assert metrics.example_f1(T, P, zero_division="exclude") == pytest.approx(2 / 3)
    # Jaccard: 1/2, 1/2, 1
    assert metrics.jaccard(T, P) == pytest.approx(2 / 3)
    # Hamming: one wrong cell in row 0 (label 1), one in row 1 (label 2), of 9
    assert metrics.hamming_loss(T, P) == pytest.approx(2 / 9)
    # With a 4th label that is neither true nor predicted: F1 of that label is 0, 1, or it is left out.
    T4 = _indicator(T, 4)
    P4 = _indicator(P, 4)
    assert metrics.macro_f1(T4, P4) == pytest.approx((1 + 2 / 3 + 0 + 0) / 4)
    assert metrics.macro_f1(T4, P4, zero_division=1.0) == pytest.approx((1 + 2 / 3 + 0 + 1) / 4)
    assert metrics.macro_f1(T4, P4, zero_division="exclude") == pytest.approx(5 / 9)
    # The paper's macro-F1 averages over all labels: P = 2/4, R = 1.5/4 -> 2 (1/2)(3/8) / (7/8) = 3/7.
    assert metrics.macro_f1_paper(T4, P4) == pytest.approx(3 / 7)


def _indicator(rows, n_labels):
    return as_label_matrix(rows, n_labels=n_labels)


def test_macro_f1_paper_matches_the_papers_numpy_recipe():
    # The sparsemax code: per-label P and R as arrays, NaN (0/0) set to 0, then the harmonic mean of means.
    rng = np.random.default_rng(0)
    T = (rng.random((40, 9)) < 0.3).astype(float)
    P = (rng.random((40, 9)) < 0.3).astype(float)
    T[:, 0] = 0
    P[:, 1] = 0
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num((T * P).sum(0) / P.sum(0))
        recall = np.nan_to_num((T * P).sum(0) / T.sum(0))
    want = 2 * precision.mean() * recall.mean() / (precision.mean() + recall.mean())
    assert metrics.macro_f1_paper(T, P) == pytest.approx(want, abs=1e-12)


def test_ties_are_broken_by_lower_label_id():
    S = np.zeros((1, 4))  # every label ties
    for form, scores in _three_forms(S).items():
        assert metrics.precision_at_k([[0]], scores, 1) == 1.0, form
        assert metrics.precision_at_k([[1]], scores, 1) == 0.0, form
        assert metrics.precision_at_k([[2, 3]], scores, 2) == 0.0, form
        assert metrics.coverage([[2]], scores) == 3.0, form
    # Partial ties: labels 1 and 3 share the top score; 1 comes first.
    S = np.array([[0.0, 2.0, 1.0, 2.0]])
    assert list(_inputs.top_k_indices(S, 4)[0]) == [1, 3, 2, 0]
    assert list(_inputs.top_k_indices(S, 2)[0]) == [1, 3]
    assert list(_inputs.top_k_indices(sp.csr_matrix(S), 4)[0]) == [1, 3, 2, -1]  # 0.0 not stored


def test_dense_ranking_in_several_row_blocks_agrees(monkeypatch):
    rng = np.random.default_rng(1)
    S = rng.integers(0, 3, size=(13, 6)).astype(float)
    Y = (rng.random((13, 6)) < 0.4).astype(int)
    whole = (_inputs.top_k_indices(S, 3), metrics.coverage(Y, S))
    monkeypatch.setattr(_inputs, "_DENSE_BLOCK_ELEMENTS", 10)  # one row per block, then odd-sized blocks
    assert np.array_equal(_inputs.top_k_indices(S, 3), whole[0])
    assert metrics.coverage(Y, S) == whole[1]
    monkeypatch.setattr(_inputs, "_DENSE_BLOCK_ELEMENTS", 25)
    assert np.array_equal(_inputs.top_k_indices(S, 3), whole[0])


def test_topk_padding_and_order_within_the_row():
    # Row 0 predicts 4 then 2 (scores decide, not the column order); row 1 predicts nothing.
    indices = np.array([[-1, 2, 4], [-1, -1, -1]])
    values = np.array([[99.0, 0.3, 0.7], [5.0, 5.0, 5.0]])  # padding scores are ignored
    Y_true = [[2], [0]]
    # P@1: row 0 top is 4 (miss), row 1 nothing -> 0. P@2: row 0 {4, 2} one hit -> (1/2 + 0)/2.
    assert metrics.precision_at_k(Y_true, (indices, values), 1) == 0.0
    assert metrics.precision_at_k(Y_true, (indices, values), 2) == pytest.approx(0.25)
    # k beyond the predictions: missing positions are misses, the denominator stays k.
    assert metrics.precision_at_k(Y_true, (indices, values), 5) == pytest.approx(0.1)
    # Without a matrix fixing the width, the label space is the largest id seen + 1 = 5 labels.
    assert metrics.recall_at_k(Y_true, (indices, values), 5) == pytest.approx(0.5)
    # Truncated full ranking: row 0 is 4 2 0 1 3 (unpredicted by id), row 1 is 0 1 2 3 4.
    assert metrics.coverage(Y_true, (indices, values)) == pytest.approx((2 + 1) / 2)


def test_rows_without_true_labels_everywhere():
    scores = np.array([[0.2, 0.1], [0.3, 0.4]])
    Y_empty = sp.csr_matrix((2, 2))
    for fn in (metrics.precision_at_k, metrics.recall_at_k, metrics.ndcg_at_k):
        assert fn(Y_empty, scores, 1) == 0.0
        assert fn(Y_empty, scores, 1, empty_rows="exclude") == 0.0
    assert metrics.psp_at_k(Y_empty, scores, [1.0, 2.0], 2) == 0.0  # ideal value 0: reported as 0
    assert metrics.label_ranking_average_precision(Y_empty, scores) == 1.0  # sklearn's convention
    assert metrics.coverage(Y_empty, scores) == 0.0
    assert metrics.mean_average_precision(Y_empty, scores) == 0.0


def test_perfect_ranking_gives_psp_one_and_worse_ranking_less():
    Y_true = [[0, 3], [1], [2, 3, 4]]
    w = np.array([1.5, 2.0, 3.0, 4.0, 5.0])
    perfect = np.array([[2, 0, 0, 5, 0], [0, 1, 0, 0, 0], [0, 0, 1, 2, 3]], dtype=float)  # true labels first, by w
    for k in (1, 2, 3, 5):
        assert metrics.psp_at_k(Y_true, perfect, w, k) == pytest.approx(1.0)
        assert metrics.psndcg_at_k(Y_true, perfect, w, k) == pytest.approx(1.0)
    # Swap row 2's order so the lightest true label comes first: PSnDCG drops below 1, PSP@3 does not.
    swapped = perfect.copy()
    swapped[2] = [0, 0, 3, 2, 1]
    assert metrics.psndcg_at_k(Y_true, swapped, w, 3) < 1.0
    assert metrics.psp_at_k(Y_true, swapped, w, 3) == pytest.approx(1.0)
    assert metrics.psp_at_k(Y_true, swapped, w, 1) < 1.0


def test_inverse_propensity_closed_form():
    # N = 4 examples; label counts 2, 0, 4.
    Y_train = [[0, 2], [2], [0, 2], [2]]
    A, B = 0.55, 1.5
    C_jain = (math.log(4) - 1) * (B + 1) ** A
    want = [1 + C_jain * (count + B) ** -A for count in (2, 0, 4)]
    got = metrics.inverse_propensity(Y_train, n_labels=3)
    assert got == pytest.approx(want, rel=1e-12)
    assert got[1] > got[0] > got[2]  # rarer labels weigh more
    got = metrics.inverse_propensity(sp.csr_matrix(_indicator(Y_train, 3)), A=0.6, B=2.6)
    C_amazon = (math.log(4) - 1) * 3.6**0.6
    assert got == pytest.approx([1 + C_amazon * (c + 2.6) ** -0.6 for c in (2, 0, 4)], rel=1e-12)


def test_evaluate_keys_and_order():
    table = metrics.evaluate(Y, SCORES, ks=(1, 3), inv_propensity=W, label_sets=[[3], [0, 1], []])
    assert list(table) == [
        "P@1",
        "P@3",
        "nDCG@1",
        "nDCG@3",
        "R@1",
        "R@3",
        "PSP@1",
        "PSP@3",
        "PSnDCG@1",
        "PSnDCG@3",
        "micro-F1",
        "macro-F1",
        "macro-F1 (paper)",
        "example-F1",
        "Jaccard",
        "Hamming",
    ]
    assert list(metrics.evaluate(Y, SCORES, ks=5)) == ["P@5", "nDCG@5", "R@5"]
    assert all(isinstance(v, float) for v in table.values())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: metrics.precision_at_k(np.zeros((3, 5)), np.zeros((3, 4)), 1),
            "scores has 4 columns but Y_true has 5 labels",
        ),
        (lambda: metrics.precision_at_k(Y, np.zeros((2, 5)), 1), "scores has 2 rows but Y_true has 3 rows"),
        (lambda: metrics.precision_at_k(Y, np.zeros(5), 1), "scores must be a 2-D array"),
        (lambda: metrics.precision_at_k(Y, SCORES, 0), "k must be a positive integer; got 0"),
        (lambda: metrics.precision_at_k(Y, SCORES, 1.5), "k must be a positive integer"),
        (lambda: metrics.precision_at_k(Y, SCORES, 1, empty_rows="drop"), "empty_rows must be 'zero' or 'exclude'"),
        (
            lambda: metrics.precision_at_k(Y, np.where(SCORES > 0.85, np.nan, SCORES), 1),
            r"NaN score \(row 0, column 3\)",
        ),
        (lambda: metrics.precision_at_k(Y, (np.zeros((3, 2), int), np.zeros((3, 3))), 1), "same shape"),
        (lambda: metrics.precision_at_k(Y, (np.zeros((3, 2)), np.zeros((3, 2))), 1), "integer label ids"),
        (
            lambda: metrics.precision_at_k(np.zeros((3, 5)), (np.array([[0, 7]] * 3), np.zeros((3, 2))), 1),
            "row 0 holds label id 7, but Y_true has 5 labels",
        ),
        (
            lambda: metrics.precision_at_k(Y, (np.array([[0, 1], [2, 2], [0, 1]]), np.zeros((3, 2))), 1),
            "row 1 lists label 2 more than once",
        ),
        (lambda: metrics.precision_at_k(Y, (np.array([[0, -2]] * 3), np.zeros((3, 2))), 1), "or -1 for padding"),
        (lambda: metrics.precision_at_k(Y, (np.zeros((3, 2), int),), 1), "got a tuple of length 1"),
        (lambda: metrics.precision_at_k([[0, 9]], np.zeros((1, 5)), 1), r"Y_true\[0\] holds label id 9"),
        (lambda: metrics.psp_at_k(Y, SCORES, np.ones(4), 1), "inv_propensity has 4 entries but Y_true has 5 labels"),
        (lambda: metrics.psp_at_k(Y, SCORES, -W, 1), "inv_propensity must be finite and >= 0"),
        (
            lambda: metrics.evaluate(Y, SCORES, label_sets=np.zeros((3, 4))),
            "label_sets has 4 columns but Y_true has 5 labels",
        ),
        (lambda: metrics.evaluate(Y, SCORES, label_sets=[[0]]), "label_sets has 1 rows but Y_true has 3 rows"),
        (lambda: metrics.evaluate(Y, SCORES, ks=()), "ks must name at least one k"),
        (lambda: metrics.evaluate(Y, SCORES, ks="5"), "ks must be a positive integer or a sequence"),
        (lambda: metrics.evaluate(Y, None), "needs scores, label_sets, or both"),
        (lambda: metrics.macro_f1(Y, Y, zero_division=0.5), r"zero_division must be 0.0, 1.0 or 'exclude'"),
        (lambda: metrics.micro_f1(Y, Y, zero_division="exclude"), r"zero_division must be 0.0 or 1.0"),
        (lambda: metrics.inverse_propensity(Y, A=-1), "A must be a positive number"),
        (lambda: metrics.inverse_propensity(sp.csr_matrix((0, 3))), "Y_train has no rows"),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_label_space_width_from_inv_propensity_when_nothing_else_fixes_it():
    # Label lists and top-k ids only reach id 2, but inv_propensity spans 6 labels: the width is 6.
    w = metrics.inverse_propensity([[0], [5]])  # 6 labels from the largest id
    assert w.shape == (6,)
    assert metrics.inverse_propensity([[0], [1]], n_labels=6).shape == (6,)
    table = metrics.evaluate(
        [[2], [1]],
        (np.array([[2, 0], [0, 1]]), np.array([[0.9, 0.1], [0.8, 0.2]])),
        ks=(1, 2),
        inv_propensity=w,
        label_sets=[[2], [5]],
    )
    # P@1: row 0 hits, row 1 misses; Hamming: row 1 misses label 1 and wrongly has 5 -> 2 of 12 cells.
    assert table["P@1"] == pytest.approx(0.5)
    assert table["Hamming"] == pytest.approx(2 / 12)
    with pytest.raises(ValueError, match=r"label_sets\[1\] holds label id 7"):
        metrics.evaluate([[2], [1]], None, inv_propensity=w, label_sets=[[2], [7]])
