"""The named data sets: where their files are, how they are split, and ``load``.

Each entry is a ``DatasetSpec``: a folder under the data directory, the files needed there, a builder, and
a split rule:

- ``"xc"``: the XC repository's 10 random splits; ``split=1..10`` (default 1);
- ``"published"``: the publisher's train/test files; ``split`` must be None or 1;
- ``"seeded"``: no split is published; ``split=k`` (default 1) uses ``seeded_split(n, test_fraction, seed=k)``.

Loaded sets are cached (see ``_cache``); a second ``load`` of the same name and split reads the cache.
"""

from __future__ import annotations

import difflib
import operator
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsexc.errors import ConfigurationError, UnknownNameError

from ._cache import cache_key, read_cached, write_cached
from ._paths import DEFAULT_ORIGIN, ENV_ORIGIN, how_to_get, resolve_cache_dir, resolve_data_dir
from .splits import Splits

__all__ = [
    "BUNDLED_DIR",
    "REGISTRY",
    "DatasetSpec",
    "UnknownDatasetError",
    "get_spec",
    "list_datasets",
    "load",
    "load_bundled",
    "locate",
]

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
_BUNDLED_BIBTEX = ("Bibtex_data.txt.gz", "bibtex_split1_trSplit.txt", "bibtex_split1_tstSplit.txt")


class UnknownDatasetError(UnknownNameError):
    """An unregistered data set name (both a KeyError and a ValueError); the message lists close matches."""


@dataclass(frozen=True)
class DatasetSpec:
    """One named data set.

    Attributes
    ----------
    name, description : str
    folder : str
        Folder under the data directory (``raw/debian-packages`` for the text builders).
    files : tuple of tuples of str
        The files the builder needs, in its argument order; each entry lists accepted file names, the first
        one present is used (``("data.noun.gz", "data.noun")``).
    kind : str
        Builder: ``"xc"``, ``"mulan"``, ``"arff"``, ``"mat"``, ``"debtags"``, ``"debian-deps"``, ``"wordnet"``.
    split_rule : str
        ``"xc"``, ``"published"`` or ``"seeded"`` (see the module docstring).
    test_fraction : float or None
        For ``"seeded"``: the fraction of rows in the test part.
    options : dict
        Builder options, part of the cache key (none used now: ``read_arff`` drops row identifiers itself).
    version : str
        Bumped when the builder's output changes, so old cache entries are not reused.
    """

    name: str
    description: str
    folder: str
    files: tuple[tuple[str, ...], ...]
    kind: str
    split_rule: str
    test_fraction: float | None = None
    options: dict = field(default_factory=dict)
    version: str = "1"

    def resolve_split(self, split: int | None) -> int:
        """The split number to use (1 when None); raise ValueError naming the allowed values otherwise."""
        if split is None:
            return 1
        try:
            split = operator.index(split)
        except TypeError:
            raise ConfigurationError(f"{self.name}: split must be an integer; got {split!r}") from None
        if self.split_rule == "xc" and not 1 <= split <= 10:
            raise ConfigurationError(
                f"{self.name}: split must be 1..10 (the XC repository's random splits); got {split}"
            )
        if self.split_rule == "published" and split != 1:
            raise ConfigurationError(
                f"{self.name}: has one published train/test split; split must be None or 1, got {split}"
            )
        if self.split_rule == "seeded" and split < 1:
            raise ConfigurationError(
                f"{self.name}: split is the seed of the generated split and must be >= 1; got {split}"
            )
        return split


# ARFF builders' output version: "2" since read_arff encodes yes/no nominals as 1 = yes, other nominals as
# indicator columns, drops row identifiers itself, and lets the Mulan XML win over a relation's -C n
_ARFF_VERSION = "2"


def _mulan(
    short: str,
    folder: str,
    stem: str,
    description: str,
    *,
    xml: str | None = None,
    train: str | None = None,
    test: str | None = None,
    **options: Any,
) -> DatasetSpec:
    return DatasetSpec(
        short,
        description,
        folder,
        ((train or f"{stem}-train.arff",), (test or f"{stem}-test.arff",), (xml or f"{stem}.xml",)),
        "mulan",
        "published",
        None,
        dict(options),
        _ARFF_VERSION,
    )


def _mat(
    short: str,
    folder: str,
    file: str,
    description: str,
    *,
    split_rule: str = "seeded",
    test_fraction: float | None = 0.3,
) -> DatasetSpec:
    return DatasetSpec(short, description, folder, ((file,),), "mat", split_rule, test_fraction)


# the large XC repository sets: the train/test files of its legacy bag-of-words zips (not in ../shared;
# ``sparsexc datasets download NAME`` fetches them). Shapes (rows train/test, features, labels) where the
# reference notes list them.
_XC_LARGE = (
    (
        "eurlex-4k",
        "EURLex-4K",
        "eurlex",
        "EU law documents -> EuroVoc descriptors",
        "; 15539/3809 rows, D 5000, L 3993",
    ),
    ("wiki10-31k", "Wiki10-31K", "wiki10", "Wikipedia articles -> social tags", ""),
    ("amazoncat-13k", "AmazonCat-13K", "amazonCat", "Amazon product descriptions -> categories", ""),
    ("wiki-500k", "Wiki-500K", "WikipediaLarge-500K", "Wikipedia articles -> categories", ""),
    (
        "amazon-670k",
        "Amazon-670K",
        "amazon",
        "Amazon product descriptions -> co-purchased items",
        "; 490449/153025 rows, D 135909, L 670091",
    ),
)

_DEBIAN = ("Packages.txt.gz", "Packages.gz", "Packages.txt", "Packages")

_SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        "bibtex",
        "BibTeX entries -> tags (XC repository, 10 random splits; bundled split 1)",
        "Bibtex",
        (("Bibtex_data.txt.gz", "Bibtex_data.txt"), ("bibtex_trSplit.txt",), ("bibtex_tstSplit.txt",)),
        "xc",
        "xc",
    ),
    *(
        DatasetSpec(
            name,
            f"{what} (XC repository, published train/test{shape})",
            folder,
            ((f"{stem}_train.txt", f"{stem}_train.txt.gz"), (f"{stem}_test.txt", f"{stem}_test.txt.gz")),
            "xc",
            "published",
        )
        for name, folder, stem, what, shape in _XC_LARGE
    ),
    _mulan("scene", "mulan-scene", "scene", "images -> scene classes (Mulan)"),
    _mulan("emotions", "mulan-emotions", "emotions", "music audio features -> emotions (Mulan)"),
    _mulan("birds", "mulan-birds", "birds", "audio recordings -> bird species (Mulan)"),
    DatasetSpec(
        "cal500",
        "songs -> 174 annotation words (Mulan; seeded 70/30 split)",
        "mulan-cal500",
        (("cal500.arff",), ("cal500.xml",)),
        "arff",
        "seeded",
        0.3,
        version=_ARFF_VERSION,
    ),
    _mulan("yeast", "mulan-yeast", "yeast", "gene expression -> functional classes (Mulan)"),
    _mulan("enron", "mulan-enron", "enron", "e-mails -> categories (Mulan)"),
    _mulan("medical", "mulan-medical", "medical", "clinical free text -> ICD-9 codes (Mulan)"),
    _mulan("genbase", "mulan-genbase", "genbase", "protein motifs -> protein classes (Mulan; id dropped)"),
    _mulan(
        "corel5k",
        "mulan-corel5k",
        "Corel5k",
        "images -> keywords (Mulan)",
        train="Corel5k-train-sparse.arff",
        test="Corel5k-test-sparse.arff",
        xml="Corel5k.xml",
    ),
    _mulan("tmc2007-500", "mulan-tmc2007-500", "tmc2007-500", "aviation safety reports -> problem types (Mulan)"),
    _mulan("flags", "mulan-flags", "flags", "national flags -> colours (Mulan, toy)"),
    _mulan("delicious", "mulan-delicious", "delicious", "web pages -> del.icio.us tags (Mulan)"),
    _mulan("mulan-bibtex", "mulan-bibtex", "bibtex", "BibTeX entries -> tags (Mulan's train/test split)"),
    DatasetSpec(
        "imdb",
        "movie plot summaries -> genres (MEKA; seeded 70/30 split)",
        "meka-imdb",
        (("Imdb.arff.gz", "Imdb.arff"),),
        "arff",
        "seeded",
        0.3,
        version=_ARFF_VERSION,
    ),
    *(
        _mat(
            f"rcv1-subset{k}",
            "rcv1subsets-top944-mat",
            f"rcv1subset{k}_top944.mat",
            f"Reuters RCV1-v2 subset {k}, top 944 features -> topics (seeded 70/30 split)",
        )
        for k in range(1, 6)
    ),
    _mat(
        "yahoo-arts",
        "yahoo-arts-mat",
        "arts.mat",
        "Yahoo! Arts web pages -> categories (seeded 2000 train / 3000 test)",
        test_fraction=0.6,
    ),
    _mat(
        "yahoo-recreation",
        "yahoo-recreation-mat",
        "recreation.mat",
        "Yahoo! Recreation web pages -> categories (stored 2000/3000 split)",
        split_rule="published",
        test_fraction=None,
    ),
    _mat(
        "yahoo-science",
        "yahoo-science-mat",
        "science.mat",
        "Yahoo! Science web pages -> categories (seeded 2000 train / 3000 test)",
        test_fraction=0.6,
    ),
    _mat("slashdot", "slashdot-mat", "slashdot.mat", "Slashdot posts -> tags (seeded 70/30 split)"),
    _mat("languagelog", "languagelog-mat", "languagelog.mat", "Language Log posts -> topics (seeded 70/30 split)"),
    _mat("corel16k", "corel16k001-mat", "Corel16k001.mat", "Corel16k sample 001, images -> keywords (seeded 70/30)"),
    DatasetSpec(
        "debtags",
        "Debian package description -> debtags (built from raw/; TF-IDF; seeded 80/20)",
        "raw/debian-packages",
        (_DEBIAN,),
        "debtags",
        "seeded",
        0.2,
    ),
    DatasetSpec(
        "debian-deps",
        "Debian package description -> dependencies (built from raw/; TF-IDF; seeded 80/20)",
        "raw/debian-packages",
        (_DEBIAN,),
        "debian-deps",
        "seeded",
        0.2,
    ),
    DatasetSpec(
        "wordnet-hypernyms",
        "WordNet noun lemmas + gloss -> hypernym ancestors (built from raw/; seeded 80/20)",
        "raw/wordnet-3.0",
        (("data.noun.gz", "data.noun"),),
        "wordnet",
        "seeded",
        0.2,
    ),
)

REGISTRY: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}


def list_datasets() -> list[str]:
    """Names accepted by ``load``, in registry order."""
    return list(REGISTRY)


def get_spec(name: str) -> DatasetSpec:
    """The spec of ``name``; an ``UnknownDatasetError`` (KeyError and ValueError) lists close matches."""
    key = str(name).strip().lower()
    if key in REGISTRY:
        return REGISTRY[key]
    close = difflib.get_close_matches(key, REGISTRY, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise UnknownDatasetError(f"unknown dataset {name!r}; {hint}known: {', '.join(REGISTRY)}")


def locate(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The source files of ``spec`` in the data directory; FileNotFoundError says what was missing where."""
    root, origin = resolve_data_dir(data_dir)
    folder = root / spec.folder
    found: list[Path] = []
    for names in spec.files:
        path = next((folder / n for n in names if (folder / n).is_file()), None)
        if path is None:
            wanted = folder / names[0]
            also = f" (or {', '.join(names[1:])})" if len(names) > 1 else ""
            if not root.is_dir():
                where = f"the data directory {root} (from {origin}) does not exist"
            elif not folder.is_dir():
                where = f"the folder {spec.folder}/ is not in the data directory {root} (from {origin})"
            else:
                where = f"it is not in {folder} (data directory from {origin})"
            # what download() can fetch, imported only on the way to this error
            from ._sources import remote_files

            downloadable = remote_files(spec.name) is not None
            named = data_dir is not None and origin not in (ENV_ORIGIN, DEFAULT_ORIGIN)  # else download finds it too
            hint = how_to_get(spec.name, downloadable, root if named else None)
            raise FileNotFoundError(f"dataset {spec.name!r} needs the file {wanted}{also}, but {where}; {hint}")
        found.append(path)
    return found


def _bundled_bibtex() -> list[Path]:
    return [BUNDLED_DIR / n for n in _BUNDLED_BIBTEX]


def _seeded_fraction(spec: DatasetSpec) -> float:
    """The test fraction of a set split by ``seeded_split`` (the registry gives one to each)."""
    if spec.test_fraction is None:  # pragma: no cover - a registry entry without its fraction
        raise AssertionError(f"dataset {spec.name!r} is split by seed but has no test_fraction")
    return spec.test_fraction


def _build(spec: DatasetSpec, files: list[Path], split: int, base_info: dict) -> Splits:
    from . import _files, debian, wordnet

    info = dict(base_info)
    if spec.kind == "xc" and spec.split_rule == "published":  # the large sets: train and test files
        return _files.build_xc_published(spec.name, files[0], files[1], info)
    if spec.kind == "xc":
        return _files.build_xc(spec.name, files[0], files[1], files[2], split, info)
    if spec.kind == "mulan":
        return _files.build_mulan(spec.name, files[0], files[1], files[2], info)
    if spec.kind == "mat":  # a .mat file may hold its own split (test_fraction None)
        return _files.build_mat(spec.name, files[0], seed=split, test_fraction=spec.test_fraction, info=info)
    fraction = _seeded_fraction(spec)
    if spec.kind == "arff":
        xml = files[1] if len(files) > 1 else None
        return _files.build_arff_seeded(spec.name, files[0], xml, seed=split, test_fraction=fraction, info=info)
    if spec.kind == "debtags":
        built = debian.build_debtags(files[0], name=spec.name, seed=split, test_fraction=fraction)
    elif spec.kind == "debian-deps":
        built = debian.build_debian_deps(files[0], name=spec.name, seed=split, test_fraction=fraction)
    elif spec.kind == "wordnet":
        built = wordnet.build_wordnet_hypernyms(files[0], name=spec.name, seed=split, test_fraction=fraction)
    else:  # pragma: no cover - a registry entry with a builder that does not exist
        raise AssertionError(f"no builder for kind {spec.kind!r}")
    built.info = {**info, **built.info}
    return built


def _settings(spec: DatasetSpec) -> dict:
    settings: dict[str, Any] = {
        "kind": spec.kind,
        "split_rule": spec.split_rule,
        "test_fraction": spec.test_fraction,
        "options": spec.options,
    }
    if spec.kind in ("debtags", "debian-deps", "wordnet"):
        from ._text import TFIDF_SETTINGS

        settings["tfidf"] = {k: list(v) if isinstance(v, tuple) else v for k, v in TFIDF_SETTINGS.items()}
    return settings


def _load_files(spec: DatasetSpec, files: list[Path], split: int, cache: bool, info: dict) -> Splits:
    # ``info`` says where this call looked (argument, environment, bundled copy); it is set on every load,
    # cache hit or not, since the same files may be reached in different ways.
    settings = _settings(spec)
    if cache:
        cache_dir = resolve_cache_dir()
        key = cache_key(spec.name, split, spec.version, files, settings)
        hit = read_cached(cache_dir, spec.name, split, key)
        if hit is not None:
            hit.info.update(info)
            return hit
    info = {
        **info,
        "name": spec.name,
        "description": spec.description,
        "builder_version": spec.version,
        "files": [os.fspath(p) for p in files],
    }
    built = _build(spec, files, split, info)
    if cache:
        entry = write_cached(cache_dir, split, key, built)
        built.info["cache"] = os.fspath(entry)
    return built


def load(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    split: int | None = None,
    cache: bool = True,
    download: bool = False,
) -> Splits:
    """Load a named data set as train/test ``Splits``.

    Parameters
    ----------
    name : str
        One of ``list_datasets()`` (case-insensitive).
    data_dir : path, optional
        Folder holding the data set folders; default ``$SPARSEXC_DATA``, else ``~/sparsexc_data``.
    split : int, optional
        ``bibtex``: XC split 1..10; sets with a generated split: its seed (>= 1); default 1.
    cache : bool
        Read and write the parsed copy under ``$SPARSEXC_CACHE`` (default ``~/.cache/sparsexc``).
    download : bool
        When the set's files are not in the data directory, download them first (``sparsexc.datasets.download``;
        honours ``$SPARSEXC_MIRROR``); then Bibtex, too, comes from the data directory, not the bundled copy.

    Raises
    ------
    UnknownDatasetError (KeyError, ValueError)
        Unknown name; the message lists close matches.
    FileNotFoundError
        A needed file is missing; the message names it and the data directory searched.
    DownloadError (OSError)
        With ``download=True``: the download failed (see ``sparsexc.datasets.download``).
    ValueError
        A bad ``split``, or a malformed file (``DataFormatError``).
    """
    spec = get_spec(name)
    split = spec.resolve_split(split)
    root, origin = resolve_data_dir(data_dir)
    if download:
        from ._download import download as fetch

        fetch(spec.name, data_dir)  # returns at once when the files are there
    try:
        files = locate(spec, data_dir)
        info: dict[str, Any] = {"data_dir": os.fspath(root), "data_dir_from": origin}
    except FileNotFoundError:
        if spec.name != "bibtex" or split != 1:
            raise
        files = _bundled_bibtex()
        info = {
            "data_dir": os.fspath(BUNDLED_DIR),
            "data_dir_from": "the copy bundled with sparsexc (split 1 only)",
            "bundled": True,
        }
    return _load_files(spec, files, split, cache, info)


def load_bundled(*, cache: bool = True) -> Splits:
    """The Bibtex data (XC split 1) bundled with the package: works with no data directory at all."""
    info = {
        "data_dir": os.fspath(BUNDLED_DIR),
        "data_dir_from": "the copy bundled with sparsexc (split 1 only)",
        "bundled": True,
    }
    return _load_files(REGISTRY["bibtex"], _bundled_bibtex(), 1, cache, info)
