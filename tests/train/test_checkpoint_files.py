"""Checkpoint files: atomic, with the user's umask; a killed write's temporary is removed by the next write."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from sparsexc.train.checkpoint import CHECKPOINT_FILE, STATE_FILE, atomic_write, load_checkpoint, save_checkpoint


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_checkpoint_files_get_the_users_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        save_checkpoint(tmp_path, {"w": torch.ones(3)}, {"step": 1})
        atomic_write(tmp_path / "log.jsonl", lambda fh: fh.write(b"{}\n"))
    finally:
        os.umask(old)
    for name in (CHECKPOINT_FILE, STATE_FILE, "log.jsonl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_a_killed_checkpoint_write_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    save_checkpoint(tmp_path, {"w": torch.ones(3)}, {"step": 1})
    child = f"""
import os
from sparsexc.train.checkpoint import atomic_write
def write(fh):
    fh.write(b"x" * 100000)
    fh.flush()
    os._exit(9)  # killed mid-write
atomic_write({str(tmp_path / CHECKPOINT_FILE)!r}, write)
"""
    assert subprocess.run([sys.executable, "-c", child]).returncode == 9
    left = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and left[0].startswith(f".{CHECKPOINT_FILE}.")
    tensors, state = load_checkpoint(tmp_path)  # the checkpoint itself is intact
    assert state["step"] == 1 and torch.equal(tensors["w"], torch.ones(3))
    dead = _dead_pid()
    stale = [
        f".{CHECKPOINT_FILE}.abcd_123.tmp",  # written by older sparsexc (no pid)
        f".{CHECKPOINT_FILE}.{dead}-abcd_123.tmp",
    ]
    kept = [
        f".{CHECKPOINT_FILE}.{os.getppid()}-abcd_123.tmp",  # a live process's write in progress
        f".{CHECKPOINT_FILE}.mine.tmp",
        f"{CHECKPOINT_FILE}.tmp",
        "notes.tmp",
        f".{STATE_FILE}x.abcd_123.tmp",
        f".{CHECKPOINT_FILE}.{dead}-abcd_1234.tmp",
    ]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x")
    save_checkpoint(tmp_path, {"w": torch.zeros(3)}, {"step": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([CHECKPOINT_FILE, STATE_FILE, *kept])
    assert load_checkpoint(tmp_path)[1]["step"] == 2


def test_a_split_optimizers_state_is_refused_for_a_plain_optimizer():
    from sparsexc.errors import ModelFormatError
    from sparsexc.train.checkpoint import _optimizer_parts
    from sparsexc.train.optim import SplitOptimizer

    dense, sparse = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    plain = torch.optim.SGD([dense], lr=0.1)
    split = SplitOptimizer(plain, torch.optim.SGD([sparse], lr=0.1))
    state = split.state_dict()
    assert "optimizers" in state
    _, parts = _optimizer_parts(state, split)
    assert [optimizer for _, optimizer in parts] == split.optimizers
    with pytest.raises(ModelFormatError, match="SplitOptimizer"):
        _optimizer_parts(state, torch.optim.SGD([dense], lr=0.1))
