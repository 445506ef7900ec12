"""`harness vhd convert|validate|inspect FILE`: file-level fixed VHD tools."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from harness import vhd
from harness.commands._output import emit_json, human_size
from harness.enums import Result
from harness.errors import NotFoundError

SIZE_FIELDS = ("original_size", "current_size")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("vhd", help="convert, validate or inspect a fixed VHD file",
                       description="File-level fixed VHD tools (Azure's format: raw data + a 512-byte footer).")
    vsub = p.add_subparsers(dest="vhd_command", metavar="ACTION", required=True)

    conv = vsub.add_parser("convert", help="make a raw disk a fixed VHD (in place: footer appended, no copy)")
    conv.add_argument("file", type=Path, metavar="FILE", help="raw disk image")
    where = conv.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", type=Path, metavar="OUT",
                       help="write a new sparse VHD file instead of changing FILE")
    where.add_argument("--in-place", action="store_true",
                       help="append the footer to FILE itself (the default)")
    conv.add_argument("--json", action="store_true", help="print the result as JSON")
    conv.set_defaults(func=convert)

    val = vsub.add_parser("validate", help="check a VHD against Azure's rules (exit 1 if any rule fails)")
    val.add_argument("file", type=Path, metavar="FILE", help="the VHD file to check")
    val.add_argument("--json", action="store_true", help="print the result as JSON")
    val.set_defaults(func=validate)

    ins = vsub.add_parser("inspect", help="print the fields of a VHD footer")
    ins.add_argument("file", type=Path, metavar="FILE", help="the VHD file to read")
    ins.add_argument("--json", action="store_true", help="print the result as JSON (sizes in exact bytes)")
    ins.set_defaults(func=inspect)


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise NotFoundError(f"{path} does not exist or is not a file", "check the path")
    return path


def convert(args: argparse.Namespace) -> int:
    path = _existing_file(args.file)
    already = vhd.is_fixed_vhd(path)
    result = vhd.to_fixed_vhd(path, out=args.output)
    footer = vhd.read_footer(result)
    # The conversion itself succeeded; a rule it cannot fix (Azure's size limits) is a warning here and a
    # failure in 'harness vhd validate', the gate.
    problems = vhd.validate(result)
    if args.json:
        emit_json({"path": str(result), "converted": not already, "footer": vhd.describe(footer),
                   "problems": [asdict(p) for p in problems]})
        return 0
    if already:
        print(f"{path} is already a valid fixed VHD; nothing to do", file=sys.stderr)
    for problem in problems:
        print(f"warning: {problem.rule}: {problem.message} (actual {problem.actual}, required {problem.required}); "
              f"fix: {problem.hint}", file=sys.stderr)
    print(result)
    return 0


def print_rules(path: Path, results: list[vhd.RuleResult]) -> None:
    """One block per rule: result, actual, required, and for a failure what is wrong and how to fix it."""
    print(path)
    width = max(len(r.rule) for r in results)
    for r in results:
        print(f"  {r.result:<7} {r.rule:<{width}}  actual: {r.actual}  required: {r.required}")
        if r.message:
            print(f"  {'':<7} {'':<{width}}  {r.message}")
        if r.hint:
            print(f"  {'':<7} {'':<{width}}  fix: {r.hint}")
    failed = sum(r.failed for r in results)
    skipped = sum(r.result == Result.SKIPPED for r in results)
    verdict = "valid fixed VHD for Azure" if not failed else f"{failed} of {len(results)} rules failed"
    print(f"result: {verdict}" + (f" ({skipped} skipped)" if skipped else ""))


def validate(args: argparse.Namespace) -> int:
    results = vhd.check(_existing_file(args.file))
    failed = any(r.failed for r in results)
    if args.json:
        emit_json({"path": str(args.file), "valid": not failed,
                   "rules": [{"rule": r.rule, "result": r.result, "actual": r.actual, "required": r.required,
                              "message": r.message, "hint": r.hint} for r in results]})
    else:
        print_rules(args.file, results)
    return 1 if failed else 0


def inspect(args: argparse.Namespace) -> int:
    footer = vhd.read_footer(_existing_file(args.file))
    fields = vhd.describe(footer)
    if args.json:
        emit_json({"path": str(args.file), "footer": fields})
    else:
        print(args.file)
        width = max(len(k) for k in fields)
        for key, value in fields.items():
            shown = "/".join(str(v) for v in value) if isinstance(value, list) else value
            if key in SIZE_FIELDS and isinstance(value, int):
                shown = f"{human_size(value)} ({value} bytes)"
            print(f"  {key:<{width}}  {shown}")
    return 0
