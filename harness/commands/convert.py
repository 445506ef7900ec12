"""`harness convert BUILD`: the build's disk.raw becomes disk.vhd in place (footer appended, renamed; no copy)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import vhd
from harness.buildfolder import RAW, VHD, BuildFolder, resolve, write_json_atomic
from harness.commands._output import emit_json
from harness.errors import NotFoundError, VhdError
from harness.log import stage
from harness.report import now


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("convert", help="turn a build's disk.raw into a validated fixed disk.vhd (in place)",
                       description="Append a fixed VHD footer to the build's disk.raw and rename it disk.vhd; "
                                   "a build that already holds a valid disk.vhd is left alone.")
    p.add_argument("build", metavar="BUILD", help="build folder path or RECIPE[@BUILD_ID|@latest]")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


@dataclass
class ConvertResult:
    """What `convert_build` did: the VHD path, whether anything changed, its footer fields."""

    build: str
    vhd: str
    converted: bool
    footer: dict[str, Any] = field(default_factory=dict)


def convert_build(build: BuildFolder) -> ConvertResult:
    """Convert the build's disk in place, validate it (every rule), and record the footer in manifest.json."""
    raw, target = build.path / RAW, build.path / VHD
    converted = False
    if not target.exists():
        if not raw.exists():
            raise NotFoundError(f"build {build.path} holds no disk.raw or disk.vhd", "rebuild it with 'harness build'")
        # A crash between the footer write and the rename leaves disk.raw already a VHD: just rename it.
        if not vhd.is_fixed_vhd(raw):
            _check_raw_size(build, raw)
            vhd.to_fixed_vhd(raw)
            converted = True
        os.rename(raw, target)
    # Record first: the disk is a VHD now whatever the rules say, and the manifest must say so.
    footer = vhd.describe(vhd.read_footer(target))
    _record(build, footer, converted)
    problems = vhd.validate(target)
    if problems:
        names = ", ".join(f"{p.rule} ({p.message})" for p in problems)
        raise VhdError(f"{target} fails VHD rules: {names}", problems[0].hint)
    return ConvertResult(str(build.path), str(target), converted, footer)


def _check_raw_size(build: BuildFolder, raw: Path) -> None:
    """Pre-flight: the disk must be the one the build hashed, or the manifest's content digest would lie."""
    expected = build.manifest().get("disk", {}).get("size_bytes")
    actual = raw.stat().st_size
    if expected is not None and actual != expected:
        raise VhdError(f"{raw} is {actual} bytes but the manifest records {expected}",
                       "the disk changed after the build; rebuild it with 'harness build --rebuild'")


def _record(build: BuildFolder, footer: dict[str, Any], converted: bool) -> None:
    """manifest.json: disk.file -> disk.vhd and a `vhd` summary; the content digest covers the data and stays."""
    manifest = build.manifest()
    disk = manifest.setdefault("disk", {})
    previous = manifest.get("vhd", {})
    if not converted and disk.get("file") == VHD and previous.get("unique_id") == footer["unique_id"]:
        return
    disk["file"] = VHD
    manifest["vhd"] = {
        "file": VHD,
        "current_size": footer["current_size"],
        "creator_app": footer["creator_app"],
        "geometry": footer["geometry"],
        "unique_id": footer["unique_id"],
        "checksum": footer["checksum"],
        "footer_timestamp": footer["timestamp"],
        "converted": previous.get("converted") if not converted and previous else now(),
    }
    write_json_atomic(build.manifest_path, manifest)


def run(args: argparse.Namespace) -> int:
    build = resolve(args.build)
    with stage("convert", str(build.path)):
        result = convert_build(build)
    if args.json:
        emit_json(asdict(result))
        return 0
    if not result.converted:
        print(f"build {build.path} already holds a valid {VHD}; nothing to do", file=sys.stderr)
    print(result.vhd)
    return 0
