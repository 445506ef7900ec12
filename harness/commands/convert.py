"""`harness convert BUILD`: the build's disk.raw becomes disk.vhd in place (footer appended, renamed; no copy)."""

from __future__ import annotations

import argparse
import sys

from harness.buildfolder import VHD, resolve
from harness.commands._output import emit_json
from harness.stages import convert


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("convert", help="turn a build's disk.raw into a validated fixed disk.vhd (in place)",
                       description="Append a fixed VHD footer to the build's disk.raw and rename it disk.vhd; "
                                   "a build that already holds a valid disk.vhd is left alone.")
    p.add_argument("build", metavar="BUILD", help="build folder path or RECIPE[@BUILD_ID|@latest]")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    build = resolve(args.build)
    report = convert.run(build)
    if args.json:
        emit_json({"build": str(build.path), "vhd": str(build.path / report.artifacts["vhd"]), **report.details})
        return 0
    if not report.details["converted"]:
        print(f"build {build.path} already holds a valid {VHD}; nothing to do", file=sys.stderr)
    print(build.path / report.artifacts["vhd"])
    return 0
