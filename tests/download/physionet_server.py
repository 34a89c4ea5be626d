"""A real HTTP/1.1 server on 127.0.0.1 that serves a folder the way PhysioNet does, with faults.

Supports `Range: bytes=N-` / `bytes=N-M` (206 + Content-Range, 416 past the end) and keep-alive.
Faults are queued per path and each consumes one request:
  "drop"         send the headers and half the body, then close the connection
  "corrupt"      send the full length with one byte flipped
  "429" / "503"  answer that status with `Retry-After: 0`
  "ignore_range" answer 200 with the whole file even when a Range was asked for
  "wrong_range"  answer a Range request with 206 but the whole file from byte 0
  "slow"         send the body in 4 KiB pieces with a pause after each (for kill -9 tests)
`go_down()` makes the server unreachable at once, cutting slow responses mid-body.
Every request is logged as (path, Range header or None, status).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

PREFIX = "/files/"
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class PhysioNetServer:
    """Serve `root` at http://127.0.0.1:<port>/files/; start() returns that base URL."""

    def __init__(self, root: Path, slow_delay: float = 0.02):
        self.root = root
        self.slow_delay = slow_delay
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.log: list[tuple[str, str | None, int]] = []
        self._lock = threading.Lock()
        self._down = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add_fault(self, relpath: str, *kinds: str) -> None:
        with self._lock:
            self.faults[relpath].extend(kinds)

    def _take_fault(self, relpath: str) -> str | None:
        with self._lock:
            queue = self.faults.get(relpath)
            return queue.pop(0) if queue else None

    def _record(self, relpath: str, range_header: str | None, status: int) -> None:
        with self._lock:
            self.log.append((relpath, range_header, status))

    def requests_for(self, relpath: str) -> list[tuple[str | None, int]]:
        with self._lock:
            return [(r, s) for p, r, s in self.log if p == relpath]

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{PREFIX}"

    def start(self) -> str:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes: without this, Nagle + delayed ACK
                # add ~40 ms to every keep-alive response (a test-server artefact, not nginx's).
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                server._serve(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._httpd is not None and not self._down.is_set():
            self._down.set()
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> PhysioNetServer:
        """`with PhysioNetServer(root) as server:` serves for the block (started, then stopped
        even when the block fails)."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def go_down(self) -> None:
        """Stop listening (new connections are refused) and cut responses in flight."""
        self.stop()

    # -- request handling ------------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        path = unquote(urlsplit(h.path).path)
        range_header = h.headers.get("Range")
        if not path.startswith(PREFIX):
            return self._status(h, path, range_header, 404)
        relpath = path[len(PREFIX):]
        target = (self.root / relpath).resolve()
        if self.root.resolve() not in target.parents or not target.is_file():
            return self._status(h, relpath, range_header, 404)
        fault = self._take_fault(relpath)
        if fault in ("429", "503"):
            return self._status(h, relpath, range_header, int(fault), {"Retry-After": "0"})
        data = target.read_bytes()
        size = len(data)
        start, end, status = 0, size - 1, 200
        if range_header and fault != "ignore_range":
            match = _RANGE.match(range_header.strip())
            if match is None or int(match.group(1)) >= size:
                return self._status(h, relpath, range_header, 416,
                                    {"Content-Range": f"bytes */{size}"})
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            status = 206
            if fault == "wrong_range":
                start, end = 0, size - 1
        body = data[start:end + 1]
        if fault == "corrupt":
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        self._record(relpath, range_header, status)
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        h.end_headers()
        try:
            if fault == "drop":
                h.wfile.write(body[: len(body) // 2])
                h.wfile.flush()
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
            elif fault == "slow":
                for i in range(0, len(body), 4096):
                    if self._down.is_set():
                        h.close_connection = True
                        h.connection.shutdown(socket.SHUT_RDWR)
                        return
                    h.wfile.write(body[i:i + 4096])
                    h.wfile.flush()
                    time.sleep(self.slow_delay)
            else:
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    def _status(self, h: BaseHTTPRequestHandler, relpath: str, range_header: str | None,
                status: int, headers: dict[str, str] | None = None) -> None:
        self._record(relpath, range_header, status)
        body = f"{status}\n".encode()
        h.send_response(status)
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
