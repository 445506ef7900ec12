"""`harness recipes list|validate`."""

from __future__ import annotations

import argparse
import sys

from harness import recipe as recipe_mod
from harness.commands._output import emit_json, table
from harness.errors import HarnessError, RecipeError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("recipes", help="list or validate recipes")
    rsub = p.add_subparsers(dest="recipes_command", metavar="ACTION", required=True)
    lst = rsub.add_parser("list", help="list the recipes under distros/")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=list_recipes)
    val = rsub.add_parser("validate", help="validate recipe files (all by default)")
    val.add_argument("files", nargs="*", metavar="FILE")
    val.add_argument("--json", action="store_true")
    val.set_defaults(func=validate)


def list_recipes(args: argparse.Namespace) -> int:
    rows = []
    for path in recipe_mod.all_recipes():
        try:
            r = recipe_mod.load(path)
            source = "base image" if r.source.base_image else r.source.bootstrap
            rows.append({"name": r.name, "family": r.family, "release": r.release, "agent": r.agent,
                         "source": source, "generations": list(r.generations), "extends": r.data.get("extends", "")})
        except HarnessError as exc:
            rows.append({"name": path.stem, "error": exc.message})
    if args.json:
        emit_json(rows)
    else:
        table("recipes", ["name", "family", "release", "agent", "source", "generations", "extends"],
              [[r.get("name"), r.get("family", "INVALID"), r.get("release", r.get("error", "")), r.get("agent"),
                r.get("source"), ",".join(r.get("generations", [])), r.get("extends")] for r in rows])
    return 0


def validate(args: argparse.Namespace) -> int:
    paths = args.files or [str(p) for p in recipe_mod.all_recipes()]
    results = []
    for path in paths:
        try:
            recipe_mod.load(path)
            results.append({"file": path, "valid": True, "problems": []})
        except RecipeError as exc:
            results.append({"file": path, "valid": False, "problems": exc.problems})
        except HarnessError as exc:
            results.append({"file": path, "valid": False, "problems": [exc.message]})
    if args.json:
        emit_json(results)
    else:
        for result in results:
            if result["valid"]:
                print(f"ok      {result['file']}")
            else:
                print(f"INVALID {result['file']}")
                for problem in result["problems"]:
                    print(f"  - {problem}", file=sys.stdout)
    return 0 if all(r["valid"] for r in results) else 1
