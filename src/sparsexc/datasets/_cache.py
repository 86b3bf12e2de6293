"""On-disk cache of loaded data sets: sparse matrices as ``.npz``, names and provenance as JSON, no pickle.

An entry is a folder ``<cache>/<name>/split<k>-<where>-<key>/`` holding ``{train,test}_{X,Y}.npz`` (written by
``scipy.sparse.save_npz``) and ``meta.json`` (feature and label names, row ids, info). ``key`` hashes the
data set name, split, builder version and settings, and the size and modification time of every source
file, so an edited or replaced source gets a new key and is rebuilt; ``where`` hashes only the source paths,
so writing an entry removes the stale entries of the same files without touching those built from another
data directory. The entry is written into a temporary
folder beside it and moved into place with one ``os.replace``: readers see a whole entry or none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import scipy.sparse as sp

from sparsexc.io.data import MultiLabelData

from .splits import Splits

__all__ = ["cache_key", "read_cached", "write_cached"]

_PARTS = ("train", "test")
_FORMAT = 2  # bump when the layout of an entry changes


def cache_key(name: str, split: Any, version: str, sources: list[Path], settings: dict | None = None) -> str:
    """``<where>-<key>``: hash of the source paths (8 hex digits), hash of everything else (16 hex digits)."""
    where = hashlib.sha256(json.dumps([os.fspath(Path(p).resolve()) for p in sources]).encode()).hexdigest()[:8]
    stamp = []
    for path in sources:
        st = os.stat(path)
        stamp.append([os.fspath(Path(path).resolve()), st.st_size, st.st_mtime_ns])
    blob = json.dumps(
        {
            "format": _FORMAT,
            "name": name,
            "split": split,
            "version": version,
            "sources": stamp,
            "settings": settings or {},
        },
        sort_keys=True,
    )
    return f"{where}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def _entry(cache_dir: Path, name: str, split: Any, key: str) -> Path:
    return cache_dir / name / f"split{split}-{key}"


def read_cached(cache_dir: Path, name: str, split: Any, key: str) -> Splits | None:
    """The cached entry, or None when there is none (or it is unreadable, which then means rebuild)."""
    entry = _entry(cache_dir, name, split, key)
    meta_path = entry / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        parts = {}
        for part in _PARTS:
            X = sp.csr_matrix(sp.load_npz(entry / f"{part}_X.npz"))
            Y = sp.csr_matrix(sp.load_npz(entry / f"{part}_Y.npz"))
            part_meta = {**meta.get("part_meta", {}).get(part, {}), "name": name, "part": part}
            parts[part] = MultiLabelData(X, Y, meta["feature_names"], meta["label_names"], part_meta)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    info = dict(meta["info"])
    info["cache"] = os.fspath(entry)
    return Splits(meta["name"], parts["train"], parts["test"], info, meta.get("row_ids", {}))


def _json_fields(meta: dict[str, Any] | None) -> dict[str, Any]:
    """The entries of ``meta`` that JSON can hold (tuples come back as lists; others are left out)."""
    kept = {}
    for k, v in (meta or {}).items():
        with contextlib.suppress(TypeError, ValueError):
            kept[k] = json.loads(json.dumps(v))
    return kept


def write_cached(cache_dir: Path, split: Any, key: str, splits: Splits) -> Path:
    """Write ``splits`` as the entry for (name, split, key), atomically; drop older entries of the same files."""
    entry = _entry(cache_dir, splits.name, split, key)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        for part in _PARTS:
            data: MultiLabelData = getattr(splits, part)
            sp.save_npz(tmp / f"{part}_X.npz", sp.csr_matrix(data.X), compressed=False)
            sp.save_npz(tmp / f"{part}_Y.npz", sp.csr_matrix(data.Y), compressed=False)
        meta = {
            "name": splits.name,
            "feature_names": splits.train.feature_names,
            "label_names": splits.train.label_names,
            "info": splits.info,
            "row_ids": splits.row_ids,
            # what the reader said of each part (ARFF: feature attributes, dropped ones), so that a cached load
            # returns what a fresh one does
            "part_meta": {part: _json_fields(getattr(splits, part).meta) for part in _PARTS},
        }
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        if entry.exists() and read_cached(cache_dir, splits.name, split, key) is None:
            shutil.rmtree(entry, ignore_errors=True)  # an unreadable (damaged) entry: replace it
        try:
            os.replace(tmp, entry)
        except OSError:
            # Another process wrote the same entry first; theirs is as good as ours.
            if not (entry / "meta.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    where = key.split("-", 1)[0]
    for stale in entry.parent.glob(f"split{split}-{where}-*"):
        if stale != entry and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return entry
