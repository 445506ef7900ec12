"""In-guest checks of the VM configuration (Azure's words): Trusted Launch (Secure Boot enforced with Microsoft's
keys, the kernel's lockdown, a TPM 2.0, the boot measured into PCR 7) and the OS disk on NVMe. Their probes run
in the same batch as every other check; on a configuration they do not apply to they are Skipped, saying why.
"""

from __future__ import annotations

import base64
import binascii

from harness.enums import DiskController, SecurityType
from harness.results import Record
from harness.verify import eventlog
from harness.verify.batch import Probe
from harness.verify.guestchecks import GuestCheck, GuestContext, check_record, failed_command

EFI_GLOBAL = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
# Every check here reads files only root can read (the event log) or that exist in every image (sysfs).
PROBES: dict[str, Probe] = {
    "secure_boot_var": Probe(f"od -An -tu1 /sys/firmware/efi/efivars/SecureBoot-{EFI_GLOBAL}", root=True),
    "secure_boot_dmesg": Probe("dmesg | grep -E 'secureboot: Secure boot (enabled|disabled)' || true", root=True),
    "lockdown": Probe("cat /sys/kernel/security/lockdown", root=True),
    "tpm": Probe("cat /sys/class/tpm/tpm0/tpm_version_major && test -c /dev/tpmrm0 && echo tpmrm0", root=True),
    "tpm_event_log": Probe("base64 -w0 /sys/kernel/security/tpm0/binary_bios_measurements", root=True),
    "tpm_pcr7": Probe("cat /sys/class/tpm/tpm0/pcr-sha256/7", root=True),
    "root_device": Probe("findmnt -no SOURCE / && readlink -f /sys/class/block/$(basename $(findmnt -no SOURCE /))"),
    "nvme_driver": Probe("test -d /sys/module/nvme && { test -e /sys/module/nvme/initstate && echo module "
                         "|| echo built-in; }"),
}


def _trusted(ctx: GuestContext, name: str) -> Record | None:
    """Skipped unless the boot is Trusted Launch."""
    if ctx.security_type == SecurityType.TRUSTED_LAUNCH:
        return None
    return check_record(name, None, f"security type {ctx.security_type}", "trusted-launch", "not applicable")


def secure_boot_enabled(ctx: GuestContext) -> Record:
    name = "TL1 Secure Boot enforced"
    skipped = _trusted(ctx, name)
    if skipped:
        return skipped
    result = ctx.probe("secure_boot_var")
    if result.exit_code != 0:
        return failed_command(name, result, "the SecureBoot variable")
    value = result.stdout.split()[-1:]  # 4 attribute bytes, then the value
    kernel = ctx.probe("secure_boot_dmesg").stdout.strip() or "no secureboot line in dmesg"
    ok = value == ["1"] and "enabled" in kernel
    return check_record(name, ok, f"SecureBoot={''.join(value) or '?'}; {kernel}", "SecureBoot=1; Secure boot enabled")


def lockdown(ctx: GuestContext) -> Record:
    """Debian's and Ubuntu's kernels lock themselves down (integrity) when booted with Secure Boot."""
    name = "TL2 kernel lockdown"
    skipped = _trusted(ctx, name)
    if skipped:
        return skipped
    result = ctx.probe("lockdown")
    if result.exit_code != 0:
        return failed_command(name, result, "/sys/kernel/security/lockdown")
    state = result.stdout.strip()
    ok = "[integrity]" in state or "[confidentiality]" in state
    return check_record(name, ok, state, "[integrity] or [confidentiality]",
                   "" if ok else "the kernel did not lock down under Secure Boot: an unsigned kernel or one "
                                 "built without CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT")


def tpm_present(ctx: GuestContext) -> Record:
    name = "TL3 TPM 2.0 present"
    skipped = _trusted(ctx, name)
    if skipped:
        return skipped
    result = ctx.probe("tpm")
    lines = result.stdout.split()
    ok = result.exit_code == 0 and lines[:1] == ["2"] and "tpmrm0" in lines
    return check_record(name, ok, " ".join(lines) or f"exit {result.exit_code}", "version 2, /dev/tpmrm0",
                   "" if ok else result.describe())


def measured_boot(ctx: GuestContext) -> Record:
    """The firmware measured the Secure Boot state (SecureBoot=1, PK, KEK, db, dbx) into PCR 7, the loaders'
    authorities too, and replaying the event log gives the value the TPM holds."""
    name = "TL4 measured boot: Secure Boot state in PCR 7"
    skipped = _trusted(ctx, name)
    if skipped:
        return skipped
    log, pcr = ctx.probe("tpm_event_log"), ctx.probe("tpm_pcr7")
    if log.exit_code != 0 or pcr.exit_code != 0:
        return failed_command(name, log if log.exit_code else pcr, "the event log and PCR 7")
    try:
        found = eventlog.pcr7(base64.b64decode(log.stdout.strip()), pcr.stdout)
    except (eventlog.EventLogError, binascii.Error, ValueError) as exc:
        return check_record(name, False, f"unreadable event log ({exc})", "a TCG crypto-agile event log")
    missing = [v for v in eventlog.SECURE_BOOT_VARIABLES if v not in found.variables]
    ok = found.secure_boot == b"\x01" and not missing and found.authorities > 0 and found.matches
    actual = (f"SecureBoot={found.secure_boot.hex() if found.secure_boot else 'not measured'}, "
              f"{len(found.variables)} variables, {found.authorities} authorities, replay "
              f"{'matches' if found.matches else 'differs from'} PCR 7")
    return check_record(name, ok, actual, "SecureBoot=01, PK, KEK, db, dbx and authorities measured; replay = PCR 7",
                   f"not measured: {', '.join(missing)}" if missing else "")


def root_on_nvme(ctx: GuestContext) -> Record:
    name = "NV1 root file system on an NVMe namespace"
    if ctx.disk_controller != DiskController.NVME:
        return check_record(name, None, f"disk controller {ctx.disk_controller}", "nvme", "not applicable")
    device = ctx.probe("root_device")
    driver = ctx.probe("nvme_driver")
    lines = device.stdout.split()
    ok = bool(lines) and lines[0].startswith("/dev/nvme") and driver.exit_code == 0
    return check_record(name, ok, f"{' '.join(lines) or device.describe()}; nvme driver "
                             f"{driver.stdout.strip() or 'not loaded'}",
                   "/dev/nvme0n1pN, the nvme driver built in or loaded from the initramfs")


TRUSTED_LAUNCH_PROBES = ("secure_boot_var", "secure_boot_dmesg", "lockdown", "tpm", "tpm_event_log", "tpm_pcr7")
NVME_PROBES = ("root_device", "nvme_driver")


def probes_for(security_type: str, disk_controller: str) -> dict[str, Probe]:
    """Only the probes this configuration's checks read (the others are Skipped without running anything)."""
    keys = [*(TRUSTED_LAUNCH_PROBES if security_type == SecurityType.TRUSTED_LAUNCH else ()),
            *(NVME_PROBES if disk_controller == DiskController.NVME else ())]
    return {key: PROBES[key] for key in keys}


CHECKS: tuple[GuestCheck, ...] = (
    GuestCheck("TL1", ("secure_boot_var", "secure_boot_dmesg"), secure_boot_enabled),
    GuestCheck("TL2", ("lockdown",), lockdown),
    GuestCheck("TL3", ("tpm",), tpm_present),
    GuestCheck("TL4", ("tpm_event_log", "tpm_pcr7"), measured_boot),
    GuestCheck("NV1", ("root_device", "nvme_driver"), root_on_nvme),
)
