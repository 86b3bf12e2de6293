"""One version source (issue 18): ``sparsexc.__version__``; pyproject.toml reads it (dynamic), and
``sparsexc --version`` prints it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import sparsexc
from sparsexc.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_reads_the_version_from_the_package() -> None:
    # a text check: tomllib is 3.11+ and the package supports 3.10
    project = _section(ROOT / "pyproject.toml", "project")
    assert 'dynamic = ["version"]' in project
    assert not re.search(r"^version\s*=", project, flags=re.MULTILINE)
    assert 'version = { attr = "sparsexc.__version__" }' in _section(ROOT / "pyproject.toml", "tool.setuptools.dynamic")


def _section(path: Path, name: str) -> str:
    """The lines of TOML table ``[name]`` up to the next table header."""
    text = path.read_text()
    start = text.index(f"\n[{name}]\n") + len(name) + 3
    following = re.search(r"^\[", text[start:], flags=re.MULTILINE)
    return text[start : start + following.start()] if following else text[start:]


def test_the_version_is_a_pep440_string() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", sparsexc.__version__)


def test_the_cli_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"sparsexc, version {sparsexc.__version__}"
