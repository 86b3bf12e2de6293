"""XCModel.tune streams the validation rows to the head: the chosen value is that of the old all-at-once search
(tune_threshold / tune_masks on the full score matrix) and does not depend on the batch size."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sparsexc._params import EncoderParams
from sparsexc.core.labels import LabelBatch
from sparsexc.heads import get_head
from sparsexc.heads.protocol import ScalarTunedHead
from sparsexc.heads.tuning import RowCounts, tune_masks, tune_threshold
from sparsexc.models import FeatureBatch, SparseEncoder, XCModel

N, D, C = 53, 12, 9


def _data(seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    X = sp.random(N, D, density=0.4, format="csr", dtype=np.float32, random_state=seed)
    Y = sp.random(N, C, density=0.25, format="csr", dtype=np.float32, random_state=seed + 1)
    Y.data[:] = 1.0
    return X, Y


def _model(head: str, hidden_sizes: tuple[int, ...], seed: int) -> XCModel:
    torch.manual_seed(seed)
    encoder = SparseEncoder(D, EncoderParams(hidden_sizes=hidden_sizes))
    return XCModel(encoder, get_head(head)(encoder.out_dim, C))


def _all_at_once(model: XCModel, X: sp.csr_matrix, Y: sp.csr_matrix, metric: str) -> tuple[float, float]:
    """The search before streaming: the head's set scores of all rows, then one grid search."""
    head: ScalarTunedHead = model.head  # type: ignore[assignment]
    with torch.no_grad():
        model.eval()
        S = head.set_scores(model.hidden(FeatureBatch.from_csr(X))).detach()
    if type(head).sets_from is ScalarTunedHead.sets_from:
        return tune_threshold(S, Y, head.tuning_candidates(), metric)
    return tune_masks(lambda v: head.sets_from(S, v), Y, head.tuning_candidates(), metric)


@pytest.mark.parametrize("head", ["sigmoid", "softmax", "sparsemax", "label-embedding"])
@pytest.mark.parametrize("hidden_sizes", [(), (8,)])
@pytest.mark.parametrize("metric", ["micro-F1", "example-F1"])
def test_streaming_tuning_equals_the_all_at_once_search_for_any_batch_size(head, hidden_sizes, metric):
    X, Y = _data(seed=len(head) + len(hidden_sizes))
    model = _model(head, hidden_sizes, seed=3)
    expected = _all_at_once(model, X, Y, metric)
    key = model.head.tuned_key
    for batch_size in (1, 7, 1024):
        result = model.tune(X, Y, metric, batch_size=batch_size)
        assert (result[key], result[metric]) == expected, batch_size
        assert model.head.tuned_value == expected[0]


def test_row_counts_over_batches_equal_one_batch():
    rng = np.random.default_rng(0)
    S = torch.from_numpy(np.round(rng.random((40, 6)), 1).astype(np.float32))  # scores on the grid: ties
    Y = sp.csr_matrix((rng.random((40, 6)) < 0.3).astype(np.float32))
    grid = [0.5, 0.1, 0.3, 0.3, 0.7]  # unsorted, with a repeat
    for metric in ("micro-F1", "example-F1"):
        whole = RowCounts(grid, metric)
        whole.add_thresholds(S, Y)
        parts = RowCounts(grid, metric)
        for start in range(0, 40, 9):
            parts.add_thresholds(S[start : start + 9], Y[start : start + 9])
        masks = RowCounts(grid, metric)
        masks.add_masks(lambda t: t < S, LabelBatch.from_csr(Y), tuple(S.shape))
        sets = RowCounts(grid, metric)
        sets.add_sets(lambda t: sp.csr_matrix((t < S).numpy().astype(np.float32)), Y)
        expected = tune_threshold(S, Y, grid, metric)
        assert whole.best() == parts.best() == masks.best() == sets.best() == expected


def test_row_counts_refuse_an_empty_grid_and_no_rows():
    with pytest.raises(ValueError, match="non-empty grid"):
        RowCounts([])
    with pytest.raises(ValueError, match="no validation rows"):
        RowCounts([0.5]).best()


def test_a_user_fixed_value_reads_no_batch():
    model = _model("sigmoid", (), seed=0)
    model.head = get_head("sigmoid")(D, C, {"threshold": 0.25})

    def batches():
        raise AssertionError("a fixed threshold needs no validation rows")
        yield

    assert model.head.tune_batches(batches()) == {"threshold": 0.25}
