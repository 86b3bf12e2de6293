"""Every relative link of README.md and docs/ points at a file that exists, and a ``#anchor`` at a heading of it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _doc_pages import REPO, doc_pages, rel

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^()\s]+)\)")
FENCED = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1\s*$", flags=re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", flags=re.DOTALL)


def prose(text: str) -> str:
    """The text without fenced blocks and code spans (a link-like string in code is not a link)."""
    return CODE_SPAN.sub("", FENCED.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link in a heading keeps its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown page (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    found = set()
    for line in FENCED.sub("", path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path, root: Path = REPO) -> list[str]:
    """The links of ``page`` that do not resolve (or leave ``root``), one line each naming page and link."""
    problems = []
    for match in LINK.finditer(prose(page.read_text(encoding="utf-8"))):
        target = match.group(1) or match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE):  # http:, https:, mailto: ...
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            problems.append(f"{rel(page)}: link {target!r}: {path_part} does not exist")
            continue
        try:
            resolved.relative_to(root)
        except ValueError:
            problems.append(f"{rel(page)}: link {target!r} leaves the repository")
            continue
        if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{rel(page)}: link {target!r}: no heading with anchor #{anchor} in {rel(resolved)}")
    return problems


def test_relative_links_resolve() -> None:
    problems = [problem for page in doc_pages() for problem in broken_links(page)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "heading, expected",
    [
        (
            "`sparsexc quickstart [--epochs N] [--out DIR] [--overwrite]`",
            "sparsexc-quickstart---epochs-n---out-dir---overwrite",
        ),
        ("Output, errors and exit codes", "output-errors-and-exit-codes"),
        ("ARFF files (Mulan and MEKA)", "arff-files-mulan-and-meka"),
    ],
)
def test_slug(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_broken_links_are_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# A heading\n")
    page.write_text(
        "[ok](there.md#a-heading) [gone](missing.md) [bad anchor](there.md#nope) "
        "[web](https://example.org/x.md) `[code](nowhere.md)` [self](#top)\n\n# Top\n"
    )
    problems = broken_links(page, root=tmp_path)
    assert len(problems) == 2 and "missing.md does not exist" in problems[0] and "#nope" in problems[1], problems
