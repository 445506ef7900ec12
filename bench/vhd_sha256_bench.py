"""sha256 of a whole sparse VHD (harness.sparsehash.file_sha256, what convert records as manifest.vhd.sha256).

A 30 GiB sparse file holding ~1 GiB of random data in ~150 extents over the first 6 GiB plus a 512-byte footer
(the shape of a converted build). Figures: seconds and GB/s (10^9 bytes of logical file size per second) for
file_sha256, against hashlib.sha256 over 256 MiB of zeros in 4 MiB updates (the machine's own sha256 speed, the
ceiling for a file that is nearly all holes). The data was just written, so it is read from the page cache. A
spot check compares file_sha256 with a plain read of a 64 MiB sparse file.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from bench.vhd_bench import scratch_base
from harness.sparsehash import file_sha256

GIB = 1024**3
MIB = 1024**2
DISK_BYTES = 30 * GIB + 512
DATA_SPAN_BYTES = 6 * GIB
EXTENTS = 150
EXTENT_MIB = (1, 12)  # ~6.5 MiB average: ~1 GiB in all
SEED = 20261212


def make_disk(path: Path) -> int:
    """Write the sparse test file; returns its data bytes."""
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
        os.pwrite(fd, b"conectix" + bytes(504), DISK_BYTES - 512)
    finally:
        os.close(fd)
    return written


def hashlib_zero_rate() -> float:
    """GB/s of hashlib.sha256 over zeros in 4 MiB updates: this machine's ceiling."""
    zeros = bytes(4 * MIB)
    digest = hashlib.sha256()
    start = time.perf_counter()
    for _ in range(64):
        digest.update(zeros)
    return 256 * MIB / (time.perf_counter() - start) / 1e9


def spot_check(folder: Path) -> bool:
    """file_sha256 equals hashlib over every byte of a small sparse file."""
    path = folder / "small.vhd"
    with path.open("wb") as handle:
        handle.truncate(64 * MIB + 512)
        handle.seek(3 * MIB + 7)
        handle.write(os.urandom(5 * MIB))
    return file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def run() -> dict[str, object]:
    """Make the scratch disk, time file_sha256 on it, always remove the scratch folder."""
    folder = Path(tempfile.mkdtemp(prefix=".sha256-bench-", dir=scratch_base()))
    try:
        data_bytes = make_disk(folder / "disk.vhd")
        ceiling = hashlib_zero_rate()
        start = time.perf_counter()
        file_sha256(folder / "disk.vhd")
        seconds = time.perf_counter() - start
        return {
            "scratch_folder": str(folder.parent),
            "file_gib": round(DISK_BYTES / GIB, 2),
            "data_gib": round(data_bytes / GIB, 2),
            "file_sha256_s": round(seconds, 2),
            "file_sha256_gb_per_s": round(DISK_BYTES / seconds / 1e9, 2),
            "hashlib_zeros_gb_per_s": round(ceiling, 2),
            "target_gb_per_s": 1.0,
            "meets_target": DISK_BYTES / seconds / 1e9 >= 1.0,
            "matches_plain_read": spot_check(folder),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
