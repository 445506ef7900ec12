"""`harness check` on the real debian-12 build: it passes, and each rule fails on a copy with one defect planted.

The shared build is only read; every planted defect goes into a sparse copy (debian12_copy).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from harness import cli
from harness.buildfolder import RAW, VHD, BuildFolder
from harness.checks.audit import AuditResult, audit
from harness.results import FAILED, WARNING
from tests.integration import plant

pytestmark = pytest.mark.network

# Debian 12 omits rootdelay=300 on purpose (its initramfs sleeps the whole value, image-checks A9 pitfall)
# and does not ship a KVP daemon by default (E6 optional on Debian).
EXPECTED_WARNINGS = {
    "A9 kernel command line (bios)",
    "A9 kernel command line (uefi)",
    "A9 kernel command line (grub defaults)",
    "E6 Hyper-V KVP daemon",
}
AUDIT_BUDGET_S = 15
BASIC_DATA_GUID = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
ROOT_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx7bXl0ZXN0a2V5bm90cmVhbGx5YWtleWF0YWxsMDAw planted@test\n"
HASH = "$6$saltsalt$4zHX1f2G3ZVvJJxrFgDkC1PZ0k9Q2sQ0qfS6u0S9gkqgE4bqQ3i1m8r1m2Zl0o5i6c7d8e9f0g1h2i3j4k5l6"


def names(result: AuditResult, outcome: str) -> set[str]:
    return {r.check for r in result.records if r.result == outcome}


def root_uuid(build: BuildFolder) -> str:
    return build.manifest().disk.root_uuid


def kernel(build: BuildFolder) -> str:
    return build.manifest().kernel_version


def test_real_build_passes(debian12_build: BuildFolder) -> None:
    result = audit(debian12_build)
    assert not result.failed, [(r.check, r.message) for r in result.failed]
    assert names(result, WARNING) == EXPECTED_WARNINGS
    assert result.duration_s < AUDIT_BUDGET_S
    assert all(s["holds"] for s in result.declared_settings)
    assert len(result.declared_settings) == len(debian12_build.manifest().settings)
    assert result.deviations and all(d.declared for d in result.deviations)
    assert result.selftest["TestResult"] == "Pass"
    assert {t["TestCaseName"] for t in result.selftest["Tests"]} >= {
        "Bash History", "Swap Partition on OS Disk", "Client Alive Interval", "Root Partition on OS Disk",
        "Required Kernel Parameters (bios)", "Required Kernel Parameters (uefi)"}


def test_check_command_writes_stage_files(debian12_copy: BuildFolder, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", str(debian12_copy.path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    stored = json.loads(debian12_copy.stage_file("check").read_text())
    assert stored["records"] == printed["records"]
    assert stored["stage"] == "check" and stored["passed"] is True
    assert stored["content_digest"] == debian12_copy.manifest().content_digest
    assert {"declared_settings", "deviations", "selftest"} <= stored.keys()
    assert (debian12_copy.path / "junit.xml").exists()
    results = json.loads((debian12_copy.path / "results.json").read_text())
    assert results["stages"]["check"]["passed"] is True


def test_check_command_exit_code_on_failure(debian12_copy: BuildFolder, capsys: pytest.CaptureFixture[str]) -> None:
    plant.put_file(debian12_copy, "/etc/ssh/ssh_host_rsa_key", "-----BEGIN OPENSSH PRIVATE KEY-----\n", 0o600)
    plant.rehash(debian12_copy)  # the check stage audits it as a build made with a host key
    assert cli.main(["check", str(debian12_copy.path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED D2 no SSH host keys" in out
    assert "declared settings" in out


def test_vhd_disk_is_audited_with_its_footer(debian12_copy: BuildFolder) -> None:
    from harness import vhd

    raw = debian12_copy.path / RAW
    vhd.to_fixed_vhd(raw)
    raw.rename(debian12_copy.path / VHD)
    result = audit(debian12_copy)
    assert not result.failed, [(r.check, r.message) for r in result.failed]
    assert {"A1 VHD cookie", "A1 VHD disk-type", "A2 VHD current-size-whole-mib"} <= names(result, "Passed")


# ---------------------------------------------------------------------------------------------
# One defect per copy.

@dataclass(frozen=True)
class Defect:
    plant: Callable[[BuildFolder], None]
    failed: frozenset[str]
    warned: frozenset[str] = frozenset()


def _swap_in_fstab(b: BuildFolder) -> None:
    plant.edit_text(b, "/etc/fstab", lambda t: t + "UUID=0a0b0c0d-1111-2222-3333-444455556666 none swap sw 0 0\n")


def _fstab_by_device(b: BuildFolder) -> None:
    plant.replace_in(b, "/etc/fstab", f"UUID={root_uuid(b)} /", "/dev/sda3 /")


def _uefi_wrong_root(b: BuildFolder) -> None:
    """The config the Gen2 chain reads searches another file system: BOOTX64.EFI's embedded one (a GRUB image of
    our own), or with shim as the loader, the stubs the distro's signed GRUB reads (EFI/debian/, EFI/BOOT/)."""
    uuid = root_uuid(b)
    old, new = f"--set=root {uuid}".encode(), f"--set=root {'0' * 8}{uuid[8:]}".encode()
    if b.manifest().boot_chain == "signed":
        for stub in ("/EFI/debian/grub.cfg", "/EFI/BOOT/grub.cfg"):
            plant.esp_patch(b, stub, old, new)
    else:
        plant.esp_patch(b, "/EFI/BOOT/BOOTX64.EFI", old, new)


def _mbr_points_elsewhere(b: BuildFolder) -> None:
    plant.write_bytes(b, 0x5C, struct.pack("<Q", 4096))


def _first_mib_dirty(b: BuildFolder) -> None:
    plant.write_bytes(b, 100 * 512, b"billing tag? no: build garbage")


def _no_console(b: BuildFolder) -> None:
    plant.replace_in(b, "/boot/grub/grub.cfg", "console=ttyS0,115200n8 ", "")


def _no_netvsc(b: BuildFolder) -> None:
    plant.initramfs_without(b, f"/boot/initrd.img-{kernel(b)}", ("hv_netvsc",))


def _no_udf(b: BuildFolder) -> None:
    plant.replace_in(b, f"/boot/config-{kernel(b)}", "CONFIG_UDF_FS=m", "# CONFIG_UDF_FS is not set")


def _history(b: BuildFolder) -> None:
    plant.put_file(b, "/root/.bash_history", "curl -H 'Authorization: secret' https://example.invalid\n", 0o600)


def _user_history(b: BuildFolder) -> None:
    plant.put_file(b, "/home/builder/.bash_history", "sudo -i\n", 0o600)


def _password_hash(b: BuildFolder) -> None:
    plant.replace_in(b, "/etc/shadow", "root:*:", f"root:{HASH}:")


def _authorized_key(b: BuildFolder) -> None:
    plant.put_file(b, "/root/.ssh/authorized_keys", ROOT_KEY, 0o600)


DEFECTS: dict[str, Defect] = {
    # generalization (D)
    "host key": Defect(lambda b: plant.put_file(b, "/etc/ssh/ssh_host_ed25519_key", "key\n", 0o600),
                       frozenset({"D2 no SSH host keys"})),
    "root history": Defect(_history, frozenset({"D4 shell histories empty"})),
    "user history": Defect(_user_history, frozenset({"D4 shell histories empty"})),
    "password hash": Defect(_password_hash, frozenset({"D1 no usable password hashes"})),
    "authorized key": Defect(_authorized_key, frozenset({"D1 no SSH keys in homes"})),
    "waagent provisioned": Defect(lambda b: plant.put_file(b, "/var/lib/waagent/provisioned", ""),
                                  frozenset({"D5 no agent state"})),
    "cloud-init instance": Defect(lambda b: plant.mkdirs(b, "/var/lib/cloud/instance"),
                                  frozenset({"D5 no agent state"})),
    "agent log": Defect(lambda b: plant.put_file(b, "/var/log/cloud-init.log", "ran\n"),
                        frozenset({"D5 no agent state"}), frozenset({"D7 no build logs or caches"})),
    "dhcp lease": Defect(lambda b: plant.put_file(b, "/var/lib/dhcp/dhclient.eth0.leases", "lease {}\n"),
                         frozenset({"D6 no network identity"})),
    "machine-id": Defect(lambda b: plant.put_file(b, "/etc/machine-id", "0123456789abcdef0123456789abcdef\n", 0o444),
                         frozenset({"D3 machine-id not baked in"})),
    "shadow readable": Defect(lambda b: plant.chmod(b, "/etc/shadow", 0o644), frozenset({"D8 integrity"})),
    "build cache": Defect(lambda b: plant.put_file(b, "/var/cache/apt/archives/bash_5.2_amd64.deb", "deb"),
                          frozenset(), frozenset({"D7 no build logs or caches"})),
    # readiness (A, E)
    "console missing": Defect(_no_console, frozenset({"A9 kernel command line (bios)",
                                                      "A9 kernel command line (uefi)"})),
    "uefi early config": Defect(_uefi_wrong_root, frozenset({"A9 kernel command line (uefi)"})),
    # the loader is shim on debian-12's signed chain: its loss also breaks the Trusted Launch chain (A18)
    "uefi loader missing": Defect(lambda b: plant.esp_remove(b, "/EFI/BOOT/BOOTX64.EFI"),
                                  frozenset({"A9 kernel command line (uefi)",
                                             "A18 Secure Boot chain for Trusted Launch"})),
    "mbr pointer": Defect(_mbr_points_elsewhere, frozenset({"A9 kernel command line (bios)"})),
    "hv_netvsc missing": Defect(_no_netvsc, frozenset({"A6 Hyper-V drivers in the initramfs"})),
    "udf disabled": Defect(_no_udf, frozenset({"A8 kernel configuration (udf, vfat)"})),
    "fstab swap": Defect(_swap_in_fstab, frozenset({"A5 no swap"})),
    "swap file": Defect(lambda b: plant.put_file(b, "/swapfile", b"\0" * 4096, 0o600), frozenset({"A5 no swap"})),
    "fstab device name": Defect(_fstab_by_device, frozenset({"A10 fstab"})),
    "first MiB": Defect(_first_mib_dirty, frozenset({"A3 first MiB free"})),
    "esp type": Defect(lambda b: plant.set_partition_type(b, 2, BASIC_DATA_GUID),
                       frozenset({"A4 EFI system partition (Gen2)"})),
    "client alive": Defect(lambda b: plant.put_file(b, "/etc/ssh/sshd_config.d/10-keepalive.conf",
                                                    "ClientAliveInterval 300\n"),
                           frozenset({"A15 ClientAliveInterval"}),
                           frozenset({"undeclared deviation /etc/ssh/sshd_config.d/10-keepalive.conf"})),
    "datasource removed": Defect(
        lambda b: plant.remove(b, "/etc/cloud/cloud.cfg.d/91-azure_datasource.cfg"),
        frozenset({"A11 cloud-init Azure datasource",
                   "declared setting /etc/cloud/cloud.cfg.d/91-azure_datasource.cfg (whole file)"})),
    "waagent provisions too": Defect(
        lambda b: plant.replace_in(b, "/etc/waagent.conf", "Provisioning.Agent=cloud-init",
                                   "Provisioning.Agent=waagent"),
        frozenset({"A11 waagent provisioning agent"}), frozenset({"undeclared deviation /etc/waagent.conf"})),
    "persistent net": Defect(lambda b: plant.put_file(b, "/etc/udev/rules.d/70-persistent-net.rules", "# eth0\n"),
                             frozenset({"A12 persistent-net rules", "D6 no network identity"}),
                             frozenset({"undeclared deviation /etc/udev/rules.d/70-persistent-net.rules"})),
    "dhcp timeout": Defect(
        lambda b: plant.replace_in(b, "/etc/dhcp/dhclient.conf", "timeout 300;", "timeout 60;"),
        frozenset({"E3 DHCP client timeout", "declared setting /etc/dhcp/dhclient.conf 'timeout 300;'"}),
        frozenset({"undeclared deviation /etc/dhcp/dhclient.conf"})),
    "declared setting changed": Defect(
        lambda b: plant.replace_in(b, "/etc/default/grub", "GRUB_TIMEOUT=1", "GRUB_TIMEOUT=5"),
        frozenset({"declared setting /etc/default/grub GRUB_TIMEOUT"})),
    # undeclared changes: a Warning naming the file, nothing fails
    "undeclared sshd_config (ucf)": Defect(
        lambda b: plant.replace_in(b, "/etc/ssh/sshd_config", "X11Forwarding yes", "X11Forwarding no"),
        frozenset(), frozenset({"undeclared deviation /etc/ssh/sshd_config"})),
    "undeclared deviation": Defect(
        lambda b: plant.replace_in(b, "/etc/waagent.conf", "OS.EnableFirewall=n", "OS.EnableFirewall=y"),
        frozenset(), frozenset({"undeclared deviation /etc/waagent.conf"})),
}


@pytest.mark.parametrize("defect", DEFECTS.values(), ids=DEFECTS.keys())
def test_planted_defect_fails_its_rule(debian12_copy: BuildFolder, defect: Defect) -> None:
    defect.plant(debian12_copy)
    result = audit(debian12_copy)
    assert names(result, FAILED) == defect.failed, [(r.check, r.message) for r in result.failed]
    assert defect.warned <= names(result, WARNING)
    assert names(result, WARNING) - defect.warned <= EXPECTED_WARNINGS | {"undeclared deviations"}
    for rec in result.failed:
        assert rec.message and rec.required, f"{rec.check} must say what is required and how to fix it"
    assert result.selftest["TestResult"] == ("Fail" if defect.failed else "Pass")


def test_undeclared_deviation_names_the_file(debian12_copy: BuildFolder) -> None:
    plant.replace_in(debian12_copy, "/etc/waagent.conf", "OS.EnableFirewall=n", "OS.EnableFirewall=y")
    result = audit(debian12_copy)
    waagent = [d for d in result.deviations if d.file == "/etc/waagent.conf"]
    assert waagent and not waagent[0].declared and waagent[0].package == "waagent"
    warning = next(r for r in result.records if r.check == "undeclared deviation /etc/waagent.conf")
    assert "/etc/waagent.conf" in warning.message


def test_unreadable_root_fails_rules_not_the_audit(debian12_copy: BuildFolder) -> None:
    offset = plant.root_offset(debian12_copy)
    plant.write_bytes(debian12_copy, offset + 1024, bytes(1024))  # wipe the ext4 superblock
    result = audit(debian12_copy)
    failed = names(result, FAILED)
    assert "D2 no SSH host keys" in failed and "A4 root partition" not in failed
    assert "A3 first MiB free" not in failed

