"""``.ci/run`` (issue 18): it splits README.md's install-and-test line at ``&& python -m pytest`` and runs the
install, then ruff (lint and format) and mypy, then the tests. ``CI_DRY_RUN=1`` prints the steps without running
them, so the parsing is checked here on the real README and on small made-up ones."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = ["ruff check .", "ruff format --check .", "mypy"]


def _dry_run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(root / ".ci" / "run")],
        env={"CI_DRY_RUN": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


def _steps(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.removeprefix("+ ") for line in result.stdout.splitlines() if line.startswith("+ ")]


def _project(tmp_path: Path, readme: str) -> Path:
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "README.md").write_text(readme)
    return tmp_path


def test_the_readme_line_is_split_around_the_lint() -> None:
    result = _dry_run(ROOT)
    assert result.returncode == 0, result.stderr
    steps = _steps(result)
    assert steps[1:4] == LINT
    assert steps[0].startswith("pip install ") and '".[test]"' in steps[0] and "pytest" not in steps[0]
    assert steps[4].startswith("python -m pytest")
    readme_line = next(line for line in (ROOT / "README.md").read_text().splitlines() if "python -m pytest" in line)
    assert readme_line.startswith(steps[0] + " && " + steps[4])


@pytest.mark.parametrize(
    ("line", "install", "tests"),
    [
        (
            'pip install -e ".[test]" && python -m pytest -q   # a comment',
            'pip install -e ".[test]"',
            "python -m pytest -q",
        ),
        ("pip install torch==2 -e .[test] && python -m pytest", "pip install torch==2 -e .[test]", "python -m pytest"),
        (
            "pip install x pytest && python -m pytest -x tests/io",
            "pip install x pytest",
            "python -m pytest -x tests/io",
        ),
    ],
)
def test_the_first_install_line_gives_the_steps(tmp_path: Path, line: str, install: str, tests: str) -> None:
    readme = f"# title\n\n```bash\npip install -e . && sparsexc quickstart\n{line}\n```\n"
    result = _dry_run(_project(tmp_path, readme))
    assert result.returncode == 0, result.stderr
    assert _steps(result) == [install, *LINT, tests]


@pytest.mark.parametrize(
    ("readme", "message"),
    [
        ("# no set-up here\n", "has no 'pip install ... pytest' set-up line"),
        ("pip install pytest; pytest -q\n", "does not run the tests with '&& python -m pytest'"),
    ],
)
def test_a_readme_without_the_line_fails_with_a_reason(tmp_path: Path, readme: str, message: str) -> None:
    result = _dry_run(_project(tmp_path, readme))
    assert result.returncode == 1
    assert message in result.stderr
    assert _steps(result) == []
