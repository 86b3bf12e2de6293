"""Old home of :class:`OutputLayer`, kept as a re-export: it lives in :mod:`sparsexc.core.layers`."""

from sparsexc.core.layers import OutputLayer

__all__ = ["OutputLayer"]
