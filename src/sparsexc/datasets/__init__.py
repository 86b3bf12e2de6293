"""Named multi-label data sets, text-task builders, a synthetic generator and summary statistics.

>>> from sparsexc.datasets import load, list_datasets, describe
>>> data = load("bibtex")                 # XC split 1; works with no data directory (bundled copy)
>>> X, Y = data.train                     # CSR float32 features, CSR 0/1 labels
>>> describe(data.test)["label_cardinality"]

Files are looked up in ``data_dir``, else ``$SPARSEXC_DATA``, else ``~/sparsexc_data``; parsed and built sets
are cached under ``$SPARSEXC_CACHE`` (default ``~/.cache/sparsexc``). See docs/data.md.
"""

from ._download import (
    ChecksumError,
    DownloadError,
    DownloadResult,
    NoSourceError,
    download,
)
from ._paths import resolve_cache_dir, resolve_data_dir
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
from .synthetic import label_proportion_documents, synthetic

__all__ = [
    "REGISTRY",
    "ChecksumError",
    "DatasetSpec",
    "DownloadError",
    "DownloadResult",
    "NoSourceError",
    "Splits",
    "UnknownDatasetError",
    "describe",
    "download",
    "get_spec",
    "label_proportion_documents",
    "list_datasets",
    "load",
    "load_bundled",
    "locate",
    "resolve_cache_dir",
    "resolve_data_dir",
    "seeded_split",
    "synthetic",
]
