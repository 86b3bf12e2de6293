"""Helpers shared by the CLI tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def one_error_line(capsys) -> Callable[[], str]:
    """A reader of what the command wrote on stderr since the last read: asserts it is exactly one
    ``sparsexc: error: ...`` line and returns it."""

    def read() -> str:
        err = capsys.readouterr().err
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("sparsexc: error: ")
        return lines[0]

    return read
