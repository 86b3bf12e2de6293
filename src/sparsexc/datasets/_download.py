"""Download a registered data set: fetch, verify, extract, and install it where ``load`` reads it.

Steps, for every file of the set (see ``_sources``):

1. fetch it (standard-library ``urllib``) into ``<data dir>/.downloads/<set>/<file>.part``, resuming a ``.part``
   left by a dropped connection with an HTTP ``Range`` request; Google Drive's confirmation pages (the
   "virus scan warning" form, or the older ``download_warning_*`` cookie + ``confirm=``) are passed;
2. check its SHA-256 where pinned; a mismatch deletes it (resuming a corrupt file cannot help);
3. extract it (zip, tar, gz, bz2; rar with the optional ``rarfile`` package) into a temporary folder beside
   the set's folder, checking the SHA-256 of each extracted file where pinned; files without a known checksum
   are checked by parsing them with the set's builder, and the SHA-256 they had is reported;
4. rename the temporary folder into place, so the set's folder appears complete or not at all (into an
   existing folder, e.g. one holding other files, each file is moved in with an atomic rename).

A ``.part`` file is kept only when the transfer itself was cut (to resume it); any other failure leaves
nothing behind.
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import gzip
import hashlib
import http.client
import http.cookiejar
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any

from sparsexc._atomic import make_temp_dir, replace_dir
from sparsexc.errors import ConfigurationError, SparsexcError

from ._paths import resolve_data_dir
from ._sources import MIRROR_ENV, Member, RemoteFile, remote_files
from .registry import get_spec, locate

__all__ = [
    "MIRROR_ENV",
    "ChecksumError",
    "DownloadError",
    "DownloadResult",
    "IncompleteDownloadError",
    "NoSourceError",
    "download",
    "sha256_of",
]

# under the data directory: the .part files of interrupted transfers
DOWNLOADS_DIR = ".downloads"
_CHUNK = 1 << 20
_TIMEOUT = 60  # seconds without data before a transfer counts as failed
_MAX_PAGES = 3  # confirmation pages followed before giving up


class DownloadError(SparsexcError, OSError):
    """A download failed: unreachable host, an HTTP error, an error page instead of the file, a cut transfer, a
    file that does not parse. The message is one line naming the URL or file. A failure of the run (exit 1)."""

    exit_code = 1

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ChecksumError(DownloadError):
    """A downloaded or extracted file's SHA-256 differs from the pinned one; the message names the file and
    both checksums."""


class IncompleteDownloadError(DownloadError):
    """The transfer was cut; its ``.part`` file is kept, and the next download of the set resumes it."""


class NoSourceError(DownloadError, ValueError):
    """The set has no public source to download from (it is built from local files): the user's mistake (exit 2)."""

    exit_code = 2


@dataclass
class DownloadResult:
    """What ``download`` did.

    Attributes
    ----------
    name : str
        The registered name.
    folder : Path
        The set's folder in the data directory.
    files : list of Path
        The files ``load`` reads, now there.
    already : bool
        True when the files were there already and nothing was fetched.
    urls : list of str
        The URLs fetched.
    unpinned : dict
        File name -> SHA-256 it had, for the files without a pinned checksum (checked by parsing).
    """

    name: str
    folder: Path
    files: list[Path]
    already: bool = False
    urls: list[str] = field(default_factory=list)
    unpinned: dict[str, str] = field(default_factory=dict)


def _mirror_base(mirror: str | None) -> str | None:
    base = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    if base is None:
        return None
    scheme = urllib.parse.urlsplit(base).scheme
    if scheme not in ("http", "https", "file"):
        where = "--mirror" if mirror is not None else MIRROR_ENV
        raise ConfigurationError(f"{where} must be an http://, https:// or file:// URL; got {base!r}")
    return base.rstrip("/")


def _url(remote: RemoteFile, mirror: str | None) -> str:
    return remote.url if mirror is None else f"{mirror}/{remote.mirror_path}"


# ----------------------------------------------------------------------------------------------- HTTP


class _PageParser(HTMLParser):
    """The parts of a Google Drive page that matter: the ``#download-form`` (action, hidden inputs) and the
    text of an ``uc-error-subcaption`` element."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.inputs: list[tuple[str, str]] = []
        self._in_form = False
        self._error_depth = 0
        self.error_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "download-form":
            self._in_form = True
            self.action = a.get("action", "")
        elif tag == "input" and self._in_form and a.get("type", "").lower() == "hidden" and a.get("name"):
            self.inputs.append((a["name"], a.get("value", "")))
        if "uc-error-subcaption" in a.get("class", "").split():
            self._error_depth = 1
        elif self._error_depth:
            self._error_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        if self._error_depth:
            self._error_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._error_depth:
            self.error_text.append(data)


def _confirmation_url(page: str, page_url: str, jar: http.cookiejar.CookieJar) -> str | None:
    """The URL that confirms a download from a Drive warning page; None when the page has none."""
    parser = _PageParser()
    parser.feed(page)
    # current Drive: submit #download-form (a GET form) with its hidden inputs
    if parser.action is not None:
        action = urllib.parse.urljoin(page_url, parser.action or page_url)
        joiner = "&" if urllib.parse.urlsplit(action).query else "?"
        return action + joiner + urllib.parse.urlencode(parser.inputs)
    host = urllib.parse.urlsplit(page_url).hostname or ""
    # older Drive: a download_warning_* cookie whose value goes into confirm=
    for cookie in jar:
        if cookie.name.startswith("download_warning") and host.endswith(cookie.domain.lstrip(".")):
            parts = urllib.parse.urlsplit(page_url)
            query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "confirm"]
            query.append(("confirm", cookie.value or ""))
            return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    return None


def _page_error(page: str, url: str) -> str:
    parser = _PageParser()
    parser.feed(page)
    text = " ".join(" ".join(parser.error_text).split())
    if text:  # Drive's error page, e.g. the download quota
        return (
            f"{url}: the server refused the download: {text} (Google Drive: try again later, or use "
            f"--mirror / {MIRROR_ENV})"
        )
    return f"{url}: got an HTML page instead of the file (an error or sign-in page?)"


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    return str(reason) or type(reason).__name__


def _open(
    opener: urllib.request.OpenerDirector,
    url: str,
    headers: dict[str, str],
    jar: http.cookiejar.CookieJar,
) -> Any:
    """Open ``url``, following Drive confirmation pages; the response is the file itself."""
    for _ in range(_MAX_PAGES + 1):
        try:
            response = opener.open(urllib.request.Request(url, headers=headers), timeout=_TIMEOUT)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 416:
                raise
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            host = urllib.parse.urlsplit(url).netloc or url
            raise DownloadError(f"cannot reach {host} for {url}: {_describe(exc)}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(f"{url}: {_describe(exc)}") from None
        content_type = response.headers.get_content_type() if hasattr(response, "headers") else ""
        if content_type != "text/html":
            return response
        page = response.read(1 << 20).decode("utf-8", "replace")
        page_url = response.geturl()
        response.close()
        next_url = _confirmation_url(page, page_url, jar)
        if next_url is None:
            raise DownloadError(_page_error(page, url))
        url = next_url
    raise DownloadError(f"{url}: still a confirmation page after {_MAX_PAGES} confirmations")


def _progress(total: int | None, initial: int, label: str, show: bool | None) -> Any:
    from tqdm import tqdm

    if show is None:
        # a bar only on a terminal: logs and pipes stay clean
        show = sys.stderr.isatty()
    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=label,
        disable=not show,
        file=sys.stderr,
        leave=False,
    )


def _fetch(url: str, part: Path, size: int | None, *, show_progress: bool | None) -> None:
    """Download ``url`` into ``part``, resuming what is there with a Range request."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    from sparsexc import __version__

    have = part.stat().st_size if part.exists() else 0
    if size is not None and have >= size:
        if have == size:
            return  # complete; the checksum says whether it is right
        have = 0
    headers = {"User-Agent": f"sparsexc/{__version__} (Python urllib)"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = _open(opener, url, headers, jar)
    except urllib.error.HTTPError:
        # only 416 gets here: the .part does not fit the file any more; start again
        headers.pop("Range", None)
        have = 0
        response = _open(opener, url, headers, jar)
    with response:
        status = getattr(response, "status", None)
        if have and status == 206 and response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
            mode = "ab"
        else:
            have, mode = 0, "wb"  # the server sent the whole file
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else size
        got = have
        with (
            open(part, mode) as fh,
            _progress(total, have, part.name[: -len(".part")], show_progress) as bar,
        ):
            try:
                while chunk := response.read(_CHUNK):
                    fh.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
            except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
                fh.flush()
                raise IncompleteDownloadError(
                    f"{url}: the transfer was cut after {fh.tell()} of {total or '?'} bytes ({_describe(exc)}); "
                    f"run the download again to resume from {part}"
                ) from None
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise
                raise IncompleteDownloadError(
                    f"{url}: the transfer failed: {_describe(exc)}; run the download again to resume from {part}"
                ) from None
    if total is not None and got < total:
        raise IncompleteDownloadError(
            f"{url}: the transfer was cut after {got} of {total} bytes; run the download again to resume from {part}"
        )


# ------------------------------------------------------------------------------------- verify, extract


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check(path: Path, expected: str | None, what: str) -> str:
    got = sha256_of(path)
    if expected is not None and got != expected:
        raise ChecksumError(f"checksum mismatch for {what}: expected sha256 {expected}, got {got}")
    return got


def _copy_stream(src: IO[bytes] | Any, dest: Path) -> None:
    with open(dest, "wb") as out:
        shutil.copyfileobj(src, out, _CHUNK)


def _open_archive_member(archive: str, path: Path, member: str) -> Any:
    if archive == "zip":
        zf = zipfile.ZipFile(path)
        return zf, zf.open(member)
    if archive == "tar":
        tf = tarfile.open(path)  # noqa: SIM115 - closed by the caller (any compression)
        info = tf.getmember(member)
        stream = tf.extractfile(info) if info.isfile() else None
        if stream is None:
            tf.close()
            raise DownloadError(f"{path.name}: {member} is not a regular file")
        return tf, stream
    if archive == "rar":
        try:
            import rarfile
        except ImportError:
            raise DownloadError(
                f"{path.name} is a .rar archive: install the 'rarfile' package (pip install rarfile) and the "
                "'unrar' tool to extract it, or download the plain files instead"
            ) from None
        rf = rarfile.RarFile(path)
        return rf, rf.open(member)
    raise AssertionError(f"unknown archive kind {archive!r}")


def _extract(remote: RemoteFile, path: Path, dest: Path) -> None:
    """Write the members of the downloaded ``path`` into the folder ``dest``."""
    try:
        if remote.archive == "plain":
            shutil.copyfile(path, dest / remote.members[0].name)
        elif remote.archive in ("gz", "bz2"):
            opener = gzip.open if remote.archive == "gz" else bz2.open
            with opener(path, "rb") as src:
                _copy_stream(src, dest / remote.members[0].name)
        else:
            for member in remote.members:
                assert member.member is not None
                container, stream = _open_archive_member(remote.archive, path, member.member)
                with container, stream:
                    _copy_stream(stream, dest / member.name)
    except KeyError as exc:
        raise DownloadError(f"{remote.file_name}: the archive has no member {exc.args[0]!r}") from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, gzip.BadGzipFile) as exc:
        raise DownloadError(f"{remote.file_name}: cannot extract it: {_describe(exc)}") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT) or isinstance(exc, DownloadError):
            raise
        raise DownloadError(f"{remote.file_name}: cannot extract it: {_describe(exc)}") from None


def _parse_check(name: str, staging: Path) -> None:
    """Build the set from the files in ``staging`` (for files whose checksum is unknown)."""
    from .registry import _build

    spec = get_spec(name)
    files = [next((staging / n for n in names if (staging / n).is_file()), staging / names[0]) for names in spec.files]
    split = spec.resolve_split(None)
    try:
        _build(spec, files, split, {})
    except (ValueError, OSError) as exc:
        raise DownloadError(f"{name}: the downloaded files do not parse: {exc}") from None


# -------------------------------------------------------------------------------------------- download


def _cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # .downloads, if nothing else is in it


def _install(staging: Path, target: Path, members: list[Member]) -> None:
    if not os.path.lexists(target):
        replace_dir(staging, target)  # one rename: the folder appears complete
        return
    # the folder exists (other files of the user's): move ours in, one rename each
    for member in members:
        os.replace(staging / member.name, target / member.name)
    shutil.rmtree(staging, ignore_errors=True)


def download(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    mirror: str | None = None,
    force: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> DownloadResult:
    """Download the registered data set ``name`` into the data directory, verified, in the layout ``load`` reads.

    Parameters
    ----------
    name : str
        A registered name (``list_datasets()``); case-insensitive.
    data_dir : path, optional
        Default ``$SPARSEXC_DATA``, else ``~/sparsexc_data``.
    mirror : str, optional
        Base URL replacing the sources' (default ``$SPARSEXC_MIRROR``): file ``f`` is fetched from
        ``<mirror>/<f.mirror_path>`` (layout: ``sparsexc.datasets._sources`` and docs/data.md).
    force : bool
        Download again even when the files are there.
    progress : bool, optional
        Show a progress bar on stderr; default: only when stderr is a terminal.
    log : callable, optional
        Called with one line per step (what is fetched, the SHA-256 of unpinned files).

    Returns
    -------
    DownloadResult

    Raises
    ------
    UnknownDatasetError (KeyError, ValueError)
        Unknown name; the message lists close matches.
    NoSourceError (ValueError)
        The set has no public source (it is built from local files).
    ValueError
        A mirror that is not an http(s):// or file:// URL.
    ChecksumError
        A file's SHA-256 differs from the pinned one (the file is deleted).
    DownloadError
        Unreachable host, HTTP error, an error page, a cut transfer (the ``.part`` is kept: call again to
        resume), an archive or file that does not extract or parse.
    OSError
        Disk full and other local failures.
    """
    say = log or (lambda line: None)
    spec = get_spec(name)
    remotes = remote_files(spec.name)
    root, _ = resolve_data_dir(data_dir)
    target = root / spec.folder
    if not force:
        try:
            return DownloadResult(spec.name, target, locate(spec, root), already=True)
        except FileNotFoundError:
            pass
    if remotes is None:
        raise NoSourceError(
            f"{spec.name!r} has no public source to download from: it is built from the files in "
            f"{spec.folder}/ of the data directory (see docs/data.md)"
        )
    base = _mirror_base(mirror)
    work = root / DOWNLOADS_DIR / spec.name
    work.mkdir(parents=True, exist_ok=True)
    result = DownloadResult(spec.name, target, [])
    keep_parts = False
    try:
        fetched: list[tuple[RemoteFile, Path]] = []
        for remote in remotes:
            url = _url(remote, base)
            done = work / remote.file_name
            if not done.exists():
                part = work / (remote.file_name + ".part")
                say(f"fetching {url}")
                try:
                    _fetch(url, part, remote.size, show_progress=progress)
                except IncompleteDownloadError:
                    keep_parts = part.exists()
                    raise
                except DownloadError:
                    raise
                except OSError:
                    keep_parts = True  # disk full: resumable once there is room
                    raise
                try:
                    got = _check(part, remote.sha256, f"{remote.file_name} from {url}")
                except ChecksumError:
                    part.unlink()
                    raise
                if remote.sha256 is None and all(m.sha256 for m in remote.members):
                    say(f"{remote.file_name}: sha256 {got}; its files are checked against pinned checksums")
                elif remote.sha256 is None:
                    result.unpinned[remote.file_name] = got
                    say(f"{remote.file_name}: no pinned sha256 (unknown upstream); it had sha256 {got}")
                os.replace(part, done)
            result.urls.append(url)
            fetched.append((remote, done))
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = make_temp_dir(target)
        try:
            members: list[Member] = []
            for remote, path in fetched:
                _extract(remote, path, staging)
                for member in remote.members:
                    got = _check(
                        staging / member.name,
                        member.sha256,
                        f"{member.name} (from {remote.file_name})",
                    )
                    if member.sha256 is None:
                        result.unpinned[member.name] = got
                        say(f"{member.name}: no pinned sha256 (unknown upstream); it had sha256 {got}")
                    members.append(member)
            if any(m.sha256 is None for m in members):
                say(f"checking {spec.name} by parsing it (no pinned checksums)")
                _parse_check(spec.name, staging)
            _install(staging, target, members)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    except BaseException:
        if not keep_parts:
            _cleanup(work)
        raise
    _cleanup(work)
    result.files = locate(spec, root)
    return result
