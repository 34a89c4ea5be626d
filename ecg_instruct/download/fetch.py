"""Fetch one file over HTTP so that a user can trust what ends up under its final name.

- Bytes go to `<name>.part`; only a file whose SHA-256 matches the release is renamed into place,
  so an interrupted run (Ctrl-C, kill -9, dropped connection) never leaves a half file behind.
- A `.part` left by an earlier run is continued with `Range: bytes=N-`; its bytes are hashed
  first, so the whole file is still verified end to end.
- 429 and 5xx answers, timeouts and dropped connections are retried with exponential backoff
  (honouring `Retry-After`); other 4xx answers fail the file at once.
- A checksum mismatch is fetched once more from scratch, then reported.

No fsync before the rename: every later run re-hashes files that are present, so a file torn by
a power cut is caught and fetched again, and 40,000 fsyncs would cost more than they protect.
"""

from __future__ import annotations

import email.utils
import errno
import hashlib
import http.client
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3

from ecg_instruct import __version__
from ecg_instruct.errors import UserError

USER_AGENT = f"ecg-instruct/{__version__} (resumable verified downloader)"
PART_SUFFIX = ".part"
_HASH_BLOCK = 1 << 20
# Errors raised while *reading the response*; local file errors are kept apart on purpose.
_NETWORK_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


@dataclass(frozen=True)
class FetchConfig:
    """Politeness and patience: how hard to try before a file counts as failed."""

    retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    chunk_size: int = 1 << 14  # small enough that Ctrl-C stops a slow transfer promptly


@dataclass(frozen=True)
class FileResult:
    """What happened to one file: `fetched`, `skipped` (present and verified) or `failed`."""

    path: str
    status: str
    nbytes: int = 0
    detail: str = ""


class Interrupted(Exception):
    """The run was asked to stop (Ctrl-C or a fatal error in another worker).

    `summary` holds what was done before the stop, when the caller knows it.
    """

    summary: object | None = None


class Unreachable(Exception):
    """The server could not be reached at all after every retry."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None, connect: bool = False):
        super().__init__(reason)
        self.retry_after = retry_after
        self.connect = connect


class _Permanent(Exception):
    pass


def part_path(dest: Path) -> Path:
    """The temporary name a file is written under until it is verified."""
    return dest.with_name(dest.name + PART_SUFFIX)


def sha256_file(path: Path, stop: threading.Event | None = None) -> str:
    """Hex SHA-256 of a file (hashlib releases the GIL, so worker threads hash in parallel)."""
    hasher = hashlib.sha256()
    _hash_into(hasher, path, stop)
    return hasher.hexdigest()


def _hash_into(hasher: hashlib._Hash, path: Path, stop: threading.Event | None) -> None:
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            if stop is not None and stop.is_set():
                raise Interrupted()
            hasher.update(block)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    # urllib3 nests the useful part deep inside long reprs; keep one readable line.
    for marker in ("Connection refused", "Name or service not known", "timed out",
                   "Temporary failure in name resolution", "Network is unreachable",
                   "Connection reset", "IncompleteRead", "Connection broken"):
        if marker in text:
            return marker
    return text.splitlines()[0][:160]


class Fetcher:
    """Thread-safe HTTP fetcher: one keep-alive session per worker thread."""

    def __init__(
        self,
        config: FetchConfig | None = None,
        stop: threading.Event | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ):
        self.config = config or FetchConfig()
        self.stop = stop or threading.Event()
        self.on_bytes = on_bytes or (lambda n: None)
        self._local = threading.local()
        self._rng = random.Random()

    # -- plumbing -------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1,
                                                    max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            # identity: Range offsets must count the file's bytes, not a gzip stream's.
            session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
            self._local.session = session
        return session

    def _get(self, url: str, headers: dict[str, str]) -> requests.Response:
        try:
            response = self._session().get(
                url,
                headers=headers,
                stream=True,
                timeout=(self.config.connect_timeout, self.config.read_timeout),
                allow_redirects=True,
            )
        except requests.ConnectionError as exc:  # includes ConnectTimeout
            raise _Transient(_short(exc), connect=True) from None
        except requests.Timeout as exc:  # the server is there, just slow to answer
            raise _Transient(_short(exc)) from None
        except requests.RequestException as exc:
            raise _Permanent(_short(exc)) from None
        status = response.status_code
        if status == 429 or status >= 500:
            response.close()
            raise _Transient(f"HTTP {status}", _retry_after(response.headers.get("Retry-After")))
        return response

    def _sleep(self, attempt: int, retry_after: float | None) -> None:
        cfg = self.config
        delay = cfg.backoff * (2**attempt) * (0.5 + self._rng.random() / 2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if self.stop.wait(min(delay, cfg.max_backoff)):
            raise Interrupted()

    def _with_retries(
        self, url: str, once: Callable[[], object], connect_retries: int | None = None
    ) -> object:
        """Run `once` until it succeeds, retrying transient failures with backoff.

        `connect_retries` caps retries when no connection can be made at all (the first
        request of a run: an offline user should hear so in seconds, not after a minute).
        """
        last: _Transient | None = None
        for attempt in range(self.config.retries + 1):
            if self.stop.is_set():
                raise Interrupted()
            try:
                return once()
            except _Transient as exc:
                last = exc
                if exc.connect and connect_retries is not None and attempt >= connect_retries:
                    break
                if attempt < self.config.retries:
                    self._sleep(attempt, exc.retry_after)
        assert last is not None
        if last.connect:
            raise Unreachable(url, str(last))
        raise _Permanent(f"{last} after {self.config.retries} retries")

    # -- small files (the checksum list) ---------------------------------------------------

    def get_bytes(self, url: str) -> bytes:
        """A whole small file in memory. Raises Unreachable, or UserError for a bad answer."""

        def once() -> bytes:
            response = self._get(url, {})
            with response:
                if response.status_code != 200:
                    raise _Permanent(f"HTTP {response.status_code}")
                try:
                    return response.content
                except _NETWORK_ERRORS as exc:
                    raise _Transient(_short(exc)) from None

        try:
            return self._with_retries(url, once, connect_retries=2)  # type: ignore[return-value]
        except _Permanent as exc:
            raise UserError(
                f"server answered {exc}",
                path=url,
                fix="check --base-url (the folder that holds SHA256SUMS.txt)",
            ) from None

    # -- release files ---------------------------------------------------------------------

    def fetch(self, url: str, dest: Path, sha256: str, relpath: str) -> FileResult:
        """Make `dest` a verified copy of `url`, reusing a verified file or a `.part`."""
        try:
            return self._fetch(url, dest, sha256, relpath)
        except OSError as exc:
            # Local trouble (disk full, permissions) hits every file: stop the whole run.
            if exc.errno == errno.ENOSPC:
                raise UserError("no space left on device", path=dest,
                                fix="free space or choose another --out, then re-run") from None
            raise UserError(f"cannot write ({exc.strerror or exc})", path=dest,
                            fix="check the permissions of --out, then re-run") from None

    def _fetch(self, url: str, dest: Path, sha256: str, relpath: str) -> FileResult:
        part = part_path(dest)
        if dest.is_file():
            if sha256_file(dest, self.stop) == sha256:
                part.unlink(missing_ok=True)
                return FileResult(relpath, "skipped")
            note, stale = "replaced a local copy that did not match SHA256SUMS", True
        else:
            note, stale = "", False
        dest.parent.mkdir(parents=True, exist_ok=True)
        fetched = [0]  # bytes received over every attempt, including ones that broke off
        for fresh in (False, True):  # first try may resume a .part; a mismatch gets one fresh try
            if fresh:
                part.unlink(missing_ok=True)
            try:
                digest = self._with_retries(url, lambda: self._download_once(url, part, fetched))
            except _Permanent as exc:
                return FileResult(relpath, "failed", fetched[0], _failed(str(exc), stale))
            if digest == sha256:
                os.replace(part, dest)
                return FileResult(relpath, "fetched", fetched[0], note)
        part.unlink(missing_ok=True)
        return FileResult(relpath, "failed", fetched[0], _failed(
            "checksum mismatch (fetched twice), does not match SHA256SUMS.txt", stale))

    def _download_once(self, url: str, part: Path, counter: list[int]) -> str:
        """One request: continue `part` (or start it) and return the sha256 of all of it.

        Bytes received before a failure stay in `part`, so the retry continues from there;
        `counter[0]` adds up the bytes that came over the network.
        """
        hasher = hashlib.sha256()
        offset = part.stat().st_size if part.is_file() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        response = self._get(url, headers)
        with response:
            status = response.status_code
            if status == 416 and offset:
                # Nothing left to send: the .part may already be whole; the hash will tell.
                _hash_into(hasher, part, self.stop)
                return hasher.hexdigest()
            if status == 206 and offset:
                start = _content_range_start(response.headers.get("Content-Range"))
                if start != offset:
                    part.unlink()
                    raise _Transient(f"server resumed at byte {start}, not {offset}")
                _hash_into(hasher, part, self.stop)
                mode = "ab"
            elif status == 200:
                offset, mode = 0, "wb"  # server ignored Range (or nothing to resume)
            else:
                raise _Permanent(f"HTTP {status}")
            expected = response.headers.get("Content-Length")
            received = 0
            stream = response.raw.stream(self.config.chunk_size, decode_content=False)
            with part.open(mode) as handle:
                while True:
                    if self.stop.is_set():
                        raise Interrupted()
                    try:
                        chunk = next(stream)
                    except StopIteration:
                        break
                    except _NETWORK_ERRORS as exc:
                        raise _Transient(_short(exc)) from None
                    handle.write(chunk)
                    hasher.update(chunk)
                    received += len(chunk)
                    counter[0] += len(chunk)
                    self.on_bytes(len(chunk))
            if expected is not None and expected.isdigit() and received != int(expected):
                raise _Transient(f"connection dropped after {received} of {expected} bytes")
        return hasher.hexdigest()


def _failed(detail: str, stale: bool) -> str:
    """Failure text; says so when the file under the final name is a stale, unverified copy."""
    return detail + ("; the local copy does not match SHA256SUMS.txt either" if stale else "")


def _content_range_start(value: str | None) -> int | None:
    """`bytes 100-199/200` -> 100."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None
