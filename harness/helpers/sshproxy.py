"""Bridge between a unix socket and the guest's SSH port inside the VM's network namespace.

Unix sockets live in the file system, so the harness (outside the namespace) and a person's
`ssh -o ProxyCommand=...` can reach a guest that has no route to the host network.

    python -m harness.helpers.sshproxy listen SOCKET HOST:PORT   (runs inside the namespace)
    python -m harness.helpers.sshproxy connect SOCKET            (a ProxyCommand: stdin/stdout <-> socket)
"""

from __future__ import annotations

import os
import selectors
import socket
import sys
import threading
from pathlib import Path


def pump(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways between two connected sockets until either side closes (shared with egress)."""
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, b)
    sel.register(b, selectors.EVENT_READ, a)
    try:
        while True:
            for key, _ in sel.select():
                src = key.fileobj
                dst = key.data
                assert isinstance(src, socket.socket)
                data = src.recv(65536)
                if not data:
                    return
                dst.sendall(data)
    except OSError:
        return
    finally:
        a.close()
        b.close()


def _serve_one(client: socket.socket, host: str, port: int) -> None:
    try:
        upstream = socket.create_connection((host, port), timeout=10)
        upstream.settimeout(None)
    except OSError:
        client.close()
        return
    pump(client, upstream)


def listen(path: Path, host: str, port: int) -> None:
    if path.exists():
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chmod(path, 0o600)
    server.listen(16)
    while True:
        client, _ = server.accept()
        threading.Thread(target=_serve_one, args=(client, host, port), daemon=True).start()


def connect(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    done = threading.Event()

    def upstream() -> None:
        while chunk := os.read(0, 65536):
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, daemon=True).start()
    while data := sock.recv(65536):
        os.write(1, data)
    done.set()


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "listen":
        host, _, port = argv[2].rpartition(":")
        listen(Path(argv[1]), host, int(port))
        return 0
    if len(argv) == 2 and argv[0] == "connect":
        connect(Path(argv[1]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
