"""`harness verify BUILD`: boot the build on the fake Azure platform under each firmware; check the guest."""

from __future__ import annotations

import argparse

from harness.buildfolder import resolve
from harness.commands._output import emit_json, table
from harness.report import FAILED


def add_boot_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by verify, boot and run."""
    p.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto",
                   help="accelerator (default: probe KVM once per host, fall back to TCG)")
    p.add_argument("--keep", choices=["never", "on-error", "always"], default="on-error",
                   help="keep the scratch folder (overlay, OVMF vars, media, SSH key) (default: on-error)")
    p.add_argument("--fault", action="append", default=[], metavar="RULE",
                   help="inject a platform fault, e.g. wireserver:health=500x3 (repeatable)")
    p.add_argument("--timeout-s", type=float, metavar="S", help="boot-to-Ready timeout (default: the recipe's)")
    p.add_argument("--parallel", type=int, default=0, metavar="N",
                   help="boots to run side by side (default: one per CPU core)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help="boot the build on a fake Azure platform and check provisioning",
                       description="Boot a throw-away overlay of the build under QEMU (bios = SeaBIOS/Gen1, "
                                   "uefi = OVMF/Gen2) on a fake Azure platform, then check the guest over SSH.")
    p.add_argument("build", help="build folder or RECIPE[@BUILD_ID|@latest]")
    p.add_argument("--firmware", choices=["bios", "uefi", "both"], default="both")
    p.add_argument("--platform", choices=["azure", "nocloud", "all"], default="azure")
    add_boot_arguments(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def firmwares(choice: str) -> tuple[str, ...]:
    return ("bios", "uefi") if choice == "both" else (choice,)


def platforms(choice: str) -> tuple[str, ...]:
    return ("azure", "nocloud") if choice == "all" else (choice,)


def run(args: argparse.Namespace) -> int:
    from harness.verify.stage import VerifyOptions, verify

    build = resolve(args.build)
    options = VerifyOptions(firmwares=firmwares(args.firmware), platforms=platforms(args.platform), keep=args.keep,
                            faults=tuple(args.fault), timeout_s=args.timeout_s, accel=args.accel,
                            parallel=args.parallel)
    report = verify(build, options)
    data = report.to_json()
    if args.json:
        emit_json(data)
    else:
        table(f"verify {build.recipe_name} {build.build_id} ({report.extra.get('accel')})",
              ["boot", "check", "result", "actual", "required"],
              [[f"{r.firmware}-{r.platform}", r.check, r.result, r.actual, r.required] for r in report.records])
        for name, boot in report.extra.get("boots", {}).items():
            print(f"{name}: timings {boot.get('timings_s')} evidence {boot.get('evidence')}")
        for r in report.records:
            if r.result == FAILED and r.message:
                print(f"FAILED {r.firmware}-{r.platform} {r.check}: {r.message}")
    return 0 if report.passed else 1
