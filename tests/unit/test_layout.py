"""Partition layout arithmetic: 1 MiB alignment, whole-MiB disk, first MiB free."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.builder.layout import ESP_GUID, MIB, plan
from harness.errors import UsageError


def test_default_layout() -> None:
    layout = plan(30 * 1024, 127)
    bios, esp, root = layout.partitions
    assert (bios.start_sector, bios.size_sectors) == (2048, 2048)
    assert (esp.start_mib, esp.size_mib, esp.type_guid) == (2, 127, ESP_GUID)
    assert root.start_mib == 129 and root.start_mib + root.size_mib == 30 * 1024 - 1
    assert layout.disk_size_bytes == 30 * 1024 * MIB


def test_esp_type_is_the_uefi_system_partition_guid() -> None:
    assert ESP_GUID == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"


@given(st.integers(min_value=600, max_value=1023 * 1024), st.integers(min_value=33, max_value=256))
def test_partitions_aligned_and_inside_disk(disk_mib: int, esp_mib: int) -> None:
    layout = plan(disk_mib, esp_mib)
    end = 0
    for part in layout.partitions:
        assert part.start_sector % 2048 == 0
        assert part.start_mib >= max(end, 1)
        end = part.start_mib + part.size_mib
    # the GPT backup header (last 33 sectors) stays outside every partition
    assert end * MIB <= layout.disk_size_bytes - 33 * 512


def test_too_small_disk_says_how_big() -> None:
    with pytest.raises(UsageError, match="--disk-size-mib 386"):
        plan(300, 127)


def test_sfdisk_script_names_every_partition() -> None:
    layout = plan(4096, 127)
    guids = {p.name: f"0000000{p.number}-0000-0000-0000-000000000000" for p in layout.partitions}
    script = layout.sfdisk_script("11111111-2222-3333-4444-555555555555", guids)
    assert script.startswith("label: gpt\nlabel-id: 11111111-2222-3333-4444-555555555555\n")
    assert 'start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649' in script
    assert script.count("name=") == 3
