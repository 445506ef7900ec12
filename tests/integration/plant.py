"""Plant one defect into a COPY of a built disk, offline: debugfs -w on the root file system, mtools on the
ESP, plain byte writes for the partition table and the first MiB. Never use these on a shared build.

Every helper takes the build folder; writes go through harness.proc (no subprocess here). Each stage refuses a
disk that changed after its build, so a test that runs check or verify (not only `audit`) on a planted copy calls
`rehash(build)` after planting: the copy then reads as if the broken image had been built that way.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import posixpath
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness import proc
from harness.buildfolder import BuildFolder
from harness.checks.diskread import Disk, mtools_env, parse_debugfs_stat
from harness.checks.image import ESP_GUID, LINUX_ROOT_GUIDS
from harness.digest import content_digest
from harness.manifest import DiskStamp

CPIO_MAGIC = b"070701"
CPIO_HEADER = 110
CPIO_TRAILER = "TRAILER!!!"


# ---------------------------------------------------------------------------------------------
# Where things are.

def _partition_offset(build: BuildFolder, types: tuple[str, ...]) -> int:
    for part in Disk(build.disk()).table.partitions:
        if part.type_guid in types:
            return part.start_bytes
    raise AssertionError(f"no partition of type {types} in {build.disk()}")


def root_offset(build: BuildFolder) -> int:
    return _partition_offset(build, LINUX_ROOT_GUIDS)


def esp_offset(build: BuildFolder) -> int:
    return _partition_offset(build, (ESP_GUID,))


def _spec(build: BuildFolder) -> str:
    return f"{build.disk()}?offset={root_offset(build)}"


# ---------------------------------------------------------------------------------------------
# Root file system (ext4) through debugfs -w.

def debugfs_write(build: BuildFolder, commands: list[str]) -> str:
    """Run debugfs commands read-write on the root file system; returns stdout."""
    with tempfile.TemporaryDirectory(prefix="plant-") as tmp:
        script = Path(tmp) / "cmds"
        script.write_text("\n".join(commands) + "\n", encoding="utf-8")
        return proc.run(["debugfs", "-w", "-f", str(script), _spec(build)]).stdout


def read_file(build: BuildFolder, guest_path: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="plant-") as tmp:
        target = Path(tmp) / "file"
        proc.run(["debugfs", "-c", "-R", f"dump {guest_path} {target}", _spec(build)])
        if not target.exists():
            raise AssertionError(f"{guest_path} is not in the image")
        return target.read_bytes()


def mkdirs(build: BuildFolder, guest_dir: str) -> None:
    """mkdir -p (debugfs reports existing folders and carries on)."""
    parts = [p for p in guest_dir.split("/") if p]
    debugfs_write(build, ["mkdir /" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)])


def file_mode(build: BuildFolder, guest_path: str) -> int | None:
    """Permission bits of a file in the image, None when it does not exist."""
    out = proc.run(["debugfs", "-c", "-R", f"stat {guest_path}", _spec(build)]).stdout
    info = parse_debugfs_stat(out)
    return info.mode if info else None


def put_file(build: BuildFolder, guest_path: str, data: bytes | str, mode: int | None = None) -> None:
    """Create or replace a regular file owned by root; mode None keeps the current mode (0644 for a new file)."""
    payload = data.encode() if isinstance(data, str) else data
    if mode is None:
        mode = file_mode(build, guest_path) or 0o644
    mkdirs(build, posixpath.dirname(guest_path))
    with tempfile.TemporaryDirectory(prefix="plant-") as tmp:
        local = Path(tmp) / "payload"
        local.write_bytes(payload)
        debugfs_write(build, [f"rm {guest_path}", f"write {local} {guest_path}",
                              f"set_inode_field {guest_path} mode 0{0o100000 | mode:o}",
                              f"set_inode_field {guest_path} uid 0", f"set_inode_field {guest_path} gid 0"])


def remove(build: BuildFolder, guest_path: str) -> None:
    debugfs_write(build, [f"rm {guest_path}"])


def chmod(build: BuildFolder, guest_path: str, mode: int) -> None:
    debugfs_write(build, [f"set_inode_field {guest_path} mode 0{0o100000 | mode:o}"])


def edit_text(build: BuildFolder, guest_path: str, change: Callable[[str], str]) -> None:
    """Rewrite a text file through a function; fails if the function changed nothing."""
    before = read_file(build, guest_path).decode()
    after = change(before)
    assert after != before, f"planting into {guest_path} changed nothing"
    put_file(build, guest_path, after)


def replace_in(build: BuildFolder, guest_path: str, old: str, new: str) -> None:
    edit_text(build, guest_path, lambda text: text.replace(old, new))


# ---------------------------------------------------------------------------------------------
# Raw bytes, partition table, ESP.

def write_bytes(build: BuildFolder, offset: int, data: bytes) -> None:
    fd = os.open(build.disk(), os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def set_partition_type(build: BuildFolder, number: int, type_guid: str) -> None:
    proc.run(["sfdisk", "--no-reread", "--no-tell-kernel", "--part-type", str(build.disk()), str(number), type_guid])


def esp_patch(build: BuildFolder, guest_path: str, old: bytes, new: bytes) -> None:
    """Replace bytes inside a file on the ESP (e.g. the root UUID in BOOTX64.EFI's early config)."""
    image = f"{build.disk()}@@{esp_offset(build)}"
    with tempfile.TemporaryDirectory(prefix="plant-") as tmp:
        local = Path(tmp) / posixpath.basename(guest_path)
        proc.run(["mcopy", "-n", "-i", image, f"::{guest_path}", str(local)], env=mtools_env())
        data = local.read_bytes()
        assert old in data, f"{old!r} not found in {guest_path}"
        local.write_bytes(data.replace(old, new))
        proc.run(["mcopy", "-o", "-i", image, str(local), f"::{guest_path}"], env=mtools_env())


def esp_strip_signatures(build: BuildFolder, guest_path: str) -> int:
    """Remove every Authenticode signature of a binary on the ESP (sbattach removes one per call; Debian's shim
    has two); returns how many were removed."""
    image = f"{build.disk()}@@{esp_offset(build)}"
    with tempfile.TemporaryDirectory(prefix="plant-") as tmp:
        local = Path(tmp) / posixpath.basename(guest_path)
        proc.run(["mcopy", "-n", "-i", image, f"::{guest_path}", str(local)], env=mtools_env())
        removed = 0
        while proc.run(["sbattach", "--remove", str(local)], check=False).returncode == 0:
            removed += 1
        assert removed, f"{guest_path} carried no signature"
        proc.run(["mcopy", "-o", "-i", image, str(local), f"::{guest_path}"], env=mtools_env())
    return removed


def strip_secure_boot_chain(build: BuildFolder) -> None:
    """shim and GRUB on the ESP without their signatures (the kernel keeps its own)."""
    for path in ("/EFI/BOOT/BOOTX64.EFI", "/EFI/BOOT/grubx64.efi"):
        esp_strip_signatures(build, path)


def esp_remove(build: BuildFolder, guest_path: str) -> None:
    proc.run(["mdel", "-i", f"{build.disk()}@@{esp_offset(build)}", f"::{guest_path}"], env=mtools_env())


# ---------------------------------------------------------------------------------------------
# initramfs: drop modules from a newc cpio archive (gzip-compressed, optionally after early cpio parts).

def _cpio_entries(data: bytes, start: int) -> tuple[list[tuple[str, bytes]], int]:
    """(name, raw entry bytes) up to and including the trailer, and the offset after it (4-byte aligned)."""
    entries = []
    pos = start
    while True:
        header = data[pos:pos + CPIO_HEADER]
        if header[:6] != CPIO_MAGIC:
            raise AssertionError(f"not a newc cpio archive at offset {pos}")
        filesize = int(header[54:62], 16)
        namesize = int(header[94:102], 16)
        name = data[pos + CPIO_HEADER:pos + CPIO_HEADER + namesize - 1].decode()
        data_start = _align4(pos + CPIO_HEADER + namesize)
        end = _align4(data_start + filesize)
        entries.append((name, data[pos:end]))
        pos = end
        if name == CPIO_TRAILER:
            return entries, pos


def _align4(value: int) -> int:
    return (value + 3) & ~3


def filter_initramfs(data: bytes, drop: Callable[[str], bool]) -> bytes:
    """The same initramfs without the entries drop() selects; early uncompressed parts are kept as they are."""
    prefix = b""
    pos = 0
    while data[pos:pos + 6] == CPIO_MAGIC:
        _, end = _cpio_entries(data, pos)
        while end < len(data) and data[end] == 0:
            end += 1
        prefix, pos = data[:end], end
    main = gzip.decompress(data[pos:])
    entries, _ = _cpio_entries(main, 0)
    kept = b"".join(raw for name, raw in entries if not drop(name))
    return prefix + gzip.compress(kept, compresslevel=1)


def initramfs_without(build: BuildFolder, initramfs: str, modules: tuple[str, ...]) -> None:
    """Rewrite the image's initramfs without the given kernel modules (any compression suffix)."""
    data = read_file(build, initramfs)

    def drop(name: str) -> bool:
        base = posixpath.basename(name)
        return any(base == m + ".ko" or base.startswith(m + ".ko.") for m in modules)

    put_file(build, initramfs, filter_initramfs(data, drop))


# ---------------------------------------------------------------------------------------------
# After planting: record the planted disk's content as the build's, the way a rebuild would.

def rehash(build: BuildFolder) -> None:
    """Re-compute the content digest of the (planted) disk and record it, with the file's new stamp, in the copy's
    manifest; otherwise check, verify, convert and publish refuse the changed disk (IntegrityError)."""
    manifest = build.manifest()
    disk = build.disk()
    digest = content_digest(disk, manifest.disk.size_bytes)
    stamp = DiskStamp.of(disk)
    with build.locked():
        build.write_manifest(manifest.replace(content_digest=digest,
                                              disk=dataclasses.replace(manifest.disk, stamp=stamp)))
