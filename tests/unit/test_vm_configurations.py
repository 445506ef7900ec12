"""VM configurations (generation x security type x disk controller): the boot plan that proves every declared value,
the measured-boot event log parser, and the Trusted Launch / NVMe checks on canned probe results."""

from __future__ import annotations

import base64
import hashlib
import struct
import uuid
from typing import Any

import pytest

from harness.enums import DiskController, Firmware, SecurityType
from harness.verify import configchecks, eventlog
from harness.verify.batch import ProbeResult
from harness.verify.configs import VmConfiguration, explicit, plan
from harness.verify.guestchecks import GuestContext
from harness.vm.ssh import CommandResult

B, U = Firmware.BIOS, Firmware.UEFI
STD, TL = SecurityType.STANDARD, SecurityType.TRUSTED_LAUNCH
SCSI, NVME = DiskController.SCSI, DiskController.NVME


@pytest.mark.parametrize("firmwares,security,controllers,expected", [
    ((B, U), (STD, TL), (SCSI, NVME), ["bios", "uefi-trusted-launch-nvme"]),
    ((U,), (STD, TL), (SCSI, NVME), ["uefi-trusted-launch-nvme", "uefi"]),
    ((B, U), (STD,), (SCSI,), ["bios", "uefi"]),
    ((B,), (STD,), (SCSI,), ["bios"]),
    ((B,), (STD, TL), (SCSI, NVME), ["bios"]),  # nothing can boot trusted-launch on a V1-only image
    ((U,), (STD,), (SCSI, NVME), ["uefi-nvme", "uefi"]),
])
def test_the_plan_boots_every_declared_value_at_least_once(firmwares: Any, security: Any, controllers: Any,
                                                            expected: list[str]) -> None:
    boots = plan(firmwares, security, controllers)
    assert [b.name for b in boots] == expected
    covered = {b.firmware for b in boots} | {b.security_type for b in boots} | {b.disk_controller for b in boots}
    bootable = {f for f in firmwares} | ({*security, *controllers} if U in firmwares else {STD, SCSI})
    assert bootable <= covered


def test_explicit_combinations_drop_what_azure_does_not_offer() -> None:
    names = [c.name for c in explicit((B, U), (TL,), (SCSI, NVME))]
    assert names == ["uefi-trusted-launch", "uefi-trusted-launch-nvme"]
    assert not VmConfiguration(B, STD, NVME).valid and VmConfiguration(B).valid


def _event(pcr: int, kind: int, data: bytes) -> bytes:
    return (struct.pack("<III", pcr, kind, 2) + struct.pack("<H", 0x4) + hashlib.sha1(data).digest()
            + struct.pack("<H", 0xB) + hashlib.sha256(data).digest() + struct.pack("<I", len(data)) + data)


def _variable(name: str, value: bytes) -> bytes:
    guid = uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c").bytes_le
    return guid + struct.pack("<QQ", len(name), len(value)) + name.encode("utf-16-le") + value


def event_log(secure_boot: bytes = b"\x01", variables: tuple[str, ...] = eventlog.SECURE_BOOT_VARIABLES) -> bytes:
    spec = eventlog.SPEC_ID + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, 2) + struct.pack("<HHHH", 4, 20, 0xB, 32) + b"\0"
    log = struct.pack("<II", 0, eventlog.EV_NO_ACTION) + bytes(20) + struct.pack("<I", len(spec)) + spec
    for name in variables:
        log += _event(7, eventlog.EV_EFI_VARIABLE_DRIVER_CONFIG, _variable(name, secure_boot if name == "SecureBoot"
                                                                           else b"keys"))
    log += _event(7, eventlog.EV_SEPARATOR, bytes(4)) + _event(4, 0x80000003, b"shim")
    return log + _event(7, eventlog.EV_EFI_VARIABLE_AUTHORITY, _variable("db", b"Microsoft UEFI CA"))


def _pcr7(log: bytes) -> str:
    return eventlog.replay(list(eventlog.parse(log)), 7).hex().upper()


def test_pcr7_evidence_from_a_log() -> None:
    log = event_log()
    found = eventlog.pcr7(log, _pcr7(log))
    assert found.secure_boot == b"\x01" and found.variables == eventlog.SECURE_BOOT_VARIABLES
    assert found.authorities == 1 and found.matches
    assert not eventlog.pcr7(log, "00" * 32).matches
    with pytest.raises(eventlog.EventLogError):
        list(eventlog.parse(log[:60]))


def context(security: str, controller: str, probes: dict[str, tuple[int, str]]) -> GuestContext:
    ctx = GuestContext.__new__(GuestContext)
    ctx.security_type, ctx.disk_controller = security, controller
    ctx.probes = dict(configchecks.PROBES)
    ctx.out = {k: ProbeResult(CommandResult(k, code, out, ""), 0.1) for k, (code, out) in probes.items()}
    return ctx


GOOD = {"secure_boot_var": (0, "   6   0   0   0   1\n"), "secure_boot_dmesg": (0, "secureboot: Secure boot enabled"),
        "lockdown": (0, "none [integrity] confidentiality\n"), "tpm": (0, "2\ntpmrm0\n"),
        "root_device": (0, "/dev/nvme0n1p3\n/sys/devices/pci0000:00/nvme/nvme0/nvme0n1/nvme0n1p3\n"),
        "nvme_driver": (0, "built-in\n")}


def _results(ctx: GuestContext) -> dict[str, str]:
    return {r.check.split()[0]: r.result.value for r in (c.evaluate(ctx) for c in configchecks.CHECKS)}


def test_a_good_trusted_launch_nvme_boot_passes_every_check() -> None:
    log = event_log()
    probes = {**GOOD, "tpm_event_log": (0, base64.b64encode(log).decode()), "tpm_pcr7": (0, _pcr7(log))}
    assert _results(context("trusted-launch", "nvme", probes)) == dict.fromkeys(
        ("TL1", "TL2", "TL3", "TL4", "NV1"), "Passed")


@pytest.mark.parametrize("broken,check", [
    ({"secure_boot_var": (0, "6 0 0 0 0"), "secure_boot_dmesg": (0, "secureboot: Secure boot disabled")}, "TL1"),
    ({"lockdown": (0, "[none] integrity confidentiality")}, "TL2"),
    ({"tpm": (1, "")}, "TL3"),
    ({"root_device": (0, "/dev/vda3\n")}, "NV1"),
])
def test_each_check_fails_on_a_broken_boot(broken: dict[str, tuple[int, str]], check: str) -> None:
    log = event_log()
    probes = {**GOOD, "tpm_event_log": (0, base64.b64encode(log).decode()), "tpm_pcr7": (0, _pcr7(log)), **broken}
    assert _results(context("trusted-launch", "nvme", probes))[check] == "Failed"


@pytest.mark.parametrize("log", [event_log(secure_boot=b"\x00"), event_log(variables=("SecureBoot", "PK"))])
def test_pcr7_without_the_secure_boot_state_fails(log: bytes) -> None:
    probes = {**GOOD, "tpm_event_log": (0, base64.b64encode(log).decode()), "tpm_pcr7": (0, _pcr7(log))}
    assert _results(context("trusted-launch", "nvme", probes))["TL4"] == "Failed"


def test_a_standard_scsi_boot_skips_them_without_running_a_probe() -> None:
    assert configchecks.probes_for("standard", "scsi") == {}
    assert set(_results(context("standard", "scsi", {})).values()) == {"Skipped"}
