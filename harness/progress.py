"""Progress for long steps: a live line on a terminal (rich), plain log lines in CI."""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import Any, ClassVar

from harness.log import is_terminal

log = logging.getLogger("harness")


class StageBoard:
    """One live line per pipeline stage with its elapsed time (terminal); plain log lines otherwise."""

    def __init__(self, stages: list[str]) -> None:
        self.stages = stages
        self.tasks: dict[str, Any] = {}
        self.current = ""
        self._progress: Any = None

    active: ClassVar[StageBoard | None] = None  # the board a running `harness run` shows, if any

    def __enter__(self) -> StageBoard:
        if is_terminal():
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
            self._progress.start()
            for name in self.stages:
                self.tasks[name] = self._progress.add_task(f"{name}: waiting", start=False, total=1)
        StageBoard.active = self
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        StageBoard.active = None
        if self._progress is not None:
            self._progress.stop()

    @property
    def live(self) -> bool:
        return self._progress is not None

    def begin(self, name: str) -> None:
        self.current = name
        if self._progress is not None:
            self._progress.start_task(self.tasks[name])
            self._progress.update(self.tasks[name], description=f"{name}: running")

    def end(self, name: str, verdict: str) -> None:
        if self._progress is not None:
            self._progress.update(self.tasks[name], description=f"{name}: {verdict}", completed=1)
            self._progress.stop_task(self.tasks[name])

    def detail(self, text: str) -> None:
        """What the running stage is doing now (e.g. the bootstrap's phase)."""
        if self._progress is not None and self.current:
            self._progress.update(self.tasks[self.current], description=f"{self.current}: {text}")


class LineProgress:
    """Follows a tool's output and shows what it is doing now, with elapsed time."""

    def __init__(self, name: str, total_hint: int = 0) -> None:
        self.name = name
        self.total_hint = total_hint
        self.count = 0
        self.phase = "starting"
        self.start = time.monotonic()
        self._status: Any = None
        self._last_plain = 0.0

    def __enter__(self) -> LineProgress:
        if is_terminal() and StageBoard.active is None:
            from rich.console import Console

            self._status = Console(stderr=True).status(self._text())
            self._status.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._status is not None:
            self._status.__exit__(exc_type, exc, tb)

    def _text(self) -> str:
        elapsed = time.monotonic() - self.start
        counter = f", {self.count} packages set up" if self.count else ""
        return f"{self.name}: {self.phase}{counter} [{elapsed:.0f} s]"

    def update(self, phase: str | None = None, advance: int = 0) -> None:
        if phase:
            self.phase = phase
        self.count += advance
        board = StageBoard.active
        if board is not None and board.live:
            board.detail(self._text())
        elif self._status is not None:
            self._status.update(self._text())
        elif phase:
            log.info("%s", self._text())

    def feed_mmdebstrap(self, line: str) -> None:
        """mmdebstrap prints 'I: <phase>...' lines; apt prints 'Setting up <pkg>' lines."""
        if line.startswith("I: ") and not line.startswith("I: running special hook"):
            self.update(line[3:].rstrip(".").strip())
        elif line.startswith("Setting up "):
            self.update(advance=1)
