"""Two text tasks from the Debian package index (``raw/debian-packages/Packages.txt.gz``).

- ``debtags``: package description (short summary + long description) -> its debtags (``Tag`` field).
- ``debian-deps``: package description -> the packages it ``Pre-Depends``, ``Depends`` or ``Recommends`` on.

The index is a sequence of RFC 822 stanzas separated by blank lines; a field is ``Name: value`` and
continues on following lines that start with a space or a tab. When a package has several stanzas (several
versions), the first one in the file is used. In the long description a line holding only ``.`` is an empty
paragraph line and is dropped.

Dependency relations (Debian Policy 7.1) look like ``libc6 (>= 2.34), default-mta | mail-transport-agent,
python3:any``. For each comma-separated relation the builder keeps the package name of the FIRST
alternative (the one apt installs by default; the others are fall-backs that would add near-duplicate
labels), with version constraints ``(...)``, architecture restrictions ``[...]``, build profiles ``<...>``
and architecture qualifiers (``:any``, ``:native``, ``:amd64``) stripped; a package depending on itself is
ignored.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sparsexc.io.errors import DataFormatError

from .splits import Splits

__all__ = [
    "DEPENDENCY_FIELDS",
    "DebianPackage",
    "build_debian_deps",
    "build_debtags",
    "parse_relations",
    "read_packages",
]

#: Fields whose targets are the labels of ``debian-deps``.
DEPENDENCY_FIELDS = ("Pre-Depends", "Depends", "Recommends")

_NAME = re.compile(r"[a-z0-9][a-z0-9+.\-]*")
_DECOR = re.compile(r"\([^)]*\)|\[[^\]]*\]|<[^>]*>")


@dataclass(frozen=True)
class DebianPackage:
    """What the builders need of one stanza."""

    name: str
    description: str  # short summary, a newline, the long description
    tags: tuple[str, ...]
    relations: tuple[tuple[str, ...], ...]  # DEPENDENCY_FIELDS in order: one tuple of alternatives per relation


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="strict", newline=None)
    return open(path, encoding="utf-8", errors="strict", newline=None)


def _stanzas(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (first line number, {field: value}) for each stanza; continuation lines joined by newlines."""
    fields: dict[str, str] = {}
    start = 0
    current: str | None = None
    with _open_text(path) as handle:
        try:
            for lineno, raw in enumerate(handle, 1):
                line = raw.rstrip("\n")
                if not line.strip():
                    if fields:
                        yield start, fields
                    fields, current = {}, None
                    continue
                if line[0] in " \t":
                    if current is None:
                        raise DataFormatError(
                            path,
                            "a 'Field: value' line to start the stanza",
                            line=lineno,
                            field="continuation line",
                            found=line,
                        )
                    fields[current] += "\n" + line[1:]
                    continue
                key, sep, value = line.partition(":")
                if not sep or not key or " " in key:
                    raise DataFormatError(
                        path,
                        "a 'Field: value' line or a continuation line starting with a space",
                        line=lineno,
                        found=line,
                    )
                if not fields:
                    start = lineno
                current = key
                fields[key] = value.strip()
        except UnicodeDecodeError as exc:
            raise DataFormatError(path, "UTF-8 text", found=str(exc)) from None
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataFormatError(path, "a complete, valid gzip stream", found=f"{type(exc).__name__}: {exc}") from None
    if fields:
        yield start, fields


def parse_relations(
    value: str, *, path: str | os.PathLike[str] = "<string>", line: int | None = None, field: str = "Depends"
) -> list[tuple[str, ...]]:
    """Parse a relationship field into one tuple of alternative package names per relation.

    ``"a (>= 1) | b:any, c [amd64]"`` -> ``[("a", "b"), ("c",)]``: versions, architecture lists, build
    profiles and ``:arch`` qualifiers are removed; names are checked against Debian's package-name rule.
    """
    out: list[tuple[str, ...]] = []
    for relation in value.replace("\n", " ").split(","):
        if not relation.strip():
            continue
        names = []
        for alternative in relation.split("|"):
            name = _DECOR.sub(" ", alternative).strip().split(":", 1)[0].strip()
            if not _NAME.fullmatch(name):
                raise DataFormatError(
                    path,
                    "a package name (optionally with '(version)', '[arch]', ':arch')",
                    line=line,
                    field=field,
                    found=alternative.strip(),
                )
            names.append(name)
        out.append(tuple(names))
    return out


def _description(value: str) -> str:
    short, _, long = value.partition("\n")
    lines = [short.strip()] + [ln.strip() for ln in long.split("\n") if ln.strip() not in ("", ".")]
    return "\n".join(ln for ln in lines if ln)


def _read_packages(path: Path) -> tuple[DebianPackage, ...]:
    seen: set[str] = set()
    out = []
    for start, fields in _stanzas(path):
        name = fields.get("Package")
        if name is None:
            raise DataFormatError(path, "a 'Package' field in every stanza", line=start, field="Package")
        if name in seen:  # a later version of a package already read: the first stanza wins
            continue
        seen.add(name)
        tags = tuple(t.strip() for t in fields.get("Tag", "").replace("\n", " ").split(",") if t.strip())
        relations: list[tuple[str, ...]] = []
        for key in DEPENDENCY_FIELDS:
            if key in fields:
                relations.extend(parse_relations(fields[key], path=path, line=start, field=f"{key} of {name}"))
        out.append(DebianPackage(name, _description(fields.get("Description", "")), tags, tuple(relations)))
    return tuple(out)


@lru_cache(maxsize=2)
def _read_packages_cached(path: str, size: int, mtime_ns: int) -> tuple[DebianPackage, ...]:
    return _read_packages(Path(path))


def read_packages(path: str | os.PathLike[str]) -> tuple[DebianPackage, ...]:
    """Read a Debian ``Packages`` index (plain or ``.gz``): one record per package, first stanza wins.

    Parsed indexes are kept in memory for the process (keyed by path, size and mtime), so building
    ``debtags`` and ``debian-deps`` reads the file once.
    """
    st = os.stat(path)
    return _read_packages_cached(os.fspath(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def build_debtags(path: Path, *, seed: int, test_fraction: float, name: str = "debtags") -> Splits:
    """Tagged packages only: description -> debtags; label space = tags seen in training."""
    from ._text import build_text_splits

    packages = [p for p in read_packages(path) if p.tags and p.description]
    return build_text_splits(
        name,
        [p.name for p in packages],
        [p.description for p in packages],
        [p.tags for p in packages],
        test_fraction=test_fraction,
        seed=seed,
        min_label_count=1,
        info={
            "source": os.fspath(path),
            "task": "package description (short + long) -> debtags",
            "packages_tagged": len(packages),
        },
    )


def build_debian_deps(
    path: Path, *, seed: int, test_fraction: float, min_label_count: int = 2, name: str = "debian-deps"
) -> Splits:
    """Packages with at least one dependency: description -> first alternative of each relation."""
    from ._text import build_text_splits

    rows, texts, labels = [], [], []
    for p in read_packages(path):
        targets = sorted({alternatives[0] for alternatives in p.relations} - {p.name})
        if targets and p.description:
            rows.append(p.name)
            texts.append(p.description)
            labels.append(targets)
    return build_text_splits(
        name,
        rows,
        texts,
        labels,
        test_fraction=test_fraction,
        seed=seed,
        min_label_count=min_label_count,
        info={
            "source": os.fspath(path),
            "task": "package description -> packages it Pre-Depends/Depends/Recommends on",
            "alternatives": "first alternative of each 'a | b' relation only",
            "packages_with_dependencies": len(rows),
        },
    )
