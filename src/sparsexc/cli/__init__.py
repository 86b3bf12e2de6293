"""The ``sparsexc`` command line.

Each sub-command lives in its own module of this package and is registered in ``_COMMANDS``; heavy imports
(torch) happen inside the commands, so ``sparsexc datasets list`` starts fast. Every failure the user can
cause (a wrong flag, an unknown data set or head, a bad file, a run folder in use, an optional package that a
setting needs but that is not installed) ends with one line on stderr and exit code 2, never a traceback; a
failure of the run itself (out of memory, disk full, a non-finite training loss) with one line and exit code 1;
an interrupted run with exit code 130 (:mod:`sparsexc.cli._errors`). Python warnings become one
``sparsexc: warning: ...`` line each. A group called without a command (``sparsexc``, ``sparsexc datasets``)
prints its help and exits 0.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from typing import Any

import click

from sparsexc import __version__
from sparsexc._caller import command_line
from sparsexc._optional import MissingDependencyError
from sparsexc.cli._errors import INTERRUPTED, REPORTED_ENV, RUN_FAILURE, USER_ERROR, AlreadySaid, describe_failure

__all__ = ["cli", "main"]

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
    f"of memory, disk full, non-finite training loss); {INTERRUPTED} interrupted."
)

# click >= 8.2 raises this (a UsageError, exit 2) for a group called without a command; click 8.1 printed the
# help and exited 0 by itself
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EPILOG)
@click.version_option(__version__, prog_name="sparsexc")
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


def _failure(exc: Exception, argv: list[str] | None) -> tuple[int, str, bool] | None:
    """(exit code, message, said by every rank) for an exception the CLI reports in one line; None for a bug."""
    trainer = sys.modules.get("sparsexc.train.trainer")  # not imported: the error cannot be its NonFiniteLossError
    if trainer is not None and isinstance(exc, trainer.NonFiniteLossError):  # every rank met the same loss
        return RUN_FAILURE, str(exc), False
    command = " ".join(["sparsexc", *(sys.argv[1:2] if argv is None else argv[:1])])
    failure = describe_failure(exc, f"running '{command}'")
    if failure is not None:  # out of memory or disk full outside the steps that name themselves
        return RUN_FAILURE, failure, True
    if isinstance(exc, MissingDependencyError):  # e.g. a saved ann='hnsw' model loaded without hnswlib
        return USER_ERROR, str(exc), True
    if isinstance(exc, (ValueError, KeyError, OSError)):
        # DataFormatError is a ValueError; unknown names raise KeyError/ValueError with a clear message. It may
        # be one rank's own (a file missing on one node), so every rank says it.
        return USER_ERROR, exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc), True
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and, from the console script, exit with) its exit code: 0 success, 2 a usage or
    input error, 1 a failure of the run (out of memory, disk full, non-finite loss), 130 interrupted."""
    with warnings.catch_warnings():
        warnings.showwarning = _warning
        try:
            with command_line():  # messages name flags and commands (--data-dir), not Python arguments
                cli.main(args=argv, prog_name="sparsexc", standalone_mode=False)
        except _NO_ARGS_IS_HELP as exc:  # bare `sparsexc`, `sparsexc datasets`: the help, on stdout, exit 0
            click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
            return 0
        except click.exceptions.UsageError as exc:
            hint = f" (try '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _error(f"{exc.format_message()}{hint}")
            return USER_ERROR
        except click.exceptions.Abort:
            click.echo("sparsexc: aborted", err=True)
            return INTERRUPTED
        except click.exceptions.Exit as exc:
            return int(exc.exit_code)
        except AlreadySaid as exc:
            return exc.exit_code
        except click.ClickException as exc:  # UserError (every rank refused alike), RunFailure (maybe one rank's)
            _error(exc.format_message(), every_rank=exc.exit_code == RUN_FAILURE)
            return exc.exit_code
        except Exception as exc:
            failure = _failure(exc, argv)
            if failure is None:
                raise
            code, message, every_rank = failure
            _error(message, every_rank=every_rank)
            return code
    return 0


if __name__ == "__main__":  # python -m sparsexc.cli
    sys.exit(main())
