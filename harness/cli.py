"""Command line: the only place that turns HarnessError into messages and exit codes."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from harness import __version__
from harness.errors import HarnessError
from harness.log import mask_secrets, setup

log = logging.getLogger("harness")

# Each module registers its sub-commands; cli.py only assembles the parser and maps errors.
COMMAND_MODULES = (
    "build", "check", "verify", "convert", "publish", "run", "boot", "diff", "matrix",
    "recipes", "gallery", "vhd", "builds",
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def make_parser() -> argparse.ArgumentParser:
    """The full parser; tests call it to check that CI files only use real commands and options."""
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Build, verify, convert and publish Azure-ready Linux images.",
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    parser.add_argument("--debug", action="store_true", help="log every command and its output")
    parser.add_argument("--builds-dir", metavar="DIR",
                        help="where build folders live (default ./builds, or $HARNESS_BUILDS)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"harness.commands.{name}")
        module.register(sub)
    return parser


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM (a CI job's timeout, `kill`, systemd) stops the command like Ctrl-C: the stack unwinds, so QEMU,
    dnsmasq, the fake platform and the network namespace are stopped and evidence is kept. A second SIGTERM
    during that clean-up is ignored rather than cutting it short."""
    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (main() called from a test's thread): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    setup(verbose=args.debug)
    if args.builds_dir:
        os.environ["HARNESS_BUILDS"] = args.builds_dir
    try:
        with sigterm_unwinds():
            code: int = args.func(args)
        return code
    except HarnessError as exc:
        print(f"error: {mask_secrets(exc.message)}", file=sys.stderr)
        if exc.hint:
            print(f"  hint: {mask_secrets(exc.hint)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as exc:
        print(f"interrupted{f' ({exc})' if str(exc) else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
