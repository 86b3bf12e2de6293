"""Timings quoted in the docs come from a benchmark results file, and match it.

A quoted timing is written ``N s <!-- timing: PATH KEY -->``: the number right before the comment, PATH a JSON
file under benchmarks/results/ and KEY a dotted path into it; N must be the file's value rounded to as many
decimals as N shows. A timing phrased "about N s" (or min) without such a marker is an error, and so is a
malformed marker. ``sparsexc quickstart --help`` quotes the same benchmark and is checked against it too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from _doc_pages import CODE_SPAN, FENCE, REPO, doc_pages, rel
from click.testing import CliRunner

from sparsexc.cli.quickstart_cmd import quickstart

TIMING = re.compile(r"<!--\s*timing\b(.*?)-->")
QUOTED = re.compile(r"(\d+(?:\.\d+)?) s <!-- timing: (benchmarks/results/\S+\.json) (\S+) -->")
UNMARKED = re.compile(r"\babout \d+(?:\.\d+)? ?(?:s|seconds|min|minutes)\b(?! <!-- timing:)")
QUICKSTART_RESULT = "benchmarks/results/quickstart_time.json"


def lookup(data: Any, key: str) -> Any:
    for part in key.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def check_quote(number: str, path: str, key: str) -> str | None:
    """None when ``number`` is the value at ``key`` of the results file ``path``, else what is wrong."""
    file = REPO / path
    if not file.is_file():
        return f"{path} does not exist"
    try:
        value = lookup(json.loads(file.read_text()), key)
    except (KeyError, IndexError, ValueError, TypeError):
        return f"{path} has no key {key!r}"
    decimals = len(number.partition(".")[2])
    if not isinstance(value, (int, float)) or f"{round(float(value), decimals):.{decimals}f}" != number:
        return f"quotes {number} s but {path} {key} = {value!r}"
    return None


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The page's lines outside fenced blocks, numbered from 1."""
    lines, inside = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
        elif not inside:
            lines.append((number, line))
    return lines


def timing_problems(path: Path) -> tuple[list[str], int]:
    """The page's timing problems, and how many correct quotes it has."""
    problems, quotes = [], 0
    for number, line in prose_lines(path):
        line = CODE_SPAN.sub("", line)  # a marker quoted in `code` is text
        where = f"{rel(path)}:{number}"
        for marker in TIMING.finditer(line):
            quoted = [m for m in QUOTED.finditer(line) if m.end() == marker.end()]
            if not quoted:
                problems.append(
                    f"{where}: malformed timing quote {marker.group(0)!r}; write 'N s <!-- timing: "
                    "benchmarks/results/FILE.json KEY -->' right after the number"
                )
                continue
            problem = check_quote(*quoted[0].groups())
            if problem:
                problems.append(f"{where}: {problem}")
            else:
                quotes += 1
        for match in UNMARKED.finditer(line):
            problems.append(
                f"{where}: timing {match.group(0)!r} names no results file; quote it as 'N s <!-- "
                "timing: benchmarks/results/FILE.json KEY -->'"
            )
    return problems, quotes


def test_quoted_timings_match_their_results_files() -> None:
    problems, quotes = [], 0
    for page in doc_pages():
        page_problems, page_quotes = timing_problems(page)
        problems += page_problems
        quotes += page_quotes
    assert not problems, "\n".join(problems)
    assert quotes >= 2  # the quickstart time in docs/cli.md and docs/getting-started.md at least


def test_quickstart_help_quotes_the_benchmark() -> None:
    result = CliRunner().invoke(quickstart, ["--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "benchmarks/results/quickstart_time.md" in text
    cpu = re.search(r"about (\d+) s of CPU time", text)
    wall = re.search(r"(\d+) s wall", text)
    assert cpu and wall, text
    assert check_quote(cpu.group(1), QUICKSTART_RESULT, "fastest_run.cpu_seconds") is None, text
    assert check_quote(wall.group(1), QUICKSTART_RESULT, "fastest_run.wall_seconds") is None, text


@pytest.mark.parametrize(
    "line, expected",
    [
        (
            "takes 12 s <!-- timing: benchmarks/results/nothing.json a -->",
            "does not exist",
        ),
        (
            "takes 12 s <!-- timing: benchmarks/results/quickstart_time.json no_such_key -->",
            "has no key",
        ),
        (
            "takes 0 s <!-- timing: benchmarks/results/quickstart_time.json cpu_seconds -->",
            "quotes 0 s",
        ),
        (
            "takes 12 s<!-- timing: benchmarks/results/quickstart_time.json cpu_seconds -->",
            "malformed",
        ),
        (
            "takes <!-- timing: benchmarks/results/quickstart_time.json cpu_seconds -->",
            "malformed",
        ),
        ("it runs in about 20 s on two cores", "names no results file"),
    ],
)
def test_timing_problems_are_found(tmp_path: Path, line: str, expected: str) -> None:
    page = tmp_path / "page.md"
    page.write_text(f"# t\n\n{line}\n\n```text\nabout 5 s (in a block: not prose)\n```\n")
    problems, _ = timing_problems(page)
    assert len(problems) == 1 and expected in problems[0], problems
