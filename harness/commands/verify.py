"""`harness verify BUILD`: boot the build on the fake Azure platform under each firmware; check the guest."""

from __future__ import annotations

import argparse

from harness.buildfolder import resolve
from harness.commands._args import add_verify_arguments, verify_options
from harness.commands._output import emit_json, table
from harness.enums import Result
from harness.errors import EXIT_IMAGE_FAILED, EXIT_OK
from harness.stages import verify


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help="boot the build on a fake Azure platform and check provisioning",
                       description="Boot a throw-away overlay of the build under QEMU (bios = SeaBIOS/Gen1, "
                                   "uefi = OVMF/Gen2) on a fake Azure platform, then check the guest over SSH.")
    p.add_argument("build", help="build folder or RECIPE[@BUILD_ID|@latest|@latest-passed]")
    add_verify_arguments(p)
    p.add_argument("--json", action="store_true", help="print verify.json instead of tables")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    build = resolve(args.build)
    report = verify.run(build, verify_options(args))
    if args.json:
        emit_json(report.to_json())
        return EXIT_OK if report.passed else EXIT_IMAGE_FAILED
    table(f"verify {build.recipe_name} {build.build_id} ({report.details.get('accel')})",
          ["boot", "check", "result", "actual", "required"],
          [[r.where, r.check, r.result, r.actual, r.required] for r in report.records])
    for name, boot in report.details.get("boots", {}).items():
        print(f"{name}: timings {boot.get('timings_s')} evidence {build.path / boot.get('evidence', '')}")
    for r in report.records:
        if r.result == Result.FAILED and r.message:
            print(f"FAILED {r.where} {r.check}: {r.message}")
    return EXIT_OK if report.passed else EXIT_IMAGE_FAILED
