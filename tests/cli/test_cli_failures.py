"""How ``sparsexc`` runs end when something goes wrong (issue 16): one line on stderr and a documented exit code
(2 for the user's mistakes, 1 for failures of the run, 130 when interrupted); a non-finite training loss, out of
memory, a full disk; targets with nothing to learn; run folders that hold a run or are in use by another run.
Tiny XC files, one or two epochs."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsexc.cli import main
from sparsexc.cli._errors import UserError
from sparsexc.cli._runlock import HELD_ENV, LOCK_FILE, claim_run_dir
from sparsexc.estimator import XCClassifier

FAST = ["--epochs", "1", "--hidden-sizes", "", "--seed", "0", "--quiet"]


def _xc(path: Path, n_features: int, rows: list[tuple[list[int], dict[int, float]]]) -> Path:
    n_labels = 1 + max((max(labels) for labels, _ in rows if labels), default=4)
    lines = [f"{len(rows)} {n_features} {max(n_labels, 5)}"]
    for labels, features in rows:
        pairs = " ".join(f"{j}:{v:g}" for j, v in sorted(features.items()))
        lines.append(f"{','.join(map(str, labels))} {pairs}".strip())
    path.write_text("\n".join(lines) + "\n")
    return path


def _rows(n=30, n_features=12, labels=None, seed=0, huge=0):
    """``n`` rows of 3 random features each (and ``huge`` features of value 1e30), one label each (``labels``:
    a function of the row number)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        features = {int(j): float(rng.uniform(0.1, 1)) for j in rng.choice(n_features, 3, replace=False)}
        features.update({j: 1e30 for j in range(huge)})
        rows.append(([] if labels is None else labels(i), features))
    return rows


@pytest.fixture
def data(tmp_path) -> Path:
    """A small training file: 30 rows, 12 features, 5 labels."""
    return _xc(tmp_path / "data.txt", 12, _rows(labels=lambda i: [i % 5]))


def _train(data: Path, out: Path, *extra: str) -> int:
    return main(["train", "--train", str(data), "--test", str(data), "--out", str(out), *FAST, *extra])


# ---------------------------------------------------------------------------------------------- exit codes


def test_help_lists_the_exit_codes(capsys):
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit codes: 0 success; 2 a usage or input error" in text and "1 the run failed" in text
    assert "130 interrupted" in text


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--dataset", "no-such-set"],
        ["train", "--dataset", "bibtex", "--head", "no-such-head"],
        ["train", "--train", "BAD", "--test", "BAD"],
        ["train", "--train", "MISSING", "--test", "MISSING"],
        ["train", "--dataset", "bibtex", "--epochs", "0"],
        ["datasets", "info", "no-such-set"],
    ],
)
def test_every_user_error_exits_2(tmp_path, args, one_error_line):
    bad = tmp_path / "bad.txt"
    bad.write_text("2 4 3\n0 1:1\n1 2:x\n")
    args = [{"BAD": str(bad), "MISSING": str(tmp_path / "missing.txt")}.get(a, a) for a in args]
    out = ["--out", str(tmp_path / "o")] if args[0] == "train" else []
    assert main([*args, *out]) == 2
    one_error_line()
    assert not (tmp_path / "o").exists()  # nothing written, not even the lock file


def test_interrupted_exits_130(data, tmp_path, monkeypatch, capsys):
    def interrupted(self, X, Y, *args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(XCClassifier, "fit", interrupted)
        assert _train(data, tmp_path / "o") == 130
    assert "sparsexc: aborted" in capsys.readouterr().err
    _train_again_is_possible(data, tmp_path / "o")


def _train_again_is_possible(data: Path, out: Path) -> None:
    # the failed run left no run files and released its lock: the same command runs now
    assert not (out / "run.json").exists()
    assert _train(data, out) == 0


# ---------------------------------------------------------------------------------------------- nonsense training


def test_non_finite_loss_ends_in_one_line_and_exit_1(tmp_path, one_error_line):
    data = _xc(tmp_path / "huge.txt", 60, _rows(32, 60, labels=lambda i: [i % 5], huge=50))
    out = tmp_path / "o"
    # the raw 1e30 features (preprocessing would scale them to finite losses; issue 20)
    code = _train(
        data,
        out,
        "--head",
        "negative-sampling",
        "--validation-fraction",
        "0",
        "--batch-size",
        "16",
        "--preprocess",
        "none",
    )
    assert code == 1
    line = one_error_line()
    assert "the training loss is inf at epoch 1, step 1 of 2" in line
    assert "largest absolute feature value is 1e+30" in line and "lower lr" in line
    assert not (out / "run.json").exists() and not (out / "model").exists()


def test_targets_without_positives_exit_2(tmp_path, one_error_line):
    data = _xc(tmp_path / "empty.txt", 12, _rows(labels=lambda i: []))
    assert _train(data, tmp_path / "o") == 2
    assert f"{data}: Y holds no positive label: all 30 rows have an empty label set" in one_error_line()
    assert not (tmp_path / "o").exists()


def test_targets_with_one_label_warn_in_one_line(tmp_path, capsys):
    data = _xc(tmp_path / "one.txt", 12, _rows(labels=lambda i: [2] if i % 3 else []))
    assert _train(data, tmp_path / "o") == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "one label" in line]
    assert len(lines) == 1 and lines[0].startswith("sparsexc: warning: Y's positives all belong to one label (label 2")


# ---------------------------------------------------------------------------------------------- memory and disk


@pytest.mark.parametrize(
    "error, detail",
    [
        (
            torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total)\nmore text"),
            "out of memory (CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total)) while training (",
        ),
        (
            RuntimeError(
                "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to "
                "allocate 4800000000 bytes."
            ),
            "you tried to allocate 4800000000 bytes.) while training (",
        ),
        (MemoryError(), "out of memory (MemoryError) while training ("),
    ],
)
def test_out_of_memory_in_a_tensor_allocation(data, tmp_path, monkeypatch, error, detail, one_error_line):
    from sparsexc.models.batch import FeatureBatch

    def allocate(*args, **kwargs):
        raise error

    with monkeypatch.context() as patched:
        patched.setattr(FeatureBatch, "from_csr", allocate)  # the first tensor of every training step
        assert _train(data, tmp_path / "o") == 1
    line = one_error_line()
    assert detail in line and "rows x 12 features, 5 labels" in line and "--batch-size" in line
    _train_again_is_possible(data, tmp_path / "o")


def test_disk_full_writing_the_run_files(data, tmp_path, monkeypatch, one_error_line):
    from sparsexc.cli import _training

    out = tmp_path / "o"

    def full(path, obj):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(_training, "write_json", full)
    assert _train(data, out) == 1
    line = one_error_line()
    assert f"no space left on the device (disk full) ({out / 'run.json'}) while writing {out / 'run.json'}" in line
    assert "free some space or choose another --out" in line


def test_quota_exceeded_saving_the_model(data, tmp_path, monkeypatch, one_error_line):
    def full(self, *args, **kwargs):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(XCClassifier, "save", full)
    out = tmp_path / "o"
    assert _train(data, out) == 1
    assert f"disk quota exceeded while saving the model to {out / 'model'}" in one_error_line()


def test_disk_full_writing_predictions(data, tmp_path, monkeypatch, one_error_line):
    from sparsexc.cli import predict_cmd

    out = tmp_path / "o"
    assert _train(data, out) == 0

    def full(handle, lines):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(predict_cmd, "_write_lines", full)
    target = tmp_path / "pred.txt"
    assert main(["predict", str(out), "--input", str(data), "--top-k", "2", "--output", str(target)]) == 1
    assert f"(disk full) while writing {target}" in one_error_line()
    assert not target.exists() and not list(tmp_path.glob(".pred.txt.*"))  # the temp file is gone too


# ---------------------------------------------------------------------------------------------- run folders


def test_a_folder_holding_a_run_needs_overwrite_or_resume(data, tmp_path, capsys, one_error_line):
    out = tmp_path / "o"
    assert _train(data, out) == 0
    before = (out / "run.json").read_text()
    capsys.readouterr()
    assert _train(data, out) == 2
    line = one_error_line()
    assert f"run folder {out} already holds a run (run.json, model)" in line
    assert "pass --overwrite to replace it, --resume to continue it, or choose another --out" in line
    assert (out / "run.json").read_text() == before
    assert main(["quickstart", "--out", str(out), "--quiet"]) == 2  # refused before any data are read
    assert "already holds a run" in one_error_line()
    assert _train(data, out, "--overwrite", "--resume") == 2
    assert "--overwrite and --resume exclude each other" in one_error_line()
    # --overwrite: the old run's files go first, stale checkpoints and evaluation included
    (out / "evaluation.json").write_text("{}")
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "checkpoint.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    assert _train(data, out, "--overwrite", "--epochs", "2") == 0
    assert not (out / "evaluation.json").exists() and not (out / "checkpoints").exists()
    assert (out / "notes.txt").read_text() == "mine"  # not a run file: left alone
    assert json.loads((out / "run.json").read_text())["epochs_run"] == 2
    # --resume continues (here: from no checkpoint, a fresh start) into the folder
    assert _train(data, out, "--resume") == 0
    # a folder holding only checkpoints (a run that died) is a run too
    (out / "run.json").unlink()
    shutil_rmtree(out / "model")
    (out / "checkpoints").mkdir(exist_ok=True)
    capsys.readouterr()
    assert _train(data, out) == 2
    assert "already holds a run (checkpoints)" in one_error_line()


def shutil_rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


_HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sparsexc.cli._runlock import claim_run_dir

    with claim_run_dir(Path(sys.argv[1])):
        print("locked", flush=True)
        sys.stdin.read()  # hold the lock until stdin closes
    """
)


def _holder(out: Path) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_run_folder_in_use_is_refused_at_once(data, tmp_path, monkeypatch, capsys, one_error_line):
    out = tmp_path / "o"
    holder = _holder(out)
    try:
        assert _train(data, out) == 2
        line = one_error_line()
        assert f"run folder {out} is in use by another sparsexc run (pid {holder.pid})" in line
        assert not (out / "run.json").exists()
        # the same from the console script, a second real process
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "sparsexc.cli",
                "train",
                "--train",
                str(data),
                "--test",
                str(data),
                "--out",
                str(out),
                *FAST,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and f"(pid {holder.pid})" in result.stderr
        # the workers of a --nproc-per-node launch: their parent holds the lock, they claim nothing
        monkeypatch.setenv(HELD_ENV, str(out))
        with claim_run_dir(out):
            pass
        monkeypatch.delenv(HELD_ENV)
    finally:
        holder.kill()  # SIGKILL: no clean-up in the holder; the operating system drops its lock
        holder.wait()
    assert holder.returncode == -signal.SIGKILL
    assert _train(data, out) == 0
    assert not (out / LOCK_FILE).exists()  # a run that ended deletes its lock file


def test_the_lock_is_released_when_the_run_ends(tmp_path):
    out = tmp_path / "o"
    with (
        claim_run_dir(out),
        pytest.raises(UserError, match=r"in use by another sparsexc run \(pid \d+\)"),
        claim_run_dir(out),  # another open file description: flock refuses it, as it would another process
    ):
        pass
    with claim_run_dir(out):  # released
        pass
    holder = _holder(out)  # and another process can take it
    holder.stdin.close()
    assert holder.wait(timeout=60) == 0


def _claim_on_two_ranks(folders: list[str]):
    from sparsexc.distributed import rank

    outcomes = []
    for folder in folders:
        try:
            with claim_run_dir(Path(folder)):
                outcomes.append(("claimed", os.getpid(), (Path(folder) / LOCK_FILE).read_text().strip()))
                # rank 0 deletes the lock file when it leaves the block: every rank reads it first
                torch.distributed.barrier()
        except UserError as exc:
            outcomes.append(("refused", rank(), exc.format_message()))
    return outcomes


def test_ranks_of_a_process_group_claim_through_rank_0(tmp_path):
    # torchrun started by hand: rank 0 takes the lock, every rank learns its outcome and stops with it
    from sparsexc.distributed import spawn

    taken, free = tmp_path / "taken", tmp_path / "free"
    taken.mkdir()
    (taken / "run.json").write_text("{}")
    results = spawn(_claim_on_two_ranks, 2, ([str(taken), str(free)],))
    (refused0, claimed0), (refused1, claimed1) = results
    assert refused0[0] == refused1[0] == "refused" and refused0[2] == refused1[2]
    assert "already holds a run (run.json)" in refused0[2]
    assert claimed0[0] == claimed1[0] == "claimed"
    assert claimed0[2] == claimed1[2] == str(claimed0[1])  # the lock file names rank 0's pid


def test_the_launching_process_refuses_before_torchrun_starts(tmp_path):
    # --nproc-per-node: the launching process claims the folder and checks the labels; one line, no torchrun report
    def launch(data: Path, out: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "sparsexc.cli",
                "train",
                "--train",
                str(data),
                "--test",
                str(data),
                "--nproc-per-node",
                "2",
                "--out",
                str(out),
                *FAST,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )

    empty = _xc(tmp_path / "empty.txt", 12, _rows(labels=lambda i: []))
    result = launch(empty, tmp_path / "a")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"{empty}: Y holds no positive label" in result.stderr and not (tmp_path / "a").exists()
    data = _xc(tmp_path / "data.txt", 12, _rows(labels=lambda i: [i % 5]))
    holder = _holder(tmp_path / "b")
    try:
        result = launch(data, tmp_path / "b")
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"is in use by another sparsexc run (pid {holder.pid})" in result.stderr


def test_a_failure_in_the_torchrun_workers_ends_in_one_line(tmp_path):
    # the workers say why (rank 0's line); neither torchrun's report nor the launching process adds to it
    data = _xc(tmp_path / "huge.txt", 60, _rows(32, 60, labels=lambda i: [i % 5], huge=50))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparsexc.cli",
            "train",
            "--train",
            str(data),
            "--test",
            str(data),
            "--nproc-per-node",
            "2",
            "--out",
            str(tmp_path / "o"),
            *FAST,
            "--head",
            "negative-sampling",
            "--validation-fraction",
            "0",
            "--batch-size",
            "16",
            "--preprocess",  # the raw 1e30 features (preprocessing would scale them to finite losses; issue 20)
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("sparsexc: error: the training loss is inf at epoch 1, step 1 of 2")
