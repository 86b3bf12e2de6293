"""Every ```bash and ```python block of README.md and docs/ runs as pasted (one test per block: ``docs/cli.md:3``
is the third fenced block of docs/cli.md), and every doc-test marker is well formed (conventions: _doc_pages.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _doc_pages import Block, all_blocks, parse_page
from _doc_runner import PageRunner
from _shared_data import SHARED_DATASETS, in_ci

BLOCKS, PROBLEMS = all_blocks()
TESTED = [block for block in BLOCKS if block.executed or block.kind == "skip"]


@pytest.fixture(scope="module")
def runners(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, PageRunner]]:
    """One runner per page, made when the page's first block is tested; mirrors are closed at the end."""
    made: dict[str, PageRunner] = {}
    yield made
    for runner in made.values():
        runner.close()


def page_runner(runners: dict[str, PageRunner], tmp_path_factory: pytest.TempPathFactory, page: str) -> PageRunner:
    if page not in runners:
        root = tmp_path_factory.mktemp("doc-" + page.replace("/", "-").replace(".", "-"))
        cache = tmp_path_factory.getbasetemp() / "doc-cache"  # one for the session's pages
        runners[page] = PageRunner([b for b in BLOCKS if b.page == page], root, SHARED_DATASETS, in_ci(), cache)
    return runners[page]


@pytest.mark.parametrize("block", TESTED, ids=[block.test_id for block in TESTED])
def test_doc_block(
    block: Block,
    runners: dict[str, PageRunner],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    outcome = page_runner(runners, tmp_path_factory, block.page).outcome(block.number)
    if outcome.status == "skipped":
        pytest.skip(outcome.detail)
    assert outcome.status == "passed", outcome.detail


def test_markers_and_fences_are_well_formed() -> None:
    assert not PROBLEMS, "\n".join(PROBLEMS)


def test_the_docs_have_executed_blocks() -> None:
    # guards the collection itself: a parser that found nothing would pass every other test here
    pages = {block.page for block in BLOCKS if block.executed}
    assert {"README.md", "docs/getting-started.md", "docs/cli.md"} <= pages


def write(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return page


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<!-- doc-test: skip -->\n```bash\nls\n```\n", "malformed"),
        ("<!-- doc-test: skip:   -->\n```bash\nls\n```\n", "malformed"),
        ("<!-- doc-test: skipp: typo -->\n```bash\nls\n```\n", "malformed"),
        ("<!-- doc-test needs-shared -->\n```bash\nls\n```\n", "malformed"),
        ("<!-- doc-test: file: ../outside.txt -->\n```text\nx\n```\n", "malformed"),
        (
            "<!-- doc-test: skip: needs a GPU -->\n\ntext\n```bash\nls\n```\n",
            "right before a fence",
        ),
        ("<!-- doc-test: skip: needs a GPU -->\n", "right before a fence"),
        ("see <!-- doc-test: mirror --> here\n```bash\nls\n```\n", "alone on its line"),
        ("```\nsparsexc train\n```\n", "without a language"),
        ("```sh\nsparsexc train\n```\n", "never executed"),
        ("<!-- doc-test: needs-shared -->\n```text\nout\n```\n", "never executed"),
        ("```bash\nls\n", "never closed"),
        (
            "`<!-- doc-test: skip -->` in code is text\n<!-- doc-test: skip -->\n```bash\nls\n```\n",
            "malformed",
        ),
    ],
)
def test_marker_problems_are_reported(tmp_path: Path, text: str, expected: str) -> None:
    _, problems = parse_page(write(tmp_path, text))
    assert len(problems) == 1 and expected in problems[0], problems
    assert ":1:" in problems[0] or ":2:" in problems[0]  # names the line


def test_markers_are_parsed(tmp_path: Path) -> None:
    blocks, problems = parse_page(
        write(
            tmp_path,
            (
                "# t\n```bash\necho a\n```\n"
                "<!-- doc-test: skip: needs a GPU -->\n```python\nimport torch\n```\n"
                "<!-- doc-test: needs-shared -->\n```bash\nls\n```\n"
                "<!-- doc-test:mirror -->\n```bash\nls\n```\n"
                "<!-- doc-test: file: conf/a.toml -->\n```toml\nx = 1\n```\n"
                "```text\noutput\n```\n"
                "1. a step\n\n   ```bash\n   echo indented\n   ```\n"
            ),
        )
    )
    assert problems == []
    assert [(b.number, b.lang, b.kind, b.arg) for b in blocks] == [
        (1, "bash", "run", ""),
        (2, "python", "skip", "needs a GPU"),
        (3, "bash", "needs-shared", ""),
        (4, "bash", "mirror", ""),
        (5, "toml", "file", "conf/a.toml"),
        (6, "text", "never", ""),
        (7, "bash", "run", ""),
    ]
    assert blocks[0].code == "echo a\n" and blocks[6].code == "echo indented\n" and blocks[0].line == 2


def test_blocks_of_a_page_share_a_folder_and_failures_are_reported(
    tmp_path: Path,
) -> None:
    blocks, _ = parse_page(
        write(
            tmp_path,
            (
                "<!-- doc-test: file: in.txt -->\n```text\nhello\n```\n"
                "```bash\ncp in.txt out.txt\n```\n"
                "```python\nprint(open('out.txt').read())\n```\n"
                "```bash\nfalse\necho never\n```\n"
                "<!-- doc-test: needs-shared -->\n```bash\nls\n```\n"
                "<!-- doc-test: mirror -->\n```bash\nls\n```\n"
            ),
        )
    )
    runner = PageRunner(blocks, tmp_path / "run", tmp_path / "no-shared", in_ci=False)
    try:
        assert runner.outcome(3).status == "passed"  # runs blocks 1 and 2 first
        assert (runner.workdir / "out.txt").read_text() == "hello\n"
        failed = runner.outcome(4)
        assert (
            failed.status == "failed"
            and "exited with 1" in failed.detail
            and "never" not in failed.detail.split("--- output")[1]
        )
        assert runner.outcome(5).status == "skipped" and "../shared/datasets" in runner.outcome(5).detail
        assert PageRunner(blocks, tmp_path / "ci", tmp_path / "no-shared", in_ci=True).outcome(5).status == "failed"
    finally:
        runner.close()


def test_blocks_do_not_inherit_the_sessions_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARSEXC_DATA", str(tmp_path / "somewhere"))
    blocks, _ = parse_page(
        write(
            tmp_path,
            (
                '```bash\ntest -z "${SPARSEXC_DATA:-}"\ntest -d "$SPARSEXC_CACHE"\n```\n'
                '<!-- doc-test: needs-shared -->\n```bash\ntest "$SPARSEXC_DATA" = "$EXPECTED"\n```\n'
            ),
        )
    )
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("EXPECTED", str(shared))
    runner = PageRunner(blocks, tmp_path / "run", shared, in_ci=False)
    assert runner.outcome(1).status == "passed", runner.outcome(1).detail
    assert runner.outcome(2).status == "passed", runner.outcome(2).detail


def test_mirror_blocks_share_a_data_folder_and_see_the_mirror(tmp_path: Path) -> None:
    blocks, _ = parse_page(
        write(
            tmp_path,
            (
                '<!-- doc-test: mirror -->\n```bash\ncase "$SPARSEXC_MIRROR" in http://127.0.0.1:*) ;; *) exit 3;; esac\n'
                'test -z "$(ls -A "$SPARSEXC_DATA")"\ntouch "$SPARSEXC_DATA/fetched"\n```\n'
                '```bash\ntest -z "${SPARSEXC_MIRROR:-}" && test -z "${SPARSEXC_DATA:-}"\n```\n'
                '<!-- doc-test: mirror -->\n```bash\ntest -f "$SPARSEXC_DATA/fetched"\n```\n'
            ),
        )
    )
    runner = PageRunner(blocks, tmp_path / "run", SHARED_DATASETS, in_ci=False)
    try:
        for number in (1, 2, 3):
            outcome = runner.outcome(number)
            assert outcome.status == "passed", outcome.detail
    finally:
        runner.close()
