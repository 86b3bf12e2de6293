"""How the command line ends its process: a rank of a process group skips the interpreter's finalization (where
gloo's threads aborted finished runs) after flushing its output; any other process exits normally."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# prints without a newline (left in the buffer), registers an atexit handler, then ends through exit_process
CHILD = """
import atexit, sys
from sparsexc.cli import exit_process
atexit.register(lambda: print("finalised", file=sys.stderr, flush=True))
print("said", end="")
exit_process(3)
"""


@pytest.mark.parametrize(("world_size", "finalised"), [("2", False), ("1", True), (None, True)])
def test_exit_process_flushes_then_skips_finalisation_only_in_a_process_group(world_size, finalised):
    env = {k: v for k, v in os.environ.items() if k != "WORLD_SIZE"}
    if world_size is not None:
        env["WORLD_SIZE"] = world_size
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert done.stdout == "said"  # flushed before os._exit
    assert ("finalised" in done.stderr) is finalised


def test_the_console_script_and_python_m_end_through_exit_process():
    root = Path(__file__).resolve().parents[2]
    # a text check: tomllib is 3.11+ and the package supports 3.10
    scripts = (root / "pyproject.toml").read_text().split("[project.scripts]")[1].split("[")[0]
    assert scripts.strip() == 'sparsexc = "sparsexc.cli:console_main"'
    main_module = (root / "src" / "sparsexc" / "cli" / "__main__.py").read_text()
    assert "exit_process(main())" in main_module
    done = subprocess.run(
        [sys.executable, "-m", "sparsexc.cli", "--version"],
        env={**os.environ, "WORLD_SIZE": "2"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip()  # the version, flushed before the process ended
