"""What a boot needs to know from the disk before QEMU starts: the accelerator, and the image's own
host keys (there must be none). Read offline with the audit's readers; a disk whose root cannot be read
is one clear error naming the layout found."""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness.buildfolder import BuildFolder
from harness.checks.diskread import Ext4Reader
from harness.checks.image import Image
from harness.enums import Accel
from harness.vm import accel as accel_mod


def _root(build: BuildFolder, scratch: Path) -> Ext4Reader:
    image = Image(build, scratch)
    return Ext4Reader(image.disk.path, image.root_part.start_bytes, scratch)


def image_host_keys(build: BuildFolder) -> list[str]:
    """SSH host key files in the image as built (there must be none: they appear at first boot)."""
    with tempfile.TemporaryDirectory(prefix="harness-facts-") as tmp:
        names = _root(build, Path(tmp)).listdir("/etc/ssh") or []
    return sorted(n for n in names if n.startswith("ssh_host_"))


def choose_accel(build: BuildFolder, requested: str) -> accel_mod.AccelChoice:
    """KVM when a short probe boot of the image's own kernel works, else TCG (cached per host)."""
    with tempfile.TemporaryDirectory(prefix="harness-accel-") as tmp:
        kernel = None
        version = build.manifest().kernel_version
        if requested == Accel.AUTO and version:
            target = Path(tmp) / "vmlinuz"
            if _root(build, Path(tmp)).dump_to(f"/boot/vmlinuz-{version}", target) and target.stat().st_size:
                kernel = target
        return accel_mod.choose(kernel, requested)
