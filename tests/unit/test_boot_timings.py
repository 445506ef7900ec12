"""Console-derived boot timings: first serial byte, then the kernel's banner (no QEMU started)."""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from harness.verify.boot import SOCKET_NAMES, SUN_PATH_MAX, BootSession, socket_dir


@dataclass
class ConsoleStub:
    text: str = ""
    now: float = 0.0

    def serial(self) -> str:
        return self.text

    def elapsed(self) -> float:
        return self.now


def test_firmware_output_then_kernel_banner() -> None:
    console = ConsoleStub()
    session = BootSession(request=cast(Any, None))
    session.vm = cast(Any, console)
    session._note_serial()
    assert (session.timings.first_serial_s, session.timings.kernel_s) == (None, None)
    console.text, console.now = "SeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n  Booting `Debian GNU/Linux'\r\n", 0.6
    session._note_serial()
    assert (session.timings.first_serial_s, session.timings.kernel_s) == (0.6, None)
    console.text += "[    0.000000] Linux version 6.1.0-56-cloud-amd64 (gcc-12 (Debian 12.2.0-14))\r\n"
    console.now = 7.2
    session._note_serial()
    console.now = 30.0
    session._note_serial()
    assert (session.timings.first_serial_s, session.timings.kernel_s) == (0.6, 7.2)
    assert session.timings.to_json()["kernel_s"] == 7.2


def test_sockets_go_to_a_short_folder_when_the_scratch_path_is_too_deep(tmp_path: Path) -> None:
    """A deep builds folder (a CI workspace, the e2e tests' run folder) must not make bind() fail."""
    short = tmp_path / "s"
    assert socket_dir(short) == short
    deep = tmp_path / ("d" * 60) / ".scratch" / "debian-12-uefi-trusted-launch-nvme-azure-abcdefgh"
    deep.mkdir(parents=True)
    chosen = socket_dir(deep)
    try:
        assert chosen != deep and chosen.is_dir()
        for name in SOCKET_NAMES:
            assert len(str(chosen / name)) <= SUN_PATH_MAX
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(str(chosen / "qmp.sock"))  # what QEMU, swtpm and the SSH bridge do with it
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server, pytest.raises(OSError):
            server.bind(str(deep / "swtpm-sock"))  # the failure this avoids
    finally:
        shutil.rmtree(chosen, ignore_errors=True)
