"""Command line: the only place that turns errors into messages and exit codes.

Exit codes (README "Exit codes"): 0 ok; 1 the image failed a check, a verification or a publish gate; 2 a usage
or input error (options, recipes, build names); 3 the tool or its environment failed (a mirror, QEMU, a
missing host tool, Azure); 70 an unexpected error, i.e. a bug (traceback in the log file); 130 interrupted;
141 the reader of our output went away (`| head`).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from harness import __version__
from harness.errors import EXIT_BUG, EXIT_ENVIRONMENT, EXIT_INTERRUPTED, EXIT_USAGE, HarnessError
from harness.log import mask_secrets, setup

log = logging.getLogger("harness")

# Each module registers its sub-commands; cli.py only assembles the parser and maps errors.
COMMAND_MODULES = (
    "build", "check", "verify", "convert", "publish", "run", "boot", "diff", "matrix",
    "recipes", "gallery", "vhd", "builds", "promote", "doctor", "completion",
)
EXIT_PIPE = 128 + signal.SIGPIPE


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """--debug, --quiet, --builds-dir and --recipes work before or after the subcommand (the subcommand's copy only
    sets them when given, so it never resets what was given before it)."""
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="log every command and its output")
    parser.add_argument("--quiet", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="only warnings and errors on stderr")
    parser.add_argument("--builds-dir", metavar="DIR", default=default,
                        help="where build folders live (default ./builds, or $HARNESS_BUILDS)")
    # Given before and after the subcommand, both count: the subcommand's copy collects into its own list.
    parser.add_argument("--recipes", metavar="DIR", action="append", dest="recipes" if top else "recipes_after",
                        default=None if top else argparse.SUPPRESS,
                        help="a folder of your own recipes, looked up before the built-in ones (repeatable; "
                             "also $HARNESS_RECIPES, colon-separated)")


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield child
                yield from _subparsers(child)


def make_parser() -> argparse.ArgumentParser:
    """The full parser; tests call it to check that CI files only use real commands and options."""
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Build, verify, convert and publish Azure-ready Linux images.",
        epilog="exit codes: 0 ok, 1 the image failed, 2 usage or input error, 3 tool or environment error, "
               "70 a bug in the harness, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    _add_global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"harness.commands.{name}")
        module.register(sub)
    for child in _subparsers(parser):
        _add_global_options(child, top=False)
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


def _error(message: str, hint: str = "") -> None:
    print(f"error: {mask_secrets(message)}", file=sys.stderr)
    if hint:
        print(f"  hint: {mask_secrets(hint)}", file=sys.stderr)


def _bug_report(exc: BaseException) -> Path | None:
    """The traceback of an unexpected exception, in a file (never on the console)."""
    folder = Path(os.environ.get("HARNESS_LOG_DIR") or tempfile.gettempdir())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"harness-bug-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        text = "".join(traceback.format_exception(exc))
        path.write_text(f"harness {__version__}\nargv: {sys.argv!r}\n\n{mask_secrets(text)}", encoding="utf-8")
        return path
    except OSError:
        return None


def _stdout_closed() -> int:
    """The reader of our output went away: no traceback, and nothing more written to the dead pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_PIPE


def _set_recipe_dirs(dirs: list[str]) -> None:
    """--recipes folders go in front of $HARNESS_RECIPES (absolute, so a child process or a chdir keeps them)."""
    if not dirs:
        return
    from harness.recipe import RECIPES_ENV

    given = [str(Path(d).absolute()) for d in dirs]
    os.environ[RECIPES_ENV] = ":".join([*given, *filter(None, os.environ.get(RECIPES_ENV, "").split(":"))])


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    setup(verbose=args.debug, quiet=args.quiet)
    if args.builds_dir:
        os.environ["HARNESS_BUILDS"] = args.builds_dir
    _set_recipe_dirs([*(args.recipes or []), *getattr(args, "recipes_after", [])])
    with sigterm_unwinds():
        code: int = args.func(args)
    sys.stdout.flush()
    return code


def _harness_error(exc: HarnessError) -> int:
    _error(exc.message, exc.hint)
    return exc.exit_code


def _interrupted(exc: KeyboardInterrupt) -> int:
    print(f"interrupted{f' ({exc})' if str(exc) else ''}", file=sys.stderr)
    return EXIT_INTERRUPTED


def _os_error(exc: OSError) -> int:
    if exc.errno == errno.EPIPE:
        return _stdout_closed()
    where = f": {exc.filename}" if exc.filename else ""
    full = exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
    _error(f"{exc.strerror or exc}{where}",
           "free some space" if full else "check the path, its permissions and the free space")
    return EXIT_ENVIRONMENT


def _too_deep(exc: RecursionError) -> int:
    _error("input nested too deeply (an `extends` chain or a document with thousands of levels)",
           "flatten it; recipes may extend at most a few levels")
    return EXIT_USAGE


def _bug(exc: Exception) -> int:
    """The last resort: an unexpected exception is reported as a bug, its traceback written to a file."""
    path = _bug_report(exc)
    _error(f"internal error (this is a bug in harness {__version__}): {type(exc).__name__}: {exc}",
           f"the traceback is in {path}; please report it" if path else "please report it with --debug output")
    return EXIT_BUG


def exit_code_for(exc: BaseException) -> int:
    """Report an exception as one line on stderr and return the exit code it means (first match wins)."""
    if isinstance(exc, HarnessError):
        return _harness_error(exc)
    if isinstance(exc, KeyboardInterrupt):
        return _interrupted(exc)
    if isinstance(exc, OSError):
        return _os_error(exc)
    if isinstance(exc, RecursionError):
        return _too_deep(exc)
    assert isinstance(exc, Exception)
    return _bug(exc)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _dispatch(argv)
    except (Exception, KeyboardInterrupt) as exc:
        return exit_code_for(exc)


if __name__ == "__main__":
    sys.exit(main())
