"""GRUB for both firmwares without a block device: images from the target's own GRUB, MBR by hand.

What `grub-bios-setup` does, done on a plain file (reference/rootless-disk.md): boot.img's code in
sector 0 pointing at core.img, core.img in the BIOS boot partition with its blocklist patched.
UEFI boots EFI/BOOT/BOOTX64.EFI, the removable-media path that needs no NVRAM entry: the distro's signed shim ->
GRUB chain when the image has it (efichain.py), else the image grub-mkimage makes here.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
from pathlib import Path

from harness import proc
from harness.builder import efichain
from harness.builder.context import BuildContext
from harness.builder.families import FamilyTraits
from harness.builder.guestroot import GuestRoot
from harness.builder.layout import SECTOR, Layout
from harness.errors import BuildError
from harness.shellsyntax import grub_word

BIOS_MODULES = ("biosdisk", "part_gpt", "part_msdos", "ext2", "fat", "search", "search_fs_uuid",
                "configfile", "normal", "linux", "serial", "terminal", "gzio", "echo", "test")
EFI_MODULES = ("part_gpt", "part_msdos", "ext2", "fat", "search", "search_fs_uuid", "configfile",
               "normal", "linux", "serial", "terminal", "gzio", "echo", "test", "all_video", "efi_gop")

# Offsets inside boot.img / diskboot.img (grub-core/boot/i386/pc/boot.S, diskboot.S).
MBR_CODE_BYTES = 440  # boot code; 440..511 hold the disk signature and the protective MBR table
KERNEL_SECTOR_OFFSET = 0x5C
DRIVE_CHECK_OFFSET = 0x66
BLOCKLIST_OFFSET = SECTOR - 12
CORE_SEGMENT = 0x820


def kernel_version(root: Path, family: FamilyTraits) -> str:
    """Newest installed kernel under /boot (e.g. '6.1.0-28-cloud-amd64')."""
    versions = [p.name.removeprefix("vmlinuz-") for p in (root / "boot").glob(family.kernel_glob)]
    if not versions:
        raise BuildError("no kernel under /boot in the root file system",
                         "check kernel.package in the recipe")

    def key(version: str) -> list[object]:
        return [int(x) if x.isdigit() else x for x in re.split(r"[.-]", version)]

    return sorted(versions, key=key)[-1]


def early_config(root_uuid: str, grub_dir: str) -> str:
    return (f"search --no-floppy --fs-uuid --set=root {root_uuid}\n"
            f"set prefix=($root){grub_dir}\n"
            f"configfile ($root){grub_dir}/grub.cfg\n")


def _header(ctx: BuildContext, family: FamilyTraits, defaults: dict[str, str]) -> list[str]:
    terminal = defaults.get("GRUB_TERMINAL", "console")
    lines = [
        "# Written by harness at build time; update-grub in the guest regenerates it from "
        f"{family.grub_default}.",
        "set default=0",
        f"set timeout={defaults.get('GRUB_TIMEOUT', '1')}",
    ]
    terminals = [f"terminal_input {terminal}", f"terminal_output {terminal}"]
    if "serial" in terminal.split():
        # A signed GRUB may lack the serial module (Ubuntu's); under Secure Boot it cannot load it, and the UEFI
        # console is mirrored to the serial port anyway: only switch terminals when the port is set up.
        serial = defaults.get("GRUB_SERIAL_COMMAND", "serial --speed=115200 --unit=0")
        terminals = [f"if {serial}; then", *(f"    {line}" for line in terminals), "fi"]
    return [*lines, *terminals, f"search --no-floppy --fs-uuid --set=root {ctx.root_uuid}"]


def _menuentry(ctx: BuildContext, family: FamilyTraits, version: str, defaults: dict[str, str]) -> list[str]:
    initrd = family.initramfs_glob.format(v=version)
    # grub-mkconfig puts both variables on the normal entry's command line; so do we.
    words = [*defaults.get("GRUB_CMDLINE_LINUX", "").split(), *defaults.get("GRUB_CMDLINE_LINUX_DEFAULT", "").split()]
    cmdline = " ".join(grub_word(w) for w in words)  # each parameter one literal GRUB word ($, quotes, ;)
    title = grub_word(ctx.recipe.description or ctx.recipe.name, quote=True)
    return [
        f"menuentry {title} --id harness-default {{",
        f"    linux /boot/vmlinuz-{version} root=UUID={ctx.root_uuid} ro {cmdline}".rstrip(),
        f"    initrd /boot/{initrd}",
        "}",
    ]


def _blscfg(ctx: BuildContext, family: FamilyTraits, version: str, defaults: dict[str, str]) -> list[str]:
    """Boot Loader Spec entries written by kernel-install (RHEL-family GRUB's blscfg command reads them)."""
    return ["set blsdir=/boot/loader/entries", "insmod blscfg", "blscfg"]


ENTRY_STYLES = {"menuentry": _menuentry, "blscfg": _blscfg}
BLS_DIR = "/boot/loader/entries"


def require_boot_entry(root: GuestRoot, version: str) -> None:
    """A blscfg menu lists what kernel-install wrote: without an entry for the kernel it would be empty."""
    entries = [name for name in root.glob(BLS_DIR, "*.conf")
               if version in (root.read_text(name) or "")]
    if not entries:
        raise BuildError(f"no Boot Loader Spec entry for kernel {version} in {BLS_DIR}: the GRUB menu would be empty",
                         "the kernel package's scriptlets did not run kernel-install; check the transaction log "
                         "and that the recipe installs the kernel package (not only its core)")


def grub_cfg(ctx: BuildContext, family: FamilyTraits, version: str, defaults: dict[str, str]) -> str:
    """The boot menu both firmwares read; the guest's update-grub regenerates it from the same defaults."""
    entries = ENTRY_STYLES[family.grub_cfg_style](ctx, family, version, defaults)
    return "\n".join([*_header(ctx, family, defaults), *entries]) + "\n"


def _mkimage(ctx: BuildContext, family: FamilyTraits, platform: str, modules: tuple[str, ...], out: Path) -> None:
    root = GuestRoot(ctx.rootfs)
    cfg, img = "/tmp/harness-early.cfg", f"/tmp/harness-{platform}.img"
    root.write_text(cfg, early_config(ctx.root_uuid, family.grub_dir))
    proc.run(["chroot", ctx.rootfs, family.grub_mkimage, "-O", platform, "-d", f"{family.grub_lib}/{platform}",
              "-o", img, "-c", cfg, "-p", family.grub_dir, *modules],
             hint=f"the target's GRUB for {platform} is incomplete; add its package to the recipe")
    shutil.move(root.path(img), out)
    root.remove(cfg)


def install_files(ctx: BuildContext, family: FamilyTraits, defaults: dict[str, str]) -> str:
    """Build both GRUB images into ctx.boot_dir and lay out /boot/grub like grub-install would."""
    root = GuestRoot(ctx.rootfs)
    version = kernel_version(ctx.rootfs, family)
    ctx.boot_dir.mkdir(parents=True, exist_ok=True)
    _mkimage(ctx, family, "i386-pc", BIOS_MODULES, ctx.boot_dir / "core.img")
    _mkimage(ctx, family, "x86_64-efi", EFI_MODULES, ctx.boot_dir / "BOOTX64.EFI")
    shutil.copy(root.path(f"{family.grub_lib}/i386-pc/boot.img"), ctx.boot_dir / "boot.img")
    for platform in ("i386-pc", "x86_64-efi"):
        root.remove(f"{family.grub_dir}/{platform}")
        shutil.copytree(root.path(f"{family.grub_lib}/{platform}"), root.path(f"{family.grub_dir}/{platform}"),
                        ignore=shutil.ignore_patterns("*.image", "*.module", "*.exec", "gdb_*", "gmodule.pl"))
    if family.grub_cfg_style == "blscfg":
        require_boot_entry(root, version)
    root.write_text(f"{family.grub_dir}/grub.cfg", grub_cfg(ctx, family, version, defaults))
    stub = ctx.boot_dir / efichain.STUB
    stub.write_text(early_config(ctx.root_uuid, family.grub_dir), encoding="utf-8")
    ctx.esp = efichain.plan_esp(root, family.signed_chain, ctx.boot_dir / "BOOTX64.EFI", stub)
    ctx.efi_binaries = efichain.describe(ctx.esp, root, version)
    return version


def install_bios(disk: Path, layout: Layout, boot_img: Path, core_img: Path) -> None:
    """Write GRUB's MBR code and core.img into the disk file, as grub-bios-setup does."""
    bios = layout.by_name("bios")
    core = bytearray(core_img.read_bytes())
    if len(core) % SECTOR:
        core += bytes(SECTOR - len(core) % SECTOR)
    core_sectors = len(core) // SECTOR
    if len(core) > bios.size_bytes:
        raise BuildError(f"GRUB core.img ({len(core)} bytes) does not fit the BIOS boot partition",
                         "raise BIOS_BOOT_MIB in build/layout.py")
    core_lba = bios.start_sector
    # diskboot's blocklist: the rest of core.img follows its first sector.
    struct.pack_into("<QHH", core, BLOCKLIST_OFFSET, core_lba + 1, core_sectors - 1, CORE_SEGMENT)
    boot = bytearray(boot_img.read_bytes()[:MBR_CODE_BYTES])
    struct.pack_into("<Q", boot, KERNEL_SECTOR_OFFSET, core_lba)
    boot[DRIVE_CHECK_OFFSET:DRIVE_CHECK_OFFSET + 2] = b"\x90\x90"
    fd = os.open(disk, os.O_WRONLY)
    try:
        os.pwrite(fd, bytes(boot), 0)
        os.pwrite(fd, bytes(core), bios.start_bytes)
    finally:
        os.close(fd)
