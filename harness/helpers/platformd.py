"""Run the fake platform as a helper process (inside the VM's network namespace) until SIGTERM.

    python -m harness.helpers.platformd --config CONFIG.json --log LOG.jsonl --events EVENTS.jsonl \
        [--bind NAME=HOST:PORT ...] [--fault RULE ...]

Events (started, first-contact, goal-state, ready, not-ready, status, fault, deviation, error, stopped) are
appended to EVENTS.jsonl as they happen, one JSON object per line, so the parent can follow them by tailing.
Exit codes: 0 after a clean stop, 2 for bad arguments or a platform that cannot start (an 'error' event says why).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from harness.errors import HarnessError, PlatformError
from harness.platform.config import PlatformConfig
from harness.platform.faults import FaultSet
from harness.platform.requestlog import utc_now
from harness.platform.servers import FakeAzure, parse_bind

log = logging.getLogger(__name__)
USAGE = "python -m harness.helpers.platformd --config F --log F --events F [--bind NAME=HOST:PORT] [--fault RULE]"


@dataclass
class Launch:
    """The daemon's arguments (it is started by verify/boot.py, never by a person: no help text needed)."""

    config: Path
    log: Path
    events: Path
    binds: list[str] = field(default_factory=list)  # NAME=HOST:PORT per server (imds, wireserver, hostgaplugin)
    faults: list[str] = field(default_factory=list)  # fault rules, see harness/platform/faults.py


def parse_launch(argv: Sequence[str]) -> Launch:
    """--config F --log F --events F [--bind NAME=HOST:PORT ...] [--fault RULE ...]; PlatformError when wrong."""
    if len(argv) % 2:
        raise PlatformError(f"platform daemon: {argv[-1]} needs a value", f"usage: {USAGE}")
    single: dict[str, str] = {}
    repeated: dict[str, list[str]] = {"--bind": [], "--fault": []}
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        if flag in repeated:
            repeated[flag].append(value)
        elif flag in ("--config", "--log", "--events"):
            single[flag] = value
        else:
            raise PlatformError(f"platform daemon: unknown option {flag}", f"usage: {USAGE}")
    missing = [f for f in ("--config", "--log", "--events") if f not in single]
    if missing:
        raise PlatformError(f"platform daemon: {', '.join(missing)} missing", f"usage: {USAGE}")
    return Launch(Path(single["--config"]), Path(single["--log"]), Path(single["--events"]), repeated["--bind"],
                  repeated["--fault"])


def main(argv: Sequence[str], stop: threading.Event | None = None) -> int:
    """Start FakeAzure, serve until SIGTERM/SIGINT (or `stop` is set), stop cleanly; returns the exit code."""
    stop = stop or threading.Event()
    events_path: Path | None = None
    try:
        args = parse_launch(argv)
        events_path = args.events
        _truncate(events_path)  # never leave a previous run's "started" or "ready" for the parent to find
        platform = FakeAzure(
            PlatformConfig.read_json(args.config),
            faults=FaultSet.parse(args.faults),
            log_path=args.log,
            binds=dict(parse_bind(text) for text in args.binds),
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
