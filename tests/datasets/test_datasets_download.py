"""sparsexc.datasets.download against a local mirror (tests/_mirror.py) built from ../shared/datasets: the whole
path (fetch, Drive confirmation pages, resume, checksums, extraction, install) and its failures."""

from __future__ import annotations

import gzip
import hashlib
import socket
from pathlib import Path

import numpy as np
import pytest
from _mirror import MirrorServer, xc_zip

from sparsexc.datasets import (
    ChecksumError,
    DownloadError,
    NoSourceError,
    UnknownDatasetError,
    download,
    load,
)
from sparsexc.datasets import _download as dl
from sparsexc.datasets._sources import remote_files

pytestmark = pytest.mark.usefixtures("shared_datasets")  # the mirror serves files made from ../shared


@pytest.fixture(autouse=True)
def _no_mirror_env(monkeypatch):
    monkeypatch.delenv("SPARSEXC_MIRROR", raising=False)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leftovers(root: Path) -> list[str]:
    """Entries of the data directory that are temporaries (partial folders, .downloads)."""
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".")) if root.exists() else []


def test_mulan_set_downloads_byte_identical_and_loads(tmp_path, shared_datasets):
    root = tmp_path / "data"
    with MirrorServer() as mirror:
        result = download("emotions", root, mirror=mirror.url, progress=False)
    assert not result.already and result.unpinned == {}
    folder = root / "mulan-emotions"
    assert result.folder == folder
    for name in ("emotions-train.arff", "emotions-test.arff", "emotions.xml"):
        assert (folder / name).read_bytes() == (shared_datasets / "mulan-emotions" / name).read_bytes()
    assert _leftovers(root) == []
    data = load("emotions", root, cache=False)
    assert (data.train.n_samples, data.test.n_samples) == (391, 202)


def test_a_second_download_fetches_nothing(tmp_path):
    root = tmp_path / "data"
    with MirrorServer() as mirror:
        download("flags", root, mirror=mirror.url)
        served = len(mirror.requests)
        again = download("flags", root, mirror=mirror.url)
        assert again.already and len(mirror.requests) == served
        forced = download("flags", root, mirror=mirror.url, force=True)
        assert not forced.already and len(mirror.requests) == served + 3


@pytest.mark.parametrize("mode", ["form", "cookie"])
def test_bibtex_zip_behind_a_drive_confirmation_page(tmp_path, shared_datasets, mode):
    root = tmp_path / "data"
    with MirrorServer(drive={"xc/Bibtex.zip": mode}) as mirror:
        lines: list[str] = []
        result = download("bibtex", root, mirror=mirror.url, log=lines.append)
    paths = [path for path, _ in mirror.requests]
    if mode == "form":  # the page's #download-form, submitted with its hidden inputs
        assert paths == ["xc/Bibtex.zip", "drive/download"]
    else:  # the download_warning cookie sent back, its value in confirm=
        assert paths == ["xc/Bibtex.zip", "xc/Bibtex.zip"]
        assert "download_warning_" in mirror.requests[1][1].get("Cookie", "")
    assert result.unpinned == {}  # the zip is verified through its pinned members
    assert any("checked against pinned checksums" in line for line in lines)
    folder = root / "Bibtex"
    assert sorted(p.name for p in folder.iterdir()) == [
        "Bibtex_data.txt",
        "bibtex_trSplit.txt",
        "bibtex_tstSplit.txt",
    ]
    assert (folder / "Bibtex_data.txt").read_bytes() == gzip.decompress(
        (shared_datasets / "Bibtex" / "Bibtex_data.txt.gz").read_bytes()
    )
    ours = load("bibtex", root, split=4, cache=False)
    shared = load("bibtex", shared_datasets, split=4, cache=False)
    assert (ours.train.X != shared.train.X).nnz == 0 and (ours.test.Y != shared.test.Y).nnz == 0
    assert _leftovers(root) == []


def test_drive_quota_page_is_one_clear_error(tmp_path):
    root = tmp_path / "data"
    with (
        MirrorServer(drive={"xc/Bibtex.zip": "quota"}) as mirror,
        pytest.raises(DownloadError) as caught,
    ):
        download("bibtex", root, mirror=mirror.url)
    message = str(caught.value)
    assert "xc/Bibtex.zip" in message and "Too many users have viewed or downloaded this file" in message
    assert "\n" not in message
    assert not (root / "Bibtex").exists() and _leftovers(root) == []


def test_corrupt_file_is_a_checksum_error_and_leaves_nothing(tmp_path):
    root = tmp_path / "data"
    with (
        MirrorServer(files={"mulan/flags/flags.xml": b"<labels/>"}) as mirror,
        pytest.raises(ChecksumError) as caught,
    ):
        download("flags", root, mirror=mirror.url)
    message = str(caught.value)
    expected = remote_files("flags")[2].sha256
    assert "flags.xml" in message and expected in message and _sha(b"<labels/>") in message
    assert not (root / "mulan-flags").exists()
    assert _leftovers(root) == []  # no partial folder, no .part: a corrupt file is not resumable


def test_corrupt_member_of_an_archive_is_a_checksum_error(tmp_path, shared_datasets):
    folder = shared_datasets / "Bibtex"
    bad = xc_zip(
        "Bibtex",
        {
            "Bibtex_data.txt": gzip.decompress((folder / "Bibtex_data.txt.gz").read_bytes()),
            "bibtex_trSplit.txt": (folder / "bibtex_trSplit.txt").read_bytes().replace(b"1", b"2", 1),
            "bibtex_tstSplit.txt": (folder / "bibtex_tstSplit.txt").read_bytes(),
        },
    )
    root = tmp_path / "data"
    with (
        MirrorServer(files={"xc/Bibtex.zip": bad}) as mirror,
        pytest.raises(ChecksumError) as caught,
    ):
        download("bibtex", root, mirror=mirror.url)
    assert "bibtex_trSplit.txt (from Bibtex.zip)" in str(caught.value)
    assert not (root / "Bibtex").exists() and _leftovers(root) == []


def test_cut_transfer_keeps_the_part_file_and_the_next_call_resumes(tmp_path, shared_datasets):
    root = tmp_path / "data"
    path = "mulan/emotions/emotions-train.arff"
    with MirrorServer(drop_after={path: 100_000}) as mirror:
        with pytest.raises(dl.IncompleteDownloadError) as caught:
            download("emotions", root, mirror=mirror.url)
        assert "resume" in str(caught.value)
        part = root / ".downloads" / "emotions" / "emotions-train.arff.part"
        assert part.stat().st_size == 100_000
        assert not (root / "mulan-emotions").exists()
        download("emotions", root, mirror=mirror.url)
    asked = [headers for p, headers in mirror.requests if p == path]
    assert "Range" not in asked[0] and asked[1]["Range"] == "bytes=100000-"
    original = (shared_datasets / "mulan-emotions" / "emotions-train.arff").read_bytes()
    assert (root / "mulan-emotions" / "emotions-train.arff").read_bytes() == original
    assert _leftovers(root) == []


def test_server_ignoring_range_restarts_from_zero(tmp_path, shared_datasets):
    root = tmp_path / "data"
    part = root / ".downloads" / "emotions" / "emotions.xml.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes of another file")  # appended to, the file would fail its checksum
    with MirrorServer(ranges=False) as mirror:  # answers 200 with the whole file to a Range request
        download("emotions", root, mirror=mirror.url)
    asked = [headers for p, headers in mirror.requests if p == "mulan/emotions/emotions.xml"]
    assert asked[0]["Range"] == "bytes=27-"
    assert (root / "mulan-emotions" / "emotions.xml").read_bytes() == (
        shared_datasets / "mulan-emotions" / "emotions.xml"
    ).read_bytes()


def test_bz2_source_is_decompressed_and_both_checksums_pinned(tmp_path, shared_datasets):
    (remote,) = remote_files("imdb")
    assert remote.archive == "bz2" and remote.sha256 and remote.members[0].sha256
    root = tmp_path / "data"
    with MirrorServer() as mirror:
        download("imdb", root, mirror=mirror.url)
    written = (root / "meka-imdb" / "Imdb.arff").read_bytes()
    assert written == gzip.decompress((shared_datasets / "meka-imdb" / "Imdb.arff.gz").read_bytes())


def test_mat_sets_and_a_folder_shared_by_five_sets(tmp_path):
    root = tmp_path / "data"
    with MirrorServer() as mirror:
        download("yahoo-recreation", root, mirror=mirror.url)
        download("rcv1-subset2", root, mirror=mirror.url)
        served = len(mirror.requests)
        assert download("rcv1-subset4", root, mirror=mirror.url).already  # the folder came whole
        assert len(mirror.requests) == served
    assert sorted(p.name for p in (root / "rcv1subsets-top944-mat").iterdir()) == [
        f"rcv1subset{k}_top944.mat" for k in range(1, 6)
    ]
    assert load("yahoo-recreation", root, cache=False).train.n_samples == 2000


def _xc_text(rows: list[tuple[list[int], dict[int, float]]], d: int, n_labels: int) -> bytes:
    lines = [f"{len(rows)} {d} {n_labels}"]
    for labels, feats in rows:
        lines.append(",".join(map(str, labels)) + " " + " ".join(f"{k}:{v}" for k, v in feats.items()))
    return ("\n".join(lines) + "\n").encode()


def test_large_xc_layout_without_pinned_checksums_is_checked_by_parsing(tmp_path):
    train = _xc_text([([0, 2], {0: 1.0, 4: 0.5}), ([], {1: 2.0}), ([1], {3: 1.0})], 5, 3)
    test = _xc_text([([2], {4: 1.5}), ([0], {0: 0.25})], 5, 3)
    archive = xc_zip("Eurlex", {"eurlex_train.txt": train, "eurlex_test.txt": test})
    root = tmp_path / "data"
    with MirrorServer(files={"xc/Eurlex.zip": archive}) as mirror:
        lines: list[str] = []
        result = download("eurlex-4k", root, mirror=mirror.url, log=lines.append)
    assert mirror.requests[0][0] == "xc/Eurlex.zip"  # Drive page first, as for every xc/ file
    assert result.unpinned == {
        "Eurlex.zip": _sha(archive),
        "eurlex_train.txt": _sha(train),
        "eurlex_test.txt": _sha(test),
    }
    assert any(_sha(archive) in line and "no pinned sha256" in line for line in lines)
    assert any("by parsing" in line for line in lines)
    data = load("eurlex-4k", root, cache=False)
    assert (data.train.n_samples, data.test.n_samples) == (3, 2)
    assert data.train.Y.toarray().tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    assert data.test.X.toarray()[1, 0] == np.float32(0.25)
    assert data.info["split"]["kind"] == "published"


def test_unpinned_download_that_does_not_parse_is_refused(tmp_path):
    archive = xc_zip(
        "Amazon",
        {"amazon_train.txt": b"3 5 3\n0 1:1\n", "amazon_test.txt": b"1 5 3\n0 1:1\n"},
    )
    root = tmp_path / "data"
    with (
        MirrorServer(files={"xc/Amazon.zip": archive}) as mirror,
        pytest.raises(DownloadError) as caught,
    ):
        download("amazon-670k", root, mirror=mirror.url)
    assert "amazon-670k: the downloaded files do not parse" in str(caught.value)
    assert "amazon_train.txt" in str(caught.value)
    assert not (root / "Amazon-670K").exists() and _leftovers(root) == []


def test_archive_without_the_expected_member(tmp_path):
    archive = xc_zip("Wiki10", {"wiki10_train.txt": b"0 1 1\n"})
    root = tmp_path / "data"
    with (
        MirrorServer(files={"xc/Wiki10.zip": archive}) as mirror,
        pytest.raises(DownloadError) as caught,
    ):
        download("wiki10-31k", root, mirror=mirror.url)
    assert "Wiki10.zip: the archive has no member" in str(caught.value) and "wiki10_test.txt" in str(caught.value)
    assert _leftovers(root) == []


def test_load_with_download_fetches_what_is_missing(tmp_path, monkeypatch):
    root = tmp_path / "data"
    with pytest.raises(FileNotFoundError):
        load("emotions", root, cache=False)
    with MirrorServer() as mirror:
        monkeypatch.setenv("SPARSEXC_MIRROR", mirror.url)
        data = load("emotions", root, cache=False, download=True)
        assert data.train.n_samples == 391
        served = len(mirror.requests)
        load("emotions", root, cache=False, download=True)
        assert len(mirror.requests) == served  # there now: nothing fetched


def test_files_in_an_existing_folder_are_kept(tmp_path):
    root = tmp_path / "data"
    (root / "mulan-flags").mkdir(parents=True)
    (root / "mulan-flags" / "notes.txt").write_text("mine")
    with MirrorServer() as mirror:
        download("flags", root, mirror=mirror.url)
    assert sorted(p.name for p in (root / "mulan-flags").iterdir()) == [
        "flags-test.arff",
        "flags-train.arff",
        "flags.xml",
        "notes.txt",
    ]
    assert _leftovers(root) == []


def test_http_404_and_unreachable_host(tmp_path):
    root = tmp_path / "data"
    with (
        MirrorServer(files={}) as mirror,
        pytest.raises(DownloadError, match=r"HTTP 404"),
    ):
        download("eurlex-4k", root, mirror=mirror.url)  # the mirror has no Eurlex.zip
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = sock.getsockname()[1]
        with pytest.raises(DownloadError, match=rf"cannot reach 127\.0\.0\.1:{port}"):
            download("flags", root, mirror=f"http://127.0.0.1:{port}")
    assert _leftovers(root) == []


def test_bad_names_and_mirrors(tmp_path):
    with pytest.raises(UnknownDatasetError, match="did you mean 'emotions'"):
        download("emotons", tmp_path)
    with pytest.raises(NoSourceError, match="no public source"):
        download("debtags", tmp_path)
    with pytest.raises(ValueError, match="--mirror must be an http"):
        download("flags", tmp_path, mirror="ftp://example.org/data")


def test_sets_already_there_need_no_source_and_no_mirror(shared_datasets, monkeypatch):
    monkeypatch.setenv("SPARSEXC_MIRROR", "not a url")  # never looked at: nothing to fetch
    for name in (
        "wordnet-hypernyms",
        "emotions",
    ):  # built from raw/ (no source); a downloadable set
        result = download(name, shared_datasets)
        assert result.already and result.urls == []


def test_file_url_mirror(tmp_path, shared_datasets):
    mirror = tmp_path / "mirror" / "mulan" / "flags"
    mirror.mkdir(parents=True)
    for name in ("flags-train.arff", "flags-test.arff", "flags.xml"):
        (mirror / name).write_bytes((shared_datasets / "mulan-flags" / name).read_bytes())
    download("flags", tmp_path / "data", mirror=(tmp_path / "mirror").as_uri())
    assert (tmp_path / "data" / "mulan-flags" / "flags.xml").is_file()


# --- the pinned checksums and the mirror layout -------------------------------------------------------------


def test_pinned_checksums_match_the_shared_copies(shared_datasets):
    from sparsexc.datasets import REGISTRY

    checked = 0
    for name, spec in REGISTRY.items():
        for remote in remote_files(name) or ():
            for member in remote.members:
                if member.sha256 is None:
                    continue
                local = shared_datasets / spec.folder / member.name
                data = (
                    local.read_bytes()
                    if local.exists()
                    else gzip.decompress((local.parent / (member.name + ".gz")).read_bytes())
                )  # Bibtex_data.txt, Imdb.arff
                assert (_sha(data), len(data)) == (member.sha256, member.size), (
                    name,
                    member.name,
                )
                checked += 1
    assert checked >= 60


def test_default_mirror_serves_every_small_set(shared_datasets):
    large = {"eurlex-4k", "wiki10-31k", "amazoncat-13k", "wiki-500k", "amazon-670k"}
    from sparsexc.datasets import REGISTRY

    server = MirrorServer()
    for name in REGISTRY:
        for remote in remote_files(name) or ():
            if name not in large and remote.archive == "plain":
                assert server.content(remote.mirror_path) is not None, remote.mirror_path
    assert server.content("xc/Bibtex.zip") is not None
