"""GRUB's MBR and core.img placement, as grub-bios-setup would write them."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from harness.builder.grub import install_bios
from harness.builder.layout import plan
from harness.errors import BuildError


def test_mbr_points_at_core_and_blocklist_at_the_rest(tmp_path: Path) -> None:
    layout = plan(1024, 127)
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"")
    with disk.open("r+b") as handle:
        handle.truncate(layout.disk_size_bytes)
        handle.seek(446)
        handle.write(b"\xaa" * 64 + b"\x55\xaa")  # a protective MBR table to preserve
    boot = tmp_path / "boot.img"
    boot.write_bytes(bytes(range(256)) * 2)
    core = tmp_path / "core.img"
    core.write_bytes(b"\x01" * 512 + b"\x02" * 700)  # 3 sectors once padded
    install_bios(disk, layout, boot, core)
    with disk.open("rb") as handle:
        data = handle.read(3 * 1024 * 1024)
    mbr = data[:512]
    assert struct.unpack_from("<Q", mbr, 0x5C)[0] == 2048
    assert mbr[0x66:0x68] == b"\x90\x90"
    assert mbr[:0x5C] == (bytes(range(256)) * 2)[:0x5C]
    assert mbr[446:512] == b"\xaa" * 64 + b"\x55\xaa"  # table and signature untouched
    first = data[2048 * 512: 2049 * 512]
    assert struct.unpack_from("<QHH", first, 500) == (2049, 2, 0x820)
    assert data[2049 * 512: 2049 * 512 + 700] == b"\x02" * 700


def test_core_larger_than_bios_partition_is_refused(tmp_path: Path) -> None:
    layout = plan(1024, 127)
    disk = tmp_path / "disk.raw"
    disk.write_bytes(bytes(4096))
    (tmp_path / "boot.img").write_bytes(bytes(512))
    (tmp_path / "core.img").write_bytes(bytes(2 * 1024 * 1024))
    with pytest.raises(BuildError, match="does not fit the BIOS boot partition"):
        install_bios(disk, layout, tmp_path / "boot.img", tmp_path / "core.img")
