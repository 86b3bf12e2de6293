"""How ``sparsexc`` tells a mistake from a bug (issue 18): a SparsexcError, a usage error or an OSError about a
path ends in one line (exit 2; 1 for a failed run); any other exception is a bug: its traceback, a line asking
to report it, exit 1; ``--debug`` prints the traceback of every error."""

from __future__ import annotations

import errno
import os

import pytest

import sparsexc.datasets
from sparsexc.cli import DEBUG_ENV, main
from sparsexc.errors import ConfigurationError, DataFormatError, RunFailedError, UnknownNameError

# `sparsexc datasets list` calls this first: the place where the tests below inject their exceptions
_INJECTED = "resolve_data_dir"


def _inject(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(sparsexc.datasets, _INJECTED, fail)


def test_a_user_mistake_is_one_line_and_exit_2(capsys):
    assert main(["datasets", "info", "no-such-set"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [err.rstrip("\n")] and err.startswith("sparsexc: error: unknown dataset 'no-such-set'")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConfigurationError("lr=-1 must be positive"), 2),
        (UnknownNameError("unknown head 'x'"), 2),
        (DataFormatError("f.txt", "a number", line=2), 2),
        (RunFailedError("the workers failed"), 1),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "data.txt"), 2),
        (PermissionError(errno.EACCES, "Permission denied", "out"), 2),
        (OSError(errno.EROFS, "Read-only file system", "out/run.json"), 2),
        (OSError(errno.ENOSPC, "No space left on device", "out/run.json"), 1),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_errors_the_user_can_act_on_are_one_line(monkeypatch, capsys, exc, code):
    _inject(monkeypatch, exc)
    assert main(["datasets", "list"]) == code
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("sparsexc: error: "), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "exc",
    [ValueError("an internal invariant broke"), KeyError("missing_key"), TypeError("bad call"),
     OSError(errno.EBADF, "Bad file descriptor")],
    ids=lambda v: type(v).__name__,
)  # fmt: skip
def test_an_internal_bug_shows_its_traceback_and_exits_1(monkeypatch, capsys, exc):
    _inject(monkeypatch, exc)
    assert main(["datasets", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert f"in {_INJECTED}" in err or "in fail" in err  # the frame that raised
    last = err.splitlines()[-1]
    assert last.startswith(f"sparsexc: error: {type(exc).__name__}: ") and "bug in sparsexc" in last
    assert "please report it" in last


def test_debug_shows_the_traceback_of_a_user_mistake_too(capsys):
    assert main(["--debug", "datasets", "info", "no-such-set"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "UnknownDatasetError" in err
    assert err.splitlines()[-1].startswith("sparsexc: error: unknown dataset 'no-such-set'")
    assert DEBUG_ENV not in os.environ  # set for the run (and its workers) only


def test_debug_shows_a_bug_once(monkeypatch, capsys):
    _inject(monkeypatch, ValueError("an internal invariant broke"))
    assert main(["--debug", "datasets", "list"]) == 1
    err = capsys.readouterr().err
    assert err.count("Traceback (most recent call last):") == 1 and "bug in sparsexc" in err.splitlines()[-1]


def test_debug_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv(DEBUG_ENV, "1")
    assert main(["datasets", "info", "no-such-set"]) == 2
    assert "Traceback (most recent call last):" in capsys.readouterr().err
    assert os.environ[DEBUG_ENV] == "1"  # left as it was


def test_ctrl_c_exits_130(monkeypatch, capsys):
    _inject(monkeypatch, KeyboardInterrupt())
    assert main(["datasets", "list"]) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_help_documents_debug_and_the_exit_codes(capsys):
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--debug" in text and "a bug in sparsexc (its traceback is printed)" in text
