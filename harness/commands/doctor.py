"""`harness doctor [--install]`: which host tools are present, and installing the missing ones with apt-get."""

from __future__ import annotations

import argparse
import sys

from harness import hosttools
from harness.commands._output import emit_json, table
from harness.enums import Family, values
from harness.errors import EXIT_ENVIRONMENT, EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("doctor", help="check the host tools and firmware the harness uses (and install them)",
                       description="List every host tool and firmware file the harness uses, with its Debian "
                                   "package and whether it is present. Exit 0 when everything is present, else 3.")
    p.add_argument("--install", action="store_true",
                   help="install the missing packages with apt-get (needs root; prints each command first)")
    p.add_argument("--family", action="append", choices=values(Family), metavar="FAMILY",
                   help="only the build tools of these families (repeatable; default: every family)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    families = args.family or ()
    statuses = hosttools.survey(families)
    missing = hosttools.missing_packages(statuses)
    if args.install and missing:
        print(f"installing {len(missing)} Debian package(s): {' '.join(missing)}", file=sys.stderr)
        hosttools.install(missing, lambda line: print(f"running: {line}", file=sys.stderr, flush=True))
        statuses = hosttools.survey(families)
        missing = hosttools.missing_packages(statuses)
    if args.json:
        emit_json({"ok": not missing, "missing_packages": missing, "tools": [s.to_json() for s in statuses]})
    else:
        table("host tools", ["tool", "package", "used for", "present"],
              [[s.need.name, s.need.package, s.need.used_for, "yes" if s.present else "MISSING"] for s in statuses])
        if missing:
            print(f"missing: {' '.join(missing)}; install them with 'sudo harness doctor --install' "
                  f"or 'sudo apt-get install {' '.join(missing)}'")
        else:
            print("every host tool is present")
    return EXIT_OK if not missing else EXIT_ENVIRONMENT
