"""Run the fake platform as a helper process (inside the VM's network namespace) until SIGTERM.

    python -m harness.helpers.platformd --config CONFIG.json --log LOG.jsonl --events EVENTS.jsonl \
        [--bind NAME=HOST:PORT ...] [--fault RULE ...]

Events (started, first-contact, goal-state, ready, not-ready, status, fault, protocol-error, error, stopped) are
appended to EVENTS.jsonl as they happen, one JSON object per line, so the parent can follow them by tailing.
Exit codes: 0 after a clean stop, 2 for bad arguments or a platform that cannot start (an 'error' event says why).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import NoReturn

from harness.errors import HarnessError, PlatformError
from harness.platform.config import PlatformConfig
from harness.platform.faults import FaultSet
from harness.platform.requestlog import utc_now
from harness.platform.servers import FakeAzure, parse_bind

log = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() stays a library function."""

    def error(self, message: str) -> NoReturn:
        raise PlatformError(f"platform daemon: {message}", "see --help")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m harness.helpers.platformd", description="Fake Azure platform (IMDS, WireServer, "
                     "HostGAPlugin) for one VM, until SIGTERM.")
    parser.add_argument("--config", type=Path, required=True, help="PlatformConfig JSON (PlatformConfig.write_json)")
    parser.add_argument("--log", type=Path, required=True, help="request log, one JSON object per line")
    parser.add_argument("--events", type=Path, required=True, help="events file, one JSON object per line")
    parser.add_argument("--bind", action="append", default=[], metavar="NAME=HOST:PORT",
                        help="bind address per server (imds, wireserver, hostgaplugin); default: Azure's")
    parser.add_argument("--fault", action="append", default=[], metavar="RULE",
                        help="fault rule, e.g. wireserver:health=500x3 (see harness/platform/faults.py)")
    return parser


def main(argv: Sequence[str], stop: threading.Event | None = None) -> int:
    """Start FakeAzure, serve until SIGTERM/SIGINT (or `stop` is set), stop cleanly; returns the exit code."""
    stop = stop or threading.Event()
    events_path: Path | None = None
    try:
        args = _parser().parse_args(list(argv))
        events_path = args.events
        _truncate(events_path)  # never leave a previous run's "started" or "ready" for the parent to find
        platform = FakeAzure(
            PlatformConfig.read_json(args.config),
            faults=FaultSet.parse(args.fault),
            log_path=args.log,
            binds=dict(parse_bind(text) for text in args.bind),
            events_path=args.events,
        )
        platform.start()
    except HarnessError as exc:
        log.error("%s", exc)
        _write_error(events_path, exc)
        return 2
    try:
        with _stop_on_signals(stop):
            stop.wait()
    finally:
        platform.stop()
    return 0


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set `stop` (only possible in the main thread; tests run main() in a thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _truncate(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")
    except OSError as exc:
        raise PlatformError(f"cannot write the events file {path}: {exc.strerror}", "check the directory") from exc


def _write_error(path: Path | None, exc: HarnessError) -> None:
    """Tell the parent why the platform did not start (it follows the events file, not our stderr)."""
    if path is None:
        return
    try:
        with path.open("a", encoding="utf-8") as handle:
            event = {"kind": "error", "time": utc_now(), "message": exc.message, "hint": exc.hint}
            handle.write(json.dumps(event) + "\n")
    except OSError:
        log.error("cannot write the error event to %s", path)


if __name__ == "__main__":
    from harness.log import setup

    setup()
    raise SystemExit(main(sys.argv[1:]))
