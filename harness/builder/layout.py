"""Hybrid GPT layout arithmetic (pure): BIOS boot + ESP + root, 1 MiB aligned, whole-MiB disk."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from harness.errors import UsageError
from harness.recipe_schema import MAX_DISK_SIZE_MIB

MIB = 1024 * 1024
SECTOR = 512
SECTORS_PER_MIB = MIB // SECTOR

BIOS_BOOT_GUID = "21686148-6449-6E6F-744E-656564454649"
ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_ROOT_GUID = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"

BIOS_BOOT_MIB = 1
# The GPT backup header and table take the last 33 sectors; keep the last MiB out of the root
# partition so its end stays MiB-aligned too.
TAIL_RESERVED_MIB = 1
MIN_ROOT_MIB = 256
MAX_DISK_MIB = MAX_DISK_SIZE_MIB  # Azure's largest OS disk, 1023 GiB: it refuses a bigger VHD


@dataclass(frozen=True)
class Partition:
    number: int
    name: str
    type_guid: str
    start_mib: int
    size_mib: int

    @property
    def start_bytes(self) -> int:
        return self.start_mib * MIB

    @property
    def size_bytes(self) -> int:
        return self.size_mib * MIB

    @property
    def start_sector(self) -> int:
        return self.start_mib * SECTORS_PER_MIB

    @property
    def size_sectors(self) -> int:
        return self.size_mib * SECTORS_PER_MIB


@dataclass(frozen=True)
class Layout:
    disk_size_mib: int
    partitions: tuple[Partition, ...]

    @property
    def disk_size_bytes(self) -> int:
        return self.disk_size_mib * MIB

    def by_name(self, name: str) -> Partition:
        for part in self.partitions:
            if part.name == name:
                return part
        raise KeyError(name)

    def sfdisk_script(self, disk_guid: str, part_guids: dict[str, str]) -> str:
        """Input for `sfdisk` that writes this table into a plain file."""
        lines = ["label: gpt", f"label-id: {disk_guid}", "unit: sectors", "first-lba: 34", ""]
        for part in self.partitions:
            lines.append(
                f"start={part.start_sector}, size={part.size_sectors}, type={part.type_guid}, "
                f'uuid={part_guids[part.name]}, name="{part.name}"'
            )
        return "\n".join(lines) + "\n"

    def to_json(self) -> list[dict[str, object]]:
        return [asdict(p) for p in self.partitions]


def plan(disk_size_mib: int, esp_size_mib: int) -> Layout:
    """Place BIOS boot at 1 MiB, the ESP after it, root up to the last MiB; all MiB-aligned."""
    if disk_size_mib > MAX_DISK_MIB:
        raise UsageError(f"disk of {disk_size_mib} MiB is above Azure's OS disk limit of {MAX_DISK_MIB} MiB (1023 GiB)",
                         f"use --disk-size-mib {MAX_DISK_MIB} or less")
    bios = Partition(1, "bios", BIOS_BOOT_GUID, 1, BIOS_BOOT_MIB)
    esp = Partition(2, "esp", ESP_GUID, bios.start_mib + bios.size_mib, esp_size_mib)
    root_start = esp.start_mib + esp.size_mib
    root_size = disk_size_mib - root_start - TAIL_RESERVED_MIB
    if root_size < MIN_ROOT_MIB:
        minimum = root_start + TAIL_RESERVED_MIB + MIN_ROOT_MIB
        raise UsageError(
            f"disk of {disk_size_mib} MiB is below the minimum of {minimum} MiB: it leaves {root_size} MiB for the "
            f"root file system, which needs {MIN_ROOT_MIB}",
            f"use --disk-size-mib {minimum} or more",
        )
    root = Partition(3, "root", LINUX_ROOT_GUID, root_start, root_size)
    return Layout(disk_size_mib, (bios, esp, root))


def parse_sfdisk_json(text: str) -> list[dict[str, object]]:
    """Partitions from `sfdisk -J` output (start and size in 512-byte sectors)."""
    table = json.loads(text)["partitiontable"]
    parts: list[dict[str, object]] = table.get("partitions", [])
    return parts
