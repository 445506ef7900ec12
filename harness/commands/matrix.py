"""`harness matrix --json`: the recipes as a CI job matrix (one job per recipe covers both firmwares)."""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
from typing import Any

from harness import recipe as recipe_mod
from harness.commands._output import emit_json, table
from harness.vm.qemu import GENERATION

FIRMWARE_OF = {gen: fw for fw, gen in GENERATION.items()}
ORIGINS = ("all", "user", "builtin")
FORMATS = ("github", "azure-pipelines")
# Azure Pipelines: a matrix leg's name holds only letters, digits and '_', and starts with a letter.
_LEG_FORBIDDEN = re.compile(r"[^A-Za-z0-9_]")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("matrix", help="recipes as a CI job matrix",
                       description="List recipes with their generations as a JSON matrix for CI systems: "
                                   "{\"include\": [...]} for GitHub Actions (default), or one leg per recipe "
                                   "for Azure Pipelines (--format azure-pipelines).")
    p.add_argument("--family", action="append", metavar="FAMILY", help="only these families (repeatable)")
    p.add_argument("--name", action="append", metavar="GLOB", help="only recipes whose name matches (repeatable)")
    p.add_argument("--buildable-here", action="store_true",
                   help="only recipes bootstrapped from a package archive (no vendor image or subscription)")
    p.add_argument("--origin", choices=ORIGINS, default="all",
                   help="user: only recipes from your folders (--recipes, $HARNESS_RECIPES); builtin: only the "
                        "built-in ones; all (default)")
    p.add_argument("--format", choices=FORMATS, default="github",
                   help="github: {\"include\": [...]} (default); azure-pipelines: {LEG: {variables}}, leg names of "
                        "letters, digits and '_', every value a string")
    p.add_argument("--json", action="store_true", help="print the matrix as JSON")
    p.add_argument("--compact", action="store_true",
                   help="with --json: one line, for `echo \"matrix=$(...)\" >> \"$GITHUB_OUTPUT\"`")
    p.set_defaults(func=run)


def _wanted(entry: recipe_mod.RecipeEntry, origin: str) -> bool:
    return origin == "all" or (origin == "builtin") == entry.builtin


def entries(families: list[str] | None, names: list[str] | None, buildable: bool,
            origin: str = "all") -> list[dict[str, Any]]:
    found = []
    for entry in recipe_mod.index():
        if not _wanted(entry, origin):
            continue
        r = recipe_mod.load(entry.path)
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
            "origin": "builtin" if entry.builtin else "user",
        })
    return found


def leg_name(recipe: str, taken: set[str]) -> str:
    """'ubuntu-24.04' -> 'ubuntu_24_04' (unique among `taken`, which it joins)."""
    base = _LEG_FORBIDDEN.sub("_", recipe)
    base = base if base[:1].isalpha() else f"r_{base}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def azure_legs(items: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Azure Pipelines' matrix: one leg per recipe, each value a string (lists joined with ',')."""
    taken: set[str] = set()
    return {leg_name(i["recipe"], taken): {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in i.items()}
            for i in items}


def run(args: argparse.Namespace) -> int:
    items = entries(args.family, args.name, args.buildable_here, args.origin)
    data: Any = azure_legs(items) if args.format == "azure-pipelines" else {"include": items}
    if args.json and args.compact:
        print(json.dumps(data, separators=(",", ":")))
    elif args.json:
        emit_json(data)
    else:
        table("CI matrix", ["recipe", "family", "generations", "firmware", "source", "origin"],
              [[i["recipe"], i["family"], ",".join(i["generations"]), i["firmware"], i["source"], i["origin"]]
               for i in items])
    return 0
