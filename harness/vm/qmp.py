"""A minimal QMP client (QEMU Machine Protocol over a unix socket): enough to query and quit."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from harness.errors import VerifyError


class Qmp:
    def __init__(self, path: Path, timeout_s: float = 10.0) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.sock: socket.socket | None = None
        self.buffer = b""

    def connect(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout_s)
                sock.connect(str(self.path))
                break
            except OSError as exc:
                sock.close()
                if time.monotonic() > deadline:
                    raise VerifyError(f"QMP socket {self.path} did not answer: {exc}",
                                      "QEMU failed to start; see its output in the evidence folder") from exc
                time.sleep(0.1)
        self.sock = sock
        self._read()  # greeting
        self.command("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        assert self.sock is not None
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise VerifyError("QMP connection closed", "QEMU exited")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def command(self, name: str, **arguments: Any) -> Any:
        assert self.sock is not None
        payload: dict[str, Any] = {"execute": name}
        if arguments:
            payload["arguments"] = arguments
        self.sock.sendall(json.dumps(payload).encode() + b"\n")
        while True:
            message = self._read()
            if "return" in message:
                return message["return"]
            if "error" in message:
                raise VerifyError(f"QMP {name} failed: {message['error'].get('desc')}", "see QEMU's output")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
