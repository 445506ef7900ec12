"""`FakeAzure`: IMDS, WireServer and HostGAPlugin together, with waits on what the guest reports.

Production binds 169.254.169.254:80, 168.63.129.16:80 and 168.63.129.16:32526 inside a private network
namespace (never in the host's own: reference §0); tests pass 127.0.0.1 with port 0.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import PlatformError
from harness.platform.config import PlatformConfig
from harness.platform.faults import FaultSet
from harness.platform.hostgaplugin import HostGAPluginApp
from harness.platform.httpbase import PROBE_HEADER, App, PlatformHTTPServer
from harness.platform.imds import ImdsApp
from harness.platform.requestlog import Event, HealthReport, RequestLog, StatusUpload
from harness.platform.wireserver import WireServerApp

Address = tuple[str, int]
SERVER_NAMES = ("imds", "wireserver", "hostgaplugin")
AZURE_BINDS: dict[str, Address] = {
    "imds": ("169.254.169.254", 80),
    "wireserver": ("168.63.129.16", 80),
    "hostgaplugin": ("168.63.129.16", 32526),
}
LOOPBACK_BINDS: dict[str, Address] = {name: ("127.0.0.1", 0) for name in SERVER_NAMES}


@dataclass(frozen=True)
class ReadyResult:
    """Outcome of wait_ready: ready, or why not (the agent's own NotReady description, or a timeout)."""

    ready: bool
    reason: str
    elapsed_s: float
    report: HealthReport | None = None
    timed_out: bool = False


def parse_bind(text: str) -> tuple[str, Address]:
    """'name=host:port' (IPv6 as [::1]:80) -> (name, (host, port))."""
    name, sep, address = text.partition("=")
    host, colon, port = address.rpartition(":")
    if not sep or not colon or name not in SERVER_NAMES or not port.isdigit():
        raise PlatformError(f"bad bind {text!r}", f"use NAME=HOST:PORT with NAME one of {', '.join(SERVER_NAMES)}")
    return name, (host.strip("[]"), int(port))


class FakeAzure:
    """Owns the three servers and the request log; a context manager (start on enter, stop on exit)."""

    def __init__(self, config: PlatformConfig, faults: FaultSet | None = None, log_path: Path | None = None,
                 binds: Mapping[str, Address] | None = None, events_path: Path | None = None) -> None:
        unknown = sorted(set(binds or {}) - set(SERVER_NAMES))
        if unknown:
            raise PlatformError(f"unknown server names in binds: {', '.join(unknown)}",
                                f"use {', '.join(SERVER_NAMES)}")
        self.config = config
        self.faults = faults or FaultSet()
        self.binds = {**AZURE_BINDS, **(binds or {})}
        self.log_path = log_path
        self.events_path = events_path
        self.recorder = RequestLog(None, None)
        self.addresses: dict[str, Address] = {}
        self._servers: dict[str, PlatformHTTPServer] = {}
        self._stop_event = threading.Event()
        self._running = False

    def __enter__(self) -> FakeAzure:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> FakeAzure:
        """Bind all three servers, serve them in daemon threads, probe them; emits a 'started' event."""
        if self._running:
            return self
        self._stop_event.clear()
        self.recorder = RequestLog(self.log_path, self.events_path, secrets=[self.config.password or ""])
        wire = WireServerApp(self.config, self.recorder)
        apps: dict[str, App] = {"imds": ImdsApp(self.config), "wireserver": wire,
                                "hostgaplugin": HostGAPluginApp(self.recorder, self.config.container_id)}
        try:
            for name in SERVER_NAMES:
                self._servers[name] = self._bind(name, apps[name])
                self.addresses[name] = self._servers[name].bound
        except PlatformError:
            self._close_servers()
            self.recorder.close()
            raise
        wire.base_url = self.url("wireserver")
        for server in self._servers.values():
            server.serve_in_thread()
        self._running = True
        try:
            self.self_test()
        except PlatformError:
            self.stop()
            raise
        self.recorder.event("started", servers={n: f"{h}:{p}" for n, (h, p) in self.addresses.items()},
                            faults=self.faults.describe(), vm_name=self.config.vm_name)
        return self

    def _bind(self, name: str, app: App) -> PlatformHTTPServer:
        address = self.binds[name]
        try:
            return PlatformHTTPServer(address, app, self.faults, self.recorder, self._stop_event)
        except OSError as exc:
            raise PlatformError(
                f"fake {name} cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc}",
                "run it inside the platform's network namespace with the address on lo, or bind 127.0.0.1:0",
            ) from exc

    def stop(self) -> None:
        """Close every socket and join the threads; safe to call twice."""
        self._stop_event.set()
        if self._running:
            self.recorder.event("stopped", summary=self.summary())
        self._running = False
        self._close_servers()
        with self.recorder.changed:
            self.recorder.changed.notify_all()
        self.recorder.close()

    def _close_servers(self) -> None:
        # The accept loops stop in parallel: each takes up to one poll interval.
        stoppers = [threading.Thread(target=s.stop_serving, daemon=True) for s in self._servers.values()]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join(10)
        failures: list[str] = []
        for name, server in list(self._servers.items()):
            try:
                server.stop()
            except OSError as exc:
                failures.append(f"{name}: {exc}")
        self._servers.clear()
        if failures:
            raise PlatformError(f"fake platform did not stop cleanly: {'; '.join(failures)}", "see the debug log")

    def url(self, name: str) -> str:
        """http://host:port of a running server, e.g. url('wireserver')."""
        if name not in self.addresses:
            raise PlatformError(f"fake {name} is not running", "call start() first")
        host, port = self.addresses[name]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def self_test(self, timeout_s: float = 5.0) -> None:
        """Probe each server over its bound address (fail closed: never boot a guest against a silent fake)."""
        for name, (host, port) in self.addresses.items():
            target = "127.0.0.1" if host in ("0.0.0.0", "") else host  # a wildcard bind is probed on loopback
            connection = http.client.HTTPConnection(target, port, timeout=timeout_s)
            try:
                connection.request("GET", "/", headers={PROBE_HEADER: "1"})
                status = connection.getresponse().status
            except OSError as exc:
                raise PlatformError(f"fake {name} on {host}:{port} does not answer: {exc}",
                                    "check the network namespace and the bind address") from exc
            finally:
                connection.close()
            if status != 200:
                raise PlatformError(f"fake {name} on {host}:{port} answered its probe with {status}", "see the log")

    # --- waiting ---------------------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until predicate() is true (re-checked on every request/event); False on timeout or stop."""
        deadline = time.monotonic() + timeout_s
        with self.recorder.changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop_event.is_set():
                    return False
                self.recorder.changed.wait(min(remaining, 0.5))
        return True

    def wait_ready(self, timeout_s: float) -> ReadyResult:
        """Return on the first accepted Ready report; fail fast on NotReady/ProvisioningFailed, quoting its
        Description (a Ready for another goal state is a deviation, not Ready)."""
        started = time.monotonic()
        outcome: list[HealthReport] = []

        def decided() -> bool:
            found = next((r for r in self.recorder.health if r.accepted or r.is_failure), None)
            if found is not None:
                outcome.append(found)
            return found is not None

        self.wait_for(decided, timeout_s)
        elapsed = round(time.monotonic() - started, 3)
        if not outcome:
            return ReadyResult(False, self._no_ready_reason(timeout_s), elapsed, timed_out=True)
        report = outcome[0]
        if report.accepted:
            return ReadyResult(True, f"Ready reported after {report.t_s:.1f} s", elapsed, report)
        description = self.recorder.mask(report.description)
        return ReadyResult(False, f'guest reported NotReady/{report.sub_status}: "{description}"', elapsed, report)

    def _no_ready_reason(self, timeout_s: float) -> str:
        with self.recorder.changed:
            requests = list(self.recorder.requests)
            health = list(self.recorder.health)
            goal_states = sum(1 for e in self.recorder.events if e.kind == "goal-state")
        waited = f"no Ready health report within {timeout_s:g} s"
        if self._stop_event.is_set():
            return f"{waited}: the fake platform was stopped"
        if not requests:
            return f"{waited}: no request reached the fake platform (guest network, DHCP or bind addresses?)"
        if health:
            last = health[-1]
            return f'{waited}: last report {last.state}/{last.sub_status}: "{self.recorder.mask(last.description)}"'
        servers = sorted({str(r["server"]) for r in requests})
        return f"{waited}: {len(requests)} requests ({', '.join(servers)}), {goal_states} goal-state fetches, no report"

    # --- what was seen -----------------------------------------------------------------------------------------

    def requests(self) -> list[dict[str, Any]]:
        with self.recorder.changed:
            return list(self.recorder.requests)

    def events(self) -> list[Event]:
        with self.recorder.changed:
            return list(self.recorder.events)

    def health_reports(self) -> list[HealthReport]:
        with self.recorder.changed:
            return list(self.recorder.health)

    def status_uploads(self) -> list[StatusUpload]:
        with self.recorder.changed:
            return list(self.recorder.statuses)

    def agent_status(self) -> str | None:
        """guestAgentStatus.status of the latest decoded status upload ('Ready' = waagent is alive)."""
        uploads = self.status_uploads()
        return uploads[-1].agent_status if uploads else None

    def faulted_requests(self) -> dict[str, int]:
        """Requests answered by a fault rule, per 'server:endpoint' (the retries the guest had to make)."""
        counts: dict[str, int] = {}
        for entry in self.requests():
            if entry.get("fault"):
                key = f"{entry['server']}:{entry['endpoint']}"
                counts[key] = counts.get(key, 0) + 1
        return counts

    def summary(self) -> dict[str, Any]:
        """Facts for results: first request, Ready time, NotReady reports, status uploads, fault hits."""
        requests, events = self.requests(), self.events()
        health, uploads = self.health_reports(), self.status_uploads()
        ready = next((r for r in health if r.accepted), None)
        per_server: dict[str, int] = {}
        for entry in requests:
            per_server[str(entry["server"])] = per_server.get(str(entry["server"]), 0) + 1
        return {
            "servers": {n: f"{h}:{p}" for n, (h, p) in self.addresses.items()},
            "first_request": requests[0]["time"] if requests else None,
            "first_request_s": requests[0]["t_s"] if requests else None,
            "ready": ready.time if ready else None,
            "ready_s": ready.t_s if ready else None,
            "ready_reports": sum(1 for r in health if r.accepted),
            "deviations": [{k: v for k, v in e.data.items()} for e in events if e.kind == "deviation"],
            "ready_echoes_goal_state": ready.echoes_goal_state if ready else None,
            "not_ready": [
                {"time": r.time, "t_s": r.t_s, "sub_status": r.sub_status,
                 "description": self.recorder.mask(r.description)}
                for r in health if not r.is_ready
            ],
            "goal_state_fetches": sum(1 for e in events if e.kind == "goal-state"),
            "status_uploads": [u.summary() for u in uploads],
            "agent_status": uploads[-1].agent_status if uploads else None,
            "requests": per_server,
            "fault_hits": self.faults.hits(),
            "faulted_requests": self.faulted_requests(),
            "missing_headers": sorted(
                {f"{e['server']}:{e['endpoint']}:{h}" for e in requests for h in e["missing_headers"]}
            ),
        }
