"""`harness matrix --json`: the recipes as a CI job matrix (one job per recipe covers both firmwares)."""

from __future__ import annotations

import argparse
import fnmatch
from typing import Any

from harness import recipe as recipe_mod
from harness.commands._output import emit_json, table
from harness.vm.qemu import GENERATION

FIRMWARE_OF = {gen: fw for fw, gen in GENERATION.items()}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("matrix", help="recipes as a CI job matrix",
                       description="List recipes with their generations as a JSON matrix for CI systems "
                                   "({\"include\": [...]}, GitHub Actions' format; Azure Pipelines reads the same).")
    p.add_argument("--family", action="append", metavar="FAMILY", help="only these families (repeatable)")
    p.add_argument("--name", action="append", metavar="GLOB", help="only recipes whose name matches (repeatable)")
    p.add_argument("--buildable-here", action="store_true",
                   help="only recipes bootstrapped from a package archive (no vendor image or subscription)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def entries(families: list[str] | None, names: list[str] | None, buildable: bool) -> list[dict[str, Any]]:
    found = []
    for path in recipe_mod.all_recipes():
        r = recipe_mod.load(path)
        if families and r.family not in families:
            continue
        if names and not any(fnmatch.fnmatch(r.name, pattern) for pattern in names):
            continue
        if buildable and (r.source.base_image is not None or r.family != "apt"):
            continue
        found.append({
            "recipe": r.name, "family": r.family, "release": r.release, "agent": r.agent,
            "generations": list(r.generations), "firmwares": [FIRMWARE_OF[g] for g in r.generations],
            "firmware": "both" if len(r.generations) > 1 else FIRMWARE_OF[r.generations[0]],
            "source": "base_image" if r.source.base_image else r.source.bootstrap,
        })
    return found


def run(args: argparse.Namespace) -> int:
    items = entries(args.family, args.name, args.buildable_here)
    if args.json:
        emit_json({"include": items})
    else:
        table("CI matrix", ["recipe", "family", "generations", "firmware", "source"],
              [[i["recipe"], i["family"], ",".join(i["generations"]), i["firmware"], i["source"]] for i in items])
    return 0
