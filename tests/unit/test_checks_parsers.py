"""Pure parsers of the offline audit, on canned inputs: no disk, no subprocess."""

from __future__ import annotations

import lzma
import struct

import pytest

from harness.checks import grubimage
from harness.checks.diskread import (
    Stat,
    ext4_uuid,
    fat_serial,
    parse_debugfs_stat,
    parse_ls_p,
    parse_sfdisk,
    resolve,
    split_sections,
)
from harness.checks.textparse import (
    cmdline_params,
    dhclient_timeout,
    has_param,
    initramfs_paths,
    is_stable_spec,
    kv_values,
    parse_dpkg_status,
    parse_fstab,
    parse_kernel_config,
    parse_passwd,
    parse_shadow,
    spec_uuid,
    sshd_effective,
    sshd_seconds,
    upstream_version,
    usable_hash,
)
from harness.shellsyntax import parse_assignments

FSTAB = """# <file system> <mount point> <type> <options> <dump> <pass>
UUID=24b34113-e17a-559f-a9b7-e6b012ca652c / ext4 defaults,discard,errors=remount-ro 0 1
UUID=B6CB-A561 /boot/efi vfat defaults,umask=0077,nofail 0 2

/dev/sdb1 /mnt ext4 defaults 0 0   # resource disk
tmpfs /tmp tmpfs defaults
"""


def test_fstab_entries_and_specs() -> None:
    entries = parse_fstab(FSTAB)
    assert [e.mountpoint for e in entries] == ["/", "/boot/efi", "/mnt", "/tmp"]
    assert entries[1].options == ("defaults", "umask=0077", "nofail")
    assert spec_uuid(entries[0].spec) == "24b34113-e17a-559f-a9b7-e6b012ca652c"
    assert spec_uuid("/dev/disk/by-uuid/ABC") == "abc"
    assert spec_uuid("LABEL=root") is None
    assert is_stable_spec("LABEL=root") and not is_stable_spec("/dev/sdb1")


def test_passwd_and_shadow() -> None:
    users = parse_passwd("root:x:0:0:root:/root:/bin/bash\nsshd:x:102:65534::/run/sshd:/usr/sbin/nologin\nbad\n")
    assert [(u.name, u.uid, u.home, u.shell) for u in users] == [
        ("root", 0, "/root", "/bin/bash"), ("sshd", 102, "/run/sshd", "/usr/sbin/nologin")]
    shadow = parse_shadow("root:*:20783:0:99999:7:::\nsystemd-network:!*:20783::::::\nbob:$6$s$h:1::::::\n")
    assert shadow == [("root", "*"), ("systemd-network", "!*"), ("bob", "$6$s$h")]


@pytest.mark.parametrize(("field", "usable"), [
    ("*", False), ("!", False), ("!!", False), ("x", False), ("", False), ("!*", False),
    ("!$6$salt$hash", False), ("$6$salt$hash", True), ("$y$j9T$abc$def", True), ("plain", True)])
def test_usable_hash(field: str, usable: bool) -> None:
    assert usable_hash(field) is usable


def test_kernel_config() -> None:
    config = parse_kernel_config("CONFIG_UDF_FS=m\n# CONFIG_CIFS is not set\nCONFIG_LOCALVERSION=\"-cloud\"\n"
                                 "CONFIG_HYPERV=y\n# comment\n")
    assert config == {"CONFIG_UDF_FS": "m", "CONFIG_CIFS": "n", "CONFIG_LOCALVERSION": "-cloud", "CONFIG_HYPERV": "y"}


def test_cmdline_params() -> None:
    params = cmdline_params(["root=UUID=x", "ro", "console=tty1", "console=ttyS0,115200n8", "quiet"])
    assert ("ro", None) in params
    assert has_param(params, "console", "ttyS0")
    assert not has_param(params, "console", "ttyAMA0")
    assert has_param(params, "quiet")


def test_grub_defaults() -> None:
    text = ('GRUB_CMDLINE_LINUX="console=tty1 console=ttyS0,115200n8"\n#GRUB_X=1\nGRUB_TIMEOUT=1\n'
            "export GRUB_A='b c'\n")
    assert parse_assignments(text) == {"GRUB_CMDLINE_LINUX": "console=tty1 console=ttyS0,115200n8",
                                         "GRUB_TIMEOUT": "1", "GRUB_A": "b c"}


SSHD_MAIN = """# comment
Include /etc/ssh/sshd_config.d/*.conf
ClientAliveInterval 120
Match User backup
    ClientAliveInterval 10
"""


def _sshd(files: dict[str, str]) -> tuple[str | None, str | None]:
    def expand(pattern: str) -> list[str]:
        prefix = pattern.rsplit("/", 1)[0] + "/"
        return sorted(p for p in files if p.startswith(prefix) and p.endswith(".conf"))

    found = sshd_effective("ClientAliveInterval", files.get, expand)
    return found.value, found.source


def test_sshd_first_match_include_before_main_value() -> None:
    files = {"/etc/ssh/sshd_config": SSHD_MAIN, "/etc/ssh/sshd_config.d/50-azure.conf": "ClientAliveInterval 180\n",
             "/etc/ssh/sshd_config.d/10-early.conf": "clientaliveinterval=300\n"}
    assert _sshd(files) == ("300", "/etc/ssh/sshd_config.d/10-early.conf")


def test_sshd_main_value_when_drop_ins_silent() -> None:
    files = {"/etc/ssh/sshd_config": SSHD_MAIN, "/etc/ssh/sshd_config.d/50-x.conf": "# ClientAliveInterval 5\n"}
    assert _sshd(files) == ("120", "/etc/ssh/sshd_config")


def test_sshd_match_block_is_not_global() -> None:
    files = {"/etc/ssh/sshd_config": "Match User backup\n  ClientAliveInterval 10\n"}
    assert _sshd(files) == (None, None)
    files = {"/etc/ssh/sshd_config": "Include sshd_config.d/*.conf\nClientAliveInterval 60\n",
             "/etc/ssh/sshd_config.d/a.conf": "Match all\nClientAliveInterval 30\n"}
    assert _sshd(files) == ("30", "/etc/ssh/sshd_config.d/a.conf")


@pytest.mark.parametrize(("value", "seconds"), [("180", 180), ("3m", 180), ("1h30m", 5400), ("2x", None), ("", None)])
def test_sshd_seconds(value: str, seconds: int | None) -> None:
    assert sshd_seconds(value) == seconds


def test_dhclient_timeout_global_last_wins() -> None:
    text = "#timeout 60;\ntimeout 30;\ninterface \"eth1\" {\n  timeout 5;\n}\ntimeout 300; # Azure\n"
    assert dhclient_timeout(text) == 300
    assert dhclient_timeout("request subnet-mask;\n") is None


def test_kv_values() -> None:
    assert kv_values("# c\nProvisioning.Agent=cloud-init\nOS.EnableFirewall = y\n#ResourceDisk.Format=y\n") == {
        "Provisioning.Agent": "cloud-init", "OS.EnableFirewall": "y"}


DPKG_STATUS = """Package: waagent
Status: install ok installed
Architecture: all
Version: 2.9.0.4-1
Conffiles:
 /etc/waagent.conf 6e3f1b7ecc8015e6d940292f1ccb8224
 /etc/old.conf 0123456789abcdef0123456789abcdef obsolete
Description: Windows Azure Linux Agent
 more text

Package: removed-pkg
Status: deinstall ok config-files
Version: 1.0
"""


def test_dpkg_status() -> None:
    packages = parse_dpkg_status(DPKG_STATUS)
    assert [p.name for p in packages] == ["waagent", "removed-pkg"]
    assert packages[0].installed and not packages[1].installed
    assert packages[0].conffiles == [("/etc/waagent.conf", "6e3f1b7ecc8015e6d940292f1ccb8224", ()),
                                     ("/etc/old.conf", "0123456789abcdef0123456789abcdef", ("obsolete",))]


@pytest.mark.parametrize(("version", "parsed"), [
    ("2.9.0.4-1", (2, 9, 0, 4)), ("1:3.0.17-1~deb12u2", (3, 0, 17)), ("3.11.2-1+b1", (3, 11, 2)),
    ("1.1.1w", (1, 1, 1))])
def test_upstream_version(version: str, parsed: tuple[int, ...]) -> None:
    assert upstream_version(version) == parsed


def test_initramfs_listing_both_tools() -> None:
    lsinitramfs = "usr/lib/modules/6.1/kernel/drivers/hv/hv_vmbus.ko\nbin\n"
    lsinitrd = ("Image: initrd.img: 15M\n========\n"
                "-rw-r--r--   1 root root 77441 Nov 16 10:17 usr/lib/modules/6.1/kernel/drivers/scsi/hv_storvsc.ko.xz\n"
                "lrwxrwxrwx   1 root root     7 Nov 16 10:17 bin -> usr/bin\n")
    assert initramfs_paths(lsinitramfs) == ["usr/lib/modules/6.1/kernel/drivers/hv/hv_vmbus.ko", "bin"]
    assert "usr/lib/modules/6.1/kernel/drivers/scsi/hv_storvsc.ko.xz" in initramfs_paths(lsinitrd)
    assert "bin" in initramfs_paths(lsinitrd) and "usr/bin" not in initramfs_paths(lsinitrd)


def test_os_release() -> None:
    assert parse_assignments('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nID=debian\n') == {
        "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)", "VERSION_ID": "12", "ID": "debian"}


# ---------------------------------------------------------------------------------------------
# Tool output: sfdisk, debugfs.

SFDISK = """{"partitiontable": {"label": "gpt", "id": "78A9", "device": "disk.raw", "unit": "sectors",
  "firstlba": 34, "lastlba": 8388574, "sectorsize": 512, "partitions": [
   {"node": "disk.raw1", "start": 2048, "size": 2048, "type": "21686148-6449-6E6F-744E-656564454649",
    "uuid": "3af0", "name": "bios"},
   {"node": "disk.raw2", "start": 4096, "size": 260096, "type": "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
    "uuid": "b6cb", "name": "esp"}]}}"""


def test_parse_sfdisk() -> None:
    table = parse_sfdisk(SFDISK)
    assert table.label == "gpt" and table.first_lba == 34
    assert [(p.number, p.start, p.size, p.name) for p in table.partitions] == [(1, 2048, 2048, "bios"),
                                                                              (2, 4096, 260096, "esp")]
    assert table.of_type("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")[0].start_bytes == 4096 * 512


STAT_SYMLINK = """Inode: 1783   Type: symlink    Mode:  0777   Flags: 0x0
User:     0   Group:     0   Project:     0   Size: 4
Fast link dest: "dash"
"""


def test_parse_debugfs_stat() -> None:
    assert parse_debugfs_stat(STAT_SYMLINK) == Stat(kind="symlink", mode=0o777, size=4, link="dash")
    shadow = "Inode: 1035   Type: regular    Mode:  0640   Flags: 0x80000\nUser:     0   Group:    42   Size: 571\n"
    assert parse_debugfs_stat(shadow) == Stat(kind="file", mode=0o640, gid=42, size=571)
    assert parse_debugfs_stat("") is None


def test_parse_ls_p() -> None:
    text = "/13/040755/0/0/.//\n/2/040755/0/0/..//\n/14/100644/0/0/System.map-6.1/83/\n/16/040755/0/0/efi//\n\n"
    assert parse_ls_p(text) == [("System.map-6.1", Stat(kind="file", mode=0o644, size=83)),
                                ("efi", Stat(kind="dir", mode=0o755))]
    assert parse_ls_p("/13/040755/0/0/.//\n/2/040755/0/0/..//\n") == []
    assert parse_ls_p("") is None


def test_split_sections_keeps_files_without_final_newline() -> None:
    out = "debugfs: cat /etc/machine-id\ndebugfs: cat /etc/hostname\nlocalhostdebugfs: stat /x\n"
    assert split_sections(out, ["cat /etc/machine-id", "cat /etc/hostname", "stat /x"]) == ["", "localhost", ""]


def test_resolve_follows_links_inside_the_image() -> None:
    tree = {"/bin": Stat("symlink", 0o777, link="usr/bin"), "/usr": Stat("dir", 0o755),
            "/usr/bin": Stat("dir", 0o755), "/usr/bin/sh": Stat("symlink", 0o777, link="dash"),
            "/usr/bin/dash": Stat("file", 0o755), "/etc": Stat("dir", 0o755),
            "/etc/resolv.conf": Stat("symlink", 0o777, link="/run/systemd/resolve/stub-resolv.conf"),
            "/loop": Stat("symlink", 0o777, link="/loop")}
    assert resolve("/bin/sh", tree.get) == "/usr/bin/dash"
    assert resolve("/usr/bin/../bin/sh", tree.get) == "/usr/bin/dash"
    assert resolve("/etc/resolv.conf", tree.get) is None  # dangling inside the image: never the host's file
    assert resolve("/loop", tree.get) is None


def test_fat_serial_and_ext4_uuid() -> None:
    boot = bytearray(512)
    boot[0x52:0x5A] = b"FAT32   "
    struct.pack_into("<I", boot, 0x43, 0xB6CBA561)
    boot[510:512] = b"\x55\xaa"
    assert fat_serial(bytes(boot)) == "B6CB-A561"
    assert fat_serial(bytes(512)) is None
    superblock = bytearray(1024)
    superblock[0x38:0x3A] = b"\x53\xef"
    superblock[0x68:0x78] = bytes.fromhex("24b34113e17a559fa9b7e6b012ca652c")
    assert ext4_uuid(bytes(superblock)) == "24b34113-e17a-559f-a9b7-e6b012ca652c"
    assert ext4_uuid(bytes(1024)) is None


# ---------------------------------------------------------------------------------------------
# GRUB.

EARLY = ("search --no-floppy --fs-uuid --set=root 24b34113-e17a-559f-a9b7-e6b012ca652c\n"
         "set prefix=($root)/boot/grub\nconfigfile ($root)/boot/grub/grub.cfg\n")


def test_early_config_found_in_efi_like_blob() -> None:
    blob = b"MZ\x00search.fs_uuid help text\x00--fs-uuid\x00" + EARLY.encode() + b"\x00\x03\x00/boot/grub\x00"
    early = grubimage.find_early_config(blob)
    assert early is not None
    assert early.root_uuid == "24b34113-e17a-559f-a9b7-e6b012ca652c"
    assert early.grub_dir == "/boot/grub"
    assert grubimage.find_early_config(b"no config here\x00") is None


def test_core_img_roundtrip_decompression() -> None:
    payload = b"kernel" * 1000 + b"\x00" + EARLY.encode() + b"\x00modules"
    packed = lzma.compress(payload, format=lzma.FORMAT_RAW, filters=grubimage.LZMA_FILTERS)
    decompressor = bytearray(2848)
    struct.pack_into("<II", decompressor, grubimage.LZMA_COMPRESSED_SIZE, len(packed), len(payload))
    body = bytes(decompressor) + packed
    diskboot = bytearray(512)
    sectors = -(-(512 + len(body)) // 512)
    struct.pack_into("<QHH", diskboot, grubimage.BLOCKLIST_OFFSET, 2049, sectors - 1, 0x820)
    core = bytes(diskboot) + body
    assert grubimage.core_img_size(core) == sectors * 512
    assert grubimage.decompress_core(core, 2848) == payload
    assert grubimage.decompress_core(core, None) == payload  # decompressor size unknown: searched
    early = grubimage.find_early_config(payload)
    assert early is not None and early.configfile == "($root)/boot/grub/grub.cfg"


GRUB_CFG = """set default=1
set timeout=1
menuentry 'Rescue' --id rescue {
    linux /boot/vmlinuz-old root=UUID=x ro single
}
menuentry 'Debian 12' --id harness-default {
    linux /boot/vmlinuz-6.1 root=UUID=24b3 ro console=tty1 console=ttyS0,115200n8
    initrd /boot/initrd.img-6.1
}
submenu 'Advanced' {
    menuentry 'nested' {
        linux /boot/vmlinuz-nested
    }
}
"""


def test_grub_cfg_default_entry() -> None:
    entry = grubimage.default_entry(GRUB_CFG)
    assert entry is not None and entry.entry_id == "harness-default"
    assert entry.linux == ["/boot/vmlinuz-6.1", "root=UUID=24b3", "ro", "console=tty1", "console=ttyS0,115200n8"]
    assert entry.initrd == ["/boot/initrd.img-6.1"]
    by_id = grubimage.default_entry(GRUB_CFG.replace("set default=1", 'set default="rescue"'))
    assert by_id is not None and by_id.title == "Rescue"
    _, entries = grubimage.parse_grub_cfg(GRUB_CFG)
    assert [e.title for e in entries] == ["Rescue", "Debian 12"]  # submenu entries are not top level
    assert grubimage.default_entry("set timeout=1\n") is None
