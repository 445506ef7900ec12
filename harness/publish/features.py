"""Image definition features, proven, not declared: set only from passing results for this content.

- SecurityType=TrustedLaunchSupported (V2): a passing uefi trusted-launch boot (Secure Boot + vTPM checks);
- DiskControllerTypes=SCSI, NVMe (V2): a passing uefi nvme boot, and a passing scsi boot;
- IsAcceleratedNetworkSupported=True: the offline audit found the mana, mlx4 and mlx5 drivers (A17).
A Gen1 (V1) definition never gets a Gen2-only feature. What the recipe declares ([image] security_types,
disk_controllers) but no result proves is a problem for that generation: publish refuses it unless
--force-unverified, and even then sets only what was proven.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.buildfolder import BuildFolder
from harness.enums import DiskController, Generation, Result, SecurityType, Stage
from harness.manifest import Manifest
from harness.results import load_stage

SECURITY_TYPE = "SecurityType"
DISK_CONTROLLERS = "DiskControllerTypes"
ACCELERATED_NETWORKING = "IsAcceleratedNetworkSupported"
TRUSTED_LAUNCH_SUPPORTED = "TrustedLaunchSupported"
SCSI_AND_NVME = "SCSI, NVMe"
ACCELERATED_NETWORKING_RULE = "A17 Accelerated Networking drivers"


@dataclass(frozen=True)
class Evidence:
    """What passed for this content: the boots (firmware, security type, disk controller) and offline rules."""

    boots: frozenset[tuple[str, str, str]]
    offline_passed: frozenset[str]


def _passed_boots(boots: dict[str, Any]) -> Iterable[tuple[str, str, str]]:
    for info in boots.values():
        if isinstance(info, dict) and info.get("passed"):
            yield (str(info.get("firmware")), str(info.get("security_type") or SecurityType.STANDARD),
                   str(info.get("disk_controller") or DiskController.SCSI))


def evidence(build: BuildFolder, digest: str) -> Evidence:
    """Passing boots of verify.json and passing rules of check.json, for this content digest only."""
    verify, check = load_stage(build, Stage.VERIFY), load_stage(build, Stage.CHECK)
    boots = verify.details.get("boots", {}) if verify is not None and verify.content_digest == digest else {}
    passed = {r.check for r in check.records if r.result == Result.PASSED} \
        if check is not None and check.content_digest == digest else set()
    return Evidence(frozenset(_passed_boots(boots)), frozenset(passed))


def proven(generation: str, found: Evidence) -> tuple[tuple[str, str], ...]:
    """The features this generation's definition may carry (sorted by name)."""
    features: dict[str, str] = {}
    if generation == Generation.V2:
        if any(f == "uefi" and s == SecurityType.TRUSTED_LAUNCH for f, s, _ in found.boots):
            features[SECURITY_TYPE] = TRUSTED_LAUNCH_SUPPORTED
        nvme = any(f == "uefi" and c == DiskController.NVME for f, _, c in found.boots)
        scsi = any(c == DiskController.SCSI for _, _, c in found.boots)
        if nvme and scsi:
            features[DISK_CONTROLLERS] = SCSI_AND_NVME
    if ACCELERATED_NETWORKING_RULE in found.offline_passed:
        features[ACCELERATED_NETWORKING] = "True"
    return tuple(sorted(features.items()))


def unproven(generation: str, manifest: Manifest, features: tuple[tuple[str, str], ...]) -> list[str]:
    """Declared capabilities of a V2 definition that no result proves (a V1 definition has none to prove)."""
    if generation != Generation.V2:
        return []
    have = dict(features)
    problems = []
    if SecurityType.TRUSTED_LAUNCH in manifest.security_types and SECURITY_TYPE not in have:
        problems.append("trusted-launch is declared but no uefi trusted-launch boot passed for this content")
    if DiskController.NVME in manifest.disk_controllers and DISK_CONTROLLERS not in have:
        problems.append("nvme is declared but no uefi nvme boot (and scsi boot) passed for this content")
    return problems
