"""A root the audit and verify cannot read yet (XFS as RHEL-like images have, btrfs as SLES has) is one clear
error naming the layout found, from the offline image model up to `harness check` and `harness verify`."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import proc
from harness.builder.layout import plan
from harness.buildfolder import BuildFolder
from harness.checks.diskread import ImageReadError
from harness.checks.image import Image
from tests.factories import make_build
from tests.integration.plant import rehash

pytestmark = pytest.mark.fstools

MIB = 1024 * 1024
MKFS = {"xfs": ["mkfs.xfs", "-q", "-f"], "btrfs": ["mkfs.btrfs", "-q", "-f"]}


def _splice(source: Path, disk: Path, offset: int) -> None:
    """Copy source into disk at offset, skipping zero blocks (both stay sparse)."""
    with source.open("rb") as src, disk.open("r+b") as dst:
        position = 0
        while block := src.read(MIB):
            if block.count(0) != len(block):
                dst.seek(offset + position)
                dst.write(block)
            position += len(block)


def build_with_root(tmp_path: Path, fs: str) -> BuildFolder:
    """A build folder whose disk has the harness's own layout (BIOS boot, ESP, root) with `fs` as the root."""
    layout = plan(512, 64)
    build = make_build(tmp_path / "builds", disk={"file": "disk.raw", "size_bytes": layout.disk_size_bytes,
                                                  "layout": layout.to_json()})
    disk = build.path / "disk.raw"
    with disk.open("wb") as handle:
        handle.truncate(layout.disk_size_bytes)
    guids = {p.name: f"00000000-0000-4000-8000-00000000000{i}" for i, p in enumerate(layout.partitions, 1)}
    proc.run(["sfdisk", "-q", disk], input_bytes=layout.sfdisk_script(
        "00000000-0000-4000-8000-0000000000aa", guids).encode())
    root = layout.by_name("root")
    image = tmp_path / f"root.{fs}"
    with image.open("wb") as handle:
        handle.truncate(root.size_bytes)
    proc.run([*MKFS[fs], image])
    _splice(image, disk, root.start_bytes)
    rehash(build)  # its content digest, as a build records it
    return build


@pytest.mark.parametrize("fs", ["xfs", "btrfs"])
def test_unreadable_root_names_the_layout_found(tmp_path: Path, fs: str) -> None:
    build = build_with_root(tmp_path, fs)
    image = Image(build, tmp_path / "scratch")
    with pytest.raises(ImageReadError) as caught:
        image.root_part  # noqa: B018 - the property reads the disk
    message = str(caught.value)
    assert "no readable ext4 root partition in disk.raw" in message, message
    assert f"Linux filesystem ({fs})" in message and "EFI System" in message and "BIOS boot" in message, message
    assert "\n" not in message


def test_check_and_verify_say_it_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    build = build_with_root(tmp_path, "xfs")
    assert main(["check", str(build.path)]) == 1
    out = capsys.readouterr()
    assert "Linux filesystem (xfs)" in out.out + out.err and "Traceback" not in out.out + out.err
    assert main(["verify", str(build.path), "--firmware", "bios"]) != 0
    err = capsys.readouterr().err
    assert "Linux filesystem (xfs)" in err and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err
