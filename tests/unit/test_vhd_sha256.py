"""The VHD's sha256 (manifest.vhd.sha256) is `sha256sum disk.vhd`: holes hashed as zeros, taken once by convert."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import pytest

from harness.buildfolder import BuildFolder
from harness.digest import CHUNK, content_digest
from harness.manifest import DiskStamp
from harness.sparsehash import file_sha256
from harness.stages import convert
from tests.factories import make_build, plain_sha256, sparse_file

MIB = 1024 * 1024


CASES = {
    "holes and data, partial last chunk": (3 * CHUNK + 12345, [(5, b"x" * 100), (CHUNK + 4096, os.urandom(CHUNK)),
                                                               (3 * CHUNK + 12000, b"tail")]),
    "all hole": (2 * CHUNK + 512, []),
    "empty": (0, []),
    "data only at the very end": (CHUNK + 511, [(CHUNK + 510, b"!")]),
    "no hole at all": (MIB + 3, [(0, os.urandom(MIB + 3))]),
    "allocated zeros": (2 * CHUNK, [(CHUNK, bytes(CHUNK))]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_file_sha256_equals_hashlib_over_the_whole_file(tmp_path: Path, case: str) -> None:
    size, writes = CASES[case]
    path = sparse_file(tmp_path / "disk.vhd", size, writes)
    assert file_sha256(path) == plain_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_sparse_file_really_has_holes_here(tmp_path: Path) -> None:
    """The comparison above means something only where the file system makes holes (SEEK_HOLE)."""
    path = sparse_file(tmp_path / "disk.vhd", 64 * MIB, [(MIB, b"data")])
    assert path.stat().st_blocks * 512 < 8 * MIB


def raw_build(tmp_path: Path) -> BuildFolder:
    build = make_build(tmp_path / "builds", build_id="20261201-000000-aaaaaa")
    disk = sparse_file(build.path / "disk.raw", 21 * MIB, [(MIB, os.urandom(300 * 1024)), (9 * MIB, b"root fs")])
    manifest = build.manifest()
    build.write_manifest(manifest.replace(content_digest=content_digest(disk), disk=dataclasses.replace(
        manifest.disk, size_bytes=21 * MIB, stamp=DiskStamp.of(disk))))
    return build


def test_convert_records_the_sha256_of_the_whole_vhd_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = raw_build(tmp_path)
    convert.run(build)
    vhd = build.path / "disk.vhd"
    info = build.manifest().vhd
    assert info is not None and info.sha256 == plain_sha256(vhd)  # = `sha256sum disk.vhd`
    assert info.sha256_stamp == DiskStamp.of(vhd)

    def never(path: Path) -> str:
        raise AssertionError("hashed again")

    monkeypatch.setattr(convert, "file_sha256", never)
    convert.run(build)  # already converted: the recorded digest stands
    assert convert.ensure_vhd_sha256(build).vhd == info


def test_a_vhd_touched_since_is_hashed_again(tmp_path: Path) -> None:
    build = raw_build(tmp_path)
    convert.run(build)
    vhd = build.path / "disk.vhd"
    os.utime(vhd, ns=(1, 1))
    manifest = convert.ensure_vhd_sha256(build)
    assert manifest.vhd is not None and manifest.vhd.sha256_stamp == DiskStamp.of(vhd)
    assert manifest.vhd.sha256 == plain_sha256(vhd)
