"""One BLAS thread for small dense products, without threadpoolctl's per-call scan of the loaded libraries.

Shared by the label tree's node solvers (:mod:`sparsexc.tree.solver`) and the ridge family
(:mod:`sparsexc.estimator._ridge_family`); it imports only threadpoolctl (a dependency of scikit-learn), so a model
that needs it does not load the tree or numba.
"""

from __future__ import annotations

import contextlib

from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread"]

_controller: ThreadpoolController | None = None  # see one_blas_thread


def one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """A context in which the BLAS libraries loaded run one thread (process-wide), as
    ``threadpool_limits(1, user_api="blas")``, for a few microseconds instead of ~5 ms a call.

    ``threadpool_limits`` scans every library the process has loaded on each call (~5 ms with torch loaded:
    34 calls were a third of a small default fit, flags, with the Newton solver); the scan is done once here,
    on first use (numpy's BLAS, which these products use, is loaded by then), and its controller kept.
    """
    global _controller
    if _controller is None:  # two threads may both scan: the same result, either is kept
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
