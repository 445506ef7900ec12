"""Azure configuration of the root tree: declared settings, fstab, host identity, agent units."""

from __future__ import annotations

import logging
from pathlib import Path

from harness import proc
from harness.builder import settings as settings_mod
from harness.builder.context import BuildContext
from harness.builder.guestroot import GuestRoot

log = logging.getLogger(__name__)

GENERIC_HOSTNAME = "localhost"

HOSTS = """127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
"""


def apply_settings(ctx: BuildContext) -> None:
    """Write every effective setting into the tree; the manifest records them."""
    for setting in ctx.settings:
        settings_mod.apply(GuestRoot(ctx.rootfs), setting)
        log.debug("setting %s (%s)", setting.describe(), setting.reason)


def write_fstab(ctx: BuildContext) -> None:
    """Root and ESP by UUID (never /dev/sdX, image-checks A10); no swap on the OS disk (A5).

    x-systemd.growfs grows the root file system to its partition at boot, so an image whose
    partition is grown in the initramfs (cloud-initramfs-growroot, the waagent variants) fills a
    resized Azure OS disk too; with cloud-init it is a no-op next to cloud-init's own resizefs.
    """
    fstab = (
        "# <file system> <mount point> <type> <options> <dump> <pass>\n"
        f"UUID={ctx.root_uuid} / ext4 defaults,discard,errors=remount-ro,x-systemd.growfs 0 1\n"
        f"UUID={ctx.esp_serial} /boot/efi vfat defaults,umask=0077,nofail 0 2\n"
    )
    root = GuestRoot(ctx.rootfs)
    root.write_text("/etc/fstab", fstab)
    root.mkdir("/boot/efi")


def write_identity(ctx: BuildContext) -> None:
    """A generic host name: the provisioning agent sets the real one on first boot."""
    root = GuestRoot(ctx.rootfs)
    root.write_text("/etc/hostname", GENERIC_HOSTNAME + "\n")
    root.write_text("/etc/hosts", HOSTS)


def _unit_exists(root: Path, unit: str) -> bool:
    tree = GuestRoot(root)
    return any(tree.exists(f"{d}/{unit}") for d in ("/etc/systemd/system", "/lib/systemd/system",
                                                    "/usr/lib/systemd/system"))


def set_units(ctx: BuildContext) -> None:
    """Enable/disable the agent variant's units offline (systemctl --root, no boot needed)."""
    variant = ctx.recipe.agent_variants.get(ctx.agent)
    if not variant:
        return
    for unit in variant.enable_units:
        if _unit_exists(ctx.rootfs, unit):
            proc.run(["systemctl", f"--root={ctx.rootfs}", "enable", unit])
    for unit in variant.disable_units:
        if _unit_exists(ctx.rootfs, unit):
            proc.run(["systemctl", f"--root={ctx.rootfs}", "disable", unit])


def configure(ctx: BuildContext) -> None:
    write_identity(ctx)
    write_fstab(ctx)
    apply_settings(ctx)
    set_units(ctx)
