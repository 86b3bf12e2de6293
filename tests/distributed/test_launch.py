"""``spawn``: the results in rank order; its failures (an exception on one rank, a rank that hangs while the others
wait in a collective, a run past its deadline) each fail the call within a bounded time, naming every rank's
outcome."""

from __future__ import annotations

import atexit
import os
import time

import pytest
import torch.distributed as dist
from torch.multiprocessing import ProcessRaisedException

from sparsexc.distributed import spawn


def _rank_and_sum():
    value = [dist.get_rank() + 1]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return dist.get_rank(), os.environ["RANK"], os.environ["WORLD_SIZE"], sum(v[0] for v in out)


def _rank1_raises():
    if dist.get_rank() == 1:
        raise ValueError("bad value on rank 1")
    dist.barrier()  # rank 0 waits for rank 1, which never comes


def _rank1_hangs():
    if dist.get_rank() == 1:
        time.sleep(600)  # neither raises nor reaches the collective
    dist.barrier()


def _marks_finalisation(folder):
    # an atexit handler runs only if the rank leaves through the interpreter's finalization
    path = os.path.join(folder, f"finalised-{dist.get_rank()}")
    atexit.register(lambda: open(path, "w").close())
    return dist.get_rank()


def _sleeps():
    time.sleep(600)


def test_results_come_in_rank_order_with_the_torchrun_environment():
    assert spawn(_rank_and_sum, 2) == [(0, "0", "2", 3), (1, "1", "2", 3)]


def test_a_rank_returns_its_result_and_skips_the_interpreters_finalisation(tmp_path):
    # finalization is where gloo's threads aborted finished ranks (see sparsexc._process.exit_process)
    assert spawn(_marks_finalisation, 2, (str(tmp_path),)) == [0, 1]
    assert sorted(os.listdir(tmp_path)) == []


def test_an_exception_on_one_rank_is_raised_naming_it():
    started = time.monotonic()
    with pytest.raises(ProcessRaisedException) as info:
        spawn(_rank1_raises, 2, timeout=30)
    message = str(info.value)
    assert "rank 1 first" in message and info.value.error_index == 1
    assert "rank 1 of 2 failed" in message and "ValueError: bad value on rank 1" in message
    assert "rank 0 of 2" in message  # the waiting rank's outcome is given too
    assert time.monotonic() - started < 120  # rank 0 did not wait out its timeout


def test_a_hung_rank_fails_the_call_within_the_collective_timeout_naming_it():
    started = time.monotonic()
    with pytest.raises(ProcessRaisedException) as info:
        spawn(_rank1_hangs, 2, timeout=20)  # the rendezvous too: room for the ranks to start apart under load
    message = str(info.value)
    # rank 0 gave up waiting in the barrier; rank 1, still running, was ended
    assert "rank 0 of 2 failed" in message and "rank 1 of 2 was still running (ended)" in message
    assert time.monotonic() - started < 180  # not the 600 s rank 1 would sleep


def test_a_run_past_its_deadline_is_ended_naming_the_ranks():
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"rank\(s\) \[0\] of 1 still running after the deadline of 8 s"):
        spawn(_sleeps, 1, deadline=8)
    assert time.monotonic() - started < 120


def test_bad_arguments_are_refused_naming_them():
    with pytest.raises(ValueError, match="nproc=0 must be at least 1"):
        spawn(_sleeps, 0)
    with pytest.raises(ValueError, match="timeout=0 and deadline=None must be positive"):
        spawn(_sleeps, 1, timeout=0, deadline=None)
    with pytest.raises(ValueError, match=r"timeout=300\.0 and deadline=-1 must be positive"):
        spawn(_sleeps, 1, deadline=-1)
