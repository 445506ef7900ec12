"""A loopback HTTP file server that honours Range requests (python's http.server does not), records every
request, and can cut a download short on purpose: the stand-in for a vendor's download server and mirrors.
"""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

CHUNK = 64 * 1024


@dataclass
class Served:
    method: str
    path: str
    range: str | None
    status: int
    bytes_sent: int = 0


@dataclass
class RangeServer:
    """Serves `root` on 127.0.0.1; `cut_first_get` maps a path to the byte count after which its first GET
    is cut off (headers promise the full length, the connection closes early)."""

    root: Path
    cut_first_get: dict[str, int] = field(default_factory=dict)
    requests: list[Served] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> RangeServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_HEAD(self) -> None:
                owner._serve(self, body=False)

            def do_GET(self) -> None:
                owner._serve(self, body=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def gets(self, path: str) -> list[Served]:
        with self._lock:
            return [r for r in self.requests if r.method == "GET" and r.path == path]

    def _record(self, served: Served) -> Served:
        with self._lock:
            self.requests.append(served)
        return served

    def _serve(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path = handler.path.split("?", 1)[0]
        target = (self.root / path.lstrip("/")).resolve()
        wanted = handler.headers.get("Range")
        if not target.is_file() or self.root.resolve() not in target.parents:
            self._record(Served(handler.command, path, wanted, 404))
            handler.send_error(404)
            return
        size = target.stat().st_size
        start, end = 0, size - 1
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted or "")
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            if start >= size:
                self._record(Served(handler.command, path, wanted, 416))
                handler.send_response(416)
                handler.send_header("Content-Range", f"bytes */{size}")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
        status = 206 if match else 200
        served = self._record(Served(handler.command, path, wanted, status))
        handler.send_response(status)
        handler.send_header("Content-Length", str(end - start + 1))
        handler.send_header("Accept-Ranges", "bytes")
        if match:
            handler.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        handler.end_headers()
        if body:
            self._send(handler, target, start, end, served)

    def _send(self, handler: BaseHTTPRequestHandler, target: Path, start: int, end: int, served: Served) -> None:
        with self._lock:
            cut = self.cut_first_get.pop(served.path, None)
        remaining = end - start + 1 if cut is None else min(cut, end - start + 1)
        with target.open("rb") as handle:
            handle.seek(start)
            while remaining > 0:
                block = handle.read(min(CHUNK, remaining))
                if not block:
                    break
                handler.wfile.write(block)
                remaining -= len(block)
                served.bytes_sent += len(block)
        if cut is not None:
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
