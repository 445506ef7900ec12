"""`harness builds list|prune`: the build folders on this machine, and keeping their number down."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.buildfolder import BuildFolder, list_builds
from harness.commands._output import emit_json, human_size, table
from harness.digest import allocated_bytes
from harness.enums import Stage
from harness.errors import HarnessError
from harness.housekeeping import PUBLISHED_HINT, PruneOptions, PrunePlan, PruneResult, apply, plan_prune
from harness.results import load_stage


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("builds", help="list or prune build folders")
    bsub = p.add_subparsers(dest="builds_command", metavar="ACTION", required=True)
    lst = bsub.add_parser("list", help="every build with its stage results")
    lst.add_argument("recipe", nargs="?", help="only this recipe")
    lst.add_argument("--json", action="store_true", help="print the list as JSON (sizes in exact bytes)")
    lst.set_defaults(func=list_command)
    prune = bsub.add_parser("prune", help="delete all but the newest N builds per recipe, and stale scratch folders")
    prune.add_argument("--keep", type=int, required=True, metavar="N", help="builds to keep per recipe")
    prune.add_argument("recipe", nargs="?", help="only this recipe (a name, not a path)")
    prune.add_argument("--gallery", action="append", default=[], metavar="PATH",
                       help="a local gallery whose versions' source builds are protected (repeatable; the galleries "
                            "in each build's publish history always are)")
    prune.add_argument("--include-published", action="store_true",
                       help="also delete builds that were published or that a gallery version came from")
    prune.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    prune.add_argument("--json", action="store_true", help="print what was (or would be) deleted as JSON")
    prune.set_defaults(func=prune_command)


def _stage_result(build: BuildFolder, stage: Stage) -> str:
    try:
        report = load_stage(build, stage)
    except HarnessError:
        return "unreadable"
    if report is None:
        return "-"
    return report.result.value if report.passed else "FAILED"


def describe(build: BuildFolder) -> dict[str, Any]:
    try:
        manifest = build.manifest()
    except HarnessError as exc:  # one damaged build must not hide the others
        return {"recipe": build.recipe_name, "build_id": build.build_id, "path": str(build.path), "created": "",
                "agent": "", "os_state": "", "disk": "unreadable", "allocated_bytes": 0, "kernel": "",
                "check": "-", "verify": "-", "publish": "-", "error": exc.message}
    try:
        disk = build.disk()
        disk_name, allocated = disk.name, allocated_bytes(disk)
    except HarnessError:
        disk_name, allocated = "missing", 0
    return {
        "recipe": manifest.recipe, "build_id": build.build_id, "path": str(build.path),
        "created": manifest.created, "agent": manifest.agent.value, "os_state": manifest.os_state.value,
        "disk": disk_name, "allocated_bytes": allocated, "kernel": manifest.kernel_version,
        "check": _stage_result(build, Stage.CHECK), "verify": _stage_result(build, Stage.VERIFY),
        "publish": _stage_result(build, Stage.PUBLISH),
    }


def list_command(args: argparse.Namespace) -> int:
    rows = [describe(b) for b in list_builds(args.recipe)]
    if args.json:
        emit_json(rows)
    else:
        table("builds", ["recipe", "build id", "agent", "disk", "used", "kernel", "check", "verify", "publish"],
              [[r["recipe"], r["build_id"], r["agent"], r["disk"], human_size(r["allocated_bytes"]), r["kernel"],
                r["check"], r["verify"], r["publish"]] for r in rows])
    return 0


def prune_command(args: argparse.Namespace) -> int:
    options = PruneOptions(keep=args.keep, recipe=args.recipe, galleries=tuple(Path(p) for p in args.gallery),
                           include_published=args.include_published)
    plan = plan_prune(options)
    result = None if args.dry_run else apply(plan)
    if args.json:
        data = {**plan.to_json(), "dry_run": args.dry_run, "failed": []}
        if result is not None:  # what was actually deleted, not what was planned
            data["deleted"] = [p for p in data["deleted"] if Path(p) in result.deleted]
            data["stale"] = [i for i in data["stale"] if Path(i["path"]) in result.deleted]
            data["failed"] = [i.to_json() for i in result.failed]
        emit_json(data)
    else:
        show_prune(plan, result)
    if result and result.failed:
        raise HarnessError(f"{len(result.failed)} folder(s) could not be deleted: "
                           + "; ".join(f"{i.path}: {i.reason}" for i in result.failed),
                           "check their permissions and run prune again")
    return 0


def show_prune(plan: PrunePlan, result: PruneResult | None) -> None:
    """Deleted (or would be), protected and skipped folders, each with its reason."""
    done = set(result.deleted) if result else set()
    for item in (*plan.delete, *plan.stale):
        if result is None:
            print(f"would delete {item.path} ({item.reason})")
        elif item.path in done:
            print(f"deleted {item.path} ({item.reason})")
    for item in plan.protected:
        print(f"kept {item.path} ({item.reason}; {PUBLISHED_HINT})")
    for item in plan.skipped:
        print(f"skipped {item.path} ({item.reason})")
    for note in plan.notes:
        print(f"note: {note}")
