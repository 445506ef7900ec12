"""The 512-byte VHD footer: field layout, checksum and CHS geometry (reference/vhd-and-publishing.md §1).

Pure data, no I/O: harness/vhd/rules.py reads and writes files with it.
"""

from __future__ import annotations

import datetime as dt
import struct
import time
import uuid
from dataclasses import dataclass, fields, replace
from typing import Any

FOOTER_SIZE = 512
# cookie, features, format version, data offset, timestamp, creator app, creator version (major, minor),
# creator host OS, original size, current size, cylinders, heads, sectors/track, disk type, checksum,
# unique id, saved state, reserved. All big-endian.
FOOTER_FORMAT = ">8sIIQI4sHH4sQQHBBII16sB427s"
CHECKSUM_OFFSET = 64
COOKIE = b"conectix"
FEATURES_RESERVED = 0x00000002  # bit 1 "reserved, must be 1"; bit 0 (temporary disk) stays clear
FORMAT_VERSION = 0x00010000
FIXED_DATA_OFFSET = 0xFFFFFFFFFFFFFFFF  # qemu sets all 64 bits; the spec prose says 0xFFFFFFFF
DISK_TYPE_FIXED = 2
DISK_TYPE_DYNAMIC = 3
DISK_TYPE_DIFFERENCING = 4
DISK_TYPES = {0: "none", 2: "fixed", 3: "dynamic", 4: "differencing"}
VHD_EPOCH_UNIX = 946684800  # 2000-01-01T00:00:00Z, the footer's time origin
SECTOR = 512
MIB = 1024 * 1024
MAX_CHS = (65535, 16, 255)

# Why creator 'win ' with the spec geometry (and not qemu's 'qem2' with CHS 65535/16/255):
# a MiB-aligned size is rarely a whole number of CHS cylinders, so a reader that derives the size
# from CHS truncates the disk. Hyper-V and Azure read `current size`; qemu does too, but only for a
# creator it knows ('win ', 'qem2', 'd2v ', 'CTXS', 'tap\0') or maximum CHS. 'win ' + spec CHS is what
# Hyper-V itself writes: the geometry stays true to the spec for BIOS-era readers (maximum CHS would
# claim 127 GiB for any disk) and qemu reads back the exact size (both round-trip, reference §1.5).
CREATOR_APP = b"win "
CREATOR_VERSION = (10, 0)  # Hyper-V's version for 'win ' (Windows 10 / Server 2016 and later)
CREATOR_HOST_OS = b"Wi2k"  # Azure cares: FreeBSD's mkimg switched from 'FBSD' to 'Wi2k' for it


def chs_geometry(total_sectors: int) -> tuple[int, int, int]:
    """(cylinders, heads, sectors per track) for a disk of `total_sectors` 512-byte sectors, per the VHD spec."""
    sectors = min(total_sectors, MAX_CHS[0] * MAX_CHS[1] * MAX_CHS[2])
    if sectors >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cyl_heads = sectors // spt
    else:
        spt = 17
        cyl_heads = sectors // spt
        heads = max(4, -(-cyl_heads // 1024))
        if cyl_heads >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cyl_heads = sectors // spt
        if cyl_heads >= heads * 1024:
            spt, heads = 63, 16
            cyl_heads = sectors // spt
    return cyl_heads // heads, heads, spt


def footer_checksum(raw: bytes) -> int:
    """One's complement of the byte sum of a 512-byte footer, its checksum field (bytes 64-67) taken as zero."""
    if len(raw) != FOOTER_SIZE:
        raise ValueError(f"a VHD footer is {FOOTER_SIZE} bytes, got {len(raw)}")
    total = sum(raw) - sum(raw[CHECKSUM_OFFSET:CHECKSUM_OFFSET + 4])
    return ~total & 0xFFFFFFFF


@dataclass(frozen=True)
class Footer:
    """Every field of the VHD footer, in file order; sizes in bytes."""

    cookie: bytes = COOKIE
    features: int = FEATURES_RESERVED
    format_version: int = FORMAT_VERSION
    data_offset: int = FIXED_DATA_OFFSET
    timestamp: int = 0  # seconds since 2000-01-01T00:00:00Z
    creator_app: bytes = CREATOR_APP
    creator_version_major: int = CREATOR_VERSION[0]
    creator_version_minor: int = CREATOR_VERSION[1]
    creator_host_os: bytes = CREATOR_HOST_OS
    original_size: int = 0
    current_size: int = 0
    cylinders: int = 0
    heads: int = 0
    sectors_per_track: int = 0
    disk_type: int = DISK_TYPE_FIXED
    checksum: int = 0
    unique_id: bytes = bytes(16)
    saved_state: int = 0
    reserved: bytes = bytes(427)

    def pack(self) -> bytes:
        """The 512 footer bytes, with the checksum field exactly as stored in this object."""
        return struct.pack(FOOTER_FORMAT, *(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def unpack(cls, raw: bytes) -> Footer:
        """Parse 512 bytes; no field is checked here (validation reports every problem at once)."""
        if len(raw) != FOOTER_SIZE:
            raise ValueError(f"a VHD footer is {FOOTER_SIZE} bytes, got {len(raw)}")
        return cls(*struct.unpack(FOOTER_FORMAT, raw))

    def computed_checksum(self) -> int:
        return footer_checksum(self.pack())

    @property
    def checksum_valid(self) -> bool:
        return self.checksum == self.computed_checksum()

    def with_checksum(self) -> Footer:
        """A copy whose checksum field matches its contents."""
        return replace(self, checksum=self.computed_checksum())

    @property
    def geometry(self) -> tuple[int, int, int]:
        return self.cylinders, self.heads, self.sectors_per_track

    @property
    def created(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(VHD_EPOCH_UNIX + self.timestamp, tz=dt.UTC)


def fixed_footer(current_size: int, *, unique_id: bytes | None = None, timestamp: int | None = None) -> Footer:
    """A checksummed fixed-disk footer for `current_size` bytes; fresh random id and the current time by default."""
    cylinders, heads, spt = chs_geometry(current_size // SECTOR)
    stamp = int(time.time()) - VHD_EPOCH_UNIX if timestamp is None else timestamp
    return Footer(
        timestamp=stamp & 0xFFFFFFFF,
        original_size=current_size,
        current_size=current_size,
        cylinders=cylinders,
        heads=heads,
        sectors_per_track=spt,
        unique_id=uuid.uuid4().bytes if unique_id is None else unique_id,
    ).with_checksum()


def _text(raw: bytes) -> str:
    return raw.decode("ascii", errors="backslashreplace")


def describe(footer: Footer) -> dict[str, Any]:
    """The footer as JSON-friendly fields for `harness vhd inspect` and the build manifest."""
    spec = chs_geometry(footer.current_size // SECTOR)
    return {
        "cookie": _text(footer.cookie),
        "features": f"0x{footer.features:08x}",
        "format_version": f"{footer.format_version >> 16}.{footer.format_version & 0xFFFF}",
        "data_offset": f"0x{footer.data_offset:016x}",
        "timestamp": footer.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "creator_app": _text(footer.creator_app),
        "creator_version": f"{footer.creator_version_major}.{footer.creator_version_minor}",
        "creator_host_os": _text(footer.creator_host_os),
        "original_size": footer.original_size,
        "current_size": footer.current_size,
        "current_size_mib": round(footer.current_size / MIB, 3),
        "geometry": list(footer.geometry),
        "geometry_kind": "spec" if footer.geometry == spec else "maximum" if footer.geometry == MAX_CHS else "other",
        "disk_type": DISK_TYPES.get(footer.disk_type, f"unknown ({footer.disk_type})"),
        "checksum": f"0x{footer.checksum:08x}",
        "checksum_valid": footer.checksum_valid,
        "unique_id": str(uuid.UUID(bytes=footer.unique_id)),
        "saved_state": footer.saved_state,
    }
