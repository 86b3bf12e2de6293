"""Extraction of the archive kinds no registered set ships now (tar, gz, bz2; rar without ``rarfile``): no
network, no shared data."""

from __future__ import annotations

import bz2
import gzip
import io
import sys
import tarfile

import pytest

from sparsexc.datasets import DownloadError
from sparsexc.datasets import _download as dl
from sparsexc.datasets._sources import Member, RemoteFile


def _remote(archive: str, members: tuple[Member, ...]) -> RemoteFile:
    return RemoteFile("http://example.invalid/x", f"x/file.{archive}", archive, members)


def test_tar_gz_and_bz2_extraction(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        info = tarfile.TarInfo("Set/data.txt")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"hello"))
    (tmp_path / "a.tar.gz").write_bytes(buffer.getvalue())
    (tmp_path / "b.gz").write_bytes(gzip.compress(b"gz bytes"))
    (tmp_path / "c.bz2").write_bytes(bz2.compress(b"bz2 bytes"))
    out = tmp_path / "out"
    out.mkdir()
    dl._extract(
        _remote("tar", (Member("data.txt", "Set/data.txt"),)),
        tmp_path / "a.tar.gz",
        out,
    )
    dl._extract(_remote("gz", (Member("b.txt"),)), tmp_path / "b.gz", out)
    dl._extract(_remote("bz2", (Member("c.txt"),)), tmp_path / "c.bz2", out)
    assert [(out / n).read_bytes() for n in ("data.txt", "b.txt", "c.txt")] == [
        b"hello",
        b"gz bytes",
        b"bz2 bytes",
    ]
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DownloadError, match=r"file\.gz: cannot extract it"):
        dl._extract(_remote("gz", (Member("d.txt"),)), tmp_path / "bad.gz", out)


def test_rar_without_rarfile_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "rarfile", None)  # import fails as when it is not installed
    (tmp_path / "a.rar").write_bytes(b"Rar!\x1a\x07\x00")
    with pytest.raises(DownloadError, match=r"install the 'rarfile' package .* 'unrar' tool"):
        dl._extract(_remote("rar", (Member("a.arff", "a.arff"),)), tmp_path / "a.rar", tmp_path)
