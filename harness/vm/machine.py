"""VM lifecycle: owns the QEMU process, its serial log and QMP socket; always kills and reaps.

The built disk is never written: every boot runs on a qcow2 overlay in a scratch folder (which
may be larger than the disk, so first-boot partition growth is exercised as on a resized Azure
OS disk).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from harness import proc
from harness.errors import VerifyError
from harness.proc import shell_line
from harness.vm.qemu import VMSpec, build_argv
from harness.vm.qmp import Qmp

log = logging.getLogger(__name__)

# Console lines that mean the boot is dead, whatever the timeout says (image-checks B2).
FATAL_PATTERNS = [
    (re.compile(r"Kernel panic - not syncing:.*"), "kernel panic"),
    (re.compile(r"Gave up waiting for root (file system )?device.*"), "root file system not found"),
    (re.compile(r"ALERT!  UUID=\S+ does not exist.*"), "root file system not found"),
    (re.compile(r"dracut-initqueue.*timeout.*"), "root file system not found (dracut)"),
    (re.compile(r"^\(initramfs\) ", re.M), "dropped to the initramfs shell"),
    (re.compile(r"grub rescue> "), "GRUB rescue prompt: GRUB cannot find its files"),
    (re.compile(r"error: (no such device|unknown filesystem|file .*(vmlinuz|initrd|grub\.cfg).* not found).*"),
     "GRUB error"),
    (re.compile(r"No bootable device.*"), "firmware found no bootable disk"),
    (re.compile(r"BdsDxe: No bootable option or device was found.*"), "firmware found no bootable disk"),
    # Secure Boot refusals (OVMF, shim, GRUB): without them a refused loader waits for a key until the timeout.
    (re.compile(r"BdsDxe: failed to load Boot\S* .*Access Denied.*"),
     "Secure Boot: the firmware refused the boot loader (its signature is not trusted)"),
    (re.compile(r"Verification failed: \(0x1A\) Security Violation.*"),
     "Secure Boot: shim refused the next loader (GRUB's signature is not trusted)"),
    (re.compile(r"error: (bad shim signature|.*prohibited by secure boot policy).*"),
     "Secure Boot: GRUB refused the kernel or a module"),
]


def create_overlay(base: Path, base_format: str, overlay: Path, size_bytes: int | None = None) -> None:
    """qcow2 overlay backed by the built disk; the disk itself is only ever read."""
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", base_format, "-b", str(base.resolve()), str(overlay)]
    if size_bytes:
        argv.append(str(size_bytes))
    proc.run(argv)


class VM:
    """One QEMU process. Use as a context manager; exit always stops and reaps it."""

    def __init__(self, spec: VMSpec, evidence: Path, prefix: list[str] | None = None) -> None:
        self.spec = spec
        self.evidence = evidence
        self.prefix = prefix or []
        self.process: proc.Process | None = None
        self.qmp: Qmp | None = None
        self.started = 0.0
        self.argv = build_argv(spec)

    def __enter__(self) -> VM:
        (self.evidence / "qemu-argv.txt").write_text(shell_line(self.argv) + "\n", encoding="utf-8")
        self.spec.serial_log.touch()
        self.started = time.monotonic()
        self.process = proc.spawn([*self.prefix, *self.argv], name=f"qemu-{self.spec.name}",
                                 stdout_path=self.evidence / "qemu-output.txt")
        self.qmp = Qmp(self.spec.qmp_socket)
        try:
            self.qmp.connect()
        except VerifyError:
            self.stop()
            output = (self.evidence / "qemu-output.txt").read_text(errors="replace").strip()
            raise VerifyError(f"QEMU did not start: {output.splitlines()[-1] if output else 'no output'}",
                              f"see {self.evidence / 'qemu-output.txt'}") from None
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        if self.qmp is not None:
            with suppress(VerifyError, OSError):
                self.qmp.command("quit")
            self.qmp.close()
            self.qmp = None
        if self.process is not None:
            self.process.stop(grace_s=3)
            self.process = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def serial(self) -> str:
        try:
            return self.spec.serial_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def fatal_console(self) -> str | None:
        """A reason the boot is dead, read from the console, or None."""
        text = self.serial()
        for pattern, reason in FATAL_PATTERNS:
            match = pattern.search(text)
            if match:
                return f"{reason}: {match.group(0).strip()[:200]}"
        return None

    def wait(self, condition: Callable[[], object], timeout_s: float, what: str, poll_s: float = 0.25) -> object:
        """Poll `condition` until truthy; fail fast on a dead console or a dead QEMU."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = condition()
            if value:
                return value
            fatal = self.fatal_console()
            if fatal:
                raise VerifyError(f"boot failed while waiting for {what}: {fatal}",
                                  f"see the serial log {self.spec.serial_log}")
            if not self.alive():
                raise VerifyError(f"QEMU exited while waiting for {what}",
                                  f"see {self.evidence / 'qemu-output.txt'} and the serial log")
            if time.monotonic() > deadline:
                raise VerifyError(f"timed out after {timeout_s:.0f} s waiting for {what}",
                                  f"see the serial log {self.spec.serial_log}")
            time.sleep(poll_s)
