"""Logging: one INFO line per stage with its duration, DEBUG for commands, secrets masked."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("harness")

# SAS signatures, account keys, bearer tokens, passwords and private keys never reach a log line.
_SECRET_PATTERNS = [
    (re.compile(r"(?i)(sig=)[^&\s\"']+"), r"\1***"),
    (re.compile(r"(?i)(AccountKey=)[^;\s\"']+"), r"\1***"),
    (re.compile(r"(?i)(Bearer\s+)[A-Za-z0-9._\-]+"), r"\1***"),
    (re.compile(r"(?i)(password[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+"), r"\1***"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
     "[private key]"),
]


def mask_secrets(text: str) -> str:
    """Replace anything that looks like a credential with ***."""
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


class SecretFilter(logging.Filter):
    """Masks secrets in every record, whatever logger produced it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg = masked
            record.args = ()
        return True


class CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at emit time (pytest swaps it per test; a held one gets closed)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def is_terminal() -> bool:
    return sys.stderr.isatty()


def setup(verbose: bool = False, quiet: bool = False) -> None:
    """Configure the root logger once: rich on a terminal, plain lines elsewhere (CI); --quiet keeps warnings."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler: logging.Handler
    if is_terminal():
        from rich.logging import RichHandler

        rich_handler = RichHandler(show_path=False, markup=False, rich_tracebacks=False, log_time_format="%X")
        rich_handler.setFormatter(logging.Formatter("%(message)s"))
        handler = rich_handler
    else:
        handler = CurrentStderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    handler.addFilter(SecretFilter())
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("azure", "urllib3", "hpack"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@dataclass
class Timings:
    """Wall-clock seconds per named step, in order."""

    steps: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.steps[name] = round(time.monotonic() - start, 3)

    def total(self) -> float:
        return round(sum(self.steps.values()), 3)


@contextmanager
def stage(name: str, what: str = "") -> Iterator[None]:
    """Log the one INFO line a stage gets, with its duration, whether it passes or fails."""
    start = time.monotonic()
    log.info("%s: started%s", name, f" ({what})" if what else "")
    ok = False
    try:
        yield
        ok = True
    finally:
        log.info("%s: %s in %.1f s", name, "done" if ok else "failed", time.monotonic() - start)
