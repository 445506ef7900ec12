"""Start the real Azurite blob emulator (./node_modules, installed by `make setup`) on a free loopback port."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.errors import HarnessError

REPO = Path(__file__).resolve().parents[2]
AZURITE_BLOB = REPO / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"
# Microsoft's publicly documented emulator key (reference §3.2): not a secret.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteError(HarnessError):
    """Azurite is missing or did not start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connection_string(port: int) -> str:
    """Path-style connection string for the development account behind 127.0.0.1:port."""
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob service."""

    port: int
    process: proc.Process
    log_path: Path

    @property
    def connection_string(self) -> str:
        return connection_string(self.port)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def _wait_ready(port: int, child: proc.Process, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@contextmanager
def running_azurite(workdir: Path, *, timeout_s: float = 60.0) -> Iterator[Azurite]:
    """Azurite with in-memory storage on a free port; always stopped on exit.

    --skipApiVersionCheck: azure-storage-blob 12.31 sends x-ms-version 2026-10-06, newer than Azurite 3.37
    knows (reference §3.3); the alternative is pinning api_version on every client.
    """
    if not AZURITE_BLOB.exists():
        raise AzuriteError(f"Azurite is not installed ({AZURITE_BLOB} is missing)",
                           "run `make setup` (it installs Azurite into ./node_modules with npm)")
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "azurite.log"
    for _attempt in range(3):  # the port may be taken between free_port() and Azurite's bind
        port = free_port()
        child = proc.spawn([AZURITE_BLOB, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
                          "--skipApiVersionCheck", "--disableTelemetry", "--silent"],
                         name="azurite", cwd=workdir, stdout_path=log_path)
        if _wait_ready(port, child, timeout_s):
            break
        child.stop()
    else:
        tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
        raise AzuriteError(f"Azurite did not start within {timeout_s:.0f} s: {tail.strip() or 'no output'}",
                           "check node (v20+) and rerun `make setup`")
    try:
        yield Azurite(port, child, log_path)
    finally:
        child.stop()
