"""`harness diff BUILD_A [BUILD_B]`: what changed; with one build, against the latest published version."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.buildfolder import resolve
from harness.commands._output import emit_json, table
from harness.diffing import Diff, diff, sbom_diff, sbom_of, side_of_build, side_of_gallery
from harness.sbomdiff import SbomDiff, diff_files


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("diff", help="packages, kernel, size, check results and boot time changed between builds",
                       description="Compare BUILD_A (older) with BUILD_B (newer). With only one build, compare the "
                                   "latest version published in the local gallery for the same image definition "
                                   "with that build.")
    p.add_argument("build_a", metavar="BUILD_A", help="the older build: a folder or RECIPE[@BUILD_ID|@latest]")
    p.add_argument("build_b", metavar="BUILD_B", nargs="?",
                   help="the newer build (default: compare BUILD_A with the latest gallery version)")
    p.add_argument("--gallery", default="gallery", metavar="PATH", help="local gallery for the one-build form")
    p.add_argument("--definition", metavar="NAME", help="definition to compare against (default: the build's gen1)")
    p.add_argument("--sbom", action="store_true",
                   help="compare the two SBOMs (sbom.spdx.json) by package URL: packages added, removed, changed; "
                        "BUILD_A and BUILD_B may also be .spdx.json files")
    p.add_argument("--json", action="store_true", help="print the differences as JSON")
    p.set_defaults(func=run)


def show(result: Diff) -> None:
    print(f"{result.a} -> {result.b}" + ("  (same content digest)" if result.same_content else ""))
    if result.kernel:
        print(f"kernel: {result.kernel[0]} -> {result.kernel[1]}")
    rows = ([["added", n, "", v] for n, v in result.added.items()]
            + [["removed", n, v, ""] for n, v in result.removed.items()]
            + [["upgraded", n, a, b] for n, (a, b) in result.upgraded.items()]
            + [["DOWNGRADED", n, a, b] for n, (a, b) in result.downgraded.items()])
    table("packages", ["change", "package", "old", "new"], rows or [["none", "", "", ""]])
    for key, (old, new) in result.size.items():
        print(f"{key}: {old} -> {new}")
    if result.checks:
        table("check results that changed", ["check", "old", "new"],
              [[k, old, new] for k, (old, new) in result.checks.items()])
    for boot, (old, new) in result.ready_s.items():
        delta = f" ({new - old:+.1f} s)" if isinstance(old, (int, float)) and isinstance(new, (int, float)) else ""
        print(f"boot -> Ready {boot}: {old} s -> {new} s{delta}")


def show_sbom(result: SbomDiff) -> None:
    print(f"{result.a} -> {result.b} (SBOM, by package URL)")
    rows = ([["added", p.name, "", p.version, p.purl] for p in result.added]
            + [["removed", p.name, p.version, "", p.purl] for p in result.removed]
            + [[",".join(fields), new.name, old.version, new.version, new.purl] for old, new, fields in result.changed])
    table("SBOM packages", ["change", "package", "old", "new", "purl"], rows or [["none", "", "", "", ""]])


def _sbom_source(arg: str) -> tuple[str, Path]:
    """(label, SBOM file) of an .spdx.json file given by path, else of a build."""
    path = Path(arg)
    if path.is_file():
        return str(path), path
    side = side_of_build(resolve(arg))
    return side.label, sbom_of(side)


def run_sbom(args: argparse.Namespace) -> int:
    if args.build_b:
        (a_label, a_path), (b_label, b_path) = _sbom_source(args.build_a), _sbom_source(args.build_b)
        result = diff_files(a_path, b_path, a_label, b_label)
    else:
        build = resolve(args.build_a)
        result = sbom_diff(side_of_gallery(Path(args.gallery), build, args.definition), side_of_build(build))
    if args.json:
        emit_json(result.to_json())
    else:
        show_sbom(result)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.sbom:
        return run_sbom(args)
    if args.build_b:
        a, b = side_of_build(resolve(args.build_a)), side_of_build(resolve(args.build_b))
    else:
        build = resolve(args.build_a)
        a, b = side_of_gallery(Path(args.gallery), build, args.definition), side_of_build(build)
    result = diff(a, b)
    if args.json:
        emit_json(result.to_json())
    else:
        show(result)
    return 0
