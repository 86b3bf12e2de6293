"""The Markdown pages whose code blocks the doc tests execute, split into fenced blocks with their markers.

Pages: README.md and every ``*.md`` under docs/. A marker is an HTML comment on the line right before a fence:

* no marker: a ```bash block runs with ``bash -e``, a ```python block with the current interpreter; blocks in
  any other language (```text, ```console, ```json, ```toml, ...) are never executed (output samples, files);
* ``<!-- doc-test: skip: REASON -->``: not executed; REASON is required ("needs a GPU", "installs packages");
* ``<!-- doc-test: needs-shared -->``: runs with SPARSEXC_DATA=../shared/datasets (the real data sets);
* ``<!-- doc-test: mirror -->``: runs against a local HTTP mirror (tests/_mirror.py) with SPARSEXC_MIRROR set and
  SPARSEXC_DATA an initially empty folder shared by the page's mirror blocks;
* ``<!-- doc-test: file: NAME -->``: the block (any language) is not executed but written to NAME in the page's
  working folder when the page's blocks reach it, so that later blocks can use it (a config file, an input file).

Anything else that starts with ``<!-- doc-test`` is malformed, and so is a marker that is not followed by a fence,
a fence without a language (a command in it would silently never run: write ```text for output) and the
shell/Python spellings that would not be executed (```sh, ```shell, ```py, ...).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXECUTED = ("bash", "python")
#: Spellings of executable languages that would silently not run: they must be written as one of EXECUTED.
NOT_EXECUTED_ALIASES = ("sh", "shell", "zsh", "console-bash", "py", "python3", "py3")
MARKER = re.compile(r"<!--\s*doc-test\b(.*?)-->")
FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
CODE_SPAN = re.compile(r"(`+)[^`]+?\1")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced block of a page: ``number`` counts every fenced block of the page from 1."""

    page: str  # path relative to the repository root, "/" separated
    number: int
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    kind: str = "run"  # "run", "skip", "needs-shared", "mirror", "file", or "never" (not an executed language)
    arg: str = ""  # the skip reason or the file name

    @property
    def test_id(self) -> str:
        return f"{self.page}:{self.number}"

    @property
    def executed(self) -> bool:
        return self.kind in ("run", "needs-shared", "mirror")


def doc_pages() -> list[Path]:
    """README.md and every Markdown page under docs/, in a fixed order."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def rel(path: Path) -> str:
    """The page's path relative to the repository root (as given, for a page outside it)."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return path.as_posix()


def _parse_marker(body: str) -> tuple[str, str] | None:
    """(kind, argument) of a marker's text after ``doc-test``, or None when it is malformed."""
    body = body.strip()
    if not body.startswith(":"):
        return None
    body = body[1:].strip()
    if body in ("needs-shared", "mirror"):
        return body, ""
    match = re.fullmatch(r"(skip|file)\s*:\s*(.*)", body, flags=re.DOTALL)
    if match is None:
        return None
    kind, arg = match.group(1), match.group(2).strip()
    if not arg:
        return None
    if kind == "file" and (arg.startswith("/") or ".." in Path(arg).parts or re.search(r"\s", arg)):
        return None
    return kind, arg


def parse_page(path: Path) -> tuple[list[Block], list[str]]:
    """The fenced blocks of one page, and its marker and fence problems (each naming page and line)."""
    page = rel(path)
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks: list[Block] = []
    problems: list[str] = []
    pending: tuple[int, str, str] | None = None  # (line, kind, arg) of a marker waiting for its fence
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence is None:
            if pending is not None and line.strip():
                problems.append(f"{page}:{pending[0]}: the doc-test marker must be on the line right before a fence")
                pending = None
            for marker in MARKER.finditer(CODE_SPAN.sub("", line)):  # a marker quoted in `code` is text
                parsed = _parse_marker(marker.group(1))
                if parsed is None:
                    problems.append(
                        f"{page}:{i + 1}: malformed doc-test marker {marker.group(0)!r}; expected one of "
                        "'<!-- doc-test: skip: REASON -->' (REASON required), '<!-- doc-test: needs-shared -->', "
                        "'<!-- doc-test: mirror -->', '<!-- doc-test: file: NAME -->'"
                    )
                elif line.strip() != marker.group(0):
                    problems.append(f"{page}:{i + 1}: a doc-test marker must be alone on its line")
                else:
                    pending = (i + 1, *parsed)
            i += 1
            continue
        indent, ticks, info = fence.groups()
        lang = info.strip().split()[0].lower() if info.strip() else ""
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not re.match(rf"^ {{0,3}}{re.escape(ticks[0])}{{{len(ticks)},}}\s*$", lines[i]):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        if i >= len(lines):
            problems.append(f"{page}:{start + 1}: the fence opened here is never closed")
        i += 1  # past the closing fence
        number = len(blocks) + 1
        if not lang:
            problems.append(
                f"{page}:{start + 1}: a fence without a language; name it (```bash / ```python are "
                "executed by the doc tests, ```text for output samples)"
            )
        elif lang in NOT_EXECUTED_ALIASES:
            problems.append(
                f"{page}:{start + 1}: ```{lang} is never executed by the doc tests; write ```bash or "
                "```python (or ```text for output)"
            )
        kind, arg = ("run" if lang in EXECUTED else "never"), ""
        if pending is not None:
            kind, arg = pending[1], pending[2]
            if kind != "file" and lang not in EXECUTED:
                problems.append(
                    f"{page}:{pending[0]}: a '{kind}' marker on a ```{lang or '(none)'} block, which is never executed"
                )
            pending = None
        blocks.append(Block(page, number, start + 1, lang, "\n".join(body) + "\n", kind, arg))
    if pending is not None:
        problems.append(f"{page}:{pending[0]}: the doc-test marker must be on the line right before a fence")
    return blocks, problems


def all_blocks() -> tuple[list[Block], list[str]]:
    """The blocks of every page, and every page's problems."""
    blocks: list[Block] = []
    problems: list[str] = []
    for path in doc_pages():
        page_blocks, page_problems = parse_page(path)
        blocks += page_blocks
        problems += page_problems
    return blocks, problems
