"""``python -m sparsexc.distributed._torchrun ARGS``: torchrun (``torch.distributed.run``) without its failure report.

When a worker fails, each rank has already said why in one line (``sparsexc: error (rank r): ...``); torchrun
would add a multi-line ``ChildFailedError`` report and its agent's error log. Here a failed worker group is exit
code 2 when every worker that failed by itself exited with 2 (a mistake of the user's, e.g. a run folder that
rank 0 refused; the workers torchrun then ended by a signal do not count), else 1, and nothing more; the
launching ``sparsexc train`` adds its own one line, or none when a worker said it.

A rendezvous that fails before any worker starts (the port of ``--rdzv-endpoint`` in use on the node that serves
the store, a machine that never joins within the timeout) is one line ``sparsexc: error: ...`` from here and
exit code :data:`RENDEZVOUS_FAILED`, in place of the agent's traceback.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["RENDEZVOUS_FAILED", "main"]

#: the exit code of a rendezvous that failed, said here in one line (no worker ran)
RENDEZVOUS_FAILED = 3
_USER_ERROR = 2  # the exit code of sparsexc's one-line user errors (sparsexc.errors.ConfigurationError's)


def main(argv: list[str] | None = None) -> int:
    """Run torchrun with ``argv``; 0 when every worker succeeded, 2 or 1 when the group failed (2: every worker
    that failed by itself exited with 2), :data:`RENDEZVOUS_FAILED` when the machines did not meet."""
    from torch.distributed import DistError
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.run import main as torchrun

    # the agent logs each failed worker at ERROR level: the workers said it themselves
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        torchrun(sys.argv[1:] if argv is None else argv)
    except ChildFailedError as exc:
        # the workers torchrun ended after the first failure died of its signal (a negative code): not a cause
        codes = {failure.exitcode for failure in exc.failures.values() if failure.exitcode > 0}
        return _USER_ERROR if codes == {_USER_ERROR} else 1
    except (DistError, RendezvousError) as exc:
        print(f"sparsexc: error: {rendezvous_message(exc)}", file=sys.stderr, flush=True)
        return RENDEZVOUS_FAILED
    return 0


def rendezvous_message(exc: BaseException) -> str:
    """One line for a failed rendezvous: torchrun's message (its first line), and what to do when the port is
    taken."""
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    hint = "; choose another port in --rdzv-endpoint" if "EADDRINUSE" in detail else ""
    return f"the machines' rendezvous (torchrun) failed: {detail}{hint}"


if __name__ == "__main__":
    sys.exit(main())
