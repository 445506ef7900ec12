"""Package downloads for the customization boot, which has no route out: an HTTP proxy on the host (CONNECT for
https, absolute-URI requests for http) that the guest reaches through a bridge in its network namespace.

The proxy refuses every destination a guest must never reach (IMDS and all link-local addresses, the
WireServer, loopback), checked on the addresses the name resolves to, so the isolation rule holds: the guest
gets the package mirrors of its own configuration and nothing of the host's cloud.

    python -m harness.helpers.egress bridge SOCKET HOST:PORT   (inside the namespace: TCP HOST:PORT -> SOCKET)
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
import urllib.parse
from pathlib import Path
from types import TracebackType

from harness.helpers.sshproxy import pump

PROXY_PORT = 3128
HEAD_MAX_BYTES = 64 * 1024
CONNECT_TIMEOUT_S = 15.0
FORBIDDEN = tuple(ipaddress.ip_network(n) for n in (
    "169.254.0.0/16", "168.63.129.16/32", "127.0.0.0/8", "0.0.0.0/8", "::1/128", "fe80::/10", "::/128"))


def forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in net for net in FORBIDDEN if net.version == ip.version)


def target_of(request_line: str) -> tuple[str, int, str]:
    """(host, port, request line to send upstream); CONNECT keeps no line. Raises ValueError when not a proxy
    request: 'CONNECT mirror:443 HTTP/1.1' or 'GET http://mirror/path HTTP/1.1'."""
    method, target, version = request_line.split(" ", 2)
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        return host.strip("[]"), int(port), ""
    parts = urllib.parse.urlsplit(target)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"not an absolute http URI: {target}")
    path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    return parts.hostname, parts.port or 80, f"{method} {path} {version}"


class EgressProxy:
    """The host side: a proxy on a unix socket; `log` lists every destination with its verdict."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.log: list[str] = []
        self._server: socket.socket | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> EgressProxy:
        self.path.unlink(missing_ok=True)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self._server.listen(32)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.close()
        self.path.unlink(missing_ok=True)

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _note(self, line: str) -> None:
        with self._lock:
            self.log.append(line)

    def _serve(self, client: socket.socket) -> None:
        try:
            head, rest = _read_head(client)
            request_line, _, headers = head.partition("\r\n")
            host, port, upstream_line = target_of(request_line)
            upstream = self._open(host, port)
        except (OSError, ValueError) as exc:
            self._note(f"refused {exc}")
            _reply(client, "403 Forbidden")
            return
        if upstream_line:
            kept = [h for h in headers.split("\r\n") if h and not h.lower().startswith("proxy-")]
            upstream.sendall(("\r\n".join([upstream_line, *kept]) + "\r\n\r\n").encode("latin-1") + rest)
        else:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
        pump(client, upstream)

    def _open(self, host: str, port: int) -> socket.socket:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        bad = sorted({str(i[4][0]) for i in infos if forbidden(str(i[4][0]))})
        if bad:
            raise OSError(f"{host}:{port} resolves to {', '.join(bad)}, which a guest must never reach")
        upstream = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        upstream.settimeout(None)
        self._note(f"allowed {host}:{port}")
        return upstream


def _read_head(sock: socket.socket) -> tuple[str, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk or len(data) > HEAD_MAX_BYTES:
            raise ValueError("incomplete request head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def _reply(client: socket.socket, status: str) -> None:
    try:
        client.sendall(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
    finally:
        client.close()


def bridge(socket_path: Path, server: socket.socket) -> None:
    """Inside the namespace: every TCP connection the server accepts is carried to the proxy's unix socket."""
    while True:
        client, _ = server.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(str(socket_path))
        except OSError:
            client.close()
            upstream.close()
            continue
        threading.Thread(target=pump, args=(client, upstream), daemon=True).start()


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "bridge":
        print(__doc__, file=sys.stderr)
        return 2
    host, _, port = argv[2].rpartition(":")
    server = socket.create_server((host, int(port)))
    print("listening", flush=True)  # the harness waits for this line
    bridge(Path(argv[1]), server)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
