"""Recording HTTP proxy in front of Azurite that behaves like Azure where Azurite is laxer (reference §3.5).

- Put Page bodies over 4 MiB get 413 RequestBodyTooLarge and misaligned ranges 416 InvalidPageRange, as
  Azure answers (Azurite accepts both);
- Get Page Ranges is answered in pages with a NextMarker when `page_list_size` is set (Azurite never pages);
- every request is counted per client (first User-Agent token) and logged, so tests can assert on bytes sent;
- faults can be injected: `fail_put_pages_after` (500 to every Put Page after N succeeded) and
  `transient_put_page_failures` (503 ServerBusy to the next K Put Pages).
"""

from __future__ import annotations

import http.client
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes import serve_on_loopback, shut_down

MAX_PUT_PAGE = 4 * 1024 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class ClientStats:
    """Traffic one client sent through the proxy."""

    requests: int = 0
    body_bytes: int = 0
    put_pages: int = 0
    put_page_bytes: int = 0
    max_put_page_bytes: int = 0
    clear_pages: int = 0
    page_list_requests: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class Request:
    """One request as the proxy saw it."""

    client: str
    method: str
    path: str
    query: dict[str, str]
    page_range: tuple[int, int] | None  # inclusive byte range of a Put/Clear Page
    body_bytes: int
    status: int


@dataclass
class BlobProxy:
    """A threaded proxy on 127.0.0.1 forwarding to Azurite at upstream_port; see the module docstring."""

    upstream_port: int
    page_list_size: int | None = None
    fail_put_pages_after: int | None = None
    transient_put_page_failures: int = 0
    stats: dict[str, ClientStats] = field(default_factory=dict)
    log: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    put_pages_ok: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None, "proxy not started"
        return int(self.server.server_address[1])

    def total(self) -> ClientStats:
        """All clients' traffic added up."""
        out = ClientStats()
        for stats in self.stats.values():
            for name in vars(out):
                value = getattr(stats, name)
                setattr(out, name, max(getattr(out, name), value) if name.startswith("max_") else
                        getattr(out, name) + value)
        return out

    def reset(self) -> None:
        with self.lock:
            self.stats.clear()
            self.log.clear()
            self.put_pages_ok = 0
            self.fail_put_pages_after = None
            self.transient_put_page_failures = 0

    def put_page_ranges(self) -> list[tuple[int, int]]:
        """[start, end) of every Put Page that reached Azurite, in arrival order."""
        return [(r.page_range[0], r.page_range[1] + 1) for r in self.log
                if r.page_range and r.query.get("comp") == "page" and r.status == 201
                and r.method == "PUT" and r.body_bytes]

    def start(self) -> BlobProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self.server = serve_on_loopback(Handler, "blob-proxy")
        return self

    def stop(self) -> None:
        shut_down(self.server)
        self.server = None


@contextmanager
def running_proxy(upstream_port: int, **options: Any) -> Iterator[BlobProxy]:
    proxy = BlobProxy(upstream_port, **options).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def _error(code: str, message: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
            "</Error>").encode()


def _page_range(headers: Any) -> tuple[int, int] | None:
    value = headers.get("x-ms-range") or headers.get("Range")
    if not value or not value.startswith("bytes="):
        return None
    start, _, end = value[6:].partition("-")
    return int(start), int(end)


class _Handler(BaseHTTPRequestHandler):
    owner: BlobProxy
    protocol_version = "HTTP/1.1"
    _local = threading.local()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _upstream(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.owner.upstream_port, timeout=120)
            self._local.conn = conn
        return conn

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        client = (self.headers.get("User-Agent") or "unknown").split(" ", 1)[0]
        page_range = _page_range(self.headers) if query.get("comp") == "page" else None
        status, headers, payload = self._decide(query, page_range, body)
        if status == 0:
            status, headers, payload = self._forward(query, body)
        self._record(Request(client, self.command, url.path, query, page_range, len(body), status))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if self.command != "HEAD" or not any(n.lower() == "content-length" for n, _ in headers):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _decide(self, query: dict[str, str], page_range: tuple[int, int] | None,
                body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """An answer of our own (a limit Azure enforces, or an injected fault), or status 0 to forward."""
        is_put_page = (self.command == "PUT" and query.get("comp") == "page"
                       and (self.headers.get("x-ms-page-write") or "").lower() == "update")
        if not is_put_page:
            return 0, [], b""
        xml = [("Content-Type", "application/xml")]
        if len(body) > MAX_PUT_PAGE:
            return 413, xml, _error("RequestBodyTooLarge", f"The request body is too large. MaxLimit {MAX_PUT_PAGE}")
        if page_range is None or page_range[0] % 512 or (page_range[1] + 1) % 512 \
                or page_range[1] + 1 - page_range[0] != len(body):
            return 416, xml, _error("InvalidPageRange", "The page range specified is invalid.")
        with self.owner.lock:
            if self.owner.transient_put_page_failures > 0:
                self.owner.transient_put_page_failures -= 1
                return 503, xml, _error("ServerBusy", "The server is currently unable to receive requests.")
            limit = self.owner.fail_put_pages_after
            if limit is not None and self.owner.put_pages_ok >= limit:
                return 500, xml, _error("InternalError", "Injected failure.")
            self.owner.put_pages_ok += 1  # counted before forwarding so concurrent requests respect the limit
        return 0, [], b""

    def _forward(self, query: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        paged = self.command == "GET" and query.get("comp") == "pagelist" and self.owner.page_list_size
        # The query is forwarded untouched: it is covered by the Shared Key signature. Azurite ignores
        # marker/maxresults on Get Page Ranges and returns the whole list, which _page() then slices.
        target = self.path
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        for attempt in (1, 2):  # a kept-alive upstream connection may have been closed by Azurite meanwhile
            conn = self._upstream()
            try:
                conn.request(self.command, target, body=body or None, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        out = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP
               and (k.lower() != "content-length" or self.command == "HEAD")]
        if paged and response.status == 200:
            payload = self._page(payload, query)
        return response.status, out, payload

    def _page(self, payload: bytes, query: dict[str, str]) -> bytes:
        """Serve one page of the full list Azurite returned, with a NextMarker like Azure does."""
        root = ET.fromstring(payload)
        ranges = [el for el in root if el.tag in ("PageRange", "ClearRange")]
        start = int(query.get("marker") or 0)
        size = min(int(self.owner.page_list_size or 0), int(query.get("maxresults") or 1 << 30))
        out = ET.Element("PageList")
        out.extend(ranges[start:start + size])
        ET.SubElement(out, "NextMarker").text = str(start + size) if start + size < len(ranges) else None
        return b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(out)

    def _record(self, request: Request) -> None:
        query, nbytes = request.query, request.body_bytes
        with self.owner.lock:
            stats = self.owner.stats.setdefault(request.client, ClientStats())
            stats.requests += 1
            stats.body_bytes += nbytes
            if query.get("comp") == "page" and (self.headers.get("x-ms-page-write") or "").lower() == "update":
                stats.put_pages += 1
                stats.put_page_bytes += nbytes
                stats.max_put_page_bytes = max(stats.max_put_page_bytes, nbytes)
            elif query.get("comp") == "page":
                stats.clear_pages += 1
            if query.get("comp") == "pagelist":
                stats.page_list_requests += 1
            if request.status in (413, 416):
                stats.rejected += 1
            self.owner.log.append(request)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _handle
