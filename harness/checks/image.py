"""The image under audit: its manifest, family, partitions and file systems, each read once and cached.

Everything is lazy: a rule that needs the initramfs pays for extracting it, and a disk whose root
file system cannot be read still gets its partition-level rules evaluated (the others fail with the
read error instead of aborting the audit).
"""

from __future__ import annotations

import posixpath
from functools import cached_property
from pathlib import Path

from harness import proc
from harness.builder.families import FAMILIES, FamilyTraits
from harness.buildfolder import BuildFolder
from harness.checks import grubimage
from harness.checks.diskread import (
    MIB,
    Disk,
    Ext4Reader,
    ImageReadError,
    PartitionEntry,
    PartitionTable,
    esp_copy,
    esp_listing,
    ext4_uuid,
    fat_serial,
)
from harness.checks.textparse import (
    DpkgPackage,
    PasswdEntry,
    initramfs_paths,
    login_shell,
    parse_dpkg_status,
    parse_kernel_config,
    parse_passwd,
)
from harness.enums import OsState
from harness.manifest import Manifest

BIOS_BOOT_GUID = "21686148-6449-6E6F-744E-656564454649"
ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_FS_GUID = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
LINUX_ROOT_GUIDS = (LINUX_FS_GUID, "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "B921B045-1DF0-41C3-AF44-4C6F280D3FAE")
# GPT type names for the read error's description of a layout (the Discoverable Partitions names; Flatcar's types)
PARTITION_TYPE_NAMES = {
    BIOS_BOOT_GUID: "BIOS boot", ESP_GUID: "EFI System", LINUX_FS_GUID: "Linux filesystem",
    "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": "Linux root (x86-64)", "B921B045-1DF0-41C3-AF44-4C6F280D3FAE":
    "Linux root (Arm64)", "E6D6D379-F507-44C2-A23C-238F2A3DF928": "Linux LVM",
    "5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6": "Flatcar /usr", "3884DD41-8582-4404-B9A8-E9B84F2DF50E": "Flatcar root",
}
EFI_LOADER = "/EFI/BOOT/BOOTX64.EFI"
# Trees copied out of the root file system once per audit (small after sealing; the rules walk them).
DUMPED_TREES = ("/etc", "/root", "/home", "/var/lib/cloud", "/var/lib/waagent", "/var/log", "/tmp", "/var/tmp")
# Package databases the audit reads file by file (the rpm database is a binary blob: not dumped).
DUMPED_PACKAGE_DBS = ("/var/lib/dpkg",)


class Image:
    """One build's disk, read offline; every fact is computed on first use."""

    def __init__(self, build: BuildFolder, scratch: Path) -> None:
        self.build = build
        self.scratch = scratch
        self.manifest: Manifest = build.manifest()
        self.family: FamilyTraits | None = FAMILIES.get(self.manifest.family)
        self.disk = Disk(build.disk())

    # -- recipe facts ---------------------------------------------------------------------------
    @property
    def family_name(self) -> str:
        return self.manifest.family.value

    @property
    def agent(self) -> str:
        return self.manifest.agent.value

    @property
    def specialized(self) -> bool:
        return self.manifest.os_state == OsState.SPECIALIZED

    @property
    def firmwares(self) -> list[str]:
        return list(self.manifest.firmwares)

    @property
    def grub_dir(self) -> str:
        return self.family.grub_dir if self.family else "/boot/grub"

    # -- partitions -----------------------------------------------------------------------------
    @property
    def table(self) -> PartitionTable:
        return self.disk.table

    @cached_property
    def root_part(self) -> PartitionEntry:
        """The ext4 root: a Linux partition whose superblock reads; the manifest's root UUID breaks ties."""
        candidates = [p for p in self.table.partitions if p.type_guid in LINUX_ROOT_GUIDS]
        readable = [p for p in candidates if self.fs_uuid(p) is not None]
        wanted = self.manifest.disk.root_uuid.lower()
        for part in readable:
            if self.fs_uuid(part) == wanted:
                return part
        if readable:
            return max(readable, key=lambda p: p.size)
        raise ImageReadError(f"no readable ext4 root partition in {self.disk.path.name} (found: {self.layout()}): "
                             "the audit and verify read ext4 root file systems only",
                             "give the image an ext4 root, or repair its partition table and root file system")

    def layout(self) -> str:
        """Each partition's number, GPT type and the file system blkid finds in it (for read errors)."""
        return "; ".join(f"{p.number} {PARTITION_TYPE_NAMES.get(p.type_guid, p.type_guid)} "
                         f"({self._fs_type(p) or 'no file system found'})"
                         for p in self.table.partitions) or "no partitions"

    def _fs_type(self, part: PartitionEntry) -> str | None:
        probe = proc.run(["blkid", "-p", "-o", "export", "-O", str(part.start_bytes), "-S", str(part.size_bytes),
                          self.disk.path], check=False)
        found = dict(line.split("=", 1) for line in probe.stdout.splitlines() if "=" in line)
        return found.get("TYPE")

    def fs_uuid(self, part: PartitionEntry) -> str | None:
        return ext4_uuid(self.disk.read(part.start_bytes + 1024, 1024))

    @cached_property
    def root_uuid(self) -> str:
        uuid = self.fs_uuid(self.root_part)
        assert uuid is not None  # root_part only picks readable partitions
        return uuid

    @cached_property
    def esp_part(self) -> PartitionEntry | None:
        """The ESP by type GUID, else a FAT partition (so a wrong type GUID is reported, not fatal)."""
        typed = self.table.of_type(ESP_GUID)
        if typed:
            return typed[0]
        fat = [p for p in self.table.partitions if fat_serial(self.disk.read(p.start_bytes, 512))]
        return fat[0] if fat else None

    @cached_property
    def esp_serial(self) -> str | None:
        return fat_serial(self.disk.read(self.esp_part.start_bytes, 512)) if self.esp_part else None

    def esp_file(self, path: str) -> bytes | None:
        if self.esp_part is None:
            return None
        target = self.scratch / "esp" / path.strip("/").replace("/", "_")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.read_bytes() if esp_copy(self.disk.path, self.esp_part.start_bytes, path, target) else None

    def esp_files(self) -> list[str]:
        """Every file on the ESP (for messages when the loader is not where firmware looks)."""
        return (esp_listing(self.disk.path, self.esp_part.start_bytes) or []) if self.esp_part else []

    @cached_property
    def bios_part(self) -> PartitionEntry | None:
        parts = self.table.of_type(BIOS_BOOT_GUID)
        return parts[0] if parts else None

    @cached_property
    def bios_core(self) -> bytes | None:
        """core.img as written into the BIOS boot partition (length from its blocklist)."""
        if self.bios_part is None:
            return None
        head = self.disk.read(self.bios_part.start_bytes, 512)
        size = min(grubimage.core_img_size(head), self.bios_part.size_bytes)
        return self.disk.read(self.bios_part.start_bytes, size)

    def early_config(self, firmware: str) -> grubimage.EarlyConfig | None:
        """The config embedded in the GRUB image the firmware starts."""
        if firmware == "uefi":
            loader = self.esp_file(EFI_LOADER)
            if loader is None:
                return None
            return grubimage.find_early_config(loader) or self._signed_chain_config()
        if self.bios_core is None:
            return None
        decompressor = self.root.read_bytes(f"{self.grub_dir}/i386-pc/lzma_decompress.img")
        body = grubimage.decompress_core(self.bios_core, len(decompressor) if decompressor else None)
        return grubimage.find_early_config(body) if body else None

    def _signed_chain_config(self) -> grubimage.EarlyConfig | None:
        """With shim as the loader, the distro's signed GRUB reads grub.cfg from its built-in prefix
        (EFI/<vendor>/) or else from its own folder (EFI/BOOT/): that stub plays the embedded config's part."""
        stubs = [f for f in self.esp_files() if f.count("/") == 3 and f.startswith("/EFI/") and f.endswith("/grub.cfg")]
        for path in sorted(stubs, key=lambda f: f.startswith("/EFI/BOOT/")):  # the vendor's folder first
            data = self.esp_file(path)
            parsed = grubimage.parse_early_config(data.decode("utf-8", errors="replace")) if data else None
            if parsed is not None and (parsed.root_uuid or parsed.configfile):
                return parsed
        return None

    def first_mib(self) -> bytes:
        return self.disk.read(0, MIB)

    # -- root file system -----------------------------------------------------------------------
    @cached_property
    def root(self) -> Ext4Reader:
        reader = Ext4Reader(self.disk.path, self.root_part.start_bytes, self.scratch)
        dbs = [self.family.package_db] if self.family and self.family.package_db in DUMPED_PACKAGE_DBS else []
        leases = list(self.family.dhcp_lease_dirs) if self.family else []
        reader.prefetch(trees=[*DUMPED_TREES, *dbs, *leases])
        return reader

    def text(self, path: str) -> str | None:
        return self.root.text(path)

    @cached_property
    def grub_cfg(self) -> str | None:
        return self.text(f"{self.grub_dir}/grub.cfg")

    @cached_property
    def boot_entry(self) -> grubimage.MenuEntry | None:
        return grubimage.default_entry(self.grub_cfg) if self.grub_cfg else None

    @cached_property
    def kernel_version(self) -> str:
        """The kernel GRUB boots by default (from grub.cfg), else the one the manifest names."""
        if self.boot_entry and self.boot_entry.linux:
            name = posixpath.basename(self.boot_entry.linux[0])
            if name.startswith("vmlinuz-"):
                return name.removeprefix("vmlinuz-")
        return self.manifest.kernel_version

    @cached_property
    def kernel_config(self) -> dict[str, str] | None:
        text = self.text(f"/boot/config-{self.kernel_version}")
        return parse_kernel_config(text) if text is not None else None

    @cached_property
    def initramfs_path(self) -> str:
        if self.boot_entry and self.boot_entry.initrd:
            return self.boot_entry.initrd[-1]
        pattern = self.family.initramfs_glob if self.family else "initrd.img-{v}"
        return "/boot/" + pattern.format(v=self.kernel_version)

    @cached_property
    def initramfs_files(self) -> list[str] | None:
        """Paths inside the initramfs, listed by the family's own tool; None when there is no initramfs."""
        target = self.scratch / "initramfs.img"
        if not self.root.dump_to(self.initramfs_path, target):
            return None
        tool = self.family.initramfs_tool if self.family else "lsinitramfs"
        result = proc.run([tool, str(target)], hint=f"{tool} cannot list {self.initramfs_path}: is it damaged?")
        return initramfs_paths(result.stdout)

    def module_files(self, subdir: str) -> list[str]:
        """Module file names under /lib/modules/<kernel>/<subdir> ([] when absent)."""
        return self.root.listdir(f"/lib/modules/{self.kernel_version}/{subdir}") or []

    @cached_property
    def passwd(self) -> list[PasswdEntry]:
        return parse_passwd(self.text("/etc/passwd") or "")

    @cached_property
    def homes(self) -> list[str]:
        """/root, every folder in /home, and the home of every user with a login shell."""
        homes = ["/root", *(f"/home/{n}" for n in self.root.listdir("/home") or [])]
        homes += [u.home for u in self.passwd if login_shell(u.shell) and u.home not in ("", "/")]
        return list(dict.fromkeys(posixpath.normpath(h) for h in homes))

    @cached_property
    def dpkg(self) -> list[DpkgPackage] | None:
        text = self.text("/var/lib/dpkg/status") if self.family and self.family.package_db == "/var/lib/dpkg" else None
        return parse_dpkg_status(text) if text is not None else None

    @cached_property
    def packages(self) -> dict[str, tuple[str, str]]:
        """Installed packages -> (version, arch): from the image's dpkg database, else the manifest."""
        if self.dpkg is not None:
            return {p.name: (p.version, p.arch) for p in self.dpkg if p.installed}
        return {p.name: (p.version, p.arch) for p in self.manifest.packages}

    @cached_property
    def arch(self) -> str:
        """The image's architecture as the kernel names it (x86_64, aarch64)."""
        archs = [arch for name, (_, arch) in self.packages.items() if name.startswith(("linux-image", "kernel"))]
        raw = archs[0] if archs else "amd64"
        return {"amd64": "x86_64", "arm64": "aarch64"}.get(raw, raw)
