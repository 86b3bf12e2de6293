"""The errors sparsexc raises on purpose: one hierarchy, so callers and the CLI can tell a mistake from a bug.

Every error the library raises because of something the caller can fix (a setting, a file, a name, a missing
optional package) or because the run itself failed is a :class:`SparsexcError`. Anything else that escapes
(a plain ``ValueError``, ``KeyError``, ``IndexError``, ...) is a bug in sparsexc, and the command line shows
its traceback (see :mod:`sparsexc.cli`).

::

    SparsexcError                    exit code 2 unless said otherwise
    ├── ConfigurationError           a bad setting or argument            (also a ValueError)
    │   └── UnknownNameError         an unknown head, sampler, data set   (also a KeyError)
    ├── DataFormatError              a data file breaks its format        (also a ValueError)
    ├── ModelFormatError             a model folder cannot be loaded      (also a ValueError)
    ├── OptionalDependencyError      a setting needs a missing package    (also an ImportError)
    └── RunFailedError               the run itself failed: exit code 1   (also a RuntimeError)
        └── NonFiniteLossError       the training loss became NaN or inf

Subclasses that live with their code: :class:`sparsexc.datasets.UnknownDatasetError` (an
:class:`UnknownNameError`), :class:`sparsexc.datasets.DownloadError` (also an ``OSError``; exit code 1, its
``NoSourceError`` 2) and ``sparsexc.cli._rundir.RunFolderError`` (a damaged run folder).

Each class also derives from the built-in exception the code raised before the hierarchy existed, so every
``except ValueError`` (or ``KeyError``, ``ImportError``, ``RuntimeError``) written against older versions
still catches it. The old names stay importable where they were: ``sparsexc.io.DataFormatError``,
``sparsexc.estimator._safetensors.ModelFormatError``, ``sparsexc._optional.MissingDependencyError`` (an alias
of :class:`OptionalDependencyError`), ``sparsexc.train.trainer.NonFiniteLossError``.

Internal invariants (the code's own state being wrong) are not part of this hierarchy: they stay plain
exceptions and assertions, because they are bugs.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

__all__ = [
    "ConfigurationError",
    "DataFormatError",
    "ModelFormatError",
    "NonFiniteLossError",
    "OptionalDependencyError",
    "RunFailedError",
    "SparsexcError",
    "UnknownNameError",
]

_MAX_FOUND = 80  # characters of the offending text a DataFormatError quotes


class SparsexcError(Exception):
    """Base class of every error sparsexc raises on purpose.

    Attributes
    ----------
    exit_code : int
        The exit code of ``sparsexc`` when the error ends a command: 2 for a mistake the user can fix (the
        default), 1 for a failure of the run (:class:`RunFailedError`).
    """

    exit_code: ClassVar[int] = 2


class ConfigurationError(SparsexcError, ValueError):
    """A setting or argument is wrong: a value out of range, a wrong type, a choice not allowed, a config file
    that does not parse. The message names the setting and what is allowed."""


class UnknownNameError(ConfigurationError, KeyError):
    """A name that is not registered (a head, a sampler, a data set); the message lists the registered names.

    Both a ``KeyError`` (what the head registry raised) and a ``ValueError`` (the sampler registry); unlike a
    plain ``KeyError`` its text is the message itself, without quotes.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DataFormatError(SparsexcError, ValueError):
    """A data file does not follow its format; the one error type every reader raises for malformed input.

    The message is ``"{path}[, line {line}]: [{field}: ]expected {expected}[, found {found!r}]"``.

    Attributes
    ----------
    path : str
        The file that was being read.
    line : int or None
        1-based line number of the offending line (None when the problem is not tied to a line, e.g. a
        missing or truncated file).
    field : str or None
        What was being read there (``"header"``, ``"label id"``, ``"feature value"``, ...).
    expected : str
        What the reader expected to find.
    found : str or None
        What it found instead (shortened to 80 characters).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        expected: str,
        *,
        line: int | None = None,
        field: str | None = None,
        found: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.line = line
        self.field = field
        self.expected = expected
        self.found = None if found is None else _shorten(found)
        where = self.path if line is None else f"{self.path}, line {line}"
        what = f"{field}: " if field else ""
        msg = f"{where}: {what}expected {expected}"
        if self.found is not None:
            msg += f", found {self.found!r}"
        super().__init__(msg)


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_FOUND else text[: _MAX_FOUND - 3] + "..."


class ModelFormatError(SparsexcError, ValueError):
    """A model folder that cannot be loaded: the message names the file and the field or tensor."""


class OptionalDependencyError(SparsexcError, ImportError):
    """A setting needs an optional package that is not installed; the message says how to install it.

    An ``ImportError`` (not a ``ValueError``): the setting is right, the environment lacks the package. The
    user can fix it, so the CLI exits with code 2. See :mod:`sparsexc._optional`.
    """


class RunFailedError(SparsexcError, RuntimeError):
    """The run itself failed although its settings and data were accepted (exit code 1)."""

    exit_code: ClassVar[int] = 1


class NonFiniteLossError(RunFailedError):
    """The training loss became NaN or infinite: training stopped at that step.

    Attributes
    ----------
    epoch : int
        1-based epoch of the step.
    step : int
        1-based step within the epoch.
    loss : float
        The loss value (NaN or infinite).
    """

    def __init__(self, message: str, epoch: int, step: int, loss: float) -> None:
        super().__init__(message)
        self.epoch, self.step, self.loss = epoch, step, loss

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (worker processes send their errors back)
        return type(self), (str(self), self.epoch, self.step, self.loss)
