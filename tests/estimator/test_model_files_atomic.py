"""Saving a model replaces its folder as a whole: after a failure or a kill at any point the folder loads as
the old model or the new one (or, only where no atomic exchange exists, a clear error naming both); files
get the user's umask; temporaries of killed saves are removed by the next save."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import sparsexc._atomic as atomic
from sparsexc import XCClassifier
from sparsexc.estimator import serialization
from sparsexc.estimator.serialization import ModelFormatError, open_model_dir, read_model_dir, write_model_dir

SEED = 7


def _save(path: Path, i: int, n: int = 1000) -> None:
    write_model_dir(path, {"w": torch.full((n,), float(i)), "b": torch.arange(3) + i}, {"i": i})


def _version(path: Path) -> int:
    """The model number saved in ``path``, after checking that its two files belong together."""
    tensors, config = read_model_dir(path)
    i = config["i"]
    assert torch.all(tensors["w"] == float(i)) and torch.equal(tensors["b"], torch.arange(3) + i), i
    return i


def _beside(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_config_records_the_weights_checksum_and_load_verifies_it(tmp_path):
    _save(tmp_path / "m", 1)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    blob = (tmp_path / "m" / "model.safetensors").read_bytes()
    assert config["weights_sha256"] == hashlib.sha256(blob).hexdigest()
    (tmp_path / "m" / "model.safetensors").write_bytes(blob[:-1] + bytes([blob[-1] ^ 0x40]))
    with pytest.raises(ModelFormatError, match=r"m/model\.safetensors: SHA-256 .* differs .*weights_sha256"):
        read_model_dir(tmp_path / "m")


def test_a_weight_without_a_file_dtype_is_one_clear_error_and_leaves_nothing(tmp_path):
    """The weights are written array by array: a tensor numpy has no type for (bfloat16) is refused by name
    before anything replaces the folder, and the temporary folder goes."""
    _save(tmp_path / "m", 1)
    state = {"w": torch.zeros(3, dtype=torch.bfloat16)}
    with pytest.raises(ValueError, match=r"tensor 'w': dtype torch.bfloat16 cannot be saved"):
        write_model_dir(tmp_path / "m", state, {"i": 2})
    assert _version(tmp_path / "m") == 1
    assert _beside(tmp_path / "m") == ["m"]


def test_saving_over_a_model_replaces_it_and_leaves_nothing_beside(tmp_path):
    _save(tmp_path / "m", 1)
    _save(tmp_path / "m", 2)
    assert _version(tmp_path / "m") == 2
    assert _beside(tmp_path / "m") == ["m"]
    assert sorted(os.listdir(tmp_path / "m")) == ["config.json", "model.safetensors"]
    (tmp_path / "empty").mkdir()  # an existing empty folder may be saved into
    _save(tmp_path / "empty", 3)
    assert _version(tmp_path / "empty") == 3


def test_a_folder_with_other_files_is_not_replaced(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"m: the folder holds other files than a saved model \(notes\.txt\)"):
        _save(tmp_path / "m", 1)
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine" and _beside(tmp_path / "m") == ["m"]
    (tmp_path / "f").write_text("a file")
    with pytest.raises(ValueError, match="a file of that name exists"):
        _save(tmp_path / "f", 1)


def test_a_symlinked_model_folder_is_replaced_behind_its_link(tmp_path):
    _save(tmp_path / "real", 1)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    _save(tmp_path / "link", 2)
    assert (tmp_path / "link").is_symlink() and _version(tmp_path / "real") == 2


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_model_files_and_folder_get_the_users_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        _save(tmp_path / "m", 1)
        _save(tmp_path / "m", 2)  # a replaced folder too
    finally:
        os.umask(old)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o777 & ~umask
    for name in ("config.json", "model.safetensors"):
        assert (tmp_path / "m" / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_current_umask_reads_the_process_umask():
    old = os.umask(0o027)
    try:
        assert atomic.current_umask() == 0o027
    finally:
        os.umask(old)


class _FailAt:
    """Wrap ``fn`` so that its ``k``-th call raises ``OSError`` (an I/O error at that step of a save)."""

    def __init__(self, fn, k: int) -> None:
        self.fn, self.k, self.calls = fn, k, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.k:
            raise OSError(5, "injected failure")
        return self.fn(*args, **kwargs)


_STEPS = [
    (serialization, "_synced_file"),  # each of the two files (weights, config)
    (os, "rename"),
    (os, "fsync"),
    (atomic, "_exchange"),
    (atomic, "fsync_dir"),
    (serialization, "make_temp_dir"),
]


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
@pytest.mark.parametrize("step", _STEPS, ids=[name for _, name in _STEPS])
def test_a_failure_at_any_step_leaves_the_old_or_the_new_model(tmp_path, monkeypatch, step, exchange):
    module, name = step
    path = tmp_path / "m"
    failures = 0
    for k in range(1, 10):
        _save(path, 1)
        if not exchange:
            monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
        wrapper = _FailAt(getattr(module, name), k)
        monkeypatch.setattr(module, name, wrapper)
        try:
            _save(path, 2)
            failed = False
        except OSError:
            failed = True
        finally:
            monkeypatch.undo()
        failures += failed
        assert _version(path) in ((1, 2) if failed else (2,))
        assert _beside(path) == ["m"], (k, _beside(path))  # an error cleans up after itself
        if wrapper.calls < k:
            break  # every call of this step was failed once
    if (module, name) != (os, "rename") or not exchange:  # with the exchange, replacing renames nothing
        assert failures >= 1  # the step was reached


def test_a_kill_between_the_two_renames_is_reported_and_the_next_save_repairs(tmp_path):
    """Without an atomic exchange, a kill after the old folder was renamed aside and before the new one was
    renamed in leaves no folder: loading says where both models are, the next save removes them."""
    path = tmp_path / "m"
    _save(path, 1)
    child = f"""
import os, torch
import sparsexc._atomic as atomic
from sparsexc.estimator.serialization import write_model_dir
atomic._exchange = lambda a, b: False
rename, calls = os.rename, []
def killed_at_second(a, b):
    calls.append(a)
    if len(calls) == 2:
        os._exit(9)
    rename(a, b)
os.rename = killed_at_second
write_model_dir({str(path)!r}, {{"w": torch.full((1000,), 2.0), "b": torch.arange(3) + 2}}, {{"i": 2}})
"""
    assert subprocess.run([sys.executable, "-c", child]).returncode == 9
    assert not path.exists()
    with pytest.raises(
        FileNotFoundError,
        match=r"interrupted between its two renames; the previous model is in "
        r".*\.m\.old-\d+-\w+ and the new one in .*\.m\.tmp-\d+-\w+",
    ):
        open_model_dir(path)
    old = atomic.stale_folders(path, "old")[0]
    assert _version(old) == 1 and _version(atomic.stale_folders(path, "tmp")[0]) == 2
    _save(path, 3)
    assert _version(path) == 3 and _beside(path) == ["m"]


_SAVER = r"""
import sys, torch
from sparsexc.estimator import serialization
path, first = sys.argv[1], int(sys.argv[2])
make_temp_dir = serialization.make_temp_dir
def announced(target):  # the save's files are about to be written
    print("inside", flush=True)
    return make_temp_dir(target)
serialization.make_temp_dir = announced
for i in range(first, first + 10**6):
    serialization.write_model_dir(path, {"w": torch.full((2_000_000,), float(i)), "b": torch.arange(3) + i},
                                  {"i": i})
    print("done", i, flush=True)
"""


@pytest.mark.slow
def test_real_kills_during_saves_leave_the_old_or_the_new_model(tmp_path):
    """A child saves an 8 MB model over and over; it is killed (SIGKILL) at a seeded random moment while it
    writes, fsyncs and swaps in a new folder. After every kill the folder loads as a complete model, the last
    one saved or the one being saved; while a child saves, concurrent loads always see matching files.
    The next save removes the temporaries the kills left."""
    rng = np.random.default_rng(SEED)
    path = tmp_path / "m"
    _save(path, 0)
    first, reads, interrupted, rounds = 1, 0, 0, 5
    for round_ in range(rounds + 1):
        child = subprocess.Popen(
            [sys.executable, "-c", _SAVER, str(path), str(first)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout.readline().split() == ["inside"]
        began = time.monotonic()
        assert child.stdout.readline().split() == ["done", str(first)]
        duration = time.monotonic() - began  # writing + swapping one save, as seen from here
        if round_ == 0:  # loads while the child saves
            for _ in range(10):
                assert _version(path) >= first
                reads += 1
        else:
            assert child.stdout.readline().split() == ["inside"]  # the next save is writing its files
            time.sleep(rng.uniform(0.0, 0.5 * duration))
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate()
        words = rest.split()
        saved = max([first] + [int(n) for word, n in itertools.pairwise(words) if word == "done"])
        now = _version(path)
        assert now in (saved, saved + 1), (now, saved)
        if round_ > 0:
            interrupted += len(_beside(path)) > 1  # the kill landed inside a save: its temporary is left
        first = now + 2
    print(f"{interrupted} of {rounds} kills left a save's temporaries; {reads} concurrent loads")
    assert interrupted >= 1  # the kills did land inside saves
    _save(path, first)
    assert _version(path) == first and _beside(path) == ["m"]


def test_stale_temporaries_of_dead_processes_are_removed_and_nothing_else(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    names = {
        f".m.tmp-{dead}-abcd1234": True,
        f".m.old-{dead}-zz_9zz00": True,  # a killed save's: removed
        f".m.tmp-{alive}-abcd1234": False,  # a running process's save: kept
        ".m.tmp-mine": False,
        "m.backup": False,
        f".mm.tmp-{dead}-abcd1234": False,
        f".m.tmp-{dead}-x": False,
    }
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_text("x")
    _save(tmp_path / "m", 1)
    assert _beside(tmp_path / "m") == sorted(["m", *(n for n, removed in names.items() if not removed)])


def test_loading_a_saved_classifier_after_an_overwrite(data, tmp_path):
    """The estimator's save goes through the same swap: saving twice then loading gives the second model."""
    X, Y = data
    first = XCClassifier(hidden_sizes=(8,), epochs=1, device="cpu", random_state=0).fit(X, Y)
    second = XCClassifier(hidden_sizes=(8,), epochs=1, device="cpu", random_state=1).fit(X, Y)
    first.save(tmp_path / "m")
    second.save(tmp_path / "m")
    loaded = XCClassifier.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict_proba(X[:20]), second.predict_proba(X[:20]))
    assert _beside(tmp_path / "m") == ["m"]
