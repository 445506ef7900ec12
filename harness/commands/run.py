"""`harness run RECIPE`: the whole pipeline, or a subset of stages for CI splitting."""

from __future__ import annotations

import argparse

from harness import recipe as recipe_mod
from harness.commands._args import add_build_arguments, add_verify_arguments, build_options, verify_options
from harness.commands._output import emit_json, table
from harness.commands.publish import add_publish_arguments, publish_options
from harness.enums import Stage
from harness.progress import StageBoard
from harness.stages import pipeline
from harness.stages.pipeline import ORDER, RunOptions, StageOutcome, parse_stages, stage_names


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="build, check, verify, convert and publish a recipe",
                       description="Build -> offline audit -> verify (both firmwares, fake Azure) -> fixed VHD -> "
                                   "publish (local gallery by default). Stops at the first failing stage and never "
                                   "publishes an image that failed a gate.")
    p.add_argument("recipe", help="recipe name or path")
    p.add_argument("--stages", default=stage_names(ORDER), metavar="LIST",
                   help=f"comma-separated subset of {stage_names(ORDER)}, run in that order (default: all)")
    p.add_argument("--build", metavar="BUILD", help="build to use when 'build' is not among the stages "
                                                    "(default RECIPE@latest)")
    add_build_arguments(p)
    add_verify_arguments(p)
    add_publish_arguments(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run_options(args: argparse.Namespace) -> RunOptions:
    stages = parse_stages(args.stages)
    return RunOptions(stages=stages, build=build_options(args), verify=verify_options(args),
                      publish=publish_options(args), existing_build=args.build or "")


def run(args: argparse.Namespace) -> int:
    options = run_options(args)
    recipe = recipe_mod.load(args.recipe)
    with StageBoard([s.value for s in options.stages]) as board:
        def observe(stage: Stage, outcome: StageOutcome | None) -> None:
            if outcome is None:
                board.begin(stage.value)
            else:
                board.end(stage.value, outcome.verdict.value)

        result = pipeline.run(recipe, options, observe)
    if args.json:
        emit_json(result.to_json())
    else:
        table(f"harness run {result.recipe}", ["stage", "result", "duration", "detail"],
              [[o.stage.value, o.verdict.value, f"{o.duration_s:.1f} s", o.detail] for o in result.outcomes])
        if result.build:
            print(f"build: {result.build.path}")
    if result.error is not None:
        raise result.error
    return 0
