"""Runs the blocks of one documentation page in order, in one fresh working folder (see _doc_pages.py).

A test for block N of a page first runs the page's earlier blocks that have not run yet, so that a block can
use what an earlier one made (``--out runs/x`` then ``sparsexc evaluate runs/x``) also when it is selected
alone (``pytest "tests/docs/test_doc_blocks.py::test_doc_block[docs/cli.md:3]"``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from _doc_pages import Block

#: Most seconds one block may run (a hung block fails instead of stalling CI).
BLOCK_TIMEOUT = 600
#: Environment variables a block never inherits from the test session (set by markers only).
CLEARED = ("SPARSEXC_DATA", "SPARSEXC_MIRROR", "SPARSEXC_CACHE")


@dataclasses.dataclass
class Outcome:
    """What running (or not running) a block gave: ``status`` is "passed", "failed" or "skipped"."""

    status: str
    detail: str = ""


class PageRunner:
    """The blocks of one page, run in order in ``workdir`` with a private cache and, for mirror blocks, a mirror."""

    def __init__(
        self,
        blocks: list[Block],
        root: Path,
        shared_datasets: Path,
        in_ci: bool,
        cache: Path | None = None,
    ) -> None:
        self.blocks = blocks
        self.workdir = root / "work"
        # a cache shared by the pages of one session saves parsing Bibtex once per page; never the user's cache
        self.cache = cache if cache is not None else root / "cache"
        self.mirror_data = root / "mirror-data"
        self.mirror_root = root / "mirror"
        for folder in (self.workdir, self.cache, self.mirror_data):
            folder.mkdir(parents=True, exist_ok=True)
        self.shared_datasets = shared_datasets
        self.in_ci = in_ci
        self.outcomes: dict[int, Outcome] = {}
        self._mirror_url: str | None = None
        self._stack = contextlib.ExitStack()

    def close(self) -> None:
        self._stack.close()

    def outcome(self, number: int) -> Outcome:
        """Run the page's blocks up to ``number`` (those not run yet) and return block ``number``'s outcome."""
        for block in self.blocks:
            if block.number > number:
                break
            if block.number not in self.outcomes:
                self.outcomes[block.number] = self._run(block)
        return self.outcomes[number]

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in CLEARED}
        env["SPARSEXC_CACHE"] = str(self.cache)
        # the sparsexc command of the interpreter running the tests, whatever PATH says
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _mirror(self) -> str | Outcome:
        """The mirror's base URL (started on first use, kept for the page), or the outcome when there is none."""
        if self._mirror_url is None:
            try:
                mirror: Any = importlib.import_module("_mirror")
            except ImportError as error:
                reason = f"needs tests/_mirror.py (the local download mirror) to serve the data: {error}"
                return Outcome("failed" if self.in_ci else "skipped", reason)
            self._mirror_url = self._stack.enter_context(mirror.serve_mirror(self.mirror_root))
        return self._mirror_url

    def _run(self, block: Block) -> Outcome:
        if block.kind == "never":
            return Outcome("passed", f"```{block.lang} blocks are not executed")
        if block.kind == "skip":
            return Outcome("skipped", f"{block.test_id} (line {block.line}): {block.arg}")
        if block.kind == "file":
            target = self.workdir / block.arg
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")
            return Outcome("passed", f"written to {block.arg}")
        env = self._environment()
        if block.kind == "needs-shared":
            if not self.shared_datasets.is_dir():
                reason = f"needs ../shared/datasets (the real data sets): not at {self.shared_datasets}"
                return Outcome("failed" if self.in_ci else "skipped", reason)
            env["SPARSEXC_DATA"] = str(self.shared_datasets)
        elif block.kind == "mirror":
            url = self._mirror()
            if isinstance(url, Outcome):
                return url
            env["SPARSEXC_MIRROR"] = url
            env["SPARSEXC_DATA"] = str(self.mirror_data)
        if block.lang == "bash":
            command = ["bash", "-e", "-c", block.code]
            stdin = None
        else:
            command = [
                sys.executable,
                "-",
            ]  # from stdin: the working folder is on sys.path, as for a user's script
            stdin = block.code
        try:
            done = subprocess.run(
                command,
                check=False,
                input=stdin,
                cwd=self.workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            return Outcome(
                "failed",
                f"{block.test_id} (line {block.line}) ran over {BLOCK_TIMEOUT} s",
            )
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-6000:]
            return Outcome(
                "failed",
                f"{block.test_id} (line {block.line}, ```{block.lang}) exited with "
                f"{done.returncode} in {self.workdir}:\n{block.code}\n--- output (end) ---\n{output}",
            )
        return Outcome("passed")
