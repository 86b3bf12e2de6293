"""``sparsexc datasets download NAME``: output, exit codes and one-line errors (in process, against tests/_mirror.py)."""

from __future__ import annotations

import errno

import pytest
from _mirror import MirrorServer

from sparsexc.cli import main

pytestmark = pytest.mark.usefixtures("shared_datasets")


@pytest.fixture(autouse=True)
def _no_mirror_env(monkeypatch):
    monkeypatch.delenv("SPARSEXC_MIRROR", raising=False)


def test_download_then_already_there(tmp_path, capsys, monkeypatch):
    root = tmp_path / "data"
    with MirrorServer() as mirror:
        monkeypatch.setenv("SPARSEXC_MIRROR", mirror.url)  # the environment variable works like --mirror
        assert main(["datasets", "download", "emotions", "--data-dir", str(root)]) == 0
        captured = capsys.readouterr()
        assert captured.err == ""  # no progress bar: stderr is not a terminal
        lines = captured.out.strip().split("\n")
        assert lines[0] == f"fetching {mirror.url}/mulan/emotions/emotions-train.arff"
        assert lines[-1] == f"emotions: downloaded into {root / 'mulan-emotions'} (3 files, sha256 verified)"
        assert main(["datasets", "download", "EMOTIONS", "--data-dir", str(root)]) == 0
        assert "already in" in capsys.readouterr().out
    assert main(["datasets", "info", "emotions", "--data-dir", str(root)]) == 0


def test_download_bibtex_through_the_confirmation_page(tmp_path, capsys):
    root = tmp_path / "data"
    with MirrorServer() as mirror:
        assert (
            main(
                [
                    "datasets",
                    "download",
                    "bibtex",
                    "--data-dir",
                    str(root),
                    "--mirror",
                    mirror.url + "/",
                ]
            )
            == 0
        )
    assert [path for path, _ in mirror.requests] == ["xc/Bibtex.zip", "drive/download"]
    assert (root / "Bibtex" / "bibtex_trSplit.txt").is_file()


@pytest.mark.parametrize(
    ("args", "files", "code", "needle"),
    [
        (["emotons"], None, 2, "unknown dataset 'emotons'; did you mean 'emotions'"),
        (["debtags"], None, 2, "'debtags' has no public source"),
        (
            ["flags", "--mirror", "ftp://example.org"],
            None,
            2,
            "--mirror must be an http://, https:// or file:// URL",
        ),
        (["eurlex-4k"], {}, 1, "xc/Eurlex.zip: HTTP 404 Not Found"),
        (
            ["flags"],
            {"mulan/flags/flags-test.arff": b"@relation x\n"},
            1,
            "checksum mismatch for flags-test.arff from ",
        ),
    ],
)
def test_failures_are_one_line_with_their_exit_code(tmp_path, one_error_line, args, files, code, needle):
    root = tmp_path / "data"
    with MirrorServer(files=files) as mirror:
        argv = ["datasets", "download", *args, "--data-dir", str(root)]
        if "--mirror" not in args:
            argv += ["--mirror", mirror.url]
        assert main(argv) == code
    assert needle in one_error_line()
    assert not root.exists() or [p.name for p in root.iterdir()] == []


def test_unreachable_host_exits_1(tmp_path, one_error_line):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        port = sock.getsockname()[1]
        argv = [
            "datasets",
            "download",
            "flags",
            "--data-dir",
            str(tmp_path),
            "--mirror",
            f"http://127.0.0.1:{port}",
        ]
        assert main(argv) == 1
    assert f"cannot reach 127.0.0.1:{port}" in one_error_line()


def test_disk_full_exits_1_and_names_the_data_directory(tmp_path, monkeypatch, one_error_line):
    from sparsexc.datasets import _download

    def full(url, part, size, *, show_progress):
        raise OSError(errno.ENOSPC, "No space left on device", str(part))

    monkeypatch.setattr(_download, "_fetch", full)
    with MirrorServer() as mirror:
        assert (
            main(
                [
                    "datasets",
                    "download",
                    "flags",
                    "--data-dir",
                    str(tmp_path),
                    "--mirror",
                    mirror.url,
                ]
            )
            == 1
        )
    line = one_error_line()
    assert "no space left on the device (disk full)" in line and f"into {tmp_path}" in line
