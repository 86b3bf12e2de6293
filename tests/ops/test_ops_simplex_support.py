"""``SimplexProjection.support()`` (issue 18): what sparsemax's backward keeps. The support it hands over is
the projection's own, listed or dense, and the Jacobian-vector product read from it matches the dense
formula ``s * (v - mean of v over S)`` with ``s`` the indicator of ``p > 0``."""

from __future__ import annotations

import pytest
import torch

from sparsexc.ops._simplex import SimplexSupport, project_rows
from sparsexc.ops.sparsemax import support_jvp


def _rows(n_cols: int, flat: bool = False) -> torch.Tensor:
    """5 rows; ``flat``: near-equal scores, so the supports are wide and kept as a dense mask."""
    z = torch.randn(5, n_cols, generator=torch.Generator().manual_seed(n_cols), dtype=torch.float64)
    if flat:
        z = z * 1e-6
    z[1] = float("nan")  # a NaN row: its gradient is NaN
    return z


@pytest.mark.parametrize(
    ("n_cols", "algorithm", "flat", "listed"),
    [(12, "sort", True, False), (400, "topk", False, True), (400, "bisect", True, False)],
)
def test_the_support_is_the_projections_own(n_cols: int, algorithm: str, flat: bool, listed: bool) -> None:
    projection = project_rows(_rows(n_cols, flat), algorithm)
    support = projection.support()
    assert isinstance(support, SimplexSupport)
    assert (support.support_index is not None) is listed
    assert support.support_index is projection.support_index and support.support_mask is projection.support_mask
    assert support.dense_support is projection.dense_support and support.nan_rows is projection.nan_rows


@pytest.mark.parametrize(
    ("n_cols", "algorithm", "flat"),
    [(12, "sort", True), (12, "sort", False), (400, "topk", False), (400, "bisect", True)],
)
def test_the_jacobian_product_read_from_the_support_is_the_dense_formula(
    n_cols: int, algorithm: str, flat: bool
) -> None:
    z = _rows(n_cols, flat)
    projection = project_rows(z, algorithm)
    v = torch.randn(z.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    s = (projection.p > 0).to(v.dtype)
    expected = s * (v - (s * v).sum(dim=1, keepdim=True) / s.sum(dim=1, keepdim=True).clamp(min=1))
    got = support_jvp(v, projection.support())
    finite = torch.ones(z.shape[0], dtype=torch.bool)
    finite[1] = False
    torch.testing.assert_close(got[finite], expected[finite])
    assert got[1].isnan().all()
