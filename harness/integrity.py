"""The disk a stage trusts is the disk the build hashed: compared before check, verify, convert and publish.

The build records the content digest with a stamp of the file (size, mtime, inode). When the stamp still
matches, the digest holds without reading the disk; otherwise the data part is hashed again (one pass over
its data, holes skipped) and a different digest stops the stage, whatever flag was given.
"""

from __future__ import annotations

import dataclasses
import logging

from harness.buildfolder import RAW, VHD, BuildFolder
from harness.digest import content_digest
from harness.errors import IntegrityError
from harness.manifest import DiskStamp, Manifest
from harness.vhd.footer import FOOTER_SIZE

log = logging.getLogger(__name__)

REBUILD = "rebuild it with 'harness build --rebuild'; a disk changed after its build is never checked, " \
          "verified or published"


def disk_of(build: BuildFolder) -> tuple[str, int]:
    """(file name, expected file size) of the build's disk in its current state (BuildFolder.disk refuses a build
    holding both disks, or a disk that is not a regular file)."""
    manifest = build.manifest()
    path = build.disk()
    if path.name == VHD:
        return VHD, manifest.disk.size_bytes + FOOTER_SIZE
    if path.stat().st_size == manifest.disk.size_bytes + FOOTER_SIZE:
        raise IntegrityError(f"{path} already ends in a VHD footer: a 'harness convert' was interrupted",
                             f"run 'harness convert {build.path}' again to finish it")
    return RAW, manifest.disk.size_bytes


def require_unchanged(build: BuildFolder, stage: str) -> Manifest:
    """The manifest, once the disk is shown to hold the content the build recorded; raises IntegrityError."""
    manifest = build.manifest()
    if not manifest.content_digest:
        raise IntegrityError(f"build {build.path} records no content digest", REBUILD)
    name, expected_size = disk_of(build)
    path = build.path / name
    stamp = DiskStamp.of(path)
    if stamp.size_bytes != expected_size:
        raise IntegrityError(f"{stage}: {path} is {stamp.size_bytes} bytes but the build recorded "
                             f"{expected_size} ({'truncated' if stamp.size_bytes < expected_size else 'grown'})",
                             REBUILD)
    if manifest.disk.stamp == stamp:
        return manifest
    log.info("%s: %s changed on disk since its digest was recorded (size, mtime or inode); hashing it again",
             stage, path.name)
    actual = content_digest(path, manifest.disk.size_bytes)
    if actual != manifest.content_digest:
        raise IntegrityError(f"{stage}: the disk of build {build.path} changed after the build: its content digest "
                             f"is {actual}, the build recorded {manifest.content_digest}", REBUILD)
    return record_stamp(build, manifest, stamp)


def record_stamp(build: BuildFolder, manifest: Manifest, stamp: DiskStamp) -> Manifest:
    """Remember that this file state holds the recorded content (so the next stage need not re-hash); the
    manifest is re-read under the folder's lock so a concurrent stage's update is never lost."""
    with build.locked():
        current = build.manifest()
        if current.content_digest != manifest.content_digest:
            raise IntegrityError(f"the manifest of build {build.path} changed while its disk was being checked",
                                 "rerun the stage")
        updated = current.replace(disk=dataclasses.replace(current.disk, stamp=stamp))
        build.write_manifest(updated)
    return updated
