"""`harness run RECIPE`: the whole pipeline, or a subset of stages for CI splitting."""

from __future__ import annotations

import argparse
from typing import Any

from harness.commands._output import emit_json, table
from harness.commands.build import add_build_arguments
from harness.commands.publish import add_publish_arguments
from harness.commands.verify import add_boot_arguments
from harness.errors import HarnessError
from harness.runner import STAGES, RunSummary, run_pipeline


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="build, check, verify, convert and publish a recipe",
                       description="Build -> offline audit -> verify (both firmwares, fake Azure) -> fixed VHD -> "
                                   "publish (local gallery by default). Stops at the first failing stage and never "
                                   "publishes an image that failed a gate.")
    p.add_argument("recipe", help="recipe name or path")
    p.add_argument("--stages", default=",".join(STAGES), metavar="LIST",
                   help=f"comma-separated subset of {','.join(STAGES)}, run in that order (default: all)")
    p.add_argument("--build", metavar="BUILD", help="build to use when 'build' is not among the stages "
                                                    "(default RECIPE@latest)")
    add_build_arguments(p)
    p.add_argument("--firmware", choices=["bios", "uefi", "both"], default="both")
    p.add_argument("--platform", choices=["azure", "nocloud", "all"], default="azure")
    add_boot_arguments(p)
    add_publish_arguments(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def summary_json(summary: RunSummary) -> dict[str, Any]:
    return {
        "recipe": summary.recipe, "passed": summary.passed,
        "build": str(summary.build.path) if summary.build else None,
        "stages": [o.__dict__ for o in summary.outcomes],
        **{k: v for k, v in summary.facts.items() if k != "error"},
    }


def run(args: argparse.Namespace) -> int:
    summary = run_pipeline(args)
    if args.json:
        emit_json(summary_json(summary))
    else:
        table(f"harness run {summary.recipe}", ["stage", "result", "duration", "detail"],
              [[o.name, o.result, f"{o.duration_s:.1f} s", o.detail] for o in summary.outcomes])
        if summary.build:
            print(f"build: {summary.build.path}")
        if summary.facts.get("vhd"):
            print(f"VHD: {summary.facts['vhd']}")
        for item in summary.facts.get("published", []):
            print(f"published: {item} in {summary.facts.get('target')}")
    error = summary.facts.get("error")
    if isinstance(error, HarnessError):
        raise error
    return 0
