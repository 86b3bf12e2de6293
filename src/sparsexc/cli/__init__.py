"""The ``sparsexc`` command line.

Each sub-command lives in its own module of this package and is registered in ``_COMMANDS``; heavy imports
(torch) happen inside the commands, so ``sparsexc datasets list`` starts fast. Python warnings become one
``sparsexc: warning: ...`` line each. A group called without a command (``sparsexc``, ``sparsexc datasets``)
prints its help and exits 0.

How a command ends when something goes wrong (:func:`main`; the exit codes are in :mod:`sparsexc.cli._errors`):

* a :class:`~sparsexc.errors.SparsexcError` (a bad setting, data file or model folder, an unknown name, an
  optional package that a setting needs, a non-finite training loss), a click usage error, or an ``OSError``
  about a path the user gave (no such file, permission denied, a folder where a file was expected, any
  ``OSError`` naming a file): one line on stderr, no traceback; exit code 2, or the error's own
  ``exit_code`` (1 for a :class:`~sparsexc.errors.RunFailedError`, a failure of the run);
* out of memory or disk full: one line, exit code 1;
* Ctrl-C: exit code 130;
* anything else is a bug in sparsexc: its traceback, then one line asking to report it; exit code 1.

``sparsexc --debug COMMAND ...`` prints the traceback of every error, the user's mistakes included.

For scripts, :func:`test_metrics` gives the test-set metrics that ``sparsexc train`` and ``sparsexc evaluate``
report, for a fitted ``XCClassifier``.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import sys
import traceback
import warnings
from collections.abc import Iterator
from typing import Any, NoReturn

import click

from sparsexc import __version__
from sparsexc._caller import command_line
from sparsexc._process import exit_process
from sparsexc.cli._errors import INTERRUPTED, REPORTED_ENV, RUN_FAILURE, USER_ERROR, AlreadySaid, describe_failure
from sparsexc.errors import NonFiniteLossError, SparsexcError

__all__ = ["cli", "console_main", "exit_process", "main", "test_metrics"]


def __getattr__(name: str) -> Any:
    # test_metrics needs scipy: imported on first use, so that commands which evaluate nothing start without it
    if name == "test_metrics":
        from sparsexc.cli._evaluation import test_metrics

        return test_metrics
    raise AttributeError(f"module 'sparsexc.cli' has no attribute {name!r}")


# (module in this package, name of the click command or group object in it)
_COMMANDS: tuple[tuple[str, str], ...] = (
    ("datasets_cmd", "datasets"),
    ("train_cmd", "train"),
    ("evaluate_cmd", "evaluate"),
    ("predict_cmd", "predict"),
    ("quickstart_cmd", "quickstart"),
    ("report_cmd", "report"),
)


_EPILOG = (
    f"Exit codes: 0 success; {USER_ERROR} a usage or input error (flag, setting, data file, data set or head name, "
    f"run folder in use or holding a run, an optional package a setting needs); {RUN_FAILURE} the run failed (out "
    f"of memory, disk full, non-finite training loss) or a bug in sparsexc (its traceback is printed); "
    f"{INTERRUPTED} interrupted. --debug prints the traceback of every error."
)

# set by --debug for the workers of `train --nproc-per-node` too (they inherit the environment)
DEBUG_ENV = "SPARSEXC_DEBUG"

# OSErrors that are about a path the user gave, whatever their errno (an OSError with a file name is too)
_PATH_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)
_BUG_LINE = (
    "this is a bug in sparsexc, not a mistake of yours: please report it to the sparsexc maintainers with the "
    "command line and the traceback above"
)

# click >= 8.2 raises this (a UsageError, exit 2) for a group called without a command; click 8.1 printed the
# help and exited 0 by itself
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        os.environ[DEBUG_ENV] = "1"


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EPILOG)
@click.version_option(__version__, prog_name="sparsexc")
@click.option(
    "--debug",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_set_debug,
    help=f"Print the traceback of every error, not only of bugs (also: {DEBUG_ENV}=1).",
)
def cli() -> None:
    """Multi-label and extreme multi-label classification."""


for _module, _attr in _COMMANDS:
    cli.add_command(getattr(importlib.import_module(f"{__name__}.{_module}"), _attr))


def _error(message: str, every_rank: bool = False) -> None:
    """Print ``sparsexc: error: message`` on stderr. Under torchrun (which sets WORLD_SIZE and RANK) a settings
    mistake is met by every process alike, so rank 0 alone says it; an error in the run itself may be one
    rank's own (a file missing on one node, memory), so with ``every_rank`` the other ranks say it too,
    naming their rank."""
    rank = os.environ.get("RANK", "0") if "WORLD_SIZE" in os.environ else "0"
    if rank == "0":
        line = f"sparsexc: error: {message}"
    elif every_rank:
        line = f"sparsexc: error (rank {rank}): {message}"
    else:
        return
    click.echo(line, err=True)
    reported = os.environ.get(REPORTED_ENV)
    if reported:  # a worker of `train --nproc-per-node`: tell the launching process that it was said
        try:
            with open(reported, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except OSError:
            pass  # then the launching process says its own line as well


def _warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    # warnings.showwarning for the CLI: one line, from rank 0 alone (the ranks meet the same data)
    rank = os.environ.get("RANK", "0") if "WORLD_SIZE" in os.environ else "0"
    if rank == "0":
        click.echo("sparsexc: warning: " + " ".join(str(message).split()), err=True)


def _debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _is_user_path_error(exc: OSError) -> bool:
    """True for an OSError about a path the user gave: one of :data:`_PATH_ERRORS`, or any OSError naming a
    file (a read-only file system, a name too long, ...). Disk full is a failure of the run, said before."""
    return isinstance(exc, _PATH_ERRORS) or (exc.filename is not None and exc.errno not in (errno.ENOSPC, errno.EDQUOT))


def _failure(exc: Exception, argv: list[str] | None) -> tuple[int, str, bool] | None:
    """(exit code, message, said by every rank) for an exception the CLI reports in one line; None for a bug."""
    if isinstance(exc, SparsexcError):
        # a non-finite loss is met by every rank alike; the others (a file missing on one node) may be one rank's
        return exc.exit_code, str(exc), not isinstance(exc, NonFiniteLossError)
    command = " ".join(["sparsexc", *(sys.argv[1:2] if argv is None else argv[:1])])
    failure = describe_failure(exc, f"running '{command}'")
    if failure is not None:  # out of memory or disk full outside the steps that name themselves
        return RUN_FAILURE, failure, True
    if isinstance(exc, OSError) and _is_user_path_error(exc):
        return USER_ERROR, str(exc), True
    return None


def _bug(exc: BaseException, traceback_shown: bool) -> int:
    """Report an exception sparsexc did not mean to raise: its traceback, then a line saying it is a bug."""
    if not traceback_shown:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    _error(f"{type(exc).__name__}: {exc}; {_BUG_LINE}", every_rank=True)
    return RUN_FAILURE


@contextlib.contextmanager
def _debug_scope() -> Iterator[None]:
    # --debug sets DEBUG_ENV for this run (and its worker processes) only: main() may be called many times
    before = os.environ.get(DEBUG_ENV)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DEBUG_ENV, None)
        else:
            os.environ[DEBUG_ENV] = before


def _run(argv: list[str] | None) -> int:
    """Run the command; return its exit code, turning the errors it may raise into one line (or a traceback)."""
    try:
        with command_line():  # messages name flags and commands (--data-dir), not Python arguments
            cli.main(args=argv, prog_name="sparsexc", standalone_mode=False)
    except _NO_ARGS_IS_HELP as exc:  # bare `sparsexc`, `sparsexc datasets`: the help, on stdout, exit 0
        click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
        return 0
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        click.echo("sparsexc: aborted", err=True)
        return INTERRUPTED
    except Exception as exc:
        debug = _debugging() and not isinstance(exc, AlreadySaid)  # a worker has shown its own traceback
        if debug:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        return _report(exc, argv, traceback_shown=debug)
    return 0


def _report(exc: Exception, argv: list[str] | None, traceback_shown: bool) -> int:
    """Say ``exc`` in one line (a bug: after its traceback) and return the exit code."""
    if isinstance(exc, click.exceptions.UsageError):
        hint = f" (try '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _error(f"{exc.format_message()}{hint}")
        return USER_ERROR
    if isinstance(exc, AlreadySaid):
        return exc.exit_code
    if isinstance(exc, click.ClickException):  # UserError (every rank refused alike), RunFailure (maybe one rank's)
        _error(exc.format_message(), every_rank=exc.exit_code == RUN_FAILURE)
        return exc.exit_code
    failure = _failure(exc, argv)
    if failure is None:
        return _bug(exc, traceback_shown)
    code, message, every_rank = failure
    _error(message, every_rank=every_rank)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and, from the console script, exit with) its exit code: 0 success, 2 a usage or
    input error, 1 a failure of the run (out of memory, disk full, non-finite loss) or a bug, 130 interrupted.

    See the module docstring for which errors end in one line and which print their traceback.
    """
    with warnings.catch_warnings(), _debug_scope():
        warnings.showwarning = _warning
        return _run(argv)


def console_main() -> NoReturn:
    """The ``sparsexc`` console script: :func:`main`, then :func:`exit_process` with its code."""
    exit_process(main())


if __name__ == "__main__":  # python -m sparsexc.cli
    exit_process(main())
