"""A local download mirror for the tests and the docs: an HTTP server on 127.0.0.1 (port 0, one thread) serving
the mirror layout of ``sparsexc.datasets._sources`` built from ``../shared/datasets``.

>>> with serve_mirror(tmp_path) as base_url:           # doctest: +SKIP
...     os.environ["SPARSEXC_MIRROR"] = base_url
...     sparsexc.datasets.download("emotions", tmp_path / "data")

It serves:

* ``mulan/<dir>/<file>``: the Mulan files of every ``mulan-*`` folder (byte-identical to upstream);
* ``multi-label-dataset/<file>.mat``: the ``*-mat`` folders' files;
* ``meka/Imdb.arff.bz2``: ``meka-imdb/Imdb.arff.gz`` decompressed and bzip2-compressed (level 9 reproduces the
  upstream bytes);
* ``xc/Bibtex.zip``: a zip of ``Bibtex/`` (data file decompressed) behind a Google-Drive-style confirmation page:
  ``form`` (the "virus scan warning" page with a ``#download-form``; default), ``cookie`` (the older
  ``download_warning_*`` cookie + ``confirm=``), ``quota`` (Drive's error page), or ``none`` (the file itself).

``MirrorServer`` gives tests more control: extra or replaced files (``files``), a connection dropped after n
bytes the first time a path is served (``drop_after``), the Drive mode per path (``drive``), and the log of
requests (``requests``: path and headers) to check resumes. Files are built lazily, on first request.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import threading
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from _shared_data import SHARED_DATASETS, missing_reason

__all__ = ["MirrorServer", "bibtex_zip", "serve_mirror", "xc_zip"]

_CONFIRM_TOKEN = "t0k3n"  # what the fake Drive wants back in confirm=


def bibtex_zip(shared: Path = SHARED_DATASETS) -> bytes:
    """A zip laid out as the XC repository's Bibtex.zip (``Bibtex/Bibtex_data.txt`` + the two split files)."""
    folder = shared / "Bibtex"
    return xc_zip(
        "Bibtex",
        {
            "Bibtex_data.txt": gzip.decompress((folder / "Bibtex_data.txt.gz").read_bytes()),
            "bibtex_trSplit.txt": (folder / "bibtex_trSplit.txt").read_bytes(),
            "bibtex_tstSplit.txt": (folder / "bibtex_tstSplit.txt").read_bytes(),
        },
    )


def xc_zip(inner: str, members: dict[str, bytes]) -> bytes:
    """A zip holding ``inner/<name>`` for each member (the XC zips' layout); fixed timestamps, so reproducible."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(f"{inner}/{name}", date_time=(2016, 4, 28, 0, 0, 0))
            zf.writestr(info, data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _default_files(shared: Path) -> dict[str, Callable[[], bytes]]:
    files: dict[str, Callable[[], bytes]] = {}
    if not shared.is_dir():
        return files
    for folder in sorted(shared.iterdir()):
        if folder.name.startswith("mulan-"):
            upstream = "tmc2007" if folder.name == "mulan-tmc2007-500" else folder.name[len("mulan-") :]
            prefix = f"mulan/{upstream}/"
        elif folder.name.endswith("-mat"):
            prefix = "multi-label-dataset/"
        else:
            continue
        for path in sorted(folder.iterdir()):
            if path.name != "SOURCE.md":
                files[prefix + path.name] = path.read_bytes
    imdb = shared / "meka-imdb" / "Imdb.arff.gz"
    if imdb.is_file():
        files["meka/Imdb.arff.bz2"] = lambda: bz2.compress(gzip.decompress(imdb.read_bytes()), 9)
    if (shared / "Bibtex").is_dir():
        files["xc/Bibtex.zip"] = lambda: bibtex_zip(shared)
    return files


class MirrorServer:
    """The mirror as a context manager; ``url`` is its base URL while it runs.

    Parameters
    ----------
    shared : Path
        The real data sets (default ``../shared/datasets``).
    files : dict, optional
        Mirror path -> bytes (or a callable returning them), added to / replacing the defaults.
    drive : dict, optional
        Mirror path -> ``"form"``, ``"cookie"``, ``"quota"`` or ``"none"``; paths under ``xc/`` default to
        ``"form"``, others to ``"none"``.
    drop_after : dict, optional
        Mirror path -> n: the first time the file's bytes are served, send the full ``Content-Length`` but only
        ``n`` bytes, then close the connection.
    ranges : bool
        Honour ``Range: bytes=N-`` requests (206); False answers them with the whole file (200).
    """

    def __init__(
        self,
        shared: Path = SHARED_DATASETS,
        *,
        files: dict[str, bytes | Callable[[], bytes]] | None = None,
        drive: dict[str, str] | None = None,
        drop_after: dict[str, int] | None = None,
        ranges: bool = True,
    ) -> None:
        self._makers: dict[str, Callable[[], bytes]] = _default_files(Path(shared))
        for path, data in (files or {}).items():
            self._makers[path] = data if callable(data) else (lambda data=data: data)
        self._built: dict[str, bytes] = {}
        self.drive = dict(drive or {})
        self.drop_after = dict(drop_after or {})
        self.ranges = ranges
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def content(self, path: str) -> bytes | None:
        """The bytes served at ``path`` (built on first use), or None when the mirror has no such file."""
        with self._lock:
            if path not in self._built:
                maker = self._makers.get(path)
                if maker is None:
                    return None
                self._built[path] = maker()
            return self._built[path]

    def drive_mode(self, path: str) -> str:
        return self.drive.get(path, "form" if path.startswith("xc/") else "none")

    def __enter__(self) -> MirrorServer:
        handler = type("Handler", (_Handler,), {"mirror": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # port 0: the system picks a free one
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-mirror", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@contextmanager
def serve_mirror(tmp_path: Path | None = None, **options: object) -> Iterator[str]:
    """Run a ``MirrorServer`` (options as there) and yield its base URL (for ``SPARSEXC_MIRROR``).

    ``tmp_path`` is accepted for symmetry with other fixtures; the mirror keeps its files in memory. Skips the
    calling test when ``../shared/datasets`` is missing (the files are made from it).
    """
    shared = Path(options.get("shared", SHARED_DATASETS))  # type: ignore[arg-type]
    if not shared.is_dir():  # the mirror is made from the real sets
        pytest.skip(missing_reason())
    with MirrorServer(**options) as server:  # type: ignore[arg-type]
        yield server.url


class _Handler(BaseHTTPRequestHandler):
    mirror: MirrorServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # the http.server API names it
        parts = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parts.path).lstrip("/")
        query = dict(urllib.parse.parse_qsl(parts.query))
        self.mirror.requests.append((path, dict(self.headers.items())))
        if path == "drive/download":  # the target of the confirmation form
            if query.get("confirm") != _CONFIRM_TOKEN or "uuid" not in query:
                self._send(403, b"<html><body>bad confirmation</body></html>", "text/html")
                return
            self._file(query.get("id", ""))
            return
        mode = self.mirror.drive_mode(path)
        if self.mirror.content(path) is None:
            self._send(404, b"not found", "text/plain")
        elif mode == "quota":
            self._send(200, _QUOTA_PAGE.encode(), "text/html; charset=utf-8")
        elif mode == "form":
            page = _FORM_PAGE.format(id=path, token=_CONFIRM_TOKEN)
            self._send(200, page.encode(), "text/html; charset=utf-8")
        elif mode == "cookie" and query.get("confirm") != _CONFIRM_TOKEN:
            cookie = f"download_warning_13058876669334088843_{path.replace('/', '_')}={_CONFIRM_TOKEN}; Path=/"
            self._send(
                200,
                _COOKIE_PAGE.encode(),
                "text/html; charset=utf-8",
                {"Set-Cookie": cookie},
            )
        else:
            self._file(path)

    def _file(self, path: str) -> None:
        body = self.mirror.content(path)
        if body is None:
            self._send(404, b"not found", "text/plain")
            return
        start = 0
        ranged = self.headers.get("Range", "")
        if self.mirror.ranges and ranged.startswith("bytes=") and ranged.endswith("-"):
            start = int(ranged[len("bytes=") : -1])
            if start >= len(body):
                self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{len(body)}"})
                return
        headers = {
            "Content-Disposition": f'attachment; filename="{os.path.basename(path)}"',
            "Accept-Ranges": "bytes",
        }
        status = 200
        if start:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        chunk = body[start:]
        drop = self.mirror.drop_after.pop(path, None)
        if drop is None:
            self._send(status, chunk, "application/octet-stream", headers)
            return
        self.send_response(status)  # promise everything, send `drop` bytes, hang up
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(chunk)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(chunk[:drop])
        self.wfile.flush()
        self.close_connection = True


_FORM_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>
<div class="uc-main"><div id="uc-text"><p class="uc-warning-caption">Google Drive can't scan this file for viruses.</p>
<p class="uc-warning-subcaption">This file is too large for Google to scan for viruses. Download anyway?</p>
<form id="download-form" action="/drive/download" method="get">
<input type="submit" id="uc-download-link" class="goog-inline-block jfk-button jfk-button-action" value="Download anyway"/>
<input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="{token}"><input type="hidden" name="uuid" value="5e3c7a52-0f4c-4d8e-9d1e-1b2a3c4d5e6f">
</form></div></div></body></html>"""

_COOKIE_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>
<p class="uc-warning-subcaption">Google Drive can't scan this file for viruses.</p>
<a id="uc-download-link" href="?confirm=see-cookie">Download anyway</a></body></html>"""

_QUOTA_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>
<div class="uc-main"><div id="uc-text"><p class="uc-error-caption">Sorry, you can't view or download this file at this time.</p>
<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently. Please try accessing the file
again later.</p></div></div></body></html>"""
