"""Rule logic of the offline audit on canned facts: each evaluator passes good input and fails the defect."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.checks import audit, offline_agent, offline_boot, offline_config, offline_disk, offline_hygiene
from harness.checks.diskread import MIB, PartitionEntry, PartitionTable
from harness.checks.grubimage import EarlyConfig
from harness.checks.image import BIOS_BOOT_GUID, ESP_GUID, LINUX_FS_GUID
from harness.checks.rulebase import worst
from harness.checks.selftest import selftest_json
from harness.checks.textparse import parse_fstab, parse_passwd
from harness.results import FAILED, PASSED, SKIPPED, WARNING, Record
from harness.verify import guestchecks
from tests.factories import make_manifest

ROOT = "24b34113-e17a-559f-a9b7-e6b012ca652c"
TABLE = PartitionTable("gpt", "X", 34, 512, (
    PartitionEntry(1, 2048, 2048, BIOS_BOOT_GUID, "A", "bios"),
    PartitionEntry(2, 4096, 260096, ESP_GUID, "B", "esp"),
    PartitionEntry(3, 264192, 8122368, LINUX_FS_GUID, "C", "root")))
DEBIAN_CMDLINE = ["console=tty1", "console=ttyS0,115200n8", "earlyprintk=ttyS0", "net.ifnames=0"]


def results(records: list[Record]) -> dict[str, str]:
    return {r.check: r.result for r in records}


def test_worst() -> None:
    assert worst([PASSED, WARNING, SKIPPED]) == WARNING
    assert worst([PASSED, FAILED, WARNING]) == FAILED
    assert worst([]) == PASSED


# ---------------------------------------------------------------------------------------------
# Disk


def test_size_whole_mib() -> None:
    assert offline_disk.evaluate_size(4096 * MIB).result == PASSED
    assert offline_disk.evaluate_size(4096 * MIB + 512).result == FAILED


def test_first_mib() -> None:
    head = bytearray(MIB)
    head[0:440] = b"\xeb" * 440  # MBR boot code belongs there
    head[512:1024] = b"EFI PART" + bytes(504)  # GPT header
    assert offline_disk.evaluate_first_mib(bytes(head), TABLE).result == PASSED
    head[100 * 512] = 1
    bad = offline_disk.evaluate_first_mib(bytes(head), TABLE)
    assert bad.result == FAILED and "sectors 100..100" in bad.message
    early = PartitionTable("gpt", "X", 34, 512, (PartitionEntry(1, 34, 2014, BIOS_BOOT_GUID, "A", "bios"),))
    assert offline_disk.evaluate_first_mib(bytes(MIB), early).result == FAILED


def test_layout_good_and_wrong_esp_type() -> None:
    assert set(results(offline_disk.evaluate_layout(TABLE, ["bios", "uefi"], esp_is_fat=True)).values()) == {PASSED}
    wrong = PartitionTable("gpt", "X", 34, 512, (
        TABLE.partitions[0], PartitionEntry(2, 4096, 260096, "C12A7328-F81F-11D2-BA4B-00A0C93EC3B8", "B", "esp"),
        TABLE.partitions[2]))
    got = results(offline_disk.evaluate_layout(wrong, ["bios", "uefi"], esp_is_fat=True))
    assert got["A4 EFI system partition (Gen2)"] == FAILED
    assert "A4 EFI system partition (Gen2)" not in results(offline_disk.evaluate_layout(wrong, ["bios"], True))


def test_layout_alignment_and_missing_bios() -> None:
    odd = PartitionTable("gpt", "X", 34, 512, (PartitionEntry(1, 2048, 1000, LINUX_FS_GUID, "C", "root"),))
    got = results(offline_disk.evaluate_layout(odd, ["bios"], esp_is_fat=False))
    assert got["A4 partition alignment"] == WARNING
    assert got["A4 BIOS boot partition (Gen1)"] == FAILED


def test_swap() -> None:
    clean = parse_fstab(f"UUID={ROOT} / ext4 defaults 0 1\n")
    assert offline_disk.evaluate_swap([], clean, []).result == PASSED
    swap = parse_fstab(f"UUID={ROOT} / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n")
    assert offline_disk.evaluate_swap([], swap, []).result == FAILED
    assert offline_disk.evaluate_swap([4], clean, []).result == FAILED
    assert offline_disk.evaluate_swap([], clean, ["/swap.img"]).result == FAILED


@pytest.mark.parametrize(("fstab", "result"), [
    (f"UUID={ROOT} / ext4 defaults 0 1\nUUID=B6CB-A561 /boot/efi vfat nofail 0 2\n", PASSED),
    ("LABEL=root / ext4 defaults 0 1\n", PASSED),
    ("/dev/sda1 / ext4 defaults 0 1\n", FAILED),
    ("UUID=00000000-e17a-559f-a9b7-e6b012ca652c / ext4 defaults 0 1\n", FAILED),
    ("UUID=B6CB-A561 /boot/efi vfat defaults 0 2\n", FAILED),  # no root entry
    (f"UUID={ROOT} / ext4 defaults 0 1\nUUID=DEAD-BEEF /boot/efi vfat nofail 0 2\n", WARNING),
    (f"UUID={ROOT} / ext4 defaults 0 1\nUUID=DEAD-BEEF /boot/efi vfat defaults 0 2\n", FAILED),
    (f"UUID={ROOT} / ext4 defaults 0 1\nLABEL=data /data ext4 defaults 0 2\n", WARNING),
])
def test_fstab(fstab: str, result: str) -> None:
    assert offline_disk.evaluate_fstab(fstab, ROOT, "B6CB-A561").result == result


def test_fstab_missing_and_manifest_drift() -> None:
    assert offline_disk.evaluate_fstab(None, ROOT, None).result == FAILED
    drift = offline_disk.evaluate_fstab(f"UUID={ROOT} / ext4 defaults 0 1\n", ROOT, None, "11111111-0000")
    assert drift.result == WARNING


# ---------------------------------------------------------------------------------------------
# Boot


INITRAMFS = ["usr/lib/modules/6.1/kernel/drivers/hv/hv_vmbus.ko", "usr/lib/modules/6.1/kernel/drivers/scsi/"
             "hv_storvsc.ko.zst", "usr/lib/modules/6.1/kernel/drivers/net/hyperv/hv_netvsc.ko.xz"]


def test_hv_modules_in_initramfs_or_built_in() -> None:
    check = "A6"
    good = offline_boot.evaluate_modules(check, FAILED, INITRAMFS, wanted=offline_boot.HV_MODULES, config={},
                                         initramfs="/boot/initrd.img")
    assert good.result == PASSED
    missing = offline_boot.evaluate_modules(check, FAILED, INITRAMFS[:2], wanted=offline_boot.HV_MODULES, config={},
                                            initramfs="/boot/initrd.img")
    assert missing.result == FAILED and "hv_netvsc" in missing.message
    built_in = offline_boot.evaluate_modules(check, FAILED, INITRAMFS[:2], wanted=offline_boot.HV_MODULES,
                                             config={"CONFIG_HYPERV_NET": "y"}, initramfs="/boot/initrd.img")
    assert built_in.result == PASSED and "built in" in built_in.actual
    modular = offline_boot.evaluate_modules(check, FAILED, INITRAMFS[:2], wanted=offline_boot.HV_MODULES,
                                            config={"CONFIG_HYPERV_NET": "m"}, initramfs="/boot/initrd.img")
    assert modular.result == FAILED
    none = offline_boot.evaluate_modules(check, FAILED, None, wanted=offline_boot.HV_MODULES, config={},
                                         initramfs="/boot/initrd.img")
    assert none.result == FAILED and "no initramfs" in none.actual
    nvme = offline_boot.evaluate_modules("A7", WARNING, None, wanted=offline_boot.NVME_MODULES, config={},
                                         initramfs="/boot/initrd.img")
    assert nvme.result == WARNING


def test_provisioning_file_systems() -> None:
    modules = {"udf": ["udf.ko"], "vfat": ["vfat.ko", "fat.ko"]}
    good = {"CONFIG_UDF_FS": "m", "CONFIG_VFAT_FS": "y"}
    assert offline_boot.evaluate_provisioning_fs(good, modules).result == PASSED
    assert offline_boot.evaluate_provisioning_fs({**good, "CONFIG_UDF_FS": "n"}, modules).result == FAILED
    assert offline_boot.evaluate_provisioning_fs({"CONFIG_UDF_FS": "m", "CONFIG_VFAT_FS": "m"},
                                                 {"udf": [], "vfat": ["vfat.ko"]}).result == FAILED
    assert offline_boot.evaluate_optional_options({"CONFIG_WATCHDOG": "y", "CONFIG_CIFS": "m"}).result == PASSED
    assert offline_boot.evaluate_optional_options({"CONFIG_WATCHDOG": "y"}).result == WARNING


def _param_result(words: list[str], root: str | None = ROOT) -> str:
    problems, _ = offline_boot.evaluate_params(words, "x86_64", root)
    return worst(severity for severity, _ in problems)


def test_kernel_params() -> None:
    root = [f"root=UUID={ROOT}", "ro"]
    assert _param_result([*root, *DEBIAN_CMDLINE, "rootdelay=300"]) == PASSED
    assert _param_result([*root, *DEBIAN_CMDLINE]) == WARNING  # rootdelay left out on purpose
    assert _param_result([*root, "console=tty1", "earlyprintk=ttyS0", "rootdelay=300", "net.ifnames=0"]) == FAILED
    assert _param_result([*root, *DEBIAN_CMDLINE, "rootdelay=300", "quiet"]) == WARNING
    assert _param_result([*root, *DEBIAN_CMDLINE, "rootdelay=300", "libata.atapi_enabled=0"]) == FAILED
    assert _param_result(["root=UUID=other", "ro", *DEBIAN_CMDLINE, "rootdelay=300"]) == FAILED
    assert _param_result([*DEBIAN_CMDLINE, "rootdelay=300"], root=None) == PASSED
    problems, _ = offline_boot.evaluate_params(["console=ttyAMA0", "earlyprintk=ttyAMA0"], "aarch64", None)
    assert all("console" not in text for _, text in problems)


def test_boot_chain() -> None:
    good = EarlyConfig("", ROOT, "($root)/boot/grub", "($root)/boot/grub/grub.cfg")
    assert offline_boot.evaluate_chain("uefi", good, ROOT, "/boot/grub") == []
    other = EarlyConfig("", "00000000-0000", "($root)/boot/grub", "($root)/boot/grub/grub.cfg")
    assert worst(s for s, _ in offline_boot.evaluate_chain("uefi", other, ROOT, "/boot/grub")) == FAILED
    elsewhere = EarlyConfig("", ROOT, "($root)/boot/grub2", None)
    assert worst(s for s, _ in offline_boot.evaluate_chain("bios", elsewhere, ROOT, "/boot/grub")) == FAILED
    assert worst(s for s, _ in offline_boot.evaluate_chain("bios", None, ROOT, "/boot/grub")) == FAILED


# ---------------------------------------------------------------------------------------------
# Agent and configuration


AZURE = {"datasource_list": ["Azure"]}


@pytest.mark.parametrize(("case", "result"), [
    (("cloud-init", "enabled", AZURE, [], True), PASSED),
    (("cloud-init", "enabled", AZURE, [], False), WARNING),
    (("cloud-init", "enabled", {}, [], False), FAILED),
    (("cloud-init", "enabled", {"datasource_list": ["NoCloud", "Azure"]}, [], True), WARNING),
    (("cloud-init", "enabled", AZURE, ["ci.ds=NoCloud"], True), FAILED),
    (("cloud-init", "disabled", AZURE, [], True), FAILED),
    (("waagent", "enabled", AZURE, [], True), FAILED),
    (("waagent", "absent", None, [], False), PASSED),
    (("specialized", "disabled", AZURE, [], True), PASSED),
])
def test_datasource(case: tuple[str, str, dict[str, object] | None, list[str], bool], result: str) -> None:
    mode, state, config, cmdline, present = case
    assert offline_agent.evaluate_datasource(mode, state, config, cmdline, present).result == result


def test_cloud_config_merge_later_files_win() -> None:
    merged = offline_agent.merge_cloud_configs([
        {"datasource_list": ["NoCloud", "Azure"], "system_info": {"distro": "debian", "default_user": {"name": "d"}}},
        None, {"datasource_list": ["Azure"], "system_info": {"default_user": {"groups": ["adm"]}}}])
    assert merged["datasource_list"] == ["Azure"]
    assert merged["system_info"] == {"distro": "debian", "default_user": {"name": "d", "groups": ["adm"]}}


@pytest.mark.parametrize(("mode", "conf", "cloud_init", "agent_result", "disk_result"), [
    ("cloud-init", {"Provisioning.Agent": "cloud-init", "ResourceDisk.Format": "n"}, "enabled", PASSED, PASSED),
    ("cloud-init", {"Provisioning.Agent": "auto", "ResourceDisk.Format": "y"}, "enabled", PASSED, WARNING),
    ("cloud-init", {"Provisioning.Agent": "waagent"}, "enabled", FAILED, WARNING),
    ("waagent", {"Provisioning.Agent": "waagent", "ResourceDisk.EnableSwap": "y"}, "absent", PASSED, PASSED),
    ("waagent", {}, "enabled", FAILED, PASSED),  # auto would pick cloud-init
    ("waagent", {}, "absent", PASSED, PASSED),
    ("specialized", {"Provisioning.Agent": "disabled"}, "disabled", PASSED, PASSED),
])
def test_waagent(mode: str, conf: dict[str, str], cloud_init: str, agent_result: str, disk_result: str) -> None:
    got = results(offline_agent.evaluate_waagent(mode, conf, cloud_init))
    assert got == {"A11 waagent provisioning agent": agent_result, "A11 waagent resource disk": disk_result}


def test_waagent_missing() -> None:
    assert offline_agent.evaluate_waagent("waagent", None, "absent")[0].result == FAILED
    assert offline_agent.evaluate_waagent("cloud-init", None, "enabled")[0].result == PASSED


def test_cloud_modules() -> None:
    config = {"cloud_init_modules": ["growpart", "disk_setup", "mounts"], "output": {"all": "| tee -a "
                                                                                         "/var/log/cloud-init-output.log"},
              "system_info": {"default_user": {"groups": ["adm", "sudo"]}}}
    assert set(results(offline_agent.evaluate_cloud_modules(config)).values()) == {PASSED}
    moved = {**config, "cloud_init_modules": ["growpart"], "cloud_config_modules": ["disk-setup", "mounts"],
             "system_info": {"default_user": {"groups": "wheel,adm"}}, "output": {}}
    assert set(results(offline_agent.evaluate_cloud_modules(moved)).values()) == {WARNING}


def test_scsi_timeout() -> None:
    assert offline_agent.evaluate_scsi_timeout("300", []).result == PASSED
    assert offline_agent.evaluate_scsi_timeout(None, ["/etc/udev/rules.d/99-timeout.rules"]).result == PASSED
    assert offline_agent.evaluate_scsi_timeout("30", []).result == WARNING


@pytest.mark.parametrize(("value", "result"), [("180", PASSED), ("120", WARNING), ("3m", PASSED), ("0", FAILED),
                                               ("236", FAILED), ("300", FAILED), (None, FAILED), ("x", FAILED)])
def test_client_alive(value: str | None, result: str) -> None:
    assert offline_config.evaluate_client_alive(value, "/etc/ssh/sshd_config").result == result


SUSE_SUDOERS = """Defaults always_set_home
Defaults targetpw   # ask for the password of the target user i.e. root
ALL   ALL=(ALL) ALL   # WARNING! Only use this together with 'Defaults targetpw'!
root ALL=(ALL:ALL) ALL
"""


def test_sudoers_targetpw_with_everyone_may_run_anything_fails() -> None:
    found = offline_config.evaluate_sudoers({"/etc/sudoers": SUSE_SUDOERS})
    assert found.result == FAILED and "comment both out in /etc/sudoers" in found.message
    split = {"/etc/sudoers": "Defaults targetpw\n", "/etc/sudoers.d/90-all": "ALL ALL=(ALL:ALL) ALL\n"}
    assert offline_config.evaluate_sudoers(split).result == FAILED


def test_sudoers_targetpw_alone_warns_and_commented_lines_pass() -> None:
    assert offline_config.evaluate_sudoers({"/etc/sudoers": "Defaults targetpw\n"}).result == WARNING
    assert offline_config.evaluate_sudoers({"/etc/sudoers": "ALL ALL=(ALL) ALL\n"}).result == PASSED
    commented = SUSE_SUDOERS.replace("Defaults targetpw", "# Defaults targetpw").replace("ALL   ALL", "# ALL   ALL")
    assert offline_config.evaluate_sudoers({"/etc/sudoers": commented}).result == PASSED
    assert offline_config.evaluate_sudoers({"/etc/sudoers": "Defaults !targetpw\n"}).result == PASSED  # turned off


def test_dhcp_timeout() -> None:
    assert offline_config.evaluate_dhcp_timeout(300, True, None).result == PASSED
    assert offline_config.evaluate_dhcp_timeout(None, True, None).result == FAILED  # dhclient's default is 60
    assert offline_config.evaluate_dhcp_timeout(60, True, None).result == FAILED
    assert offline_config.evaluate_dhcp_timeout(None, False, [45]).result == FAILED
    assert offline_config.evaluate_dhcp_timeout(None, False, [300]).result == PASSED
    assert offline_config.evaluate_dhcp_timeout(None, False, [300, 60]).result == FAILED  # the last file read wins


def test_dhcp_timeout_unset_in_network_manager_fails_with_the_drop_in_to_write() -> None:
    unset = offline_config.evaluate_dhcp_timeout(None, False, [])  # NetworkManager's default is 45 s
    assert unset.result == FAILED and "45 (default)" in unset.actual
    assert "ipv4.dhcp-timeout=300" in unset.message and "/etc/NetworkManager/conf.d/" in unset.message
    assert offline_config.nm_dhcp_timeouts(["[main]\n", None, "[connection]\nipv4.dhcp-timeout=300\n"]) == [300]


def test_software_minimums() -> None:
    packages = {"waagent": ("2.9.0.4-1", "all"), "python3": ("3.11.2-1+b1", "amd64"),
                "openssl": ("3.0.17-1~deb12u2", "amd64")}
    assert set(results(offline_config.evaluate_software(packages, "x86_64", "cloud-init", "n")).values()) == {PASSED}
    old = {**packages, "waagent": ("2.2.40-1", "all"), "python3": ("3.9.2-3", "amd64"), "omi": ("1.6.8-0", "amd64")}
    got = results(offline_config.evaluate_software(old, "i686", "waagent", "n"))
    assert got == {"A16 architecture": FAILED, "A16 waagent version": FAILED, "A16 python version": WARNING,
                   "A16 openssl version": PASSED, "A16 omi version": WARNING}
    assert results(offline_config.evaluate_software(old, "x86_64", "waagent", "y"))["A16 waagent version"] == PASSED
    assert results(offline_config.evaluate_software({}, "x86_64", "waagent", "n"))["A16 waagent version"] == FAILED


# ---------------------------------------------------------------------------------------------
# Generalization


PASSWD = parse_passwd("root:x:0:0:root:/root:/bin/bash\nlegacy:$1$abc$def:1000:1000::/home/legacy:/bin/sh\n")


def test_passwords() -> None:
    assert offline_hygiene.evaluate_passwords("root:*:1:0:99999:7:::\n", PASSWD[:1]).result == PASSED
    hashed = offline_hygiene.evaluate_passwords("root:$6$s$h:1:0:99999:7:::\n", PASSWD[:1])
    assert hashed.result == FAILED and "root" in hashed.message and "$6$" not in hashed.message + hashed.actual
    assert offline_hygiene.evaluate_passwords("root:*:1::::::\n", PASSWD).result == FAILED  # hash in passwd
    assert offline_hygiene.evaluate_passwords("root::1::::::\n", PASSWD[:1]).result == WARNING


def test_home_keys() -> None:
    stub = 'no-pty,command="echo \'Please login as the user \\"debian\\" rather than the user \\"root\\".\'" ssh-rsa A'
    assert offline_hygiene.evaluate_home_keys({}).result == PASSED
    assert offline_hygiene.evaluate_home_keys({"/root/.ssh/authorized_keys": stub + "\n"}).result == PASSED
    assert offline_hygiene.evaluate_home_keys({"/root/.ssh/authorized_keys": "ssh-ed25519 AAAA x\n"}).result == FAILED
    assert offline_hygiene.evaluate_home_keys({"/home/a/.ssh/id_ed25519": None}).result == FAILED
    assert offline_hygiene.evaluate_home_keys({"/root/.ssh/known_hosts": None}).result == FAILED
    assert offline_hygiene.evaluate_home_keys({"/home/a/.ssh/known_hosts": None}).result == PASSED


def test_machine_id() -> None:
    assert offline_hygiene.evaluate_machine_id("", None, "empty").result == PASSED
    assert offline_hygiene.evaluate_machine_id("uninitialized\n", None, "uninitialized").result == PASSED
    assert offline_hygiene.evaluate_machine_id("0123456789abcdef0123456789abcdef\n", None, "empty").result == FAILED
    assert offline_hygiene.evaluate_machine_id("", "0123\n", "empty").result == FAILED
    assert offline_hygiene.evaluate_machine_id(None, None, "empty").result == WARNING


def test_histories() -> None:
    assert offline_hygiene.evaluate_histories({}).actual == "No file Exist"
    assert offline_hygiene.evaluate_histories({"/root/.bash_history": 0}).result == PASSED
    full = offline_hygiene.evaluate_histories({"/root/.bash_history": 12})
    assert full.result == FAILED and "is not empty, containing 12 bytes" in full.message


def test_agent_state_network_leftovers_integrity() -> None:
    assert offline_hygiene.evaluate_agent_state([], []).result == PASSED
    assert offline_hygiene.evaluate_agent_state(["/var/lib/waagent/provisioned"], []).result == FAILED
    assert offline_hygiene.evaluate_agent_state([], ["/var/log/waagent.log"]).result == FAILED
    assert offline_hygiene.evaluate_network_identity([], False, None, "localhost").result == PASSED
    assert offline_hygiene.evaluate_network_identity(["/var/lib/dhcp/x.leases"], False, None, "").result == FAILED
    assert offline_hygiene.evaluate_network_identity([], True, None, "").result == FAILED
    assert offline_hygiene.evaluate_network_identity([], False, "nameserver 10.0.0.1\n", "").result == WARNING
    assert offline_hygiene.evaluate_network_identity([], False, None, "buildhost").result == WARNING
    assert offline_hygiene.evaluate_leftovers([], [], []).result == PASSED
    assert offline_hygiene.evaluate_leftovers(["/var/log/dpkg.log"], [], []).result == WARNING
    modes: dict[str, int | None] = {"/etc/passwd": 0o644, "/etc/shadow": 0o640, "/etc/ssh/sshd_config": 0o644,
                                    "/bin/sh": 0o755}
    assert offline_hygiene.evaluate_integrity(modes, "/etc/ssh/sshd_config").result == PASSED
    for path, mode in (("/etc/shadow", 0o644), ("/etc/ssh/sshd_config", 0o664), ("/bin/sh", None)):
        assert offline_hygiene.evaluate_integrity({**modes, path: mode}, "/etc/ssh/sshd_config").result == FAILED


def test_registration_left_in_the_image_fails_with_the_command_that_removes_it() -> None:
    assert offline_hygiene.evaluate_registration([], []).result == PASSED
    rhel = offline_hygiene.evaluate_registration(["/etc/pki/entitlement/123.pem"], [])
    assert rhel.result == FAILED and "subscription-manager unregister" in rhel.message
    sles = offline_hygiene.evaluate_registration([], ["/etc/zypp/credentials.d/SCCcredentials"])
    assert sles.result == FAILED and "SUSEConnect --cleanup" in sles.message


def test_registration_rule_reads_certificates_and_credentials_from_the_tree() -> None:
    folders = {"/etc/pki/entitlement": ["123.pem", "123-key.pem"], "/etc/pki/consumer": ["cert.pem", "key.pem"]}
    tree = SimpleNamespace(listdir=folders.get, exists=lambda path: path == "/etc/SUSEConnect")
    [found] = offline_hygiene.registration(SimpleNamespace(root=tree))  # type: ignore[arg-type]
    assert found.check == "D10 no subscription registration" and found.result == FAILED
    for path in ("/etc/pki/entitlement/123-key.pem", "/etc/pki/consumer/cert.pem", "/etc/SUSEConnect"):
        assert path in found.actual
    clean = SimpleNamespace(listdir=lambda folder: ["redhat-uep.pem"] if "rhsm" in folder else None,
                            exists=lambda path: False)
    assert offline_hygiene.registration(SimpleNamespace(root=clean))[0].result == PASSED  # type: ignore[arg-type]
    assert offline_hygiene.registration in audit.RULES


# ---------------------------------------------------------------------------------------------
# Self-test shape


def test_selftest_names_and_result() -> None:
    records = [Record("check", "D4 shell histories empty", PASSED, "No file Exist", "1024"),
               Record("check", "A9 kernel command line (bios)", WARNING, "m", "r", "rootdelay"),
               Record("check", "A1 VHD container", SKIPPED),
               Record("check", "D2 no SSH host keys", FAILED, "/etc/ssh/ssh_host_rsa_key", "none", "delete")]
    data = selftest_json(records, make_manifest(),
                         {"NAME": "Debian GNU/Linux", "VERSION_ID": "12"}, "6.1.0")
    assert data["TestResult"] == "Fail" and data["KernelVersion"] == "6.1.0" and data["OSVersion"] == "12"
    tests = {t["TestCaseName"]: t for t in data["Tests"]}
    assert set(tests) == {"Bash History", "Required Kernel Parameters (bios)", "D2 no SSH host keys"}
    assert tests["Bash History"]["TestID"] == "48" and tests["Bash History"]["ActualValue"] == "No file Exist"
    assert "TestID" not in tests["D2 no SSH host keys"]
    assert {t["Result"] for t in data["Tests"]} <= {PASSED, WARNING, FAILED}


# -- B2: the serial console (an excerpt of a real TCG boot on a loaded host) ---------------------------
STALL = """[   95.977984] rcu: INFO: rcu_preempt self-detected stall on CPU
[   95.981803] rcu: \t0-....: (1 GPs behind) idle=1a2c/1/0x4000000000000000 softirq=9104/9105 fqs=1098
[   96.013790] CPU: 0 PID: 296 Comm: (udev-worker) Not tainted 6.1.0-56-cloud-amd64 #1  Debian 6.1.192-2
[   96.017783] RIP: 0010:clear_page_erms+0x7/0x10
[   96.017783] Call Trace:
[   96.017783]  <TASK>
[   96.017783]  __alloc_pages_bulk+0x49f/0x680
[   96.017783]  </TASK>
"""
OOPS = """[   12.000000] BUG: kernel NULL pointer dereference, address: 0000000000000008
[   12.000001] Oops: 0000 [#1] PREEMPT SMP NOPTI
[   12.000002] Call Trace:
"""


def test_console_stall_trace_belongs_to_the_stall_and_a_real_oops_does_not() -> None:
    assert guestchecks.console_problems("[    1.0] Linux version 6.1\n") == ([], [])
    hard, stalls = guestchecks.console_problems(STALL)
    assert hard == [] and stalls == ["[   95.977984] rcu: INFO: rcu_preempt self-detected stall on CPU"]
    hard, stalls = guestchecks.console_problems(STALL + "\n" * 100 + OOPS)
    assert hard == ["BUG: ", "Call Trace:", "Oops:"] and len(stalls) == 1
    assert guestchecks.console_problems(OOPS)[0] == ["BUG: ", "Call Trace:", "Oops:"]


def test_console_stall_is_a_warning_under_tcg_and_a_failure_under_kvm() -> None:
    def verdict(log: str, accel: str) -> str:
        return guestchecks.console_clean(SimpleNamespace(serial_log=log, accel=accel)).result  # type: ignore[arg-type]

    assert verdict(STALL, "tcg") == WARNING and verdict(STALL, "kvm") == FAILED
    assert verdict(STALL + OOPS, "tcg") == FAILED
    assert verdict("clean boot\n", "tcg") == PASSED
