"""The train/test pair every data set loads into, and the seeded split used where none is published."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sparsexc.errors import ConfigurationError
from sparsexc.io.data import MultiLabelData

__all__ = ["Splits", "seeded_split"]


@dataclass
class Splits:
    """A data set's train and test parts, sharing one feature space and one label space.

    Attributes
    ----------
    name : str
        The registry name (``"bibtex"``, ``"debtags"``, ...), or ``"synthetic"``.
    train, test : MultiLabelData
        ``train.X`` is (n_train, n_features), ``train.Y`` is (n_train, n_labels); the test part has the same
        columns, and the same ``feature_names`` / ``label_names``.
    info : dict
        JSON-able provenance: source files, how the split was made (published, XC split number, or seed and
        test fraction), builder version and settings, rows or labels dropped and why.
    row_ids : dict
        ``{"train": [...], "test": [...]}``: an identifier per row where the source has one (a Debian package
        name, a WordNet synset); empty for the file-based sets.
    """

    name: str
    train: MultiLabelData
    test: MultiLabelData
    info: dict = field(default_factory=dict)
    row_ids: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.train.n_features != self.test.n_features:
            raise ConfigurationError(
                f"{self.name}: train has {self.train.n_features} features, test {self.test.n_features}"
            )
        if self.train.n_labels != self.test.n_labels:
            raise ConfigurationError(f"{self.name}: train has {self.train.n_labels} labels, test {self.test.n_labels}")

    def __iter__(self):
        # ``train, test = load(name)`` unpacks like a pair.
        return iter((self.train, self.test))

    @property
    def n_features(self) -> int:
        return self.train.n_features

    @property
    def n_labels(self) -> int:
        return self.train.n_labels


def seeded_split(n_rows: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n_rows)`` into sorted train and test row indices.

    The test part is the first ``round(test_fraction * n_rows)`` entries of
    ``numpy.random.default_rng(seed).permutation(n_rows)``, so the same (n_rows, test_fraction, seed) gives
    the same split on every machine (numpy's PCG64 stream is stable across versions and platforms).

    Returns
    -------
    train_rows, test_rows : ndarray of int64, increasing, disjoint, together ``0..n_rows-1``
    """
    if not 0.0 < test_fraction < 1.0:
        raise ConfigurationError(f"test_fraction must be in (0, 1); got {test_fraction}")
    if n_rows < 2:
        raise ConfigurationError(f"need at least 2 rows to split; got {n_rows}")
    perm = np.random.default_rng(seed).permutation(n_rows)
    n_test = min(max(round(test_fraction * n_rows), 1), n_rows - 1)
    return np.sort(perm[n_test:]).astype(np.int64), np.sort(perm[:n_test]).astype(np.int64)
