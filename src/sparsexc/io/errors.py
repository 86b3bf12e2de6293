"""The one error type every reader raises for malformed input."""

from __future__ import annotations

import os

__all__ = ["DataFormatError"]


class DataFormatError(ValueError):
    """A data file does not follow its format.

    Attributes
    ----------
    path : str
        The file that was being read.
    line : int or None
        1-based line number of the offending line (None when the problem is not tied to a line, e.g. a
        missing or truncated file).
    field : str or None
        What was being read there (``"header"``, ``"label id"``, ``"feature value"``, ...).
    expected : str
        What the reader expected to find.
    found : str or None
        What it found instead (shortened).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        expected: str,
        *,
        line: int | None = None,
        field: str | None = None,
        found: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.line = line
        self.field = field
        self.expected = expected
        self.found = None if found is None else (found if len(found) <= 80 else found[:77] + "...")
        where = self.path if line is None else f"{self.path}, line {line}"
        what = f"{field}: " if field else ""
        msg = f"{where}: {what}expected {expected}"
        if self.found is not None:
            msg += f", found {self.found!r}"
        super().__init__(msg)
