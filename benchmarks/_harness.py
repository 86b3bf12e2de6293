"""What every benchmark script shares: where results go, timing, the environment record, writing results, flags.

A benchmark is a script ``benchmarks/<name>.py`` that measures something, prints it and (unless told not to)
writes ``<out>/<name>.json`` (the numbers) and ``<out>/<name>.md`` (a page for people) with :func:`write_results`.
Scripts import this module as ``_harness`` (``python benchmarks/<name>.py`` puts ``benchmarks/`` on
``sys.path``; the tests' ``conftest.py`` does the same) and otherwise only sparsexc's public API.

* :data:`BENCHMARKS`, :data:`RESULTS`, :data:`SHARED_DATASETS`: this folder, the results folder and
  ``../shared/datasets``;
* :class:`Stopwatch` / :func:`timed` / :func:`repeat`: CPU and wall seconds of a block or a function;
* :func:`environment`, :func:`load_average`, :func:`peak_rss_mib`, :func:`utc_now`, :func:`command_line`,
  :func:`git_commit`: what a measurement depends on;
* :func:`write_text`, :func:`write_json`, :func:`read_json`, :func:`write_results`, :func:`page_header`:
  atomic results files;
* :func:`add_common_flags`, :func:`dataset_list`, :func:`use_shared_datasets`: the flags and data sets several
  scripts share;
* :func:`two_se_verdict`, :func:`proportion_difference`: the verdict rule of the papers' pages (issue 21).

The verdict rule: a claim "A is better than B" is judged on comparisons (one per data set or baseline), each a
difference ``d`` oriented so that ``d > 0`` favours A, with its standard error ``se``: reproduced = better by more
than 2 SE in every comparison; partially = in some, worse by more than 2 SE in none; contradicted = worse by more
than 2 SE in at least one; not reproduced (no difference beyond 2 SE) = a null result, weaker than a
contradiction; untested = no comparison, or one without a standard error.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "BENCHMARKS",
    "RESULTS",
    "SHARED_DATASETS",
    "Stopwatch",
    "add_common_flags",
    "command_line",
    "dataset_list",
    "environment",
    "git_commit",
    "load_average",
    "page_header",
    "peak_rss_mib",
    "proportion_difference",
    "read_json",
    "repeat",
    "timed",
    "two_se_verdict",
    "use_shared_datasets",
    "utc_now",
    "write_json",
    "write_results",
    "write_text",
]

BENCHMARKS = Path(__file__).resolve().parent
RESULTS = BENCHMARKS / "results"
SHARED_DATASETS = BENCHMARKS.parents[1] / "shared" / "datasets"  # ../shared/datasets beside the clone

T = TypeVar("T")


# --- timing -------------------------------------------------------------------------------------------------


class Stopwatch:
    """CPU and wall-clock seconds since it was started (or :meth:`restart`-ed), frozen by :meth:`stop`.

    CPU time is the process's (``time.process_time``: user + system time of all its threads, so a
    multi-threaded BLAS or torch call counts in full), or with ``children=True`` that of the child processes
    that ended and were waited for meanwhile (``RUSAGE_CHILDREN``, e.g. a ``subprocess.run``); wall time is
    ``time.perf_counter``. CPU / wall is the average number of busy cores. Until :meth:`stop` is called,
    :attr:`cpu` and :attr:`wall` read the clocks now, so a running stopwatch can be read mid-way.
    """

    def __init__(self, children: bool = False) -> None:
        self._cpu_clock = _children_cpu if children else time.process_time
        self._cpu0 = self._wall0 = 0.0
        self._stopped: tuple[float, float] | None = None
        self.restart()

    def restart(self) -> Stopwatch:
        """Start again from zero (and run)."""
        self._cpu0, self._wall0, self._stopped = self._cpu_clock(), time.perf_counter(), None
        return self

    def stop(self) -> Stopwatch:
        """Freeze :attr:`cpu` and :attr:`wall` at their current values."""
        if self._stopped is None:
            self._stopped = (self._cpu_clock() - self._cpu0, time.perf_counter() - self._wall0)
        return self

    @property
    def cpu(self) -> float:
        """CPU seconds (user + system, all threads) since the start."""
        return self._stopped[0] if self._stopped else self._cpu_clock() - self._cpu0

    @property
    def wall(self) -> float:
        """Wall-clock seconds since the start."""
        return self._stopped[1] if self._stopped else time.perf_counter() - self._wall0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def timed(children: bool = False) -> Iterator[Stopwatch]:
    """``with timed() as t: ...`` then ``t.cpu`` and ``t.wall`` are the block's CPU and wall seconds
    (``children``: see :class:`Stopwatch`)."""
    watch = Stopwatch(children)
    try:
        yield watch
    finally:
        watch.stop()


def repeat(fn: Callable[[], T], repeats: int, sync: Callable[[], None] | None = None) -> tuple[T, list[Stopwatch]]:
    """Call ``fn`` ``repeats`` times (at least once); its last result and one stopped :class:`Stopwatch` per call.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs before each start and before each stop, so asynchronous
    device work is inside the measured interval.
    """
    result: T | None = None
    watches = []
    for _ in range(max(1, repeats)):
        if sync is not None:
            sync()
        with timed() as watch:
            result = fn()
            if sync is not None:
                sync()
        watches.append(watch)
    return result, watches  # type: ignore[return-value]


# --- what a result depends on -------------------------------------------------------------------------------


def environment(extra_packages: Sequence[str] = ()) -> dict[str, Any]:
    """The machine (CPU model, cores, torch threads, GPU), its 1/5/15-minute load average and the versions of
    Python, sparsexc and its dependencies (plus ``extra_packages``): :func:`sparsexc.environment_info`, the record
    ``sparsexc train`` writes into its run folders."""
    import sparsexc

    return sparsexc.environment_info(extra_packages)


def git_commit() -> str | None:
    """The checkout's commit (short hash), with ``+dirty`` when tracked files other than the results
    (:data:`RESULTS`, which the runs themselves rewrite) differ from it; None outside git. Results written at one
    commit carry the same value, so a page can show that they were regenerated together."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(BENCHMARKS), *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        results = git("rev-parse", "--show-prefix") + RESULTS.name + "/"  # as git names it from the top
        changed = git("diff", "--name-only", "HEAD").splitlines()
        return commit + ("+dirty" if any(not path.startswith(results) for path in changed) else "")
    except (OSError, subprocess.SubprocessError):
        return None


def load_average() -> list[float] | None:
    """The 1/5/15-minute load average now (None where the system has none); results drift with it."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (``2026-01-31T12:00:00+00:00``)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def command_line(script: str, argv: Sequence[str] | None = None) -> str:
    """How to repeat this run: ``python benchmarks/<script's file name> <argv>`` (``argv``: default the real one)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join(["python", f"benchmarks/{Path(script).name}", *args])


# --- results files ------------------------------------------------------------------------------------------


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) so that a reader sees the old file or the new one, never half of it.

    Uses :func:`sparsexc.train.atomic_write` (temp file beside ``path``, fsync, rename; the user's umask).
    """
    from sparsexc.train import atomic_write

    data = text.encode("utf-8")
    atomic_write(path, lambda fh: fh.write(data))


def _jsonable(obj: Any) -> Any:
    # numpy scalars and arrays (.tolist()), paths, sets
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def write_json(path: str | os.PathLike[str], obj: Any, indent: int = 2) -> None:
    """``obj`` as indented JSON plus a newline, written atomically (numpy values become lists/numbers)."""
    write_text(path, json.dumps(obj, indent=indent, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON in ``path``; a parse error names the file and line."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: line {exc.lineno}: not valid JSON: {exc.msg}") from None


def write_results(
    folder: str | os.PathLike[str], stem: str, result: Any, markdown: str, indent: int = 2
) -> tuple[Path, Path]:
    """Write ``<folder>/<stem>.json`` (``result``) and ``<folder>/<stem>.md`` (``markdown``), each atomically.

    Returns the two paths. ``markdown`` gets a final newline if it has none.
    """
    folder = Path(folder)
    json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
    write_json(json_path, result, indent=indent)
    write_text(md_path, markdown if markdown.endswith("\n") else markdown + "\n")
    return json_path, md_path


def page_header(title: str, env: dict[str, Any], date: str, command: str | None = None) -> str:
    """The top of a results page: the title, when and how it was measured, and on what.

    ``env`` is an :func:`environment` record; the result is Markdown paragraphs without a final newline.
    """
    how = f", command `{command}`" if command else ""
    threads = f", torch threads {env['torch_threads']}" if env.get("torch_threads") is not None else ""
    gpu = f", GPU {env['cuda']}" if env.get("cuda") else ""
    load = env.get("load_average")
    load_text = f", load average {', '.join(f'{x:.2f}' for x in load)}" if load else ""
    versions = ", ".join(f"{name} {version}" for name, version in env.get("versions", {}).items() if version)
    return (
        f"# {title}\n\n{date}{how}\n\n"
        f"Machine: {env.get('processor')}, {env.get('cpu_count')} CPUs{threads}{gpu}{load_text}; "
        f"Python {env.get('python')}; {versions}."
    )


# --- flags --------------------------------------------------------------------------------------------------


def add_common_flags(
    parser: argparse.ArgumentParser,
    *,
    out: bool = False,
    quick: str | None = None,
    timeout: float | None = None,
    timeout_per: str = "run",
    append: str | None = None,
    datasets: Sequence[str] | None = None,
) -> argparse.ArgumentParser:
    """Add the flags several benchmarks share, with the same names and meaning everywhere; returns ``parser``.

    Parameters
    ----------
    out : bool
        add ``--out FOLDER`` (a :class:`~pathlib.Path`, default :data:`RESULTS`): where the results files go.
    quick : str, optional
        add ``--quick`` (a switch); the text says what the quick mode of this script does.
    timeout : float, optional
        add ``--timeout SECONDS`` with this default: the wall-clock limit of one ``timeout_per``.
    append : str, optional
        add ``--append`` (a switch): keep the rows already in the results file; the text says which rows.
    datasets : sequence of str, optional
        add ``--datasets A,B`` (default None: the script picks; see :func:`dataset_list`); these are the
        default data sets named in the help.
    """
    if datasets is not None:
        parser.add_argument("--datasets", default=None, help=f"comma-separated (default: {','.join(datasets)})")
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help=quick)
    if timeout is not None:
        parser.add_argument(
            "--timeout", type=float, default=timeout, help=f"wall-clock seconds per {timeout_per} (default {timeout:g})"
        )
    if out:
        parser.add_argument(
            "--out", type=Path, default=RESULTS, help="folder for the results files (default: %(default)s)"
        )
    if append is not None:
        parser.add_argument("--append", action="store_true", help=append)
    return parser


def add_src_runs(parser: argparse.ArgumentParser) -> None:
    """Add ``--run LABEL=SRC`` (repeatable): a ``src`` folder whose sparsexc a child process imports, under a
    label; :func:`src_runs` reads them. Benchmarks that compare two states of the code side by side use it."""
    parser.add_argument("--run", action="append", default=None, metavar="LABEL=SRC",
                        help="a src folder to measure under a label (repeatable; default: this=<this src>)")  # fmt: skip


def src_runs(parser: argparse.ArgumentParser, values: Sequence[str] | None) -> dict[str, Path]:
    """``{label: resolved src folder}`` of the ``--run`` values in their order; none given: this checkout's
    ``src`` as ``this``. A value without ``=`` or with an empty side is a usage error."""
    if not values:
        return {"this": BENCHMARKS.parent / "src"}
    pairs = [value.partition("=") for value in values]
    if any(not label or not src for label, _, src in pairs):
        parser.error("--run: give LABEL=SRC")
    return {label: Path(src).resolve() for label, _, src in pairs}


def use_shared_datasets() -> None:
    """Read data sets from ``../shared/datasets`` (:data:`SHARED_DATASETS`) when it exists and ``SPARSEXC_DATA``
    is not set: sets the variable, so ``sparsexc.datasets.load`` and child processes find them there."""
    if "SPARSEXC_DATA" not in os.environ and SHARED_DATASETS.is_dir():
        os.environ["SPARSEXC_DATA"] = str(SHARED_DATASETS)


def seed_list(value: str) -> list[int]:
    """The seeds of a ``--seeds`` value: distinct comma-separated integers >= 0 (ValueError naming the value)."""
    parts = [x.strip() for x in value.split(",")]
    if not all(x.isdigit() for x in parts) or len(set(map(int, parts))) != len(parts):
        raise ValueError(f"--seeds {value!r}: give comma-separated integer seeds >= 0, distinct, e.g. 1,2")
    return [int(x) for x in parts]


def dataset_list(value: str | None, default: Sequence[str]) -> list[str]:
    """The data sets of a ``--datasets`` value (comma-separated), or ``default`` when it was not given."""
    return [name for name in value.split(",") if name] if value else list(default)


def two_se_verdict(
    comparisons: Sequence[tuple[float, float]],
    worse: str = "the baseline is better",
    untested: str = "no standard error",
) -> str:
    """The verdict of the module docstring; ``worse`` names, in the contradicted verdict, what beat the claim,
    ``untested`` why a comparison without a finite standard error cannot be judged."""
    if not comparisons:
        return "untested"
    if not all(math.isfinite(se) for _, se in comparisons):
        return f"untested ({untested})"
    wins = [d > 2 * se for d, se in comparisons]
    if any(d < -2 * se for d, se in comparisons):
        return f"contradicted ({worse})"
    if all(wins):
        return "reproduced"
    return "partially" if any(wins) else "not reproduced (no difference beyond 2 SE)"


def proportion_difference(p_a: float, p_b: float, n_a: int, n_b: int) -> tuple[float, float]:
    """``(p_a - p_b, se)`` for two rates over ``n_a`` and ``n_b`` independent 0/1 outcomes.

    se = sqrt(p_a (1 - p_a) / n_a + p_b (1 - p_b) / n_b), the unpaired binomial standard error (conservative when
    both rates come from the same rows, where the paired error is smaller).
    """
    if n_a < 1 or n_b < 1:
        raise ValueError(f"n_a={n_a}, n_b={n_b}: both must be >= 1")
    se = math.sqrt(p_a * (1.0 - p_a) / n_a + p_b * (1.0 - p_b) / n_b)
    return p_a - p_b, se
