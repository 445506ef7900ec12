"""Fixed VHD conversion: our in-place footer append vs `qemu-img convert -O vpc -o subformat=fixed,force_size`.

A 30 GiB sparse raw holding ~2 GiB of random data in a few hundred extents over the first 6 GiB (the shape of
a real root file system). Both conversions start from the same bytes, in the same run; figures are wall-clock
seconds and extra allocated bytes (st_blocks * 512 after minus before). The raw was just written, so qemu reads
it from the page cache: that favours qemu, which has to read the data; the in-place conversion reads none.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from harness import proc, vhd
from harness.digest import allocated_bytes, sparse_copy

GIB = 1024 * 1024 * 1024
MIB = 1024 * 1024
DISK_BYTES = 30 * GIB
DATA_SPAN_BYTES = 6 * GIB  # data scattered over the first 6 GiB
EXTENTS = 300
EXTENT_MIB = (1, 13)  # extent sizes drawn from this range: ~7 MiB average, ~2 GiB in all
SEED = 20261126
REPO = Path(__file__).resolve().parent.parent


def scratch_base() -> Path:
    """A folder on the file system of the repository (the system temp dir only if it is that file system)."""
    tmp = Path(tempfile.gettempdir())
    return tmp if os.stat(tmp).st_dev == os.stat(REPO).st_dev else REPO


def make_disk(path: Path) -> tuple[int, int]:
    """Write the sparse test disk; returns (data bytes, extents)."""
    rng = random.Random(SEED)  # noqa: S311 - reproducible test data, not a secret
    source = rng.randbytes(16 * MIB)
    slots = sorted(rng.sample(range(DATA_SPAN_BYTES // (16 * MIB)), EXTENTS))
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, DISK_BYTES)
        for slot in slots:
            length = rng.randint(*EXTENT_MIB) * MIB
            start = rng.randrange(0, 16 * MIB - length + 1, 4096)
            os.pwrite(fd, source[start:start + length], slot * 16 * MIB + start)
            written += length
        os.fsync(fd)
    finally:
        os.close(fd)
    return written, len(slots)


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def time_ours(raw: Path) -> tuple[float, int]:
    before = allocated_bytes(raw)
    start = time.monotonic()
    vhd.to_fixed_vhd(raw)
    return time.monotonic() - start, allocated_bytes(raw) - before


def time_qemu(raw: Path, out: Path) -> tuple[float, int]:
    start = time.monotonic()
    proc.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size",
                str(raw), str(out)], timeout_s=600)
    return time.monotonic() - start, allocated_bytes(out)  # a new file: everything it allocates is extra


def run_bench(folder: Path) -> dict[str, object]:
    raw, ours, theirs = folder / "disk.raw", folder / "ours.vhd", folder / "qemu.vhd"
    start = time.monotonic()
    data_bytes, extents = make_disk(raw)
    sparse_copy(raw, ours)
    fsync(ours)  # else the timed step would pay for writing back the copy's dirty pages
    setup_s = time.monotonic() - start
    ours_s, ours_extra = time_ours(ours)
    qemu_s, qemu_extra = time_qemu(raw, theirs)
    problems = {name: [p.rule for p in vhd.validate(path)] for name, path in (("ours", ours), ("qemu", theirs))}
    block = os.statvfs(folder).f_bsize
    return {
        "scratch_folder": str(folder.parent),
        "disk_gib": DISK_BYTES // GIB,
        "data_gib": round(data_bytes / GIB, 2),
        "data_extents": extents,
        "setup_s": round(setup_s, 1),
        "ours_in_place_s": round(ours_s, 4),
        "ours_extra_bytes": ours_extra,
        "ours_extra_beyond_footer_block_bytes": max(0, ours_extra - block),
        "qemu_convert_s": round(qemu_s, 2),
        "qemu_extra_bytes": qemu_extra,
        "ours_not_slower": ours_s <= qemu_s,
        "validate_problems": problems,
        "qemu_reads_ours_as_bytes": vhd.qemu_size(ours),
    }


def run() -> dict[str, object]:
    """Build the scratch disk, time both conversions, always remove the scratch folder."""
    proc.require("qemu-img")
    folder = Path(tempfile.mkdtemp(prefix=".vhd-bench-", dir=scratch_base()))
    try:
        return run_bench(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
