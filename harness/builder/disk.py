"""Assemble the hybrid disk in a plain sparse file: GPT by sfdisk, file systems from directories."""

from __future__ import annotations

import os
import posixpath
import shutil
from pathlib import Path

from harness import proc
from harness.builder.context import BuildContext
from harness.builder.layout import Layout, parse_sfdisk_json
from harness.digest import CHUNK, data_extents
from harness.errors import BuildError

# Features GRUB 2.06 and older e2fsck releases cannot read; mke2fs 1.47 enables some by default.
EXT4_DISABLED_FEATURES = ("orphan_file", "metadata_csum_seed")


def _mke2fs_knows(feature: str) -> bool:
    conf = Path("/etc/mke2fs.conf")
    text = conf.read_text(encoding="utf-8") if conf.exists() else ""
    if feature in text:
        return True
    version = proc.run(["mke2fs", "-V"], check=False).stderr
    # "mke2fs 1.47.0 (5-Feb-2023)"
    parts = version.split()
    return len(parts) > 1 and tuple(int(x) for x in parts[1].split(".")[:2]) >= (1, 47)


def create_sparse(path: Path, size_bytes: int) -> None:
    with path.open("wb") as handle:
        handle.truncate(size_bytes)


def write_partition_table(ctx: BuildContext) -> None:
    script = ctx.layout.sfdisk_script(ctx.disk_guid, ctx.part_guids)
    proc.run(["sfdisk", "--no-reread", "--no-tell-kernel", "--wipe=never", str(ctx.disk_tmp)],
            input_bytes=script.encode())
    check_partition_table(ctx.disk_tmp, ctx.layout)


def read_partition_table(disk: Path) -> list[dict[str, object]]:
    return parse_sfdisk_json(proc.run(["sfdisk", "-J", str(disk)]).stdout)


def check_partition_table(disk: Path, layout: Layout) -> None:
    """Read the table back and compare with the plan: sfdisk must have written exactly it."""
    found = read_partition_table(disk)
    expected = [(p.start_sector, p.size_sectors, p.type_guid.upper()) for p in layout.partitions]
    actual = [(int(str(p["start"])), int(str(p["size"])), str(p["type"]).upper()) for p in found]
    if actual != expected:
        raise BuildError(f"partition table read back as {actual}, planned {expected}",
                         "this is a bug in the layout; report it with the sfdisk version")


def make_root_fs(ctx: BuildContext) -> None:
    """ext4 filled from the root tree, written straight into the disk at the root partition."""
    root = ctx.layout.by_name("root")
    disabled = [f"^{f}" for f in EXT4_DISABLED_FEATURES if _mke2fs_knows(f)]
    argv = ["mkfs.ext4", "-q", "-F", "-d", str(ctx.rootfs), "-U", ctx.root_uuid, "-L", "root",
            "-E", f"offset={root.start_bytes},lazy_itable_init=1,lazy_journal_init=1"]
    if disabled:
        argv += ["-O", ",".join(disabled)]
    argv += [str(ctx.disk_tmp), f"{root.size_bytes // 1024}k"]
    proc.run(argv, hint="the root tree may not fit: raise --disk-size-mib")


def make_esp(ctx: BuildContext) -> None:
    """FAT ESP with the boot chain's files (EFI/BOOT/BOOTX64.EFI ...), built as its own file and copied in
    keeping holes."""
    assert ctx.esp is not None
    esp = ctx.layout.by_name("esp")
    image = ctx.work_dir / "esp.img"
    create_sparse(image, esp.size_bytes)
    serial = ctx.esp_serial.replace("-", "")
    proc.run(["mkfs.vfat", "-F", "32", "-n", "EFI", "-i", serial, str(image)])
    folders = sorted({posixpath.dirname(p) for p in ctx.esp.files})
    proc.run(["mmd", "-i", str(image), "::/EFI", *(f"::{f}" for f in folders if f != "/EFI")])
    for esp_path, host in sorted(ctx.esp.files.items()):
        proc.run(["mcopy", "-i", str(image), str(host), f"::{esp_path}"])
    _copy_into(image, ctx.disk_tmp, esp.start_bytes)
    image.unlink()


def _copy_into(src: Path, disk: Path, offset: int) -> None:
    """Copy src's data extents into disk at offset; holes and zero blocks are not written."""
    size = src.stat().st_size
    with src.open("rb", buffering=0) as fin:
        fd = os.open(disk, os.O_WRONLY)
        try:
            for start, end in data_extents(fin.fileno(), size):
                position = start
                while position < end:
                    chunk = os.pread(fin.fileno(), min(CHUNK, end - position), position)
                    if chunk.count(0) != len(chunk):
                        os.pwrite(fd, chunk, offset + position)
                    position += len(chunk)
        finally:
            os.close(fd)


def boot_files_exist(ctx: BuildContext) -> None:
    missing = [name for name in ("core.img", "boot.img") if not (ctx.boot_dir / name).exists()]
    if ctx.esp is None:
        missing.append("the ESP's boot chain")
    else:
        missing += [p for p, host in ctx.esp.files.items() if not host.is_file()]
    if missing:
        raise BuildError(f"bootloader files were not produced: {', '.join(missing)}", "see the build log")


def partition_summary(disk: Path) -> list[dict[str, object]]:
    """The partition table as recorded in the manifest."""
    return [{k: p[k] for k in ("node", "start", "size", "type", "uuid", "name") if k in p}
            for p in read_partition_table(disk)]


def remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
