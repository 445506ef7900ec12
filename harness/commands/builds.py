"""`harness builds list|prune`: the build folders on this machine, and keeping their number down."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from harness.buildfolder import BuildFolder, list_builds
from harness.commands._output import emit_json, table
from harness.digest import allocated_bytes
from harness.enums import Stage
from harness.errors import HarnessError
from harness.results import load_stage
from harness.stages.publish import published_ok


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("builds", help="list or prune build folders")
    bsub = p.add_subparsers(dest="builds_command", metavar="ACTION", required=True)
    lst = bsub.add_parser("list", help="every build with its stage results")
    lst.add_argument("recipe", nargs="?", help="only this recipe")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=list_command)
    prune = bsub.add_parser("prune", help="delete all but the newest N builds per recipe")
    prune.add_argument("--keep", type=int, required=True, metavar="N", help="builds to keep per recipe")
    prune.add_argument("recipe", nargs="?", help="only this recipe")
    prune.add_argument("--gallery", action="append", default=[], metavar="PATH",
                       help="local galleries whose versions' source builds are protected (default ./gallery)")
    prune.add_argument("--include-published", action="store_true",
                       help="also delete builds a gallery version came from")
    prune.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    prune.add_argument("--json", action="store_true")
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
    manifest = build.manifest()
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
        table("builds", ["recipe", "build id", "agent", "disk", "MiB used", "kernel", "check", "verify", "publish"],
              [[r["recipe"], r["build_id"], r["agent"], r["disk"], round(r["allocated_bytes"] / 2**20), r["kernel"],
                r["check"], r["verify"], r["publish"]] for r in rows])
    return 0


def published_sources(galleries: list[Path]) -> set[str]:
    """Build folders (resolved paths) that a local gallery version records as its source."""
    from harness.publish.local import LocalGallery

    sources: set[str] = set()
    for path in galleries:
        if not path.exists():
            continue
        gallery = LocalGallery.at(path)
        for definition in gallery.definitions():
            for version in gallery.versions(definition.name):
                sources.add(str(Path(version.source_build).resolve()))
    return sources


def _published(build: BuildFolder, sources: set[str]) -> bool:
    if str(build.path.resolve()) in sources:
        return True
    return published_ok(build)


def prune_command(args: argparse.Namespace) -> int:
    if args.keep < 0:
        raise HarnessError("--keep must be 0 or more", "e.g. --keep 3")
    sources = published_sources([Path(p) for p in (args.gallery or ["gallery"])])
    by_recipe: dict[str, list[BuildFolder]] = {}
    for build in list_builds(args.recipe):
        by_recipe.setdefault(build.path.parent.name, []).append(build)
    deleted, protected = [], []
    for builds in by_recipe.values():
        old = builds[:-args.keep] if args.keep else builds
        for build in old:
            if not args.include_published and _published(build, sources):
                protected.append(str(build.path))
                continue
            deleted.append(str(build.path))
            if not args.dry_run:
                shutil.rmtree(build.path)
    if args.json:
        emit_json({"deleted": deleted, "kept_published": protected, "dry_run": args.dry_run})
    else:
        for path in deleted:
            print(f"{'would delete' if args.dry_run else 'deleted'} {path}")
        for path in protected:
            print(f"kept {path} (a published version came from it; --include-published deletes it)")
    return 0
