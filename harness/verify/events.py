"""Follow what the fake platform saw, from outside its namespace: the events and request JSON-lines files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of a file being appended to (a partial last line is ignored)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    items = []
    for line in text.splitlines():
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return items


@dataclass
class PlatformView:
    """The platform's events and requests, re-read on demand (the files are small)."""

    events_path: Path
    requests_path: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def refresh(self) -> PlatformView:
        self.events = read_lines(self.events_path)
        self.requests = read_lines(self.requests_path)
        return self

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("kind") == kind]

    def started(self) -> bool:
        return bool(self.of_kind("started"))

    def ready(self) -> dict[str, Any] | None:
        found = self.of_kind("ready")
        return found[0] if found else None

    def failure(self) -> dict[str, Any] | None:
        """The first NotReady/ProvisioningFailed report: the agent's own account of what went wrong."""
        for event in self.of_kind("not-ready"):
            if event.get("sub_status") == "ProvisioningFailed":
                return event
        return None

    def deviations(self) -> list[str]:
        """Requests real Azure would not take as they came, one line each: 'server endpoint (rule): detail'."""
        return [f"{e.get('server')} {e.get('endpoint')} ({e.get('rule')}): {e.get('detail')}"
                for e in self.of_kind("deviation")]

    def first_request(self, server: str) -> dict[str, Any] | None:
        for request in self.requests:
            if request.get("server") == server:
                return request
        return None

    def faulted(self) -> dict[str, int]:
        """Requests answered with an injected fault, per server:endpoint."""
        counts: dict[str, int] = {}
        for request in self.requests:
            if request.get("fault"):
                key = f"{request.get('server')}:{request.get('endpoint', request.get('path'))}"
                counts[key] = counts.get(key, 0) + 1
        return counts

    def ready_request(self) -> dict[str, Any] | None:
        """The health POST that carried the accepted Ready (to attribute it to the guest)."""
        for request in self.requests:
            body = str(request.get("body", ""))
            if "comp=health" in str(request.get("path")) and "<State>Ready</State>" in body \
                    and not request.get("fault") and int(request.get("status", 0)) < 300:
                return request
        return None
