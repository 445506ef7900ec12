"""Stage `convert`: the build's disk.raw becomes disk.vhd in place (footer appended, renamed; no copy).

Each step leaves a state a re-run recognises: a disk.raw that already ends in this build's footer (killed
before the rename) is renamed, and a disk.vhd whose manifest still says raw (killed before the manifest
was replaced) gets its manifest. The data before the footer is the content the build hashed, which
`require_unchanged` shows before anything is written.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from harness import vhd
from harness.buildfolder import RAW, VHD, BuildFolder
from harness.digest import content_digest
from harness.enums import Stage, Verdict
from harness.errors import IntegrityError, VhdError
from harness.integrity import REBUILD, record_stamp, require_unchanged
from harness.log import stage
from harness.manifest import DiskStamp, Manifest, VhdInfo
from harness.results import Record, StageReport, now
from harness.sparsehash import file_sha256
from harness.vhd.footer import FOOTER_SIZE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConvertOptions:
    """Conversion has no knobs: a fixed VHD in place is the only output Azure takes."""


def run(build: BuildFolder, options: ConvertOptions = ConvertOptions()) -> StageReport:
    """Convert the build's disk in place, validate it (every rule), and record the footer in manifest.json."""
    start = time.monotonic()
    with stage("convert", str(build.path)):
        raw, target = build.path / RAW, build.path / VHD
        converted = not target.exists() and raw.exists()
        if converted:
            manifest = _footer_raw(build, raw)
            os.rename(raw, target)
            # Only a footer was appended to data just shown to be the build's: the new file state holds it.
            manifest = record_stamp(build, manifest, DiskStamp.of(target))
        else:
            manifest = require_unchanged(build, "convert")
        footer = vhd.describe(vhd.read_footer(target))
        manifest = _record(build, manifest, footer)
        manifest = ensure_vhd_sha256(build, manifest)
        rules = vhd.check(target)
    records = [Record(stage="convert", check=f"VHD {r.rule}", result=r.result, actual=r.actual, required=r.required,
                      message=r.message) for r in rules]
    failed = [r for r in rules if r.failed]
    if failed:
        names = ", ".join(f"{r.rule} ({r.message})" for r in failed)
        raise VhdError(f"{target} fails VHD rules: {names}", failed[0].hint)
    return StageReport(stage=Stage.CONVERT, content_digest=manifest.content_digest, records=records,
                       verdict=Verdict.PASSED if converted else Verdict.NO_OP,
                       duration_s=round(time.monotonic() - start, 1), artifacts={"vhd": target.name},
                       details={"converted": converted, "footer": footer},
                       summary=str(target) if converted else f"already {VHD}")


def _footer_raw(build: BuildFolder, raw: Path) -> Manifest:
    """Append the footer to disk.raw unless a killed earlier run already did (then only its data is checked)."""
    manifest = build.manifest()
    if raw.stat().st_size == manifest.disk.size_bytes + FOOTER_SIZE and vhd.is_fixed_vhd(raw):
        if content_digest(raw, manifest.disk.size_bytes) != manifest.content_digest:
            raise IntegrityError(f"convert: the disk of build {build.path} changed after the build", REBUILD)
        return manifest
    manifest = require_unchanged(build, "convert")
    vhd.to_fixed_vhd(raw)
    return manifest


def _record(build: BuildFolder, manifest: Manifest, footer: dict[str, object]) -> Manifest:
    """manifest.json: disk.file -> disk.vhd, the new file stamp and a `vhd` summary; the digest stays. Re-read
    under the folder's lock, so a concurrent stage's update of the manifest is never lost."""
    previous = manifest.vhd
    if manifest.disk.file == VHD and previous is not None and previous.unique_id == footer["unique_id"]:
        return manifest
    info = VhdInfo.from_json({**footer, "file": VHD, "footer_timestamp": footer["timestamp"], "converted": now()})
    stamp = DiskStamp.of(build.path / VHD)
    with build.locked():
        current = build.manifest()
        updated = current.replace(disk=dataclasses.replace(current.disk, file=VHD, stamp=stamp), vhd=info)
        build.write_manifest(updated)
    return updated


def ensure_vhd_sha256(build: BuildFolder, manifest: Manifest | None = None) -> Manifest:
    """manifest.vhd.sha256: the sha256 of the whole disk.vhd (what `sha256sum disk.vhd` prints), taken once when the
    VHD is made and again only when the file is not in the state it was taken from (a build converted before this
    was recorded, or a file touched since). Publishing names the VHD by this digest."""
    manifest = manifest or build.manifest()
    if manifest.vhd is None:
        raise VhdError(f"build {build.path} records no VHD", f"run 'harness convert {build.path}'")
    path = build.path / VHD
    stamp = DiskStamp.of(path)
    if manifest.vhd.sha256 and manifest.vhd.sha256_stamp == stamp:
        return manifest
    start = time.monotonic()
    digest = file_sha256(path)
    elapsed_s = max(time.monotonic() - start, 1e-6)
    log.info("convert: sha256 of %s in %.1f s (%.2f GB/s)", path.name, elapsed_s, stamp.size_bytes / elapsed_s / 1e9)
    with build.locked():
        current = build.manifest()
        if current.vhd is None or DiskStamp.of(path) != stamp:
            raise IntegrityError(f"{path} changed while its sha256 was taken", "rerun the stage")
        updated = current.replace(vhd=dataclasses.replace(current.vhd, sha256=digest, sha256_stamp=stamp))
        build.write_manifest(updated)
    return updated
