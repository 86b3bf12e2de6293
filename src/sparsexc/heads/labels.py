"""Old home of :class:`LabelBatch`, kept as a re-export: it lives in :mod:`sparsexc.core.labels`."""

from sparsexc.core.labels import LabelBatch

__all__ = ["LabelBatch"]
