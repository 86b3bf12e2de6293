"""Named multi-label data sets, text-task builders, a synthetic generator and summary statistics.

>>> from sparsexc.datasets import load, list_datasets, describe
>>> data = load("bibtex")                 # XC split 1; works with no data directory (bundled copy)
>>> X, Y = data.train                     # CSR float32 features, CSR 0/1 labels
>>> describe(data.test)["label_cardinality"]

Files are looked up in ``data_dir``, else ``$SPARSEXC_DATA``, else ``~/sparsexc_data``; parsed and built sets
are cached under ``$SPARSEXC_CACHE`` (default ``~/.cache/sparsexc``). See docs/data.md.

Generators: :func:`synthetic` (Zipf labels, sparse features), :func:`label_proportion_documents` (the
sparsemax paper's documents) and :func:`latent_hierarchy` (dense features from a hierarchy of label clusters;
:func:`latent_hierarchy_log_posterior` is its exact Bayes posterior). :func:`read_packages` reads a Debian
``Packages`` index into :class:`DebianPackage` records: the texts behind ``debtags`` and ``debian-deps``,
whose ``row_ids`` are package names.
"""

from ._download import (
    ChecksumError,
    DownloadError,
    DownloadResult,
    NoSourceError,
    download,
)
from ._paths import resolve_cache_dir, resolve_data_dir
from .debian import DebianPackage, read_packages
from .describe import describe
from .registry import (
    REGISTRY,
    DatasetSpec,
    UnknownDatasetError,
    get_spec,
    list_datasets,
    load,
    load_bundled,
    locate,
)
from .splits import Splits, seeded_split
from .synthetic import label_proportion_documents, latent_hierarchy, latent_hierarchy_log_posterior, synthetic

__all__ = [
    "REGISTRY",
    "ChecksumError",
    "DatasetSpec",
    "DebianPackage",
    "DownloadError",
    "DownloadResult",
    "NoSourceError",
    "Splits",
    "UnknownDatasetError",
    "describe",
    "download",
    "get_spec",
    "label_proportion_documents",
    "latent_hierarchy",
    "latent_hierarchy_log_posterior",
    "list_datasets",
    "load",
    "load_bundled",
    "locate",
    "read_packages",
    "resolve_cache_dir",
    "resolve_data_dir",
    "seeded_split",
    "synthetic",
]
