"""Two "machines" as two ``sparsexc train --nnodes 2 --node-rank 0/1`` launches on 127.0.0.1 (torchrun's
rendezvous, one gloo process each) train like one process, and only the machine of global rank 0 writes the run.

A port that was free a moment ago may be taken by the time node 0 listens on it: the pair is launched again
(up to 3 times) only when a node says its port is in use; any other failure fails at once, with both nodes'
output. Each attempt has a generous deadline, so a hang fails with the output instead of stalling the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from _shared_data import requires_dataset
from safetensors.numpy import load_file

from sparsexc.cli import main
from sparsexc.distributed.launch import free_port

pytestmark = requires_dataset("emotions")
ARGS = [
    "train",
    "--dataset",
    "emotions",
    "--hidden-sizes",
    "8",
    "--dropout",
    "0",  # dropout masks are drawn per rank: with them a group is only statistically equal to one process
    "--epochs",
    "2",
    "--batch-size",
    "64",
    "--seed",
    "0",
    "--device",
    "cpu",
    "--validation-fraction",
    "0",
    "--quiet",
]
TRIES = 3
DEADLINE_S = 600.0  # one attempt; about 1.5 minutes on a loaded 2-core machine
PORT_IN_USE = ("EADDRINUSE", "address already in use")
RUN_FILES = {"metrics.json", "model", "run.json", "train_log.jsonl"}  # and curves.png, with matplotlib


@dataclass
class Node:
    """What one launch left: its exit code and output."""

    returncode: int | None
    stdout: str
    stderr: str

    def port_in_use(self) -> bool:
        return self.returncode not in (0, None) and any(marker in self.stderr for marker in PORT_IN_USE)


def _report(nodes: list[Node]) -> str:
    return "\n".join(
        f"--- node {r}: exit code {n.returncode}\nstdout:\n{n.stdout[-3000:]}\nstderr:\n{n.stderr[-3000:]}"
        for r, n in enumerate(nodes)
    )


def _end(processes: list[subprocess.Popen]) -> None:
    # SIGTERM to each launch's process group: torchrun's agent passes it on to its workers (their own
    # sessions); SIGKILL whatever is left after a while
    for p in processes:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    limit = time.monotonic() + 30
    for p in processes:
        try:
            p.wait(timeout=max(0.1, limit - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _attempt(folder: Path, outs: list[Path], extra: list[str]) -> list[Node]:
    """Launch node 0 and node 1 on a fresh port; their outcomes once both ended, or once one failed (the
    other is ended after a grace period), or at the deadline (both ended)."""
    folder.mkdir(parents=True)
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes, logs = [], []
    for rank, out in enumerate(outs):
        flags = ["--nnodes", "2", "--node-rank", str(rank), "--nproc-per-node", "1"]
        flags += ["--rdzv-endpoint", f"127.0.0.1:{port}", *extra, "--out", str(out)]
        stdout, stderr = folder / f"node{rank}.out", folder / f"node{rank}.err"
        logs.append((stdout, stderr))
        with open(stdout, "w") as fo, open(stderr, "w") as fe:
            command = [sys.executable, "-m", "sparsexc.cli", *ARGS, *flags]
            processes.append(subprocess.Popen(command, stdout=fo, stderr=fe, env=env, start_new_session=True))
    try:
        limit = time.monotonic() + DEADLINE_S
        failed_at = None
        while time.monotonic() < limit:
            codes = [p.poll() for p in processes]
            if all(code is not None for code in codes):
                break
            if failed_at is None and any(code not in (None, 0) for code in codes):
                failed_at = time.monotonic()
            if failed_at is not None and time.monotonic() > failed_at + 60:
                break  # the other node gets a minute to stop by itself (or say its side), then is ended
            time.sleep(0.5)
        codes = [p.poll() for p in processes]
    finally:
        _end(processes)
    return [Node(code, out.read_text(), err.read_text()) for code, (out, err) in zip(codes, logs)]


def _launch_two_nodes(
    folder: Path, outs: list[Path], extra: list[str] = (), expected: tuple[int, int] = (0, 0)
) -> list[Node]:
    for attempt in range(TRIES):
        nodes = _attempt(folder / f"attempt{attempt}", outs, list(extra))
        if not any(n.port_in_use() for n in nodes):
            break
    assert tuple(n.returncode for n in nodes) == expected, _report(nodes)
    return nodes


def _losses(out: Path) -> list[float]:
    return [json.loads(line)["train_loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    """The same training in this process, no process group."""
    out = tmp_path_factory.mktemp("one") / "run"
    assert main([*ARGS, "--out", str(out)]) == 0
    return out


def _assert_trained_like(out: Path, reference: Path) -> None:
    # the data-parallel equality of tests/distributed/test_data_parallel.py: losses and weights to rtol 1e-4
    np.testing.assert_allclose(_losses(out), _losses(reference), rtol=1e-4)
    mine, theirs = load_file(out / "model" / "model.safetensors"), load_file(reference / "model" / "model.safetensors")
    assert mine.keys() == theirs.keys()
    for name in mine:
        np.testing.assert_allclose(mine[name], theirs[name], rtol=1e-4, atol=1e-5, err_msg=name)


# torch elastic's exit-barrier race: once every worker has finished, each machine's agent waits at a barrier on
# the rendezvous store, which node 0 hosts; when node 0 passes it and exits first, node 1's last wait on the store
# fails and its agent logs the error with the store's C++ trace, then exits 0 (seen on a loaded CI machine: both
# nodes exit 0 with the run complete). That report ends the output; what comes before it is still checked.
EXIT_BARRIER = "Error waiting on exit barrier"
BARRIER_REPORT_STARTS = ("TCPStore", "[c10d]", "Exception raised from", "frame #", "elastic/agent/server/api.py")


def _own(stderr: str) -> str:
    """A node's stderr without torch elastic's exit-barrier report (see EXIT_BARRIER)."""
    if EXIT_BARRIER not in stderr:
        return stderr
    lines = stderr.splitlines()
    cut = next(i for i, line in enumerate(lines) if any(m in line for m in BARRIER_REPORT_STARTS + (EXIT_BARRIER,)))
    return "\n".join(lines[:cut])


def test_own_output_leaves_out_only_the_exit_barrier_report():
    assert _own("W a warning\nsome error") == "W a warning\nsome error"  # no barrier report: all of it
    race = "loss 0.5\n[W TCPStore.cpp] recv failed\nframe #4: x\nE api.py] Error waiting on exit barrier\nTraceback"
    assert _own(race) == "loss 0.5"
    assert "error" in _own("a real error\n" + race)  # an error before the report is still seen


def test_two_machines_sharing_out_train_like_one_process(tmp_path, one_process):
    """The static rendezvous (torchrun's default): node 0 holds global rank 0. Both machines are given the same
    --out (a shared file system): node 1 neither fails on the folder nor writes into it; one set of run files,
    no lock or launch file left."""
    out = tmp_path / "run"
    nodes = _launch_two_nodes(tmp_path / "logs", [out, out])
    assert nodes[0].stdout.count("micro-F1") == 1 and "micro-F1" not in nodes[1].stdout  # rank 0 alone reports
    assert not any("error" in _own(n.stderr) or "Traceback" in _own(n.stderr) for n in nodes), _report(nodes)
    assert {p.name for p in out.iterdir()} - {"curves.png"} == RUN_FILES  # no .sparsexc.lock, no launch_config.json
    options = json.loads((out / "run.json").read_text())["options"]
    assert options["epochs"] == 2 and not {"nnodes", "node-rank", "rdzv-endpoint"} & set(options)
    _assert_trained_like(out, one_process)


def test_with_c10d_only_the_machine_of_rank_0_writes(tmp_path, one_process):
    """The c10d rendezvous numbers the machines itself, so either may hold global rank 0. Each machine is given
    its own --out (as on disks that are not shared): the run is in exactly one of them, the other folder is
    never made."""
    outs = [tmp_path / "node0-run", tmp_path / "node1-run"]
    nodes = _launch_two_nodes(tmp_path / "logs", outs, ["--rdzv-backend", "c10d", "--rdzv-id", "test-c10d"])
    written = [out for out in outs if out.exists()]
    assert len(written) == 1, _report(nodes)
    assert {p.name for p in written[0].iterdir()} - {"curves.png"} == RUN_FILES
    assert sum(n.stdout.count("micro-F1") for n in nodes) == 1
    _assert_trained_like(written[0], one_process)


def test_a_refusal_of_out_stops_both_machines_with_one_line_each(tmp_path):
    """--out holds a run and neither --overwrite nor --resume is given: rank 0 (node 0) refuses it inside the
    group, every rank learns it, and both machines stop (no machine is left waiting) with exit code 2: node 0
    says why, node 1 that it stopped; the folder is left as it was."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("{}")
    nodes = _launch_two_nodes(tmp_path / "logs", [out, out], expected=(2, 2))
    lines = [n.stderr.splitlines() for n in nodes]
    assert [len(node_lines) for node_lines in lines] == [1, 1], _report(nodes)
    assert lines[0][0] == (
        f"sparsexc: error: run folder {out} already holds a run (run.json); pass --overwrite to replace it, "
        "--resume to continue it, or choose another --out"
    )
    assert lines[1][0].startswith("sparsexc: error: the 1 training process(es) of node 1 of 2 (torchrun) exited")
    assert sorted(p.name for p in out.iterdir()) == ["run.json"] and (out / "run.json").read_text() == "{}"
