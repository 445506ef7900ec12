"""`harness build RECIPE`: build a recipe into a build folder (or reuse an identical one)."""

from __future__ import annotations

import argparse
from typing import Any

from harness import recipe as recipe_mod
from harness.commands._args import add_build_arguments, build_options
from harness.commands._output import emit_json
from harness.proc import shell_line
from harness.stages import build

PREVIEW_LINES = 5  # of each file the plan writes; --json has them whole
PREVIEW_WIDTH = 150


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("build", help="build a recipe into builds/<recipe>/<build-id>/",
                       description="Build a recipe into a bootable, generalized, Azure-ready disk.")
    p.add_argument("recipe", help="recipe name (see 'harness recipes list') or path to a .toml file")
    add_build_arguments(p)
    p.add_argument("--plan", action="store_true",
                   help="print the commands (one per line) and the files (their first lines) the build would use, "
                        "without building; with --json, everything in full")
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
            print("\n".join(render_plan(planned)))
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


def _clip(line: str) -> str:
    return line if len(line) <= PREVIEW_WIDTH else line[:PREVIEW_WIDTH - 1] + "…"


def _file(name: str, text: str, indent: str) -> list[str]:
    """A file the build writes: its name and size, then its first lines."""
    lines = text.splitlines()
    out = [f"{indent}{name} ({len(lines)} line{'s' if len(lines) != 1 else ''})"]
    out += [f"{indent}  | {_clip(line)}" for line in lines[:PREVIEW_LINES]]
    if len(lines) > PREVIEW_LINES:
        out.append(f"{indent}  | ... {len(lines) - PREVIEW_LINES} more (--json shows everything)")
    return out


def _value(key: str, value: Any, indent: str) -> list[str]:
    if isinstance(value, str) and "\n" in value:
        return _file(key, value, indent)
    if isinstance(value, dict):
        return [f"{indent}{key}:", *(line for k, v in value.items() for line in _value(str(k), v, indent + "  "))]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [f"{indent}{key}:", *(f"{indent}  " + ", ".join(f"{k}={v}" for k, v in item.items()) for item in value)]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [f"{indent}{key}: {_clip(shell_line(value))}"]
    return [f"{indent}{key}: {_clip(str(value))}"]


def render_plan(planned: dict[str, Any]) -> list[str]:
    """The plan for people: facts first, then each command on one line (pasteable), then what the build writes."""
    out: list[str] = []
    simple = {k: v for k, v in planned.items() if not isinstance(v, dict | list) and "\n" not in str(v)}
    out += [f"{k}: {v}" for k, v in simple.items()]
    commands = planned.get("commands", [])
    if commands:
        out.append("commands:")
        out += [f"  $ {shell_line(c) if isinstance(c, list) else c}" for c in commands]
    files = {k: v for k, v in planned.items() if isinstance(v, str) and "\n" in v}
    files.update(planned.get("files", {}))
    if files:
        out.append("files:")
        for name, text in files.items():
            out += _file(name, str(text), "  ")
    for key, value in planned.items():
        if key not in simple and key not in files and key not in ("commands", "files"):
            out += _value(key, value, "")
    return out
