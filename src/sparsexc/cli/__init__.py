"""The ``sparsexc`` command line.

Each sub-command lives in its own module of this package and is registered in ``_COMMANDS``; heavy imports
(torch) happen inside the commands, so ``sparsexc datasets list`` starts fast. Every failure the user can
cause (a wrong flag, an unknown data set or head, a bad file) ends with one line on stderr and a non-zero
exit code, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from sparsexc import __version__

__all__ = ["cli", "main"]

# (module in this package, name of the click command or group object in it)
_COMMANDS: tuple[tuple[str, str], ...] = (
    ("datasets_cmd", "datasets"),
    ("train_cmd", "train"),
    ("evaluate_cmd", "evaluate"),
    ("predict_cmd", "predict"),
    ("quickstart_cmd", "quickstart"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
        click.echo(f"sparsexc: error: {message}", err=True)
    elif every_rank:
        click.echo(f"sparsexc: error (rank {rank}): {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and, from the console script, exit with) its exit code."""
    try:
        cli.main(args=argv, prog_name="sparsexc", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        hint = f" (try '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _error(f"{exc.format_message()}{hint}")
        return 2
    except click.exceptions.Abort:
        click.echo("sparsexc: aborted", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        _error(exc.format_message())
        return exc.exit_code
    except (ValueError, KeyError, FileNotFoundError, OSError) as exc:
        # DataFormatError is a ValueError; unknown names raise KeyError/ValueError with a clear message.
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        _error(msg, every_rank=True)
        return 1
    return 0


if __name__ == "__main__":  # python -m sparsexc.cli
    sys.exit(main())
