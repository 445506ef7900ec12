"""Accelerator auto-probe: try KVM with a short bounded boot, fall back to TCG; cached per host.

On some hosts /dev/kvm exists yet a stock kernel never prints a line under it: nested
virtualization without the features it needs, or a /dev/kvm served by PVM (the `kvm_pvm` module,
pagetable-based virtualization for hosts without hardware virtualization), which runs only guest
kernels built for PVM, and no distro image ships one. A failed probe names PVM when it is loaded.

The probe boots the image's own kernel directly with a command line that makes it panic at once (no
root file system) and `-no-reboot`: under a working KVM QEMU exits within seconds with the panic on
the serial port; otherwise the probe is killed at its timeout. A failed probe costs its full
timeout, so the result is cached per host (host kernel, QEMU version) in the cache folder. The probe
is not verification: verification always boots the disk through its own firmware and bootloader.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import proc
from harness.builder.context import cache_root
from harness.errors import CommandError, CommandTimeoutError

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 12.0
SYS_MODULE = Path("/sys/module")


@dataclass(frozen=True)
class AccelChoice:
    accel: str  # kvm | tcg
    reason: str
    probed_at: str = ""
    cached: bool = False


def _host_key() -> str:
    version = proc.run(["qemu-system-x86_64", "--version"]).stdout.splitlines()[0]
    return f"{platform.node()}|{platform.release()}|{version}"


def _cache_file() -> Path:
    return cache_root() / "accel.json"


def _load_cached(key: str) -> AccelChoice | None:
    try:
        data = json.loads(_cache_file().read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    entry = data.get(key)
    return AccelChoice(entry["accel"], entry["reason"], entry.get("probed_at", ""), cached=True) if entry else None


def _store(key: str, choice: AccelChoice) -> None:
    path = _cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        data = {}
    data[key] = {k: v for k, v in asdict(choice).items() if k != "cached"}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def kvm_provider_hint(sys_module: Path | None = None) -> str:
    """Why a stock kernel may not run under this host's /dev/kvm, when the host says so."""
    if ((sys_module or SYS_MODULE) / "kvm_pvm").is_dir():
        return ("; this host's /dev/kvm is PVM (module kvm_pvm), which runs only PVM-enabled guest "
                "kernels, so images are verified under TCG here")
    return ""


def probe_kvm(kernel: Path, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """Boot `kernel` under KVM to an immediate panic; True if it got there in time."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is missing or not accessible"
    with tempfile.TemporaryDirectory(prefix="harness-kvm-probe-") as tmp:
        serial = Path(tmp) / "serial.log"
        argv = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults",
                "-display", "none", "-no-reboot", "-serial", f"file:{serial}", "-kernel", str(kernel),
                "-append", "console=ttyS0 panic=-1 root=/dev/harness-probe-none"]
        start = time.monotonic()
        try:
            proc.run(argv, timeout_s=timeout_s)
        except CommandTimeoutError:
            printed = serial.stat().st_size if serial.exists() else 0
            return False, (f"a stock kernel did not finish booting under KVM in {timeout_s:.0f} s "
                           f"({printed} bytes of console)")
        except CommandError as exc:
            return False, f"QEMU refused KVM: {exc.output_tail.splitlines()[-1] if exc.output_tail else exc.returncode}"
        text = serial.read_text(errors="replace") if serial.exists() else ""
        if "Kernel panic" not in text and "Linux version" not in text:
            return False, "QEMU exited under KVM without kernel output"
        return True, f"KVM booted a stock kernel to its probe panic in {time.monotonic() - start:.1f} s"


def choose(kernel: Path | None, requested: str = "auto") -> AccelChoice:
    """The accelerator for this host: forced by `requested`, else cached probe, else a fresh probe."""
    if requested in ("kvm", "tcg"):
        return AccelChoice(requested, f"forced by --accel {requested}")
    key = _host_key()
    cached = _load_cached(key)
    if cached is not None:
        log.info("accel: %s (%s; cached probe from %s)", cached.accel, cached.reason, cached.probed_at)
        return cached
    if kernel is None:
        return AccelChoice("tcg", "no kernel available to probe KVM with")
    ok, reason = probe_kvm(kernel)
    if not ok:
        reason += kvm_provider_hint()
    choice = AccelChoice("kvm" if ok else "tcg", reason, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    _store(key, choice)
    log.info("accel: %s (%s)", choice.accel, reason)
    return choice
