"""The shortlist model's path weight: a candidate's logit is the head's plus w x the log of its path score in the
label tree, for top-k, scores and sets alike; ``tune`` chooses w jointly with the head's set rule. Checked by
brute force against the plain model's logits and the tree's own path scores."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sparsexc.errors import ConfigurationError
from sparsexc.estimator import XCClassifier
from sparsexc.heads import get_head
from sparsexc.heads.candidates import Candidates
from sparsexc.metrics import evaluate
from sparsexc.models import FeatureBatch, ShortlistModel, SparseEncoder, XCModel
from sparsexc.models.shortlist import PATH_FLOOR, PATH_WEIGHTS
from sparsexc.ops import sparsemax
from sparsexc.tree import LabelTreeModel, LabelTreeParams

N, D, C, M = 200, 30, 20, 6


def _data(seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    X = sp.random(N, D, density=0.3, random_state=seed, format="csr", dtype=np.float32)
    S = X @ rng.normal(size=(D, C))
    Y = sp.csr_matrix((np.quantile(S, 0.85, axis=1, keepdims=True) < S).astype(np.float32))
    return X, Y


def _pair(head: str, path_weight: float | None) -> tuple[XCModel, ShortlistModel]:
    """A plain model and a shortlist model (M labels per row) sharing its weights; the matcher fitted."""
    X, Y = _data(0)
    torch.manual_seed(0)
    encoder = SparseEncoder(D, {"hidden_sizes": (8,)})
    plain = XCModel(encoder, get_head(head)(encoder.out_dim, C))
    matcher = LabelTreeModel(LabelTreeParams(branching=2, max_leaf_size=4, loss="logistic")).fit(X, Y)
    listed = ShortlistModel(encoder, plain.head, matcher, size=M, beam=4, path_weight=path_weight)
    return plain, listed


def _brute(plain: XCModel, listed: ShortlistModel, X: sp.csr_matrix, w: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row its shortlisted ids (the tree's top M) and z + w log(path score), from the plain model's logits."""
    ids, path = listed.matcher.predict_topk(X, M, beam=4)
    plain.eval()
    with torch.no_grad():
        z = plain.head.output(plain.hidden(FeatureBatch.from_csr(X))).double().numpy()
    rows = np.arange(X.shape[0])[:, None]
    return ids, z[rows, ids] + w * np.log(np.maximum(path.astype(np.float64), PATH_FLOOR))


@pytest.mark.parametrize("w", [0.0, 0.3, 2.0])
def test_topk_ranks_the_head_logit_plus_w_log_path(w):
    plain, listed = _pair("sparsemax", w)
    X, _ = _data(1)
    ids, s = _brute(plain, listed, X, w)
    order = np.argsort(-s, axis=1, kind="stable")[:, :3]
    expected = np.take_along_axis(ids, order, axis=1)
    got, _ = listed.predict_topk(X, 3)
    gaps = np.sort(s, axis=1)[:, ::-1]
    clear = (gaps[:, 2] - gaps[:, 3] > 1e-4) & (gaps[:, 0] - gaps[:, 1] > 1e-4) & (gaps[:, 1] - gaps[:, 2] > 1e-4)
    assert clear.sum() > N // 2  # the test compares rows without near-ties
    np.testing.assert_array_equal(got[clear], expected[clear])


def test_scores_and_sets_read_the_shifted_logits():
    w, t = 0.5, 2.0
    plain, listed = _pair("sparsemax", w)
    listed.head.set_tuned_value(t)
    X, _ = _data(2)
    ids, s = _brute(plain, listed, X, w)
    p = sparsemax(torch.from_numpy(s), dim=-1).numpy()
    dense = np.zeros((N, C))
    np.put_along_axis(dense, ids, p, axis=1)
    np.testing.assert_allclose(listed.predict_scores(X), dense, atol=1e-5)
    q = sparsemax(torch.from_numpy(t * s), dim=-1).numpy()
    sure = (np.abs(q) > 1e-6) | (q == 0)  # entries whose support is not decided by rounding
    mask = np.zeros((N, C), dtype=bool)
    np.put_along_axis(mask, ids, q > 0, axis=1)
    sets = listed.predict_sets(X).toarray() > 0
    decided = np.zeros((N, C), dtype=bool)
    np.put_along_axis(decided, ids, sure, axis=1)
    np.testing.assert_array_equal(sets[decided], mask[decided])


def test_candidate_logits_add_the_offset_and_keep_padding_out():
    head = get_head("sigmoid")(4, 7)
    hidden = torch.randn(2, 4)
    ids = torch.tensor([[1, 3, 5], [0, 2, 0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    offset = torch.tensor([[0.5, -1.0, 2.0], [3.0, 0.0, 7.0]])
    plain = head.candidate_logits(hidden, Candidates(ids, mask))
    shifted = head.candidate_logits(hidden, Candidates(ids, mask, offset))
    torch.testing.assert_close(shifted[mask], plain[mask] + offset[mask])
    assert torch.isneginf(shifted[~mask]).all()


def _example_f1(Y: sp.csr_matrix, ids: np.ndarray, chosen: np.ndarray) -> float:
    sets = np.zeros(Y.shape, dtype=np.float32)
    np.put_along_axis(sets, ids, chosen.astype(np.float32), axis=1)
    return float(evaluate(Y, None, ks=(), label_sets=sp.csr_matrix(sets))["example-F1"])


def test_tune_chooses_the_best_pair_of_weight_and_scale_by_brute_force():
    plain, listed = _pair("sparsemax", None)
    X, Y = _data(3)
    grid = list(listed.head.tuning_candidates())
    scored = {}
    for w, t in itertools.product(PATH_WEIGHTS, grid):
        ids, s = _brute(plain, listed, X, w)
        scored[(w, t)] = _example_f1(Y, ids, sparsemax(torch.from_numpy(t * s), dim=-1).numpy() > 0)
    best = max(scored.values())
    first = next(pair for pair in itertools.product(PATH_WEIGHTS, grid) if scored[pair] >= best - 1e-12)
    assert len({round(v, 9) for v in scored.values()}) > 3  # the grid's pairs score differently
    tuned = listed.tune(X, Y, "example-F1")
    assert tuned["example-F1"] == pytest.approx(best, abs=1e-9)
    assert scored[(tuned["path_weight"], tuned["scale"])] == pytest.approx(best, abs=1e-9)
    assert (tuned["path_weight"], tuned["scale"]) == first  # ties to the smaller weight, then the first scale
    assert listed.path_weight_ == tuned["path_weight"] and listed.head.tuned_value == tuned["scale"]


def test_a_fixed_weight_is_the_only_one_tried_and_a_fixed_rule_value_is_kept():
    _, listed = _pair("sigmoid", 0.7)
    X, Y = _data(4)
    tuned = listed.tune(X, Y, "micro-F1")
    assert tuned["path_weight"] == listed.path_weight_ == 0.7
    _, fixed_rule = _pair("sigmoid", None)
    fixed_rule.head.params = type(fixed_rule.head.params).from_dict({**fixed_rule.head.params.to_dict(),
                                                                     "threshold": 0.4})  # fmt: skip
    fixed_rule.head.set_tuned_value(0.4)
    tuned = fixed_rule.tune(X, Y, "micro-F1")
    assert tuned["threshold"] == 0.4 and tuned["path_weight"] in PATH_WEIGHTS


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "1", True])
def test_a_bad_path_weight_is_refused_naming_the_argument(bad):
    with pytest.raises(ConfigurationError, match="path_weight"):
        _pair("sparsemax", bad)
    X, Y = _data(0)
    with pytest.raises((ConfigurationError, ValueError), match="shortlist_path_weight"):
        XCClassifier(head="sparsemax", shortlist="tree", shortlist_path_weight=bad, epochs=1, verbose=0).fit(X, Y)


def test_the_tuned_weight_survives_the_small_data_refit():
    """On small data the estimator refits on all rows after choosing the steps; the path weight tuned by the
    first run is kept (the model's tuned state), as the head's set rule is."""
    X, Y = _data(5)
    clf = XCClassifier(
        head="sparsemax", hidden_sizes=(8,), shortlist="tree", shortlist_size=M,
        tree_params={"max_leaf_size": 4, "branching": 2}, tune_metric="example-F1", random_state=0, verbose=0,
    ).fit(X, Y)  # fmt: skip
    assert "refit on all" in clf.fit_summary_["message"] and clf.tuned_["path_weight"] > 0, clf.tuned_
    assert clf.model_.path_weight_ == clf.tuned_["path_weight"] and clf.model_.path_weight is None
    assert clf.model_.head.tuned_value == clf.tuned_["scale"]
