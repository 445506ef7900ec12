"""Fake WireServer (168.63.129.16:80): versions, goal state, config documents, health, telemetry, status blob.

Certificates are never listed in the goal state; a request for them anyway gets 404 (cloud-init only asks when
IMDS has no usable keys, waagent logs and ignores the error). Everything unknown is 404, a known path with the
wrong method 405. Strict where Azure is (each case a *deviation* in the request log, which fails verify):
`x-ms-version`/`x-ms-agent-name` missing where the real service expects them; a health report that is not
well-formed XML or has no State (400); a Ready for another incarnation, container or instance (never taken as
Ready); a config document asked for another incarnation than the one served; a status blob PUT without
`x-ms-blob-type` (400 MissingRequiredHeader, as Azure Storage answers) or whose body is not a JSON object.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from harness.platform.config import PlatformConfig
from harness.platform.httpbase import App, Request, Response
from harness.platform.requestlog import RequestLog
from harness.platform.wiredocs import (
    STATUS_BLOB_PREFIX,
    VERSIONS_XML,
    HealthDocumentError,
    extensions_config_xml,
    full_config_xml,
    goal_state_xml,
    hosting_environment_xml,
    parse_health,
    shared_config_xml,
)

XML_TYPE = "text/xml; charset=utf-8"
_AGENT_HEADERS = ("x-ms-version", "x-ms-agent-name")
_CONFIG_TYPES = ("hostingEnvironmentConfig", "sharedConfig", "extensionsConfig", "fullConfig")
# endpoint -> the methods it answers
_METHODS: dict[str, tuple[str, ...]] = {
    "versions": ("GET",), "goalstate": ("GET",), "health": ("POST",), "telemetrydata": ("POST",),
    "roleProperties": ("POST",), "HealthService": ("POST",), "statusblob": ("PUT",),
    **{doc: ("GET",) for doc in _CONFIG_TYPES},
}


# (path without trailing slash, lower-cased comp) -> endpoint
_EXACT = {
    ("/", "versions"): "versions",
    ("/machine", "goalstate"): "goalstate",
    ("/machine", "health"): "health",
    ("/machine", "telemetrydata"): "telemetrydata",
    ("/machine", "roleproperties"): "roleProperties",
}


def classify(request: Request) -> str:
    """The endpoint name a WireServer request addresses (names as in faults.ENDPOINTS['wireserver'])."""
    path = request.path.rstrip("/") or "/"
    comp = request.query.get("comp", "").lower()
    if path.startswith(STATUS_BLOB_PREFIX.rstrip("/")):
        return "statusblob"
    if path.lower() == "/healthservice":
        return "HealthService"
    if comp == "certificates":
        return "certificates"
    if path.startswith("/machine/") and comp == "config":
        doc = request.query.get("type", "").lower()
        return next((known for known in _CONFIG_TYPES if known.lower() == doc), "config")
    return _EXACT.get((path, comp), "other")


class WireServerApp(App):
    """Answers the WireServer protocol from a PlatformConfig; records goal-state fetches, health and status."""

    name = "wireserver"
    expected_headers = {
        "goalstate": _AGENT_HEADERS, "health": _AGENT_HEADERS, "certificates": _AGENT_HEADERS,
        **{doc: _AGENT_HEADERS for doc in _CONFIG_TYPES},
    }

    def __init__(self, config: PlatformConfig, recorder: RequestLog, base_url: str = "http://168.63.129.16:80") -> None:
        self.config = config
        self.recorder = recorder
        self.base_url = base_url  # what goal-state URLs point at; FakeAzure sets it to the bound address

    def endpoint(self, request: Request) -> str:
        return classify(request)

    def handle(self, request: Request) -> Response:
        endpoint = classify(request)
        if endpoint in ("other", "config", "certificates"):
            what = "certificates are not served by the fake platform" if endpoint == "certificates" else "not found"
            return Response(404, f"{what}\n".encode())
        if request.method not in _METHODS[endpoint]:
            return Response(405, b"method not allowed\n", headers={"Allow": ", ".join(_METHODS[endpoint])})
        if endpoint in _CONFIG_TYPES and not self._for_this_container(request):
            return Response(404, b"unknown container\n")
        if endpoint in _CONFIG_TYPES and request.query.get("incarnation") != str(self.config.incarnation):
            self.recorder.deviation(self.name, endpoint, "config-incarnation",
                                    f"{endpoint} asked for incarnation {request.query.get('incarnation')!r}, "
                                    f"the goal state served is incarnation {self.config.incarnation}")
        return self._handlers()[endpoint](request)

    def _handlers(self) -> dict[str, Callable[[Request], Response]]:
        config, base = self.config, self.base_url
        return {
            "versions": lambda _r: _xml(VERSIONS_XML),
            "goalstate": self._goal_state,
            "hostingEnvironmentConfig": lambda _r: _xml(hosting_environment_xml(config)),
            "sharedConfig": lambda _r: _xml(shared_config_xml(config)),
            "extensionsConfig": lambda _r: _xml(extensions_config_xml(config, base)),
            "fullConfig": lambda _r: _xml(full_config_xml(config)),
            "health": self._health,
            "telemetrydata": lambda _r: Response(200),
            "roleProperties": lambda _r: Response(200),
            "HealthService": lambda _r: Response(200),
            "statusblob": self._status_blob,
        }

    def _for_this_container(self, request: Request) -> bool:
        parts = [part for part in request.path.split("/") if part]
        return len(parts) >= 2 and parts[1] == self.config.container_id

    def _goal_state(self, request: Request) -> Response:
        self.recorder.event("goal-state", incarnation=self.config.incarnation, client=request.client)
        return _xml(goal_state_xml(self.config, self.base_url))

    def _health(self, request: Request) -> Response:
        try:
            report = parse_health(request.body, self.config)
        except HealthDocumentError as exc:
            self.recorder.deviation(self.name, "health", "health-document", str(exc))
            return Response(400, f"{exc}\n".encode())
        self.recorder.add_health(report)
        return Response(200)

    def _status_blob(self, request: Request) -> Response:
        """waagent's fallback when HostGAPlugin PUT /status fails: a direct block-blob PUT of the status JSON."""
        blob_type = request.header("x-ms-blob-type")
        if blob_type not in ("BlockBlob", "PageBlob"):
            self.recorder.deviation(self.name, "statusblob", "missing-header",
                                    f"status blob PUT with x-ms-blob-type {blob_type!r}")
            return Response(400, b"MissingRequiredHeader: x-ms-blob-type\n")
        status = _json_object(request.body.rstrip(b"\x00 \r\n"))
        if status is None and blob_type == "BlockBlob":
            self.recorder.deviation(self.name, "statusblob", "status-document", "status blob is not a JSON object")
        elif status is not None:
            self.recorder.add_status("statusblob", status, request_uri=request.target)
        return Response(201, headers={"x-ms-request-server-encrypted": "true"})


def _xml(text: str) -> Response:
    return Response(200, text.encode("utf-8"), XML_TYPE)


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
