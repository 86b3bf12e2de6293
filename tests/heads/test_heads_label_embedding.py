"""The label-embedding head (Chollet 2016): cosine loss against a brute-force formula, gradients, empty
rows, chunked exact top-k, decoding of noiseless targets, hnswlib top-k against exact, thresholds, the
estimator (PMI from the training part, save/load bit-exact) and bad arguments."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import make_multilabel_classification

from sparsexc.datasets.synthetic import synthetic
from sparsexc.embeddings import pmi_embeddings
from sparsexc.estimator import XCClassifier
from sparsexc.heads import LabelBatch, LabelEmbeddingHead, build_head, get_head
from sparsexc.heads import label_embedding as le

ROWS = [[0, 2], [1], [], [0, 1, 2, 4], [3]]
C, D = 5, 3


def _labels(rows, n_labels):
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.array([j for r in rows for j in sorted(r)], dtype=np.int64)
    return LabelBatch.from_csr(sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(rows), n_labels)))


def _unit_rows(n, d, seed):
    E = np.random.default_rng(seed).standard_normal((n, d))
    return E / np.linalg.norm(E, axis=1, keepdims=True)


def _head(in_dim=4, n_labels=C, dim=D, seed=0, **params):
    torch.manual_seed(seed)
    return LabelEmbeddingHead(
        in_dim, n_labels, {"embedding_dim": dim, **params}, embeddings=_unit_rows(n_labels, dim, seed)
    )


def _hidden(n, in_dim=4, seed=0, dtype=torch.float64):
    return torch.randn(n, in_dim, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# -- loss ----------------------------------------------------------------------------------------------------
def test_loss_matches_the_cosine_formula_and_skips_empty_rows():
    head = _head().double()
    h = _hidden(len(ROWS))
    out = (h @ head.output.weight.T + head.output.bias).detach().numpy()
    E = head.embeddings.numpy()
    per_row = []
    for i, r in enumerate(ROWS):
        if r:
            t = E[r].sum(0)
            per_row.append(1 - out[i] @ t / (np.linalg.norm(out[i]) * np.linalg.norm(t)))
    assert head.loss(h, _labels(ROWS, C)).item() == pytest.approx(np.mean(per_row), rel=1e-12)
    keep = [i for i, r in enumerate(ROWS) if r]
    assert head.loss(h, _labels(ROWS, C)).item() == pytest.approx(
        head.loss(h[keep], _labels([ROWS[i] for i in keep], C)).item(), rel=1e-12
    )


def test_loss_is_zero_when_the_output_points_at_the_target_and_two_when_opposite():
    head = _head(in_dim=D).double()
    with torch.no_grad():
        head.output.weight.copy_(torch.eye(D))
        head.output.bias.zero_()
    labels = _labels([[0, 2], [1]], C)
    t = head.targets(labels)
    assert head.loss(3.0 * t, labels).item() == pytest.approx(0.0, abs=1e-12)
    assert head.loss(-t, labels).item() == pytest.approx(2.0, abs=1e-12)


def test_batch_of_empty_rows_has_zero_loss_and_zero_gradient():
    head = _head()
    h = _hidden(3, dtype=torch.float32).requires_grad_()
    loss = head.loss(h, _labels([[], [], []], C))
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(h.grad) == 0


@pytest.mark.parametrize("trainable", [False, True])
def test_loss_gradient_against_finite_differences(trainable):
    head = _head(trainable=trainable).double()
    labels = _labels(ROWS, C)
    h = _hidden(len(ROWS), seed=3).requires_grad_()
    w = head.output.weight.detach().clone().requires_grad_()
    b = head.output.bias.detach().clone().requires_grad_()
    E = head.embeddings.detach().clone().requires_grad_()
    del head.output.weight, head.output.bias, head.embeddings  # gradcheck passes plain tensors in their place

    def f(h, w, b, E):
        head.output.weight, head.output.bias, head.embeddings = w, b, E
        return head.loss(h, labels)

    inputs = (h, w, b, E) if trainable else (h, w, b, E.detach())
    assert torch.autograd.gradcheck(f, inputs)
    # and one explicit central difference on a weight entry
    eps = 1e-6
    loss = f(h, w, b, E)
    (grad,) = torch.autograd.grad(loss, w)
    w_plus, w_minus = w.detach().clone(), w.detach().clone()
    w_plus[1, 2] += eps
    w_minus[1, 2] -= eps
    numeric = (f(h, w_plus, b, E).item() - f(h, w_minus, b, E).item()) / (2 * eps)
    assert grad[1, 2].item() == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def test_fixed_embeddings_get_no_gradient_and_trainable_ones_do():
    fixed, trainable = _head(), _head(trainable=True)
    assert "embeddings" in dict(fixed.named_buffers()) and "embeddings" not in dict(fixed.named_parameters())
    assert "embeddings" in dict(trainable.named_parameters())
    trainable.loss(_hidden(len(ROWS), dtype=torch.float32), _labels(ROWS, C)).backward()
    assert torch.count_nonzero(trainable.embeddings.grad) > 0


# -- scores and top-k ----------------------------------------------------------------------------------------
def test_scores_are_cosines_with_every_label():
    head = _head()
    h = _hidden(6, dtype=torch.float32)
    out = head.output(h).detach().numpy()
    expected = (out / np.linalg.norm(out, axis=1, keepdims=True)) @ head.embeddings.numpy().T
    np.testing.assert_allclose(head.scores(h).detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_chunked_exact_topk_matches_a_stable_argsort_with_ties(monkeypatch):
    n_labels = 40
    # one-hot embeddings, each repeated: tied scores that are exact (a cosine is then one output coordinate)
    E = np.eye(6)[np.arange(n_labels) % 6]
    head = LabelEmbeddingHead(5, n_labels, {"embedding_dim": 6}, embeddings=E)
    h = _hidden(7, in_dim=5, dtype=torch.float32)
    S = head.scores(h).detach().numpy()
    for entries in (7 * 3, 7 * 11, 2**22):  # chunks of 3, 11 and all labels
        monkeypatch.setattr(le, "TOPK_CHUNK_ENTRIES", entries)
        for k in (1, 5, 12, 40, 60):
            idx, val = head.topk_exact(h, k)
            ref = np.argsort(-S, axis=1, kind="stable")[:, : min(k, n_labels)]
            np.testing.assert_array_equal(idx.numpy(), ref)
            np.testing.assert_allclose(val.detach().numpy(), np.take_along_axis(S, ref, 1), rtol=1e-6)


def test_noiseless_targets_decode_to_their_labels():
    # PMI embeddings of a toy label set (12 labels drawn independently, up to 7 per row); hidden = the exact
    # target of each row through an identity output layer: its |y| nearest labels are its labels
    Y = np.random.default_rng(0).random((1000, 12)) < 0.15
    rows = [np.flatnonzero(r).tolist() for r in Y if r.any()]
    labels = _labels(rows, 12)
    E = pmi_embeddings(labels.to_csr(), 12, seed=0)
    head = LabelEmbeddingHead(12, 12, {"embedding_dim": 12}, embeddings=E)
    with torch.no_grad():
        head.output.weight.copy_(torch.eye(12))
        head.output.bias.zero_()
    idx, _ = head.topk(head.targets(labels), 12)
    for i, r in enumerate(rows):
        assert sorted(idx[i, : len(r)].tolist()) == r, (i, r)


@pytest.fixture
def hnswlib():
    return pytest.importorskip("hnswlib")


def test_hnsw_topk_agrees_with_exact(hnswlib):
    n_labels, dim, k = 3000, 16, 10
    head = LabelEmbeddingHead(
        8, n_labels, {"embedding_dim": dim, "ann": "hnsw"}, embeddings=_unit_rows(n_labels, dim, 2)
    )
    h = _hidden(200, in_dim=8, dtype=torch.float32)
    approx_ids, approx_val = head.topk(h, k)
    exact_ids, _exact_val = head.topk_exact(h, k)
    recall = le.topk_recall(approx_ids.numpy(), exact_ids.numpy())
    assert recall >= 0.95
    # the returned labels carry their exact cosines, best first
    S = head.scores(h).detach()
    torch.testing.assert_close(approx_val, torch.gather(S, 1, approx_ids))
    assert bool((approx_val[:, :-1] >= approx_val[:, 1:]).all())
    # deterministic, and rebuilt when the embeddings change
    again = head.topk(h, k)[0]
    assert torch.equal(again, approx_ids)
    with torch.no_grad():
        head.embeddings.copy_(torch.flip(head.embeddings, dims=[0]))
    flipped = head.topk(h, k)[0]
    assert le.topk_recall(flipped.numpy(), head.topk_exact(h, k)[0].numpy()) >= 0.95


def test_topk_recall_counts_the_overlap():
    assert le.topk_recall(np.array([[1, 2], [3, 4]]), np.array([[2, 1], [3, 5]])) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="same shape"):
        le.topk_recall(np.zeros((2, 3)), np.zeros((2, 2)))


def test_missing_hnswlib_is_refused_with_the_settings(monkeypatch):
    # issue 17: ann='hnsw' without hnswlib failed at the first top-k, after training; now the params refuse it
    from sparsexc._optional import MissingDependencyError
    from sparsexc.estimator import XCClassifier

    monkeypatch.setitem(sys.modules, "hnswlib", None)  # import hnswlib -> ImportError
    message = (
        r"ann='hnsw' needs the package hnswlib, which is not installed; install it with pip install \"sparsexc\[ann\]\""
    )
    with pytest.raises(MissingDependencyError, match=message):
        le.LabelEmbeddingHeadParams.from_dict({"ann": "hnsw"})
    with pytest.raises(MissingDependencyError, match=message):
        LabelEmbeddingHead(4, 6, {"embedding_dim": 3, "ann": "hnsw"})
    clf = XCClassifier(head="label-embedding", head_params={"ann": "hnsw"})
    with pytest.raises(MissingDependencyError, match=message):
        clf.fit(None, None)  # the settings are checked before X and Y are looked at
    le.LabelEmbeddingHeadParams.from_dict({"ann": "exact"})  # exact top-k needs nothing more


def test_hnswlib_import_names_the_extra(hnswlib, monkeypatch):
    # a model built while hnswlib was there, queried after it is gone: the same one-line message
    head = LabelEmbeddingHead(4, 6, {"embedding_dim": 3, "ann": "hnsw"})
    monkeypatch.setitem(sys.modules, "hnswlib", None)
    with pytest.raises(ImportError, match=r"pip install \"sparsexc\[ann\]\""):
        head.topk(_hidden(2, dtype=torch.float32), 2)


# -- sets and tuning -----------------------------------------------------------------------------------------
def test_predict_sets_and_tuning_use_the_cosine_threshold():
    head = _head(threshold=0.3)
    h = _hidden(30, dtype=torch.float32)
    S = head.scores(h).detach()
    np.testing.assert_array_equal(head.predict_sets(h).to_csr().toarray(), (S > 0.3).numpy())
    assert head.tune(h, LabelBatch.from_mask(S > 0.5)) == {"threshold": 0.3}  # a user-fixed threshold is kept
    free = _head()
    target = LabelBatch.from_mask(le.COSINE_GRID[10] < S)  # reachable exactly by a grid value
    result = free.tune(h, target)
    assert result["micro-F1"] == 1.0 and free.threshold_ == result["threshold"]
    np.testing.assert_array_equal(free.predict_sets(h).to_csr().toarray(), target.to_csr().toarray())
    assert build_head(free.config()).threshold_ == free.threshold_


# -- prepare, estimator, persistence -------------------------------------------------------------------------
def test_prepare_computes_pmi_embeddings_unless_given():
    Y = sp.csr_matrix((np.random.default_rng(3).random((80, 9)) < 0.3).astype(np.float32))
    params = {"embedding_dim": 4, "alpha": 0.75, "positive": True, "embedding_seed": 5}
    head = LabelEmbeddingHead(3, 9, params)
    head.prepare(None, Y)
    expected = pmi_embeddings(Y, 4, alpha=0.75, positive=True, seed=5)
    np.testing.assert_array_equal(head.embeddings.numpy(), expected)
    given = _unit_rows(9, 4, 0)
    fixed = LabelEmbeddingHead(3, 9, params, embeddings=given)
    fixed.prepare(None, Y)
    np.testing.assert_allclose(fixed.embeddings.numpy(), given, rtol=1e-6)


@pytest.fixture(scope="module")
def data():
    X, Y = make_multilabel_classification(300, 40, n_classes=8, sparse=True, return_indicator="sparse", random_state=0)
    return sp.csr_matrix(X, dtype=np.float32), sp.csr_matrix(Y)


@pytest.mark.parametrize("hidden_sizes, trainable", [((16,), False), ((), True)])
def test_estimator_fits_on_the_training_part_and_save_load_is_bit_exact(
    data, tmp_path, monkeypatch, hidden_sizes, trainable
):
    X, Y = data
    seen = []
    original = LabelEmbeddingHead.prepare
    monkeypatch.setattr(
        LabelEmbeddingHead, "prepare", lambda self, X_, Y_: (seen.append(Y_.shape), original(self, X_, Y_))
    )
    clf = XCClassifier(
        head="label-embedding",
        head_params={"embedding_dim": 6, "trainable": trainable},
        hidden_sizes=hidden_sizes,
        epochs=3,
        batch_size=32,
        validation_fraction=0.2,
        device="cpu",
    )
    clf.fit(X[:250], Y[:250])
    assert seen == [(200, 8)]  # prepare() saw the 80% training part, not the validation rows
    E = clf.model_.head.embeddings.detach()
    np.testing.assert_allclose(torch.linalg.vector_norm(E, dim=1).numpy(), 1.0, atol=1e-5 if not trainable else 1.0)
    clf.save(tmp_path / "m")
    loaded = XCClassifier.load(tmp_path / "m")
    assert torch.equal(loaded.model_.head.embeddings, clf.model_.head.embeddings)
    X_new = X[250:]
    for a, b in zip(loaded.predict_topk(X_new, 4), clf.predict_topk(X_new, 4)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.decision_function(X_new), clf.decision_function(X_new))
    assert (loaded.predict(X_new) != clf.predict(X_new)).nnz == 0
    assert loaded.model_.head.threshold_ == clf.model_.head.threshold_
    with pytest.raises(ValueError, match="probabilities"):
        clf.predict_proba(X_new)


@pytest.mark.parametrize("hidden_sizes", [(), (32,)])
def test_estimator_learns_a_synthetic_task(hidden_sizes):
    data = synthetic(800, 300, 20, labels_per_sample=2, noise=0.1, seed=0)
    clf = XCClassifier(
        head="label-embedding",
        head_params={"embedding_dim": 8},
        hidden_sizes=hidden_sizes,
        epochs=5,
        batch_size=32,
        device="cpu",
    ).fit(data.train.X, data.train.Y)
    most_frequent = np.argmax(np.asarray(data.train.Y.sum(0)).ravel())
    chance = data.test.Y[:, most_frequent].mean()  # P@1 of always answering the most frequent label
    assert chance < 0.55 and clf.score(data.test.X, data.test.Y) > 0.85


def test_registry_and_estimator_name():
    assert get_head("label-embedding") is LabelEmbeddingHead


@pytest.mark.parametrize("params, match", [
    ({"embedding_dim": 0}, "embedding_dim"), ({"ann": "faiss"}, "ann.*'exact'.*'hnsw'"),
    ({"threshold": 1.5}, "threshold"), ({"diagonal": "keep"}, "diagonal"), ({"alpha": 0.0}, "alpha"),
    ({"hnsw_ef": 0}, "hnsw_ef"), ({"embedding_seed": -1}, "embedding_seed"), ({"embedding_dims": 4}, "embedding_dim"),
    ({"trainable": "yes"}, "trainable"),
])  # fmt: skip
def test_bad_params_raise_value_errors(params, match):
    with pytest.raises(ValueError, match=match):
        LabelEmbeddingHead(4, 5, params)


def test_bad_embeddings_raise_value_errors():
    with pytest.raises(ValueError, match=r"shape.*\(5, 3\)"):
        LabelEmbeddingHead(4, 5, {"embedding_dim": 3}, embeddings=np.ones((5, 4)))
    with pytest.raises(ValueError, match="finite"):
        LabelEmbeddingHead(4, 2, {"embedding_dim": 2}, embeddings=np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"head_params|embedding_dim"):
        XCClassifier(head="label-embedding", head_params={"embedding_dim": -3})._settings()
