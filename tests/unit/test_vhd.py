"""Fixed VHD footer, conversion and validation; hermetic (no subprocess: qemu's cross-check is off)."""

from __future__ import annotations

import os
import struct
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import vhd
from harness.digest import allocated_bytes
from harness.errors import NotFoundError, VhdError
from harness.vhd.footer import (
    FOOTER_SIZE,
    MAX_CHS,
    MIB,
    VHD_EPOCH_UNIX,
    Footer,
    chs_geometry,
    describe,
    fixed_footer,
    footer_checksum,
)

# First 85 bytes of the footer qemu-img 7.2 wrote for `convert -O vpc -o subformat=fixed,force_size` of a
# 30 MiB raw file (the other 427 bytes are zero): an independent implementation of layout and checksum.
QEMU_FORCE_SIZE_30MIB = bytes.fromhex(
    "636f6e65637469780000000200010000ffffffffffffffff329a528571656d32000500035769326b0000000001e00000"
    "0000000001e00000ffff10ff00000002ffffe5d011856aad3d074100a5b169185c87851800"
).ljust(FOOTER_SIZE, b"\0")


def hand_built_footer(current: int, geometry: tuple[int, int, int], unique_id: bytes, timestamp: int) -> bytes:
    """A fixed-disk footer written field by field at the spec's offsets, checksum summed byte by byte."""
    raw = bytearray(FOOTER_SIZE)
    raw[0:8] = b"conectix"
    struct.pack_into(">I", raw, 8, 2)
    struct.pack_into(">I", raw, 12, 0x00010000)
    struct.pack_into(">Q", raw, 16, 0xFFFFFFFFFFFFFFFF)
    struct.pack_into(">I", raw, 24, timestamp)
    raw[28:32] = b"win "
    struct.pack_into(">HH", raw, 32, 10, 0)
    raw[36:40] = b"Wi2k"
    struct.pack_into(">Q", raw, 40, current)
    struct.pack_into(">Q", raw, 48, current)
    struct.pack_into(">HBB", raw, 56, *geometry)
    struct.pack_into(">I", raw, 60, 2)
    raw[68:84] = unique_id
    total = 0
    for byte in raw:  # checksum field still zero here
        total += byte
    struct.pack_into(">I", raw, 64, (~total) & 0xFFFFFFFF)
    return bytes(raw)


def make_raw(path: Path, size: int, data: dict[int, bytes] | None = None) -> Path:
    """A sparse file of `size` bytes with `data` written at the given offsets."""
    with path.open("wb") as handle:
        handle.truncate(size)
        for offset, chunk in (data or {}).items():
            handle.seek(offset)
            handle.write(chunk)
    return path


def failed_rules(path: Path) -> set[str]:
    return {p.rule for p in vhd.validate(path, use_qemu=False)}


def rewrite_footer(path: Path, footer: Footer) -> None:
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(size - FOOTER_SIZE)
        handle.write(footer.pack())


# ---------------------------------------------------------------------------------------------
# Footer layout and checksum.

def test_qemu_footer_parses_with_its_checksum() -> None:
    footer = Footer.unpack(QEMU_FORCE_SIZE_30MIB)
    assert footer.cookie == b"conectix"
    assert footer.features == 2
    assert footer.format_version == 0x00010000
    assert footer.data_offset == 0xFFFFFFFFFFFFFFFF
    assert footer.creator_app == b"qem2"
    assert (footer.creator_version_major, footer.creator_version_minor) == (5, 3)
    assert footer.creator_host_os == b"Wi2k"
    assert footer.original_size == footer.current_size == 30 * MIB
    assert footer.geometry == MAX_CHS
    assert footer.disk_type == 2
    assert footer.checksum == 0xFFFFE5D0
    assert footer.computed_checksum() == 0xFFFFE5D0
    assert footer.checksum_valid
    assert footer.saved_state == 0
    assert footer.pack() == QEMU_FORCE_SIZE_30MIB


def test_our_footer_matches_one_built_by_hand_from_the_spec() -> None:
    unique_id = bytes(range(16))
    ours = fixed_footer(30 * MIB, unique_id=unique_id, timestamp=0x329A5285).pack()
    assert ours == hand_built_footer(30 * MIB, (903, 4, 17), unique_id, 0x329A5285)
    assert len(ours) == 512


def test_footer_round_trips_through_pack_and_unpack() -> None:
    footer = fixed_footer(127 * 1024 * MIB)
    again = Footer.unpack(footer.pack())
    assert again == footer
    assert again.pack() == footer.pack()


def test_checksum_ignores_its_own_field_and_catches_any_other_byte() -> None:
    raw = bytearray(fixed_footer(64 * MIB).pack())
    good = footer_checksum(bytes(raw))
    raw[64:68] = b"\x12\x34\x56\x78"
    assert footer_checksum(bytes(raw)) == good
    raw[100] ^= 0x01
    assert footer_checksum(bytes(raw)) == good - 1


def test_fixed_footer_fields() -> None:
    before = int(time.time()) - VHD_EPOCH_UNIX
    first, second = fixed_footer(30 * 1024 * MIB), fixed_footer(30 * 1024 * MIB)
    assert first.creator_app == b"win "
    assert first.creator_host_os == b"Wi2k"
    assert first.geometry == (62415, 16, 63)
    assert first.disk_type == 2
    assert first.checksum_valid
    assert before <= first.timestamp <= before + 5
    assert first.unique_id != second.unique_id
    assert uuid.UUID(bytes=first.unique_id).version == 4


def test_unpack_rejects_a_short_buffer() -> None:
    with pytest.raises(ValueError, match="512 bytes"):
        Footer.unpack(b"conectix")


@pytest.mark.parametrize(("size", "geometry"), [
    (30 * MIB, (903, 4, 17)),
    (30 * 1024 * MIB, (62415, 16, 63)),
    (127 * 1024 * MIB, (65278, 16, 255)),
    (2 * 1024 * 1024 * MIB, MAX_CHS),
])
def test_spec_geometry_examples(size: int, geometry: tuple[int, int, int]) -> None:
    assert chs_geometry(size // 512) == geometry


def test_spec_geometry_never_exceeds_the_disk() -> None:
    for sectors in (1, 17, 1000, 61440, 4_128_768, 65535 * 16 * 63 - 1, 65535 * 16 * 63):
        cylinders, heads, spt = chs_geometry(sectors)
        assert cylinders * heads * spt <= sectors


def test_describe_shows_the_fields() -> None:
    fields = describe(fixed_footer(30 * MIB, unique_id=bytes(16), timestamp=0))
    assert fields["cookie"] == "conectix"
    assert fields["creator_app"] == "win "
    assert fields["current_size"] == 30 * MIB
    assert fields["geometry"] == [903, 4, 17]
    assert fields["geometry_kind"] == "spec"
    assert fields["disk_type"] == "fixed"
    assert fields["checksum_valid"] is True
    assert fields["timestamp"] == "2000-01-01T00:00:00Z"
    assert fields["unique_id"] == "00000000-0000-0000-0000-000000000000"


# ---------------------------------------------------------------------------------------------
# Conversion.

def test_in_place_conversion_grows_to_a_whole_mib_and_stays_sparse(tmp_path: Path) -> None:
    size = 30 * MIB + 7 * 512
    raw = make_raw(tmp_path / "disk.raw", size, {0: b"\xeb\x63" + bytes(510), 25 * MIB: os.urandom(8192)})
    before = allocated_bytes(raw)
    assert vhd.to_fixed_vhd(raw) == raw
    assert raw.stat().st_size == 31 * MIB + 512
    assert allocated_bytes(raw) - before <= os.statvfs(tmp_path).f_bsize  # the footer's block, nothing else
    footer = vhd.read_footer(raw)
    assert footer.current_size == 31 * MIB
    assert footer.geometry == chs_geometry(31 * MIB // 512)
    assert vhd.validate(raw, use_qemu=False) == []
    with raw.open("rb") as handle:
        assert handle.read(2) == b"\xeb\x63"


def test_whole_mib_input_only_gets_the_footer(tmp_path: Path) -> None:
    data = os.urandom(4096)
    raw = make_raw(tmp_path / "disk.raw", 21 * MIB, {21 * MIB - 4096: data})
    vhd.to_fixed_vhd(raw)
    assert raw.stat().st_size == 21 * MIB + 512
    with raw.open("rb") as handle:
        handle.seek(21 * MIB - 4096)
        assert handle.read(4096) == data


def test_conversion_to_a_new_file_keeps_holes_and_the_source(tmp_path: Path) -> None:
    data = os.urandom(65536)
    raw = make_raw(tmp_path / "disk.raw", 40 * MIB - 512, {3 * MIB: data})
    out = tmp_path / "disk.vhd"
    assert vhd.to_fixed_vhd(raw, out=out) == out
    assert raw.stat().st_size == 40 * MIB - 512
    assert out.stat().st_size == 40 * MIB + 512
    assert allocated_bytes(out) <= len(data) + 2 * os.statvfs(tmp_path).f_bsize
    assert vhd.validate(out, use_qemu=False) == []
    with out.open("rb") as handle:
        handle.seek(3 * MIB)
        assert handle.read(len(data)) == data
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_conversion_refuses_to_overwrite_an_output(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "disk.raw", 21 * MIB)
    out = make_raw(tmp_path / "disk.vhd", 10)
    with pytest.raises(VhdError, match="already exists"):
        vhd.to_fixed_vhd(raw, out=out)
    assert out.stat().st_size == 10


def test_a_valid_fixed_vhd_is_left_alone(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "disk.raw", 21 * MIB)
    vhd.to_fixed_vhd(raw)
    content = raw.read_bytes()
    assert vhd.is_fixed_vhd(raw)
    assert vhd.to_fixed_vhd(raw) == raw
    assert vhd.to_fixed_vhd(raw, out=tmp_path / "other.vhd") == raw
    assert raw.read_bytes() == content
    assert not (tmp_path / "other.vhd").exists()


def dynamic_vhd(path: Path, *, header_copy: bool) -> Path:
    footer = Footer(disk_type=3, data_offset=512, current_size=21 * MIB, original_size=21 * MIB).with_checksum()
    head = footer.pack() if header_copy else bytes(512)
    path.write_bytes(head + b"cxsparse" + bytes(1016) + footer.pack())
    return path


@pytest.mark.parametrize("header_copy", [True, False])
def test_conversion_refuses_a_dynamic_vhd(tmp_path: Path, header_copy: bool) -> None:
    path = dynamic_vhd(tmp_path / "dyn.vhd", header_copy=header_copy)
    with pytest.raises(VhdError, match="dynamic VHD") as caught:
        vhd.to_fixed_vhd(path)
    assert "qemu-img convert" in caught.value.hint
    assert path.stat().st_size == 2048


def test_conversion_refuses_an_unaligned_or_empty_file(tmp_path: Path) -> None:
    odd = make_raw(tmp_path / "odd.raw", 21 * MIB + 100)
    with pytest.raises(VhdError, match="not a whole number of 512-byte sectors"):
        vhd.to_fixed_vhd(odd)
    assert odd.stat().st_size == 21 * MIB + 100
    with pytest.raises(VhdError, match="empty"):
        vhd.to_fixed_vhd(make_raw(tmp_path / "empty.raw", 0))


def test_conversion_refuses_a_broken_fixed_footer(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "disk.raw", 21 * MIB)
    vhd.to_fixed_vhd(raw)
    rewrite_footer(raw, Footer(**{**vars(vhd.read_footer(raw)), "checksum": 1}))
    with pytest.raises(VhdError, match="checksum"):
        vhd.to_fixed_vhd(raw)


def test_os_errors_become_harness_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        vhd.to_fixed_vhd(tmp_path / "missing.raw")
    raw = make_raw(tmp_path / "disk.raw", 21 * MIB)
    with pytest.raises(VhdError, match="does not exist"):
        vhd.to_fixed_vhd(raw, out=tmp_path / "sub" / "disk.vhd")
    assert raw.stat().st_size == 21 * MIB


def test_read_footer_of_a_raw_disk_says_so(tmp_path: Path) -> None:
    with pytest.raises(VhdError, match="no VHD footer"):
        vhd.read_footer(make_raw(tmp_path / "disk.raw", 21 * MIB))
    with pytest.raises(VhdError, match="too short"):
        vhd.read_footer(make_raw(tmp_path / "tiny", 100))


# ---------------------------------------------------------------------------------------------
# Validation: each kind of damage is caught by its own rule.

@pytest.fixture
def good_vhd(tmp_path: Path) -> Path:
    path = make_raw(tmp_path / "disk.vhd", 21 * MIB, {0: os.urandom(512)})
    vhd.to_fixed_vhd(path)
    assert failed_rules(path) == set()
    return path


def with_fields(path: Path, **changes: object) -> Footer:
    """The file's footer with fields changed and the checksum recomputed (so only those fields are wrong)."""
    return Footer(**{**vars(vhd.read_footer(path)), **changes}).with_checksum()


def test_corrupted_checksum_fails_the_checksum_rule(good_vhd: Path) -> None:
    footer = vhd.read_footer(good_vhd)
    rewrite_footer(good_vhd, Footer(**{**vars(footer), "checksum": footer.checksum ^ 1}))
    problems = vhd.validate(good_vhd, use_qemu=False)
    assert [p.rule for p in problems] == ["checksum"]
    assert problems[0].actual == f"0x{footer.checksum ^ 1:08x}"
    assert problems[0].required == f"0x{footer.checksum:08x}"
    assert problems[0].hint


def test_a_damaged_cookie_is_one_problem_naming_a_damaged_footer(good_vhd: Path) -> None:
    rewrite_footer(good_vhd, with_fields(good_vhd, cookie=b"conectiX"))
    (problem,) = vhd.validate(good_vhd, use_qemu=False)
    assert problem.rule == "vhd-footer" and "cookie is damaged" in problem.message


def test_a_raw_disk_is_one_problem_pointing_to_convert(tmp_path: Path) -> None:
    (problem,) = vhd.validate(make_raw(tmp_path / "disk.raw", 21 * MIB), use_qemu=False)
    assert (problem.rule, problem.message) == ("vhd-footer", "this is a raw disk, not a VHD")
    assert "harness vhd convert" in problem.hint


def test_conversion_refuses_a_vhd_with_a_damaged_cookie(good_vhd: Path) -> None:
    rewrite_footer(good_vhd, with_fields(good_vhd, cookie=b"conectiX"))
    size = good_vhd.stat().st_size
    with pytest.raises(VhdError, match=r"MiB \+ 512 bytes, which a raw disk never is"):
        vhd.to_fixed_vhd(good_vhd)
    assert good_vhd.stat().st_size == size


def test_conversion_refuses_an_output_that_is_the_input(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "disk.raw", 21 * MIB)
    link = tmp_path / "link.vhd"
    link.symlink_to(raw)
    with pytest.raises(VhdError, match="itself"):
        vhd.to_fixed_vhd(raw, out=link)
    assert raw.stat().st_size == 21 * MIB


@pytest.mark.parametrize("fields,rule", [
    ({"cylinders": 0, "heads": 0, "sectors_per_track": 0}, "geometry"),
    ({"features": 0x00000003}, "features"),
    ({"original_size": 22 * MIB}, "original-size"),
])
def test_footer_fields_azure_refuses_each_fail_their_rule(good_vhd: Path, fields: dict[str, int], rule: str) -> None:
    rewrite_footer(good_vhd, with_fields(good_vhd, **fields))
    assert failed_rules(good_vhd) == {rule}


def test_dynamic_type_fails_the_disk_type_rule(good_vhd: Path) -> None:
    rewrite_footer(good_vhd, with_fields(good_vhd, disk_type=3))
    assert failed_rules(good_vhd) == {"disk-type"}


def test_a_real_dynamic_layout_fails_type_offset_and_size(tmp_path: Path) -> None:
    assert failed_rules(dynamic_vhd(tmp_path / "dyn.vhd", header_copy=True)) == {
        "disk-type", "data-offset", "current-size-matches-file", "geometry"}


def test_unaligned_size_fails_the_alignment_rule(good_vhd: Path) -> None:
    footer = vhd.read_footer(good_vhd)
    with good_vhd.open("r+b") as handle:  # 100 stray bytes between the data and the footer
        handle.seek(footer.current_size)
        handle.write(bytes(100) + footer.pack())
    assert failed_rules(good_vhd) == {"file-size-aligned", "current-size-matches-file"}


def test_truncated_below_a_footer_fails_the_footer_rule(good_vhd: Path) -> None:
    os.truncate(good_vhd, 0)
    problems = vhd.validate(good_vhd, use_qemu=False)
    assert [p.rule for p in problems] == ["footer-present"]
    assert problems[0].actual == "0 bytes"


def test_truncated_data_fails_the_current_size_rule(good_vhd: Path) -> None:
    footer = vhd.read_footer(good_vhd)
    os.truncate(good_vhd, footer.current_size - MIB)
    with good_vhd.open("ab") as handle:
        handle.write(footer.pack())
    assert failed_rules(good_vhd) == {"current-size-matches-file"}


def test_size_not_a_whole_mib_fails_its_rule(tmp_path: Path) -> None:
    path = make_raw(tmp_path / "disk.vhd", 21 * MIB + 512)
    with path.open("ab") as handle:
        handle.write(fixed_footer(21 * MIB + 512).pack())
    assert failed_rules(path) == {"current-size-whole-mib"}


def test_other_fields_fail_their_own_rules(good_vhd: Path) -> None:
    rewrite_footer(good_vhd, with_fields(good_vhd, format_version=0x00020000, saved_state=1,
                                         data_offset=512))
    assert failed_rules(good_vhd) == {"format-version", "saved-state", "data-offset"}


def test_azure_size_limits(tmp_path: Path) -> None:
    small = make_raw(tmp_path / "small.raw", 19 * MIB)
    vhd.to_fixed_vhd(small)
    assert failed_rules(small) == {"azure-size-limits"}
    assert vhd.is_fixed_vhd(small)  # structurally fine, only too small for Azure
    big = make_raw(tmp_path / "big.raw", 1024 * 1024 * MIB)  # 1 TiB, sparse
    vhd.to_fixed_vhd(big)
    problems = vhd.validate(big, use_qemu=False)
    assert [p.rule for p in problems] == ["azure-size-limits"]
    assert "1023 GiB" in problems[0].hint
    edge = make_raw(tmp_path / "edge.raw", 1023 * 1024 * MIB)
    vhd.to_fixed_vhd(edge)
    assert failed_rules(edge) == set()


def test_check_reports_every_rule_in_order(good_vhd: Path) -> None:
    results = vhd.check(good_vhd, use_qemu=False)
    assert [r.rule for r in results] == [
        "footer-present", "file-size-aligned", "cookie", "disk-type", "format-version", "data-offset", "checksum",
        "current-size-matches-file", "current-size-whole-mib", "azure-size-limits", "saved-state", "features",
        "original-size", "geometry"]
    assert {r.result for r in results} == {"Passed"}
    assert all(r.actual and r.required for r in results)


# ---------------------------------------------------------------------------------------------
# Property: any sector count converts to a valid VHD of the next whole MiB, data intact, still sparse.

@settings(max_examples=60, deadline=None)
@given(sectors=st.integers(min_value=1, max_value=2 * 1024 * 1024 * 2).filter(lambda s: s == 1 or s % 2048 != 1))
def test_conversion_property(tmp_path_factory: pytest.TempPathFactory, sectors: int) -> None:
    """(N MiB + 512 bytes is refused as a damaged VHD: test_conversion_refuses_a_vhd_with_a_damaged_cookie.)"""
    size = sectors * 512
    folder = tmp_path_factory.mktemp("prop")
    first, last = os.urandom(512), os.urandom(512)
    raw = make_raw(folder / "disk.raw", size, {0: first, size - 512: last})
    before = allocated_bytes(raw)
    vhd.to_fixed_vhd(raw)
    current = -(-size // MIB) * MIB
    assert raw.stat().st_size == current + 512
    footer = vhd.read_footer(raw)
    assert footer.current_size == footer.original_size == current
    assert allocated_bytes(raw) - before <= os.statvfs(folder).f_bsize
    expected = set() if current >= 20 * MIB else {"azure-size-limits"}
    assert failed_rules(raw) == expected
    with raw.open("rb") as handle:
        assert handle.read(512) == (first if size > 512 else last)
        handle.seek(size - 512)
        assert handle.read(512) == last
        assert handle.read(current - size) == bytes(current - size)
    raw.unlink()
