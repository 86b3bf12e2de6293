"""Run Python code in a fresh process where importing torch fails: the label-tree path must not need it.

``run_without_torch(code, *args)`` runs ``python -c <prelude + code> args...``; the prelude puts a finder first on
``sys.meta_path`` that makes any import of ``torch`` or a submodule an ``ImportError``, after printing the stack
that asked for it (so a failure names the line). ``code`` ends by printing ``"torch" in sys.modules`` on the last
line of its output, which the caller checks is ``False``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

PRELUDE = textwrap.dedent(
    """
    import sys, traceback

    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                traceback.print_stack(limit=12)
                raise ImportError("torch was imported")

    sys.meta_path.insert(0, NoTorch())
    """
)


def run_without_torch(code: str, *args: str) -> None:
    """Run ``code`` (dedented) after :data:`PRELUDE` in a fresh interpreter; assert it exits 0 and that its last
    output line, ``"torch" in sys.modules``, is ``False``."""
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code), *args], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "False"
