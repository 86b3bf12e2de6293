"""``python -m sparsexc.distributed._torchrun ARGS``: torchrun (``torch.distributed.run``) without its failure report.

When a worker fails, each rank has already said why in one line (``sparsexc: error (rank r): ...``); torchrun
would add a multi-line ``ChildFailedError`` report and its agent's error log. Here a failed worker group is exit
code 1 and nothing more; the launching ``sparsexc train`` adds its own one line.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run torchrun with ``argv``; 0 when every worker succeeded, 1 when the group failed."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    # the agent logs each failed worker at ERROR level: the workers said it themselves
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        torchrun(sys.argv[1:] if argv is None else argv)
    except ChildFailedError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
