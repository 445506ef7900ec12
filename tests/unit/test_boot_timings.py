"""Console-derived boot timings: first serial byte, then the kernel's banner (no QEMU started)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from harness.verify.boot import BootSession


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
