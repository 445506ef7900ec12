"""`harness check BUILD`: the offline audit of a build's disk (no boot, no mount), written to check.json."""

from __future__ import annotations

import argparse
from typing import Any

from harness.buildfolder import resolve
from harness.commands._output import emit_json, table
from harness.enums import Result
from harness.errors import EXIT_IMAGE_FAILED, EXIT_OK
from harness.stages import check
from harness.stages.check import CheckOptions

RESULT_ORDER = {Result.FAILED: 0, Result.WARNING: 1, Result.PASSED: 2, Result.SKIPPED: 3}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help="audit a build's disk offline (Azure readiness, generalization)",
                       description="Read the disk without booting or mounting it and report every offline rule "
                                   "of the image checklist, the generalization audit, the declared settings and "
                                   "any undeclared deviation. Exit code 1 when a rule failed.")
    p.add_argument("build", metavar="BUILD", help="build folder, or RECIPE[@BUILD_ID|@latest]")
    p.add_argument("--json", action="store_true", help="print check.json instead of tables")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = check.run(resolve(args.build), CheckOptions())
    data = report.to_json()
    if args.json:
        emit_json(data)
    else:
        show(data)
    return EXIT_OK if report.passed else EXIT_IMAGE_FAILED


def show(data: dict[str, Any]) -> None:
    records = sorted(data["records"], key=lambda r: RESULT_ORDER.get(r["result"], 9))
    table("offline audit", ["rule", "result", "actual", "required"],
          [[r["check"], r["result"], r.get("actual", ""), r.get("required", "")] for r in records])
    table("declared settings", ["file", "key / value", "holds", "reason"],
          [[s["file"], _setting_text(s), "yes" if s["holds"] else "NO", s["reason"]]
           for s in data.get("declared_settings", [])])
    deviations = data.get("deviations", [])
    if deviations:
        table("deviations from the distro's packaged files", ["file", "kind", "package", "declared"],
              [[d["file"], d["kind"], d["package"], "yes" if d["declared"] else "NO (warning)"] for d in deviations])
    counts = data.get("counts", {})
    failed = [r for r in data["records"] if r["result"] == Result.FAILED]
    print(f"check: {counts.get('Passed', 0)} passed, {counts.get('Warning', 0)} warnings, "
          f"{counts.get('Failed', 0)} failed, {counts.get('Skipped', 0)} skipped")
    for rec in failed:
        print(f"  FAILED {rec['check']}: {rec.get('message', '')}")


def _setting_text(setting: dict[str, Any]) -> str:
    if setting["key"]:
        return f"{setting['key']}={setting['value']}"
    lines = setting["value"].strip().splitlines()
    return lines[0] + (f" (+{len(lines) - 1} lines)" if len(lines) > 1 else "") if lines else "(empty file)"
