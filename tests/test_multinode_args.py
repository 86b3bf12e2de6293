"""``sparsexc train``'s multi-machine flags (torchrun's ``--nnodes``, ``--node-rank``, ``--rdzv-endpoint``,
``--rdzv-backend``, ``--rdzv-id``): their checks (one error line, exit 2, before any data are read or torchrun
starts), what reaches torchrun, and ``_torchrun``'s exit codes. Fast: torchrun is replaced, or runs ``true``."""

from __future__ import annotations

import json
import socket
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparsexc.cli import main
from sparsexc.distributed import _torchrun
from sparsexc.distributed.launch import Nodes, parse_endpoint
from sparsexc.errors import ConfigurationError

FAST = ["--epochs", "1", "--hidden-sizes", "", "--seed", "0", "--quiet"]


def _xc(path: Path, n_rows: int = 30, n_features: int = 10, n_labels: int = 4) -> Path:
    """A tiny XC text file: 3 random features and one label per row."""
    rng = np.random.default_rng(0)
    lines = [f"{n_rows} {n_features} {n_labels}"]
    for i in range(n_rows):
        features = sorted(rng.choice(np.arange(1, n_features), 3, replace=False).tolist())
        lines.append(f"{i % n_labels} " + " ".join(f"{j}:{rng.uniform(0.1, 1):.3f}" for j in features))
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------------------------ parse_endpoint


@given(
    host=st.sampled_from(["127.0.0.1", "node-01", "gpu7.cluster.example.org", "[::1]", "[fe80::1]"]),
    port=st.integers(1, 65535),
)
def test_parse_endpoint_splits_host_and_port(host, port):
    assert parse_endpoint(f"{host}:{port}") == (host, port)


@pytest.mark.parametrize(
    "text", ["node01", "node01:", ":29500", "node01:0", "node01:65536", "node01:-1", "node01:29x", "::1:29500", "a b:1"]
)
def test_parse_endpoint_refuses_anything_else(text):
    with pytest.raises(ConfigurationError, match=r"rdzv_endpoint=.* must be HOST:PORT with a port in 1\.\.65535"):
        parse_endpoint(text)


# --------------------------------------------------------------------------------------------------------- Nodes


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nnodes": 0}, r"nnodes=0 must be an integer of at least 1"),
        ({"nnodes": 2, "node_rank": 2, "rdzv_endpoint": "h:1"}, r"node_rank=2 must be in \[0, 2\)"),
        ({"nnodes": 2, "node_rank": -1, "rdzv_endpoint": "h:1"}, r"node_rank=-1 must be in \[0, 2\)"),
        ({"node_rank": 1}, r"node_rank=1 must be in \[0, 1\)"),
        ({"nnodes": 2}, r"nnodes=2 needs rdzv_endpoint=HOST:PORT"),
        ({"nnodes": 2, "rdzv_endpoint": "h:70000"}, r"rdzv_endpoint='h:70000' must be HOST:PORT"),
        ({"nnodes": 2, "rdzv_endpoint": "h:1", "rdzv_backend": "etcd"}, r"rdzv_backend='etcd' must be one of"),
        ({"nnodes": 2, "rdzv_endpoint": "h:1", "rdzv_id": "a b"}, r"rdzv_id='a b' must be a non-empty word"),
    ],
)
def test_nodes_refuses_a_bad_layout(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        Nodes(**kwargs)


def test_torchrun_flags_of_each_layout():
    assert Nodes().torchrun_args() == ["--standalone"]  # one machine: torchrun picks a free local port
    assert Nodes(nnodes=2, node_rank=1, rdzv_endpoint="n0:29500").torchrun_args() == [
        "--nnodes=2",
        "--rdzv-backend=static",
        "--rdzv-endpoint=n0:29500",
        "--node-rank=1",
    ]
    # c10d numbers the nodes itself (torchrun warns that it ignores --node-rank): not passed
    assert Nodes(nnodes=3, node_rank=2, rdzv_endpoint="n0:1", rdzv_backend="c10d", rdzv_id="j7").torchrun_args() == [
        "--nnodes=3",
        "--rdzv-backend=c10d",
        "--rdzv-endpoint=n0:1",
        "--rdzv-id=j7",
    ]
    assert Nodes(rdzv_endpoint="127.0.0.1:1234").torchrun_args()[:1] == ["--nnodes=1"]  # a fixed port, one node


# ----------------------------------------------------------------------------------------------------- the CLI


@pytest.fixture
def no_launch(monkeypatch):
    """Data reads and torchrun made to fail the test: a flag mistake must be said before either."""

    def refuse(*args, **kwargs):
        raise AssertionError("the data were read or torchrun started before the flags were checked")

    import sparsexc.cli._training

    monkeypatch.setattr(sparsexc.cli._training, "load_source", refuse)
    monkeypatch.setattr("sparsexc.cli._data.load_source", refuse)
    monkeypatch.setattr("sparsexc.distributed.launch.relaunch_with_torchrun", refuse)


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "n0:29500"], "node_rank=2 must be in [0, 2)"),
        (["--node-rank", "1"], "node_rank=1 must be in [0, 1)"),
        (["--nnodes", "2", "--node-rank", "-1", "--rdzv-endpoint", "n0:1"], "'--node-rank': -1 is not in the range"),
        (["--nnodes", "0"], "'--nnodes': 0 is not in the range x>=1"),
        (["--nnodes", "2", "--node-rank", "1"], "nnodes=2 needs rdzv_endpoint=HOST:PORT"),
        (["--nnodes", "2", "--rdzv-endpoint", "n0"], "rdzv_endpoint='n0' must be HOST:PORT with a port in 1..65535"),
        (["--nnodes", "2", "--rdzv-endpoint", "n0:0"], "rdzv_endpoint='n0:0' must be HOST:PORT"),
        (["--nnodes", "2", "--rdzv-endpoint", "n0:65536"], "rdzv_endpoint='n0:65536' must be HOST:PORT"),
        (["--nnodes", "2", "--rdzv-endpoint", "n0:1", "--rdzv-backend", "etcd"], "must be one of static, c10d"),
    ],
)
def test_a_bad_launch_flag_is_one_line_before_anything_runs(tmp_path, capsys, no_launch, flags, says):
    data = _xc(tmp_path / "data.txt")
    out = tmp_path / "o"
    assert main(["train", "--train", str(data), "--test", str(data), *FAST, *flags, "--out", str(out)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sparsexc: error: ") and says in lines[0], lines
    assert not out.exists()


def test_a_bad_launch_key_in_a_config_file_is_one_line(tmp_path, capsys, no_launch):
    data = _xc(tmp_path / "data.txt")
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"nnodes": 2, "node-rank": 5, "rdzv-endpoint": "n0:29500"}))
    args = ["train", "--config", str(config), "--train", str(data), "--test", str(data), *FAST]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "node_rank=5 must be in [0, 2)" in lines[0], lines


@pytest.mark.parametrize("model", [[], ["--model", "tree"]])
def test_the_flags_reach_torchrun_and_the_launcher_writes_nothing_into_out(tmp_path, monkeypatch, model):
    """Over several machines the launching process neither claims nor writes --out (the workers' rank 0 does,
    in the group): the options reach the workers through a file of its own; --nproc-per-node defaults to 1;
    --overwrite goes to the workers, who claim the folder. Any model: the flags are the launch's, not the
    model's."""
    data = _xc(tmp_path / "data.txt")
    out = tmp_path / "o"
    seen = {}

    def fake_torchrun(nproc, module_args, nodes=None):
        config = Path(module_args[module_args.index("--config") + 1])
        seen.update(nproc=nproc, args=list(module_args), nodes=nodes, config=json.loads(config.read_text()))
        seen["config_path"] = config
        return 0

    monkeypatch.setattr("sparsexc.distributed.launch.relaunch_with_torchrun", fake_torchrun)
    flags = ["--nnodes", "2", "--node-rank", "1", "--rdzv-endpoint", "n0:29500", "--rdzv-id", "job7", "--overwrite"]
    assert main(["train", "--train", str(data), "--test", str(data), *FAST, *model, *flags, "--out", str(out)]) == 0
    assert seen["nproc"] == 1
    assert seen["nodes"] == Nodes(nnodes=2, node_rank=1, rdzv_endpoint="n0:29500", rdzv_id="job7")
    assert seen["args"][:3] == ["sparsexc.cli", "train", "--config"] and "--overwrite" in seen["args"]
    assert out not in seen["config_path"].parents and not seen["config_path"].exists()  # its own file, removed
    assert not {"nnodes", "node-rank", "rdzv-endpoint", "rdzv-id", "overwrite"} & set(seen["config"])
    assert seen["config"]["out"] == str(out)
    assert not out.exists()


def test_one_machine_with_an_endpoint_claims_out_in_the_launcher(tmp_path, monkeypatch):
    # --nnodes 1 (a fixed port instead of --standalone): as --nproc-per-node alone, the launcher holds the lock
    from sparsexc.cli._runlock import HELD_ENV, LOCK_FILE

    data = _xc(tmp_path / "data.txt")
    out = tmp_path / "o"
    seen = {}

    def fake_torchrun(nproc, module_args, nodes=None):
        import os

        seen.update(nodes=nodes, held=os.environ.get(HELD_ENV), locked=(out / LOCK_FILE).exists())
        seen["config_in_out"] = (out / "launch_config.json").is_file()
        return 0

    monkeypatch.setattr("sparsexc.distributed.launch.relaunch_with_torchrun", fake_torchrun)
    flags = ["--nproc-per-node", "2", "--rdzv-endpoint", "127.0.0.1:29500"]
    assert main(["train", "--train", str(data), "--test", str(data), *FAST, *flags, "--out", str(out)]) == 0
    assert seen == {
        "nodes": Nodes(rdzv_endpoint="127.0.0.1:29500"),
        "held": str(out.resolve()),
        "locked": True,
        "config_in_out": True,
    }


def test_a_worker_failure_seen_only_on_another_machine_is_one_line_here(tmp_path, monkeypatch, capsys):
    # node 1's workers stopped without a word (rank 0, elsewhere, said why): one line naming the node, the
    # workers' code (2: rank 0 refused --out, a mistake of the user's)
    data = _xc(tmp_path / "data.txt")
    monkeypatch.setattr("sparsexc.distributed.launch.relaunch_with_torchrun", lambda *a, **k: 2)
    flags = ["--nnodes", "2", "--node-rank", "1", "--rdzv-endpoint", "n0:29500"]
    assert main(["train", "--train", str(data), "--test", str(data), *FAST, *flags, "--out", str(tmp_path / "o")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert "training process(es) of node 1 of 2 (torchrun) exited with code 2" in lines[0]
    assert "said on the machine that holds global rank 0" in lines[0]


# ------------------------------------------------------------------------------------------------- _torchrun


# one rank leaves its pid in a file, then exits
_SAY_PID = (
    "import pathlib\n"
    "mark = pathlib.Path(os.environ['SPARSEXC_TEST_MARK'])\n"
    "mark.with_suffix('.tmp').write_text(str(os.getpid()))\n"
    "mark.with_suffix('.tmp').rename(mark)\n"
)
# the other rank waits until that one has exited by itself (a zombie or gone): otherwise torchrun, seeing one rank
# fail first, may end the other by a signal before its own exit, and the case would test that signal instead (a
# race under load); if torchrun ends the waiting rank, its signal does not count either way
_AFTER_THE_OTHER = (
    "import pathlib, time\n"
    "mark = pathlib.Path(os.environ['SPARSEXC_TEST_MARK'])\n"
    "deadline = time.monotonic() + 120\n"
    "while time.monotonic() < deadline:\n"
    "    if mark.exists():\n"
    "        try:\n"
    "            stat = pathlib.Path(f'/proc/{int(mark.read_text())}/stat').read_text()\n"
    "        except OSError:\n"
    "            break\n"
    "        if stat.rsplit(')', 1)[1].split()[0] in ('Z', 'X'):\n"
    "            break\n"
    "    time.sleep(0.02)\n"
)


@pytest.mark.parametrize(
    ("rank0", "rank1", "expected"),
    [
        ("sys.exit(0)", "sys.exit(0)", 0),
        ("sys.exit(2)", "sys.exit(2)", 2),  # a user error
        ("sys.exit(1)", "sys.exit(0)", 1),
        ("sys.exit(3)", "sys.exit(0)", 1),  # a worker's 3 is not the wrapper's RENDEZVOUS_FAILED
        ("os.kill(os.getpid(), 9)", "sys.exit(0)", 1),  # a signal alone
        # a user error, and a rank that dies of a signal (as when torchrun ends it): still 2
        (_SAY_PID + "sys.exit(2)", _AFTER_THE_OTHER + "os.kill(os.getpid(), 9)", 2),
        # a user error and another failure, both exits the workers' own
        (_AFTER_THE_OTHER + "sys.exit(2)", _SAY_PID + "sys.exit(1)", 1),
    ],
    ids=["ok", "user-error", "failure", "exit-3", "signal", "user-error+signal", "user-error+failure"],
)
def test_torchrun_wrapper_passes_a_user_error_on_as_2(rank0, rank1, expected, monkeypatch, tmp_path):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("SPARSEXC_TEST_MARK", str(tmp_path / "rank.pid"))
    code = (
        "import os, sys\nif os.environ['LOCAL_RANK'] == '0':\n"
        + textwrap.indent(rank0, "    ")
        + "\nelse:\n"
        + textwrap.indent(rank1, "    ")
    )
    args = ["--standalone", "--nproc-per-node=2", "--no-python", sys.executable, "-c", code]
    assert _torchrun.main(args) == expected


def test_a_port_in_use_is_one_line_and_its_own_exit_code(capfd):
    # the port is held here (bound and listening) for the whole call, so it is in use whatever else runs
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        args = [
            "--nnodes=2",
            "--node-rank=0",
            "--rdzv-backend=static",
            f"--rdzv-endpoint=127.0.0.1:{port}",
            "--nproc-per-node=1",
            "--no-python",
            "true",
        ]
        assert _torchrun.main(args) == _torchrun.RENDEZVOUS_FAILED
    said = [line for line in capfd.readouterr().err.splitlines() if line.startswith("sparsexc: error: ")]
    assert len(said) == 1, said
    assert "rendezvous (torchrun) failed" in said[0] and "EADDRINUSE" in said[0]
    assert said[0].endswith("choose another port in --rdzv-endpoint")
