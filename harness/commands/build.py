"""`harness build RECIPE`: build a recipe into a build folder (or reuse an identical one)."""

from __future__ import annotations

import argparse
import json

from harness import recipe as recipe_mod
from harness.commands._args import add_build_arguments, build_options
from harness.commands._output import emit_json
from harness.stages import build


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("build", help="build a recipe into builds/<recipe>/<build-id>/",
                       description="Build a recipe into a bootable, generalized, Azure-ready disk.")
    p.add_argument("recipe", help="recipe name (see 'harness recipes list') or path to a .toml file")
    add_build_arguments(p)
    p.add_argument("--plan", action="store_true",
                   help="print the commands and files the build would use, without building")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    recipe = recipe_mod.load(args.recipe)
    options = build_options(args)
    if args.plan:
        planned = build.plan(recipe, options)
        if args.json:
            emit_json(planned)
        else:
            print(json.dumps(planned, indent=2))
        return 0
    report = build.run(recipe, options)
    assert report.build is not None
    if args.json:
        emit_json({"build": str(report.build.path), "cache_hit": report.details["cache_hit"],
                   "verdict": report.result.value,
                   "artifacts": {k: str(report.build.path / v) for k, v in report.artifacts.items()}})
    else:
        print(report.build.path)
    return 0
