"""What a measured result depends on: library versions, the machine (CPU, threads, GPU) and its load.

One helper for run folders (``sparsexc train``) and every benchmark, so results record the same fields.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["cpu_model", "environment_info", "package_version"]

_PACKAGES: tuple[str, ...] = ("sparsexc", "torch", "numpy", "scipy", "scikit-learn", "click")


def package_version(package: str) -> str | None:
    """Installed version of ``package`` (distribution name), or None when it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment_info(extra_packages: Iterable[str] = ()) -> dict[str, Any]:
    """Versions of Python and the libraries a result depends on, the machine (CPU, threads, GPU) and the
    1/5/15-minute load average at the time of the call (results on shared machines drift with it).

    torch's threads and CUDA device are read from torch when the process imported it; a process that did
    not (a label-tree run: numpy, scipy and numba only) records ``torch_threads`` and ``cuda`` as None
    rather than import torch (a second or two and about 175 MiB) to describe what it never used."""
    torch = sys.modules.get("torch")
    packages = tuple(dict.fromkeys((*_PACKAGES, *extra_packages)))
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": None if torch is None else torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch is not None and torch.cuda.is_available() else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": {p: package_version(p) for p in packages},
    }
