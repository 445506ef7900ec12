"""A disk changed after its build is never checked, verified, converted or published (issue: check and publish
trusted a digest recorded at build time and never compared it again)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from harness.buildfolder import BuildFolder
from harness.digest import content_digest
from harness.errors import IntegrityError
from harness.integrity import require_unchanged
from harness.manifest import DiskStamp
from harness.stages import convert, publish
from harness.stages.publish import LocalTarget, PublishOptions
from tests.factories import make_build

MIB = 1024 * 1024
SIZE = 21 * MIB


@pytest.fixture
def built(tmp_path: Path) -> BuildFolder:
    """A build folder whose disk.raw holds data, with the digest and stamp a build records."""
    build = make_build(tmp_path / "builds", build_id="20260101-000000-aaaaaa")
    disk = build.path / "disk.raw"
    with disk.open("wb") as handle:
        handle.truncate(SIZE)
        handle.seek(5 * MIB)
        handle.write(b"root file system" * 1000)
    manifest = build.manifest()
    build.write_manifest(manifest.replace(content_digest=content_digest(disk, SIZE),
                                          disk=dataclasses.replace(manifest.disk, size_bytes=SIZE,
                                                                   stamp=DiskStamp.of(disk))))
    return build


def _tamper(build: BuildFolder, offset: int = 5 * MIB) -> None:
    with (build.path / "disk.raw").open("r+b") as handle:
        handle.seek(offset)
        handle.write(b"evil")


def test_an_unchanged_disk_is_trusted_without_reading_it(built: BuildFolder) -> None:
    assert require_unchanged(built, "check") == built.manifest()


def test_a_touched_but_identical_disk_is_rehashed_and_its_new_stamp_kept(built: BuildFolder) -> None:
    os.utime(built.path / "disk.raw", ns=(1, 1))
    manifest = require_unchanged(built, "check")
    assert manifest.disk.stamp == DiskStamp.of(built.path / "disk.raw") == built.manifest().disk.stamp


@pytest.mark.parametrize("stage", ["check", "verify", "convert", "publish"])
def test_a_changed_disk_is_refused_naming_both_digests(built: BuildFolder, stage: str) -> None:
    _tamper(built)
    with pytest.raises(IntegrityError, match="changed after the build") as info:
        require_unchanged(built, stage)
    assert built.manifest().content_digest in info.value.message and "--rebuild" in info.value.hint


def test_truncated_and_grown_disks_are_size_mismatches(built: BuildFolder) -> None:
    os.truncate(built.path / "disk.raw", SIZE - MIB)
    with pytest.raises(IntegrityError, match="truncated"):
        require_unchanged(built, "check")
    os.truncate(built.path / "disk.raw", SIZE + MIB)
    with pytest.raises(IntegrityError, match="grown"):
        require_unchanged(built, "check")


def test_convert_and_forced_publish_refuse_a_changed_disk(built: BuildFolder, tmp_path: Path) -> None:
    _tamper(built)
    with pytest.raises(IntegrityError):
        convert.run(built)
    assert (built.path / "disk.raw").stat().st_size == SIZE  # nothing appended
    with pytest.raises(IntegrityError):
        publish.run(built, PublishOptions(target=LocalTarget(tmp_path / "gallery"), force_unverified=True))
    assert not (tmp_path / "gallery").exists()


def test_both_disks_and_an_interrupted_convert_are_named(built: BuildFolder) -> None:
    (built.path / "disk.vhd").write_bytes(b"")
    with pytest.raises(IntegrityError, match=r"both disk\.raw and disk\.vhd"):
        require_unchanged(built, "check")
    (built.path / "disk.vhd").unlink()
    with (built.path / "disk.raw").open("ab") as handle:
        handle.write(bytes(512))
    with pytest.raises(IntegrityError, match="convert' was interrupted"):
        require_unchanged(built, "check")


def test_convert_finishes_an_interrupted_conversion(built: BuildFolder) -> None:
    from harness import vhd

    vhd.to_fixed_vhd(built.path / "disk.raw")  # killed right after the footer was appended, before the rename
    report = convert.run(built)
    assert report.details["converted"] and (built.path / "disk.vhd").exists()
    assert built.manifest().disk.file == "disk.vhd" and built.manifest().vhd is not None
    assert require_unchanged(built, "publish").content_digest == built.manifest().content_digest
