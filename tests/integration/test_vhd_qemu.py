"""Fixed VHDs against qemu-img (a local tool; nothing is booted) and the `harness vhd` / `harness convert` CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness import proc, vhd
from harness.buildfolder import write_json_atomic
from harness.cli import main
from harness.digest import allocated_bytes, content_digest
from harness.errors import EXIT_IMAGE_FAILED, EXIT_USAGE
from harness.vhd.footer import MIB, Footer

# Offsets (bytes) where the round-trip disk gets random data: first sector, unaligned middle, last sector.
DATA_OFFSETS = (0, 5 * MIB + 4096 + 512, 17 * MIB, 30 * MIB - 512)


@pytest.fixture(scope="module", autouse=True)
def _qemu_img() -> None:
    """Fail (not skip) with the package to install when qemu-img is missing: these tests need it."""
    proc.require("qemu-img")


def make_raw(path: Path, size: int, offsets: tuple[int, ...] = ()) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
        for offset in offsets:
            handle.seek(offset)
            handle.write(os.urandom(512 if offset + 4096 > size else 4096))
    return path


def qemu_convert(src: Path, dst: Path, options: str) -> None:
    proc.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", options, str(src), str(dst)])


# ---------------------------------------------------------------------------------------------
# qemu's output against our validator, our output against qemu.

def test_qemu_force_size_output_passes_our_validator(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "disk.raw", 30 * MIB, DATA_OFFSETS)
    out = tmp_path / "qemu.vhd"
    qemu_convert(raw, out, "subformat=fixed,force_size")
    assert vhd.validate(out) == []
    footer = vhd.read_footer(out)
    assert footer.creator_app == b"qem2"
    assert footer.current_size == 30 * MIB


def test_qemu_output_without_force_size_fails_the_whole_mib_rule(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "disk.raw", 30 * MIB)
    out = tmp_path / "qemu.vhd"
    qemu_convert(raw, out, "subformat=fixed")
    problems = vhd.validate(out)
    assert [p.rule for p in problems] == ["current-size-whole-mib"]
    assert problems[0].actual == "31473664"  # rounded up to CHS 904/4/17, as the reference says


@pytest.mark.parametrize("size", [20 * MIB, 31 * MIB - 512, 30 * 1024 * MIB, 127 * 1024 * MIB + 3 * MIB,
                                  1023 * 1024 * MIB])
def test_qemu_reads_the_exact_size_of_our_vhd(tmp_path: Path, size: int) -> None:
    raw = make_raw(tmp_path / "disk.raw", size)  # sparse: nothing of this size is written
    vhd.to_fixed_vhd(raw)
    expected = -(-size // MIB) * MIB
    assert vhd.qemu_size(raw) == expected
    assert vhd.validate(raw) == []


def test_qemu_disagrees_with_an_unknown_creator_and_our_rule_says_so(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "disk.raw", 30 * MIB)
    vhd.to_fixed_vhd(raw)
    footer = vhd.read_footer(raw)
    with raw.open("r+b") as handle:  # spec CHS + a creator qemu does not trust: qemu computes C*H*S*512
        handle.seek(30 * MIB)
        handle.write(Footer(**{**vars(footer), "creator_app": b"pyvh"}).with_checksum().pack())
    problems = vhd.validate(raw)
    assert [p.rule for p in problems] == ["qemu-virtual-size"]
    assert problems[0].actual == str(903 * 4 * 17 * 512)


def test_round_trip_to_raw_gives_identical_bytes(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "disk.raw", 30 * MIB - 1024, (*DATA_OFFSETS[:-1], 30 * MIB - 1536))
    original = raw.read_bytes()
    converted = vhd.to_fixed_vhd(raw, out=tmp_path / "disk.vhd")
    proc.run(["qemu-img", "compare", "-f", "raw", "-F", "vpc", str(raw), str(converted)])
    back = tmp_path / "back.raw"
    proc.run(["qemu-img", "convert", "-f", "vpc", "-O", "raw", str(converted), str(back)])
    assert back.read_bytes() == original + bytes(1024)  # padded to a whole MiB with zeros
    vhd.to_fixed_vhd(raw)  # in place gives the same data
    proc.run(["qemu-img", "compare", "-f", "vpc", "-F", "vpc", str(raw), str(converted)])


# ---------------------------------------------------------------------------------------------
# `harness vhd ...`

def test_vhd_cli_convert_validate_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = make_raw(tmp_path / "disk.raw", 24 * MIB, DATA_OFFSETS[:2])
    assert main(["vhd", "convert", str(raw)]) == 0
    assert capsys.readouterr().out.strip() == str(raw)
    assert raw.stat().st_size == 24 * MIB + 512

    assert main(["vhd", "convert", "--in-place", str(raw)]) == 0
    captured = capsys.readouterr()
    assert "already a valid fixed VHD; nothing to do" in captured.err
    assert raw.stat().st_size == 24 * MIB + 512

    assert main(["vhd", "validate", str(raw)]) == 0
    out = capsys.readouterr().out
    assert "Passed  checksum" in out
    assert "Passed  qemu-virtual-size" in out
    assert "result: valid fixed VHD for Azure" in out

    assert main(["vhd", "validate", "--json", str(raw)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True
    assert len(report["rules"]) == 15
    assert {r["result"] for r in report["rules"]} == {"Passed"}

    assert main(["vhd", "inspect", "--json", str(raw)]) == 0
    footer = json.loads(capsys.readouterr().out)["footer"]
    assert footer["current_size"] == 24 * MIB
    assert footer["creator_app"] == "win "
    assert main(["vhd", "inspect", str(raw)]) == 0
    assert "creator_host_os   Wi2k" in capsys.readouterr().out


def test_vhd_cli_validate_fails_with_a_fix_per_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_raw(tmp_path / "disk.vhd", 21 * MIB)
    vhd.to_fixed_vhd(path)
    with path.open("r+b") as handle:
        handle.seek(21 * MIB + 64)  # the checksum field
        handle.write(b"\0\0\0\0")
    assert main(["vhd", "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "Failed  checksum" in out
    assert "fix: convert the raw disk again" in out
    assert "Failed  qemu-virtual-size" in out  # qemu refuses the footer too
    assert "Incorrect header checksum" in out
    assert "result: 2 of 15 rules failed" in out


def test_vhd_cli_convert_to_a_new_file_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = make_raw(tmp_path / "disk.raw", 22 * MIB, DATA_OFFSETS[:2])
    out = tmp_path / "disk.vhd"
    assert main(["vhd", "convert", str(raw), "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["converted"] is True
    assert result["problems"] == []
    assert result["path"] == str(out)
    assert raw.stat().st_size == 22 * MIB
    assert allocated_bytes(out) < MIB

    assert main(["vhd", "convert", str(raw), "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["vhd", "inspect", str(raw)]) == 1
    assert "no VHD footer" in capsys.readouterr().err
    assert main(["vhd", "validate", str(tmp_path / "missing.vhd")]) == EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# `harness convert BUILD` on a build folder made by hand.

def fake_build(root: Path, size: int = 24 * MIB) -> Path:
    folder = root / "fake-distro" / "20260101-000000-abcdef"
    folder.mkdir(parents=True)
    raw = make_raw(folder / "disk.raw", size, DATA_OFFSETS[:3])
    write_json_atomic(folder / "manifest.json", {
        "recipe": "fake-distro", "build_id": folder.name, "family": "apt",
        "disk": {"file": "disk.raw", "size_mib": size // MIB, "size_bytes": size},
        "content_digest": content_digest(raw),
    })
    return folder


def test_convert_build_in_place_then_no_op(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = fake_build(tmp_path)
    raw_allocated = allocated_bytes(folder / "disk.raw")
    assert main(["convert", str(folder)]) == 0
    assert capsys.readouterr().out.strip() == str(folder / "disk.vhd")
    disk = folder / "disk.vhd"
    assert not (folder / "disk.raw").exists()
    assert disk.stat().st_size == 24 * MIB + 512
    assert allocated_bytes(disk) - raw_allocated <= os.statvfs(folder).f_bsize
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["disk"]["file"] == "disk.vhd"
    assert manifest["vhd"]["current_size"] == 24 * MIB
    assert manifest["vhd"]["unique_id"] == vhd.describe(vhd.read_footer(disk))["unique_id"]
    assert manifest["vhd"]["converted"]
    assert content_digest(disk, manifest["disk"]["size_bytes"]) == manifest["content_digest"]
    assert vhd.validate(disk) == []

    before = (folder / "manifest.json").read_text()
    assert main(["convert", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "already holds a valid disk.vhd; nothing to do" in captured.err
    assert captured.out.strip() == str(disk)
    assert (folder / "manifest.json").read_text() == before
    assert disk.stat().st_size == 24 * MIB + 512


def test_convert_build_by_recipe_name_with_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = fake_build(tmp_path)
    monkeypatch.setenv("HARNESS_BUILDS", str(tmp_path))
    assert main(["convert", "fake-distro@latest", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["converted"] is True
    assert result["vhd"] == str(folder / "disk.vhd")
    assert result["footer"]["disk_type"] == "fixed"


def test_convert_build_recovers_from_a_crash_before_the_rename(tmp_path: Path) -> None:
    folder = fake_build(tmp_path)
    vhd.to_fixed_vhd(folder / "disk.raw")  # footer written, rename and manifest never happened
    assert main(["convert", str(folder)]) == 0
    assert (folder / "disk.vhd").stat().st_size == 24 * MIB + 512
    assert json.loads((folder / "manifest.json").read_text())["disk"]["file"] == "disk.vhd"


def test_convert_build_refuses_a_disk_the_manifest_does_not_describe(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = fake_build(tmp_path)
    os.truncate(folder / "disk.raw", 25 * MIB)
    assert main(["convert", str(folder)]) == EXIT_IMAGE_FAILED
    assert "is 26214400 bytes but the build recorded 25165824 (grown)" in capsys.readouterr().err
    assert (folder / "disk.raw").stat().st_size == 25 * MIB
    assert not (folder / "disk.vhd").exists()
