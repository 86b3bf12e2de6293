"""The search layout holds a level's weights exactly, so a model that predicts keeps one copy of them.

:meth:`LevelIndex.weights` must give back the CSR matrix it was built from bit for bit (values, column ids, row
pointers and their dtypes), whatever the chunking, the bias entries (stored or not, explicit zeros) and the width
of the child ranks; a :class:`LabelTreeModel` drops a member's CSR once it is laid out and must then read, save
and predict exactly as before.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from sparsexc._memory import release_free_memory
from sparsexc.errors import ConfigurationError
from sparsexc.tree import LabelTreeModel, LabelTreeParams
from sparsexc.tree.search import LevelIndex, TreeSearcher
from sparsexc.tree.structure import LabelTree


def _level(rng: np.random.Generator, n_parents: int, max_arity: int, d: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """Offsets of ``n_parents`` parents (one of them with ``max_arity`` children) and a random float32 W with
    explicit zeros, rows without a bias entry, rows with a zero bias entry and empty rows."""
    arity = rng.integers(1, max_arity + 1, size=n_parents)
    arity[0] = max_arity
    offsets = np.concatenate([[0], np.cumsum(arity)]).astype(np.int64)
    n = int(offsets[-1])
    dense = rng.normal(size=(n, d + 1)).astype(np.float32) * (rng.random((n, d + 1)) < 0.3)
    dense[rng.random(n) < 0.3, d] = 0.0  # no bias entry
    dense[rng.random(n) < 0.1] = 0.0  # empty rows
    W = sp.csr_matrix(dense)
    W.data[::5] = 0.0  # explicit zeros: stored entries the layout must keep
    bias_zero = np.flatnonzero(W.indices == d)[::3]
    W.data[bias_zero] = 0.0  # explicit zeros in the bias column too
    return offsets, W


def _assert_same_csr(got: sp.csr_matrix, want: sp.csr_matrix) -> None:
    assert got.shape == want.shape
    for a, b in ((got.indptr, want.indptr), (got.indices, want.indices)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert got.data.dtype == want.data.dtype == np.float32
    assert np.array_equal(got.data.view(np.uint32), want.data.view(np.uint32))  # bits, zeros' signs included


@pytest.mark.parametrize("compiled", [False, True])  # scipy's CSC form keyed by numpy, or the counting-sort kernels
@pytest.mark.parametrize("back", [False, True])  # weights() by scipy, or by its counting-sort kernel
@pytest.mark.parametrize("chunk", [None, 7])
@pytest.mark.parametrize(("max_arity", "rank_dtype"), [(5, np.uint8), (256, np.uint8), (300, np.uint16)])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_layout_gives_its_weights_back_bit_for_bit(monkeypatch, chunk, max_arity, rank_dtype, seed, compiled, back):
    import sparsexc.tree.search as search

    if chunk is not None:
        monkeypatch.setattr(search, "_CHUNK", chunk)  # many chunks of whole features
    rng = np.random.default_rng(seed)
    offsets, W = _level(rng, 6, max_arity, 13)
    level = LevelIndex.build(W, offsets, bias=0.3, compiled=compiled)
    assert level.block_ranks.dtype == rank_dtype and level.key_parents.dtype == np.uint8
    assert level.feature_ptr.dtype == level.block_indptr.dtype == np.int32
    assert level.n_weights == W.nnz
    _assert_same_csr(level.weights(compiled=back), W)
    W64 = W.copy()
    W64.indices, W64.indptr = W64.indices.astype(np.int64), W64.indptr.astype(np.int64)
    again = LevelIndex.build(W64, offsets, compiled=compiled).weights(compiled=back)
    _assert_same_csr(again, W64)  # index dtypes kept too


def _layout_arrays(level: LevelIndex) -> dict[str, object]:
    names = ("feature_ptr", "key_parents", "block_indptr", "block_ranks", "block_data", "bias", "offsets")
    names += ("bias_weights", "bias_stored")
    arrays = {name: getattr(level, name) for name in names}
    return {
        **{name: None if a is None else (a.dtype, a.tobytes()) for name, a in arrays.items()},
        "max_arity": level.max_arity,
        "n_features": level.n_features,
        "csr_dtypes": level.csr_dtypes,
    }


@pytest.mark.parametrize(
    "how", ["float32", "float64", "unsorted", "empty parent", "wide", "sparse keys", "many parents"]
)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_jobs", [1, 3])  # the kernels on ranges of the features, one thread each
def test_the_compiled_layout_is_numpy_s_bit_for_bit(monkeypatch, how, seed, n_jobs):
    import sparsexc.tree.search as search

    monkeypatch.setattr(search, "_LAYOUT_PER_THREAD", 1)  # threads even for these small levels
    rng = np.random.default_rng(seed)
    n_parents = 300 if how == "many parents" else 7  # uint16 parent ids
    offsets, W = _level(rng, n_parents, 300 if how == "wide" else 6, 400 if how == "sparse keys" else 11)
    if how == "float64":
        W = sp.csr_matrix(W, dtype=np.float64)
        W.data *= 1 + 1e-9  # values float32 rounds
    elif how == "unsorted":
        W = W[:, rng.permutation(W.shape[1])][:, np.argsort(rng.permutation(W.shape[1]))]
        W.has_sorted_indices = False
    elif how == "empty parent":
        offsets = np.insert(offsets, 3, offsets[2])  # parent 2 has no child
    elif how == "sparse keys":  # a few features per parent, most features unused
        C = W.tocoo()
        keep = rng.random(C.nnz) < 0.05
        W = sp.csr_matrix((C.data[keep], (C.row[keep], C.col[keep])), shape=W.shape, dtype=np.float32)
    want = LevelIndex.build(W, offsets, bias=0.7, compiled=False)
    got = LevelIndex.build(W, offsets, bias=0.7, compiled=True, n_jobs=n_jobs)
    assert _layout_arrays(got) == _layout_arrays(want)
    assert got.key_parents.dtype == (np.uint16 if how == "many parents" else np.uint8)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_level_without_features_keeps_its_bias(monkeypatch, compiled, n_jobs):
    import sparsexc.tree.search as search

    monkeypatch.setattr(search, "_LAYOUT_PER_THREAD", 1)
    offsets = np.array([0, 2, 3], dtype=np.int64)
    W = sp.csr_matrix(np.array([[0.5], [0.0], [-2.0]], dtype=np.float32))  # d = 0: the bias column alone
    level = LevelIndex.build(W, offsets, bias=2.0, compiled=compiled, n_jobs=n_jobs)
    np.testing.assert_array_equal(level.bias, [1.0, 0.0, -4.0])
    assert level.feature_ptr.tolist() == [0] and level.block_indptr.tolist() == [0]
    _assert_same_csr(level.weights(compiled=compiled), W)
    X = sp.csr_matrix((4, 0), dtype=np.float32)
    scores = level.children_scores(X, np.array([0, 3]), np.array([0, 1]), compiled=compiled)
    np.testing.assert_array_equal(scores, np.array([[1.0, 0.0], [-4.0, -np.inf]], dtype=np.float32))


def test_a_large_level_is_laid_out_and_read_back_by_the_kernels_whatever_the_search_uses(monkeypatch):
    import sparsexc.tree.search as search

    rng = np.random.default_rng(5)
    offsets, W = _level(rng, 5, 6, 12)

    def no_numpy(*args, **kwargs):
        raise AssertionError("the numpy way was taken")

    monkeypatch.setattr(search, "_feature_major", no_numpy)
    monkeypatch.setattr(search.sp.csr_matrix, "tocsc", no_numpy)
    monkeypatch.setattr(search, "_KERNEL_MIN_WEIGHTS", W.nnz)  # this level is "large"
    level = LevelIndex.build(W, offsets, compiled=False)
    _assert_same_csr(level.weights(compiled=False), W)
    monkeypatch.setattr(search, "_KERNEL_MIN_WEIGHTS", W.nnz + 1)  # small: numpy's way, as asked
    with pytest.raises(AssertionError, match="numpy way"):
        LevelIndex.build(W, offsets, compiled=False)


def test_narrow_ranks_score_as_the_sparse_product():
    rng = np.random.default_rng(3)
    offsets, W = _level(rng, 3, 300, 17)
    level = LevelIndex.build(W, offsets, bias=0.5)
    assert level.block_ranks.dtype == np.uint16
    X = sp.random(20, 17, density=0.5, format="csr", dtype=np.float32, random_state=3)
    rows, parents = rng.integers(0, 20, size=50), rng.integers(0, 3, size=50)
    np.testing.assert_array_equal(
        level.children_scores(X, rows, parents, compiled=True), level.children_scores(X, rows, parents, compiled=False)
    )


@pytest.mark.parametrize("how", ["float64", "unsorted"])
def test_a_layout_of_weights_it_does_not_hold_exactly_refuses_to_give_them_back(how):
    rng = np.random.default_rng(4)
    offsets, W = _level(rng, 4, 5, 9)
    if how == "float64":
        W = sp.csr_matrix(W, dtype=np.float64)
    else:
        W = sp.csr_matrix((W.data[::-1].copy(), W.indices.copy(), W.indptr.copy()), shape=W.shape)
        for r in range(W.shape[0]):  # reverse every row: valid CSR, not canonical
            a, b = W.indptr[r], W.indptr[r + 1]
            W.indices[a:b] = W.indices[a:b][::-1]
        W.has_sorted_indices = False
    level = LevelIndex.build(W, offsets)
    assert level.csr_dtypes is None
    with pytest.raises(ConfigurationError, match="not float32 CSR in canonical order"):
        level.weights()


def _fitted(n_trees: int = 3) -> tuple[LabelTreeModel, sp.csr_matrix]:
    rng = np.random.default_rng(0)
    X = sp.random(300, 60, density=0.1, random_state=0, format="csr", dtype=np.float32)
    top = np.argsort(-(X @ rng.normal(size=(60, 40))), axis=1)[:, :2]
    Y = sp.csr_matrix((np.ones(600, np.float32), top.ravel(), np.arange(0, 601, 2)), shape=(300, 40))
    params = LabelTreeParams(n_trees=n_trees, branching=3, max_leaf_size=6, n_jobs=1)
    return LabelTreeModel(params).fit(X, Y), X


def test_a_model_that_predicted_holds_its_weights_once_and_reads_saves_and_predicts_the_same(tmp_path):
    model, X = _fitted()
    before = [[w.copy() for w in levels] for levels in model.weights_]
    arrays = model.to_arrays()
    n_weights = model.n_weights
    model.save(tmp_path / "fitted")
    found = model.predict_topk(X, k=5)
    assert all(w is None for w in model._weights)  # the layout alone holds them now
    for got_levels, want_levels in zip(model.weights_, before, strict=True):
        for got, want in zip(got_levels, want_levels, strict=True):
            _assert_same_csr(got, want)
    assert model.n_weights == n_weights
    again = model.to_arrays()
    assert again.keys() == arrays.keys() and all(np.array_equal(again[k], arrays[k]) for k in arrays)
    model.save(tmp_path / "predicted")
    for name in ("model.safetensors", "config.json"):
        assert (tmp_path / "predicted" / name).read_bytes() == (tmp_path / "fitted" / name).read_bytes()
    for a, b in zip(model.predict_topk(X, k=5), found, strict=True):
        np.testing.assert_array_equal(a, b)
    model.weights_ = before  # assigning weights drops the layout
    assert model._searcher_cache is None and all(w is not None for w in model._weights)


def test_a_layout_that_fails_midway_gives_the_dropped_weights_back(monkeypatch):
    model, X = _fitted()
    before = [[w.copy() for w in levels] for levels in model.weights_]
    real = TreeSearcher.build
    calls = []

    def failing(tree: LabelTree, weights, bias: float = 1.0, **kwargs) -> TreeSearcher:
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("laying out member 1")
        return real(tree, weights, bias, **kwargs)

    monkeypatch.setattr(TreeSearcher, "build", staticmethod(failing))
    with pytest.raises(MemoryError):
        model.predict_topk(X, k=5)
    assert model._searcher_cache is None and all(w is not None for w in model._weights)
    for got_levels, want_levels in zip(model.weights_, before, strict=True):
        for got, want in zip(got_levels, want_levels, strict=True):
            _assert_same_csr(got, want)
    monkeypatch.setattr(TreeSearcher, "build", real)
    assert model.predict_topk(X, k=5)[0].shape == (300, 5)


def test_an_unfitted_model_has_no_weights():
    model = LabelTreeModel()
    assert not hasattr(model, "weights_")
    with pytest.raises(ConfigurationError, match="not fitted"):
        model.save("never")


def test_release_free_memory_answers_without_failing():
    assert release_free_memory() in (True, False)


def _printed_in_a_fresh_process(code: str) -> list[str]:
    """The words ``python -c code`` prints (it must exit 0)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_a_saved_model_loads_and_predicts_without_importing_torch(tmp_path):
    # the label tree is numpy, scipy and numba only; torch's import was about 180 MiB of resident memory and over
    # a CPU second on every load (the header check compared torch dtypes)
    model, X = _fitted(n_trees=1)
    model.save(tmp_path / "m")
    sp.save_npz(tmp_path / "X.npz", X)
    code = (
        "import sys, scipy.sparse as sp\n"
        "from sparsexc.tree import LabelTreeModel\n"
        f"m = LabelTreeModel.load({str(tmp_path / 'm')!r})\n"
        f"m.predict_topk(sp.load_npz({str(tmp_path / 'X.npz')!r}).tocsr(), 5)\n"
        "print('torch' in sys.modules)\n"
    )
    assert _printed_in_a_fresh_process(code) == ["False"]


def test_the_tree_fits_saves_loads_and_predicts_without_importing_scikit_learn(tmp_path):
    # scikit-learn's import is about 64 MiB of resident memory (scipy.stats through sklearn.utils.fixes): the label
    # tree with its default representation does not need it, so its peak RSS does not pay for it (issue 19)
    code = (
        "import sys, numpy as np, scipy.sparse as sp\n"
        "from sparsexc.tree import LabelTreeModel, LabelTreeParams\n"
        "rng = np.random.default_rng(0)\n"
        "X = sp.random(300, 80, density=0.1, format='csr', random_state=rng, dtype=np.float32)\n"
        "Y = sp.csr_matrix((rng.random((300, 40)) < 0.05).astype(np.float32))\n"
        "m = LabelTreeModel(LabelTreeParams(max_leaf_size=8, n_trees=2)).fit(X, Y)\n"
        f"m.save({str(tmp_path / 'm')!r})\n"
        f"LabelTreeModel.load({str(tmp_path / 'm')!r}).predict_topk(X, 5)\n"
        "print('sklearn' in sys.modules)\n"
    )
    assert _printed_in_a_fresh_process(code) == ["False"]
