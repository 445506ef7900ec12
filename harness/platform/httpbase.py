"""Threaded HTTP/1.1 server shared by IMDS, WireServer and HostGAPlugin: faults, recording, clean shutdown.

Each server owns one `App` that classifies a request into an endpoint name (used by fault rules and the log)
and answers it. The handler reads the body, applies a matching fault, calls the app, writes the response with
a Content-Length (keep-alive works) and records the exchange.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from harness.platform.faults import FaultAction, FaultSet
from harness.platform.requestlog import RequestLog

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 * 1024
IDLE_TIMEOUT_S = 300
PROBE_HEADER = "X-Harness-Probe"  # the platform's own liveness probe: answered at once, never faulted or logged


@dataclass(frozen=True)
class Request:
    """One parsed request; `query` keeps the first value per key as sent."""

    method: str
    path: str
    target: str
    query: dict[str, str]
    headers: Message
    body: bytes
    client: str

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup."""
        value = self.headers.get(name)
        return None if value is None else str(value)


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class App:
    """What a server answers; subclasses set `name` and override endpoint() and handle()."""

    name = "app"
    # endpoint -> headers the real service expects there (a missing one is recorded as a deviation)
    expected_headers: dict[str, tuple[str, ...]] = {}

    def endpoint(self, request: Request) -> str:
        return "other"

    def handle(self, request: Request) -> Response:
        return Response(404, b"not found\n")

    def fault_response(self, status: int, message: str) -> Response:
        return Response(status, f"{message}\n".encode())

    def missing_headers(self, request: Request, endpoint: str) -> list[str]:
        return [name for name in self.expected_headers.get(endpoint, ()) if request.header(name) is None]


class PlatformHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so stop() can close idle keep-alive ones and join."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App, faults: FaultSet, recorder: RequestLog,
                 stop_event: threading.Event) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        self.faults = faults
        self.recorder = recorder
        self.stop_event = stop_event
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._conn_threads: set[threading.Thread] = set()
        self._serve_thread: threading.Thread | None = None
        super().__init__(address, PlatformHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that can hang inside a namespace.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    @property
    def bound(self) -> tuple[str, int]:
        host, port = self.server_address[:2]
        return str(host), int(port)

    def serve_in_thread(self) -> None:
        self._serve_thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name=f"fake-{self.app.name}", daemon=True
        )
        self._serve_thread.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), name=f"fake-{self.app.name}-conn",
            daemon=True,
        )
        with self._lock:
            self._connections.add(request)
            self._conn_threads.add(thread)
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._connections.discard(request)
                self._conn_threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("%s: connection from %s failed", self.app.name, client_address, exc_info=True)

    def stop_serving(self, join_timeout_s: float = 5.0) -> None:
        """Stop the accept loop (takes up to one poll interval)."""
        if self._serve_thread is not None:
            self.shutdown()
            self._serve_thread.join(join_timeout_s)
            self._serve_thread = None

    def stop(self, join_timeout_s: float = 5.0) -> None:
        """Stop accepting, close every open connection, join the handler threads (bounded)."""
        self.stop_serving(join_timeout_s)
        with self._lock:
            connections = list(self._connections)
            threads = list(self._conn_threads)
        for conn in connections:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.server_close()
        deadline = time.monotonic() + join_timeout_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class PlatformHandler(BaseHTTPRequestHandler):
    """Reads, faults, answers and records one request at a time on a keep-alive connection."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S
    server: PlatformHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s: %s", self.server.app.name, format % args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        started = time.monotonic()
        request = self._read_request()
        if request is None:
            return
        if request.header(PROBE_HEADER) is not None:
            self._send(Response(200, f"{self.server.app.name} ok\n".encode()), request.method)
            return
        app = self.server.app
        self.server.recorder.note_arrival(app.name, request.method, request.target)
        endpoint = app.endpoint(request)
        action = self.server.faults.match(app.name, endpoint, dict(self.headers.items()))
        if action is not None:
            self.server.recorder.event("fault", server=app.name, endpoint=endpoint, action=action.describe())
        response = self._answer(request, endpoint, action)
        # Record before answering, so a client that has its answer always finds the request in the log.
        self._record(request, endpoint, action, response, started)
        if response is None:
            self.close_connection = True  # dropped: no status line; the client sees an empty reply
        else:
            self._send(response, request.method)

    def _answer(self, request: Request, endpoint: str, action: FaultAction | None) -> Response | None:
        app = self.server.app
        if action is None:
            return self._handle(request)
        if action.kind == "delay":
            if self.server.stop_event.wait(action.delay_s):
                return None
            return self._handle(request)
        if action.kind == "status":
            return app.fault_response(action.status, f"fault injected: {action.describe()}")
        if action.kind == "require-header":
            return app.fault_response(400, f"Required header {action.header} not specified")
        return None

    def _handle(self, request: Request) -> Response:
        try:
            return self.server.app.handle(request)
        except Exception as exc:  # a bug in the fake must not kill the connection thread silently
            log.exception("%s: internal error on %s %s", self.server.app.name, request.method, request.target)
            self.server.recorder.event("error", server=self.server.app.name, path=request.target, message=repr(exc))
            return Response(500, b"internal error in the fake platform\n")

    def _read_request(self) -> Request | None:
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send(Response(400, b"bad request body\n"), self.command)
            return None
        split = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(split.query, keep_blank_values=True).items()}
        client = f"{self.client_address[0]}:{self.client_address[1]}"
        return Request(self.command, split.path or "/", self.path, query, self.headers, body, client)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length", "0") or "0")
        except ValueError:
            return None
        if length < 0 or length > MAX_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip() or b"x", 16)
            except ValueError:
                return None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)

    def _send(self, response: Response, method: str) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if method != "HEAD" and response.body:
            self.wfile.write(response.body)
        self.wfile.flush()

    def _record(self, request: Request, endpoint: str, action: FaultAction | None, response: Response | None,
                started: float) -> None:
        local_host, local_port = self.server.bound
        missing = self.server.app.missing_headers(request, endpoint)
        entry = {
            "server": self.server.app.name,
            "local": f"{local_host}:{local_port}",
            "client": request.client,
            "method": request.method,
            "path": request.target,
            "endpoint": endpoint,
            "headers": {str(k): str(v) for k, v in request.headers.items()},
            "status": None if response is None else response.status,
            "fault": None if action is None else action.describe(),
            "missing_headers": missing,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        }
        self.server.recorder.record_request(entry, request.body)
        for header in missing:
            self.server.recorder.deviation(self.server.app.name, endpoint, "missing-header",
                                           f"{request.method} {request.target} without the {header} header")
