"""``ShortlistModel`` and ``shortlist="tree"``: with every label shortlisted it is the plain model; the estimator
fits, predicts, saves and loads it bit-exactly (damaged folders refused); ``sparsexc train --shortlist tree``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from sparsexc.cli import main
from sparsexc.errors import ConfigurationError, ModelFormatError
from sparsexc.estimator import XCClassifier
from sparsexc.heads import get_head
from sparsexc.models import FeatureBatch, LabelBatch, ShortlistModel, SparseEncoder, XCModel, model_from_config
from sparsexc.tree import LabelTreeModel, LabelTreeParams

N, D, C = 240, 40, 24


def _data(seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    X = sp.random(N, D, density=0.25, random_state=seed, format="csr", dtype=np.float32)
    S = X @ rng.normal(size=(D, C))
    Y = sp.csr_matrix((np.quantile(S, 0.9, axis=1, keepdims=True) < S).astype(np.float32))
    return X, Y


def _pair(head: str, size: int, hidden=(8,)) -> tuple[XCModel, ShortlistModel]:
    """A plain model and a shortlist model with the same weights (the matcher fitted on the data)."""
    X, Y = _data()
    torch.manual_seed(0)
    encoder = SparseEncoder(D, {"hidden_sizes": hidden})
    plain = XCModel(encoder, get_head(head)(encoder.out_dim, C))
    matcher = LabelTreeModel(LabelTreeParams(branching=2, max_leaf_size=4)).fit(X, Y)
    listed = ShortlistModel.from_config({**plain.config(), "shortlist": _entry(matcher, size)})
    listed.load_state_dict(plain.state_dict(), strict=False)
    listed.matcher = matcher
    return plain, listed


def _entry(matcher: LabelTreeModel, size: int) -> dict:
    return {"size": size, "beam": 4, "tree": {"params": matcher.params.to_dict()}}


@pytest.mark.parametrize("head", ["sigmoid", "softmax", "sparsemax"])
def test_a_shortlist_of_every_label_predicts_as_the_plain_model(head):
    plain, listed = _pair(head, size=C)
    X, Y = _data(1)
    for a, b in zip(plain.predict_topk(X, 5), listed.predict_topk(X, 5), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(plain.predict_topk(X, 5)[0], listed.predict_topk(X, 5)[0])
    np.testing.assert_allclose(plain.predict_scores(X), listed.predict_scores(X), rtol=1e-6, atol=1e-7)
    assert (plain.predict_sets(X) != listed.predict_sets(X)).nnz == 0
    features, labels = FeatureBatch.from_csr(X[:50]), LabelBatch.from_csr(Y[:50])
    torch.testing.assert_close(listed.loss(features, labels), plain.loss(features, labels), rtol=1e-5, atol=1e-6)
    tuned_plain = plain.tune(X, Y, "example-F1")
    tuned_listed = listed.tune(X, Y, "example-F1")
    # a config without path_weight (saved before it existed) predicts with the head alone: w = 0, not tuned
    assert tuned_listed == pytest.approx({**tuned_plain, "path_weight": 0.0})


def test_the_loss_covers_the_positives_and_the_shortlist_only():
    """Sigmoid loss over candidates = BCE summed over (positives ∪ the tree's top-m), by brute force."""
    plain, listed = _pair("sigmoid", size=5)
    X, Y = _data(2)
    rows = slice(0, 30)
    features, labels = FeatureBatch.from_csr(X[rows]), LabelBatch.from_csr(Y[rows])
    top, _ = listed.matcher.predict_topk(X[rows], 5, beam=4)
    with torch.no_grad():
        z = plain.head.output(plain.hidden(features)).double()
        Yd = Y[rows].toarray() > 0
        total = 0.0
        for i in range(30):
            cand = sorted(set(top[i].tolist()) | set(np.flatnonzero(Yd[i]).tolist()))
            zi = z[i, cand]
            total += float(torch.nn.functional.softplus(zi).sum() - zi[torch.from_numpy(Yd[i, cand])].sum())
    assert float(listed.loss(features, labels).detach()) == pytest.approx(total / 30, rel=1e-5)


def test_topk_beyond_the_shortlist_is_filled_with_unlisted_labels_at_zero():
    _, listed = _pair("sparsemax", size=3)
    X, _ = _data(3)
    idx, scores = listed.predict_topk(X[:10], 6)
    short = listed.shortlist(X[:10])
    for i in range(10):
        assert set(idx[i, :3].tolist()) == set(short[i].tolist())
        assert len(set(idx[i].tolist())) == 6 and not set(idx[i, 3:].tolist()) & set(short[i].tolist())
        assert (scores[i, 3:] == 0).all()
    dense = listed.predict_scores(X[:10])
    assert ((dense > 0).sum(axis=1) <= 3).all()  # only shortlisted labels are scored


def test_a_head_that_cannot_is_refused_by_the_estimator():
    X, Y = _data()
    with pytest.raises(ConfigurationError, match="'sigmoid', 'softmax', 'sparsemax'"):
        XCClassifier(head="negative-sampling", shortlist="tree", verbose=0).fit(X, Y)
    with pytest.raises(ConfigurationError, match="shortlist"):
        XCClassifier(shortlist="trees", verbose=0).fit(X, Y)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    X, Y = _data()
    clf = XCClassifier(
        head="sparsemax",
        hidden_sizes=(16,),
        epochs=3,
        shortlist="tree",
        shortlist_size=6,
        tree_params={"max_leaf_size": 4, "branching": 4},
        tune_metric="example-F1",
        random_state=1,
        verbose=0,
    ).fit(X, Y)
    folder = tmp_path_factory.mktemp("shortlist") / "model"
    clf.save(folder)
    return clf, folder


def test_the_estimator_fits_a_shortlist_model_and_loads_it_bit_exactly(fitted):
    clf, folder = fitted
    assert isinstance(clf.model_, ShortlistModel) and set(clf.tuned_) == {"scale", "path_weight", "example-F1"}
    loaded = XCClassifier.load(folder)
    assert isinstance(loaded.model_, ShortlistModel)
    assert loaded.model_.path_weight_ == clf.model_.path_weight_ == clf.tuned_["path_weight"]
    assert loaded.model_.path_weight is None and loaded.shortlist_path_weight is None
    X, _ = _data(4)
    for beam in (1, 10):
        a, b = clf.predict_topk(X, 5, beam=beam), loaded.predict_topk(X, 5, beam=beam)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert (clf.predict(X) != loaded.predict(X)).nnz == 0
    assert np.array_equal(clf.decision_function(X), loaded.decision_function(X))
    for key, value in clf.model_.state_dict().items():
        assert torch.equal(value, loaded.model_.state_dict()[key]), key
    again = model_from_config(clf.model_.config())
    again.load_state_dict(clf.model_.state_dict())
    # both bare models (the estimator's own predict_topk also applies its fitted feature preprocessing)
    assert np.array_equal(again.predict_topk(X, 3)[0], clf.model_.predict_topk(X, 3)[0])


def _copy(folder: Path, to: Path) -> Path:
    to.mkdir()
    for f in folder.iterdir():
        (to / f.name).write_bytes(f.read_bytes())
    return to


def _reseal(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["weights_sha256"] = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    (folder / "config.json").write_text(json.dumps(config))


def test_a_damaged_shortlist_folder_is_refused(fitted, tmp_path):
    _, folder = fitted
    bad = _copy(folder, tmp_path / "no-matcher")
    tensors = dict(load_safetensors((bad / "model.safetensors").read_bytes()))
    tensors = {k: v for k, v in tensors.items() if not k.startswith("shortlist.weights.0.0")}
    (bad / "model.safetensors").write_bytes(save_safetensors(tensors))
    _reseal(bad)
    with pytest.raises(ModelFormatError):
        XCClassifier.load(bad)
    bad = _copy(folder, tmp_path / "odd-array")
    tensors = dict(load_safetensors((bad / "model.safetensors").read_bytes()))
    tensors["shortlist.secret"] = torch.zeros(3, dtype=torch.int64)
    (bad / "model.safetensors").write_bytes(save_safetensors(tensors))
    _reseal(bad)
    with pytest.raises(ModelFormatError, match="secret"):
        XCClassifier.load(bad)
    for field, value, match in (
        ("size", 7, "shortlist_size"),
        ("negatives", 7, "shortlist_negatives"),
        ("tree", {"params": {}, "n_features": D, "n_labels": C + 1, "depths": [2]}, "n_labels"),
        ("extra", 1, "unknown key"),
        ("path_weight", -1.0, "finite number >= 0"),
        ("path_weight", "0.5", "finite number >= 0"),
        ("path_weight", 0.5, "shortlist_path_weight"),  # the params say None (tuned)
        ("tuned", {"path_weight": -0.1}, "must be >= 0"),
        ("tuned", {"path_weight": "x"}, "finite number"),
        ("tuned", {"scale": 1.0}, "unknown key"),
    ):
        bad = _copy(folder, tmp_path / f"config-{field}-{len(list(tmp_path.iterdir()))}")
        config = json.loads((bad / "config.json").read_text())
        config["model"]["shortlist"][field] = value
        (bad / "config.json").write_text(json.dumps(config))
        with pytest.raises(ModelFormatError, match=match):
            XCClassifier.load(bad)
    bad = _copy(folder, tmp_path / "params")
    config = json.loads((bad / "config.json").read_text())
    config["params"]["shortlist"] = "none"
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="shortlist"):
        XCClassifier.load(bad)


def test_a_folder_saved_before_the_path_weight_loads_with_the_head_alone(fitted, tmp_path):
    """A folder without ``params.shortlist_path_weight`` and ``model.shortlist.path_weight``/``tuned`` (saved before
    the setting existed) predicted with the head's logits alone: it loads with w = 0 and predicts so."""
    clf, folder = fitted
    old = _copy(folder, tmp_path / "before-path-weight")
    config = json.loads((old / "config.json").read_text())
    del config["params"]["shortlist_path_weight"]
    del config["model"]["shortlist"]["path_weight"], config["model"]["shortlist"]["tuned"]
    (old / "config.json").write_text(json.dumps(config))
    loaded = XCClassifier.load(old)
    assert loaded.shortlist_path_weight == 0.0 and loaded.model_.path_weight == loaded.model_.path_weight_ == 0.0
    X, _ = _data(5)
    saved = clf.model_.path_weight_
    try:
        clf.model_.path_weight_ = 0.0  # the fitted model read with the head alone
        expected = clf.predict_topk(X, 5)
    finally:
        clf.model_.path_weight_ = saved
    got = loaded.predict_topk(X, 5)
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])


def test_the_cli_trains_with_a_shortlist(tmp_path):
    from sparsexc.io import write_xc

    X, Y = _data()
    write_xc(tmp_path / "train.txt", X[:200], Y[:200])
    write_xc(tmp_path / "test.txt", X[200:], Y[200:])
    out = tmp_path / "run"
    args = [
        "train",
        "--train",
        str(tmp_path / "train.txt"),
        "--test",
        str(tmp_path / "test.txt"),
        "--shortlist",
        "tree",
        "--shortlist-size",
        "5",
        "--shortlist-path-weight",
        "0.3",
    ]
    args += ["--head", "sigmoid", "--epochs", "1", "--tree-param", "max_leaf_size=4", "--out", str(out), "--quiet"]
    assert main(args) == 0
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["params"]["shortlist"] == "tree" and config["model"]["shortlist"]["size"] == 5
    assert config["params"]["shortlist_path_weight"] == config["model"]["shortlist"]["path_weight"] == 0.3
    loaded = XCClassifier.load(out / "model").model_
    assert isinstance(loaded, ShortlistModel) and loaded.path_weight_ == 0.3


def test_the_training_rows_shortlists_are_searched_once_and_looked_up():
    _, listed = _pair("softmax", size=5)
    X, Y = _data()
    listed.prepare(X, Y)  # the matcher is fitted: only the training rows' shortlists are searched
    rows = np.array([7, 3, 150, 42])
    looked_up = listed.loss(FeatureBatch.from_csr(X[rows], rows=rows), LabelBatch.from_csr(Y[rows]))
    searched = listed.loss(FeatureBatch.from_csr(X[rows]), LabelBatch.from_csr(Y[rows]))
    torch.testing.assert_close(looked_up, searched)
    np.testing.assert_array_equal(listed._train_shortlist[1][rows], listed.shortlist(X[rows]))


def _grad_rows(model: ShortlistModel, X: sp.csr_matrix, Y: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Which output rows (labels) get a gradient from one training batch of ``rows``."""
    model.zero_grad()
    torch.manual_seed(3)
    model.loss(FeatureBatch.from_csr(X[rows], rows=rows), LabelBatch.from_csr(Y[rows])).backward()
    return model.head.output.weight.grad.abs().sum(dim=1).numpy() > 0


def test_uniform_negatives_reach_labels_the_tree_never_shortlists():
    """Issue 19: with hard negatives only, a label outside every row's shortlist and positives gets no gradient,
    so its score drifts; by default each row's candidates add uniform draws, and such labels meet negatives."""
    X, Y = _data()
    torch.manual_seed(0)
    encoder = SparseEncoder(D, {"hidden_sizes": (8,)})
    matcher = LabelTreeModel(LabelTreeParams(branching=2, max_leaf_size=4)).fit(X, Y)
    rows = np.arange(40)
    default = ShortlistModel(encoder, get_head("sigmoid")(encoder.out_dim, C), matcher, size=2, beam=4)
    assert default.negatives == XCClassifier().shortlist_negatives > 0
    default.prepare(X, Y)
    listed = np.zeros(C, dtype=bool)
    listed[default._train_shortlist[1][rows].ravel()] = True
    listed |= np.asarray(Y[rows].sum(axis=0)).ravel() > 0
    assert not listed.all()  # the test needs labels that neither the shortlists nor the positives hold
    hard_only = ShortlistModel.from_config({**default.config(), "shortlist": {**default.config()["shortlist"],
                                                                              "negatives": 0}})  # fmt: skip
    hard_only.load_state_dict(default.state_dict())
    hard_only.prepare(X, Y)
    np.testing.assert_array_equal(_grad_rows(hard_only, X, Y, rows), listed)
    reached = _grad_rows(default, X, Y, rows)
    assert reached[listed].all() and reached[~listed].all()  # 100 draws per row over C = 24 labels: every one
    # the draws come from torch's generator: the same seed, the same loss
    features, labels = FeatureBatch.from_csr(X[rows], rows=rows), LabelBatch.from_csr(Y[rows])
    losses = []
    for _ in range(2):
        torch.manual_seed(5)
        losses.append(default.loss(features, labels).detach())
    assert torch.equal(losses[0], losses[1])


def test_an_estimator_folder_saved_before_the_negatives_loads_as_trained_with_none(fitted, tmp_path):
    clf, folder = fitted
    old = _copy(folder, tmp_path / "before-negatives")
    config = json.loads((old / "config.json").read_text())
    del config["params"]["shortlist_negatives"], config["model"]["shortlist"]["negatives"]
    (old / "config.json").write_text(json.dumps(config))
    _reseal(old)
    loaded = XCClassifier.load(old)
    # the estimator's setting says what the model trained with, not today's default
    assert loaded.shortlist_negatives == loaded.model_.negatives == 0
    X, _ = _data(4)
    a, b = clf.predict_topk(X, 5), loaded.predict_topk(X, 5)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_a_config_saved_before_the_negatives_trained_with_none():
    _, listed = _pair("sparsemax", size=3)
    assert listed.negatives == 0  # _entry has no "negatives", as a file from before they existed
    assert listed.config()["shortlist"]["negatives"] == 0
    with pytest.raises(ConfigurationError, match="shortlist_negatives"):
        ShortlistModel(listed.encoder, listed.head, listed.matcher, negatives=-1)
