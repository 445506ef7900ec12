"""sha256 of a whole sparse VHD (harness.sparsehash.file_sha256, what convert records as manifest.vhd.sha256).

The 30 GiB sparse disk of vhd_bench.py (~2 GiB of random data in 300 extents over the first 6 GiB) plus its footer
(the shape of a converted build). Figures: seconds and GB/s (10^9 bytes of logical file size per second) for
file_sha256, against hashlib.sha256 over 256 MiB of zeros in 4 MiB updates (the machine's own sha256 speed, the
ceiling for a file that is nearly all holes). The data was just written, so it is read from the page cache. A
spot check compares file_sha256 with a plain read of a 64 MiB sparse file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.vhd_bench import DISK_BYTES, GIB, MIB, make_disk, scratch_base
from harness.sparsehash import file_sha256
from harness.vhd import to_fixed_vhd


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
        data_bytes, _ = make_disk(folder / "disk.vhd")  # vhd_bench's 30 GiB sparse disk, then its footer
        to_fixed_vhd(folder / "disk.vhd")
        ceiling = hashlib_zero_rate()
        start = time.perf_counter()
        file_sha256(folder / "disk.vhd")
        seconds = time.perf_counter() - start
        return {
            "scratch_folder": str(folder.parent),
            "file_gib": round((DISK_BYTES + 512) / GIB, 2),
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
