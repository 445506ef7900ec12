"""What verify.json says about each boot (timings, evidence folder) and which file shows why a record ended as
it did: paths relative to the build folder, for summary.md and report.html."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from harness.results import Record, StageReport

# Milestones of a boot in the order they normally happen (seconds from QEMU's start; verify/boot.py BootTimings).
MILESTONES: tuple[tuple[str, str], ...] = (
    ("first_serial_s", "first console byte"),
    ("kernel_s", "kernel"),
    ("imds_first_s", "first IMDS request"),
    ("goalstate_first_s", "first goal state"),
    ("ready_s", "Ready"),
    ("ssh_ready_s", "SSH"),
    ("checks_done_s", "checks done"),
)
BOOT_LOGS = ("serial.log", "journal.txt")  # what a failed in-guest check's reader opens first
BOOT_CHART = "systemd-analyze-plot.svg"  # the guest's own boot chart (guestchecks GUEST_LOGS)


@dataclass(frozen=True)
class Boot:
    """One verify boot as verify.json records it."""

    name: str  # the VM configuration, e.g. bios-azure
    timings_s: Mapping[str, float | None] = field(default_factory=dict)
    evidence: str | None = None  # folder relative to the build folder, e.g. verify/bios-azure
    accel: str = ""
    passed: bool | None = None


def safe_relative(path: object) -> str | None:
    """A relative POSIX path that stays inside the build folder, or None (absolute, '..', empty, not a string)."""
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path:
        return None
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts:
        return None
    return str(pure)


def _timings(value: Any) -> dict[str, float | None]:
    if not isinstance(value, dict):
        return {}
    return {k: (float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None)
            for k, v in value.items() if isinstance(k, str)}


def boots(verify: StageReport | None) -> list[Boot]:
    """Every boot verify.json holds, in its order; malformed entries keep what is readable."""
    found = verify.details.get("boots") if verify is not None else None
    if not isinstance(found, dict):
        return []
    out = []
    for name, value in found.items():
        info = value if isinstance(value, dict) else {}
        passed = info.get("passed")
        out.append(Boot(str(name), _timings(info.get("timings_s")), safe_relative(info.get("evidence")),
                        str(info.get("accel") or ""), passed if isinstance(passed, bool) else None))
    return out


def record_evidence(record: Record, by_name: Mapping[str, Boot]) -> list[str]:
    """Files (relative to the build folder) that show why: the record's own, then its boot's logs or its stage
    file. Not checked for existence (see `existing`)."""
    found = [p for p in (safe_relative(record.evidence),) if p]
    boot = by_name.get(record.where) if record.stage == "verify" else None
    if boot is not None and boot.evidence:
        found += [f"{boot.evidence}/{name}" for name in BOOT_LOGS]
    elif record.stage != "verify":
        found.append(f"{record.stage}.json")
    return list(dict.fromkeys(found))


def existing(folder: Path, relative: list[str]) -> list[str]:
    """The paths that name a file inside folder (a symlink out of it does not count)."""
    root = folder.resolve()
    out = []
    for path in relative:
        target = (folder / path).resolve()
        if target.is_relative_to(root) and target.is_file():
            out.append(path)
    return out
