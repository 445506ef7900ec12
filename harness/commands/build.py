"""`harness build RECIPE`: build a recipe into a build folder (or reuse an identical one)."""

from __future__ import annotations

import argparse
import json

from harness import recipe as recipe_mod
from harness.build.context import BuildOptions
from harness.commands._output import emit_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("build", help="build a recipe into builds/<recipe>/<build-id>/",
                       description="Build a recipe into a bootable, generalized, Azure-ready disk.")
    p.add_argument("recipe", help="recipe name (see 'harness recipes list') or path to a .toml file")
    add_build_arguments(p)
    p.add_argument("--plan", action="store_true",
                   help="print the commands and files the build would use, without building")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    """Build options, shared by `harness build` and `harness run`."""
    p.add_argument("--agent", choices=["cloud-init", "waagent", "ignition"],
                   help="provisioning agent (default: the recipe's; ignition for Flatcar)")
    p.add_argument("--specialized", action="store_true",
                   help="keep the agent but disable provisioning (OS state specialized)")
    p.add_argument("--disk-size-mib", type=int, metavar="N", help="disk size in MiB (default: the recipe's, 30 GiB)")
    p.add_argument("--mirror", metavar="URL", help="package archive mirror (default: the bootstrap tool's)")
    p.add_argument("--rebuild", action="store_true", help="build even when an identical build exists")
    p.add_argument("--keep-workdir", action="store_true", help="keep the scratch folder when the build fails")


def options_from(args: argparse.Namespace) -> BuildOptions:
    return BuildOptions(agent=args.agent or "", specialized=args.specialized, disk_size_mib=args.disk_size_mib,
                        mirror=args.mirror or "", rebuild=args.rebuild, keep_workdir=args.keep_workdir)


def run(args: argparse.Namespace) -> int:
    from harness.build import pipeline

    recipe = recipe_mod.load(args.recipe)
    options = options_from(args)
    if args.plan:
        planned = pipeline.plan(recipe, options)
        if args.json:
            emit_json(planned)
        else:
            print(json.dumps(planned, indent=2))
        return 0
    result = pipeline.build(recipe, options)
    if args.json:
        emit_json({"build": str(result.folder.path), "cache_hit": result.cache_hit})
    else:
        print(result.folder.path)
    return 0
