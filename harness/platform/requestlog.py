"""What the fake platform saw: every request as a JSON line, plus derived events (Ready, NotReady, status).

Requests go to the request log file (one JSON object per line, flushed per line, secrets masked); events go to
the events file the same way, so a parent process outside the network namespace can follow them by tailing.
Both files are truncated when the platform starts: one run per file.
Event kinds: started, first-contact, goal-state, ready, not-ready, status, fault, deviation, error, stopped.

A *deviation* is a request Azure would not take as it came (a missing header, a Ready for another goal state, a
malformed document): the fake answers as Azure does where that is known, and always records the deviation, so
verify can fail naming it instead of passing on something real Azure would refuse.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from harness.errors import PlatformError
from harness.log import mask_secrets

BODY_LOG_LIMIT = 64 * 1024
_XML_SECRET_RE = re.compile(r"(<(?:\w+:)?(?:UserPassword|Password)>)(.*?)(</)", re.S)
_SECRET_HEADERS = ("authorization", "x-ms-guest-agent-public-x509-cert-private", "cookie")


def utc_now() -> str:
    """Current UTC time, ISO 8601 with milliseconds and a Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    """A derived, timestamped fact (t_s = seconds since the platform started)."""

    kind: str
    time: str
    t_s: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "time": self.time, "t_s": self.t_s, **self.data}


@dataclass(frozen=True)
class HealthReport:
    """One parsed WireServer health report (State Ready or NotReady, with SubStatus and Description)."""

    state: str
    sub_status: str
    description: str
    incarnation: str
    container_id: str
    instance_id: str
    echoes_goal_state: bool
    time: str = ""
    t_s: float = 0.0

    @property
    def is_ready(self) -> bool:
        return self.state == "Ready"

    @property
    def accepted(self) -> bool:
        """A Ready Azure takes: for the goal state served (incarnation, container, instance)."""
        return self.is_ready and self.echoes_goal_state

    @property
    def is_failure(self) -> bool:
        return self.state == "NotReady" and self.sub_status == "ProvisioningFailed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state, "sub_status": self.sub_status, "description": self.description,
            "incarnation": self.incarnation, "container_id": self.container_id, "instance_id": self.instance_id,
            "echoes_goal_state": self.echoes_goal_state, "time": self.time, "t_s": self.t_s,
        }


@dataclass(frozen=True)
class StatusUpload:
    """A decoded waagent status document, from HostGAPlugin PUT /status or a direct status-blob PUT."""

    via: str
    status: dict[str, Any]
    request_uri: str = ""
    time: str = ""
    t_s: float = 0.0

    @property
    def guest_agent(self) -> dict[str, Any]:
        aggregate = self.status.get("aggregateStatus")
        agent = aggregate.get("guestAgentStatus") if isinstance(aggregate, dict) else None
        return agent if isinstance(agent, dict) else {}

    @property
    def agent_status(self) -> str | None:
        """guestAgentStatus.status: 'Ready' means the agent is alive."""
        value = self.guest_agent.get("status")
        return value if isinstance(value, str) else None

    def summary(self) -> dict[str, Any]:
        message = self.guest_agent.get("formattedMessage")
        text = message.get("message") if isinstance(message, dict) else None
        return {
            "via": self.via, "time": self.time, "t_s": self.t_s, "agent_status": self.agent_status,
            "agent_version": self.guest_agent.get("version"), "message": text, "request_uri": self.request_uri,
        }


class RequestLog:
    """Thread-safe recorder of requests and events, in memory and as JSON lines; `changed` wakes waiters."""

    def __init__(self, log_path: Path | None = None, events_path: Path | None = None,
                 secrets: Iterable[str] = ()) -> None:
        self.started = time.monotonic()
        self.changed = threading.Condition()
        self.requests: list[dict[str, Any]] = []
        self.events: list[Event] = []
        self.health: list[HealthReport] = []
        self.statuses: list[StatusUpload] = []
        self.listeners: list[Callable[[Event], None]] = []
        self._secrets = [s for s in secrets if s]
        self._log = _open_lines(log_path)
        self._events = _open_lines(events_path)
        self._seen_servers: set[str] = set()

    def elapsed_s(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def mask(self, text: str) -> str:
        """Mask known secrets (the config password), XML password elements and anything mask_secrets knows."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return mask_secrets(_XML_SECRET_RE.sub(r"\1***\3", text))

    def record_request(self, entry: dict[str, Any], body: bytes) -> None:
        """Append one request (entry: server, client, method, path, headers, status, fault...) with its body."""
        shown = body[:BODY_LOG_LIMIT].decode("utf-8", errors="replace")
        entry = {"time": utc_now(), "t_s": self.elapsed_s(), **entry}
        entry["path"] = self.mask(str(entry.get("path", "")))
        entry["headers"] = self._mask_headers(entry.get("headers", {}))
        entry.update(body=self.mask(shown), body_bytes=len(body), body_truncated=len(body) > BODY_LOG_LIMIT)
        with self.changed:
            self.requests.append(entry)
            _write_line(self._log, entry)
            self.changed.notify_all()

    def note_arrival(self, server: str, method: str, path: str) -> None:
        """Called when a request arrives, before it is answered: emits first-contact once per server."""
        with self.changed:
            first = server not in self._seen_servers
            self._seen_servers.add(server)
        if first:
            self.event("first-contact", server=server, method=method, path=self.mask(path))

    def _mask_headers(self, headers: dict[str, str]) -> dict[str, str]:
        return {k: "***" if k.lower() in _SECRET_HEADERS else self.mask(v) for k, v in headers.items()}

    def event(self, kind: str, **data: Any) -> Event:
        """Record a derived event, write it to the events file and tell the listeners."""
        item = Event(kind, utc_now(), self.elapsed_s(), data)
        with self.changed:
            self.events.append(item)
            _write_line(self._events, item.to_dict())
            self.changed.notify_all()
            listeners = list(self.listeners)
        for listener in listeners:
            listener(item)
        return item

    def deviation(self, server: str, endpoint: str, rule: str, detail: str) -> Event:
        """A request real Azure would not accept as it came (see the module doc)."""
        return self.event("deviation", server=server, endpoint=endpoint, rule=rule, detail=self.mask(detail))

    def add_health(self, report: HealthReport) -> HealthReport:
        """Record a health report; a Ready that does not echo the goal state served is a deviation, never Ready."""
        stamped = HealthReport(**{**report.to_dict(), "time": utc_now(), "t_s": self.elapsed_s()})
        with self.changed:
            self.health.append(stamped)
        if stamped.is_ready and not stamped.echoes_goal_state:
            self.deviation("wireserver", "health", "health-identity",
                           f"Ready for incarnation {stamped.incarnation or '?'}, container "
                           f"{stamped.container_id or '?'}, instance {stamped.instance_id or '?'}: "
                           "not the goal state served")
            return stamped
        kind = "ready" if stamped.is_ready else "not-ready"
        data = {k: v for k, v in stamped.to_dict().items() if k not in ("time", "t_s")}
        self.event(kind, **{**data, "description": self.mask(stamped.description)})
        return stamped

    def add_status(self, via: str, status: dict[str, Any], request_uri: str = "") -> StatusUpload:
        upload = StatusUpload(via, status, self.mask(request_uri), utc_now(), self.elapsed_s())
        with self.changed:
            self.statuses.append(upload)
        summary = {k: v for k, v in upload.summary().items() if k not in ("time", "t_s")}
        self.event("status", **summary)
        return upload

    def close(self) -> None:
        with self.changed:
            for handle in (self._log, self._events):
                if handle is not None:
                    handle.close()
            self._log = self._events = None


def _open_lines(path: Path | None) -> IO[str] | None:
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("w", encoding="utf-8")  # one platform run per file: a stale "ready" must not linger
    except OSError as exc:
        raise PlatformError(f"cannot open platform log {path}: {exc.strerror}", "check the directory") from exc


def _write_line(handle: IO[str] | None, data: dict[str, Any]) -> None:
    if handle is None or handle.closed:
        return
    handle.write(json.dumps(data, sort_keys=True, default=str) + "\n")
    handle.flush()
