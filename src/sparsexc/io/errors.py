"""The one error type every reader raises for malformed input (defined in :mod:`sparsexc.errors`)."""

from __future__ import annotations

from sparsexc.errors import DataFormatError  # re-exported: the old import path

__all__ = ["DataFormatError"]
