"""`harness recipes list|validate|schema`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from harness import recipe as recipe_mod
from harness.commands._output import emit_json, table
from harness.errors import HarnessError, RecipeError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("recipes", help="list, validate or describe recipes",
                       description="Recipes are looked up in your folders (--recipes DIR, $HARNESS_RECIPES) first, "
                                   "then among the built-in recipes shipped with the harness.")
    rsub = p.add_subparsers(dest="recipes_command", metavar="ACTION", required=True)
    lst = rsub.add_parser("list", help="every recipe with where it comes from (a folder of yours, or builtin)")
    lst.add_argument("--json", action="store_true", help="print the list as JSON")
    lst.add_argument("--names", action="store_true", help="print only the names, one per line (for scripts and "
                                                           "shell completion)")
    lst.set_defaults(func=list_recipes)
    val = rsub.add_parser("validate", help="validate recipe files (every recipe on the search path by default)")
    val.add_argument("files", nargs="*", metavar="FILE", help="recipe files or names (default: all)")
    val.add_argument("--json", action="store_true", help="print the results as JSON")
    val.set_defaults(func=validate)
    schema = rsub.add_parser("schema", help="print the recipe format as a JSON Schema (draft 2020-12)",
                             description="The JSON Schema of a recipe file, generated from the validator's own "
                                         "tables; editors and check-jsonschema can use it (recipe files are TOML: "
                                         "convert them to JSON, or use an editor that maps TOML to JSON Schema).")
    schema.add_argument("--compact", action="store_true", help="one line instead of indented JSON")
    schema.set_defaults(func=print_schema)


def _row(entry: recipe_mod.RecipeEntry) -> dict[str, Any]:
    row: dict[str, Any] = {"name": entry.name, "origin": entry.origin, "path": str(entry.path),
                           "shadows": entry.shadows_labels()}
    try:
        r = recipe_mod.load(entry.path)
    except HarnessError as exc:
        return {**row, "error": exc.message}
    source = "base image" if r.source.base_image else r.source.bootstrap
    return {**row, "family": r.family, "release": r.release, "agent": r.agent, "source": source,
            "generations": list(r.generations), "extends": r.data.get("extends", ""), "label": r.source_label}


def list_recipes(args: argparse.Namespace) -> int:
    if args.names:
        for entry in recipe_mod.index():
            print(entry.name)
        return 0
    rows = [_row(entry) for entry in recipe_mod.index()]
    if args.json:
        emit_json(rows)
        return 0
    table("recipes", ["name", "family", "release", "agent", "source", "generations", "extends", "from"],
          [[r["name"], r.get("family", "INVALID"), r.get("release", r.get("error", "")), r.get("agent"),
            r.get("source"), ",".join(r.get("generations", [])), r.get("extends"), _origin(r)] for r in rows])
    return 0


def _origin(row: dict[str, Any]) -> str:
    shadows = f" (shadows {', '.join(row['shadows'])})" if row["shadows"] else ""
    return f"{row['origin']}{shadows}"


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


def print_schema(args: argparse.Namespace) -> int:
    from harness.recipe_jsonschema import json_schema

    if args.compact:
        import json

        print(json.dumps(json_schema(), separators=(",", ":")))
    else:
        emit_json(json_schema())
    return 0
