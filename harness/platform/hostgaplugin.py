"""Fake HostGAPlugin (168.63.129.16:32526): versions, health, vmSettings (404 = no FastTrack), status, logs.

PUT /status carries `{"content": base64(status JSON), "headers": [...], "requestUri": <status blob URL>}`; the
decoded status is recorded, and `aggregateStatus.guestAgentStatus.status == "Ready"` is the best evidence that
waagent's extension handler is alive (reference §5.2).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from harness.platform.httpbase import App, Request, Response
from harness.platform.requestlog import RequestLog

_ROUTES: dict[str, tuple[str, str]] = {  # lower-cased path -> (endpoint, method)
    "/versions": ("versions", "GET"),
    "/health": ("health", "GET"),
    "/vmsettings": ("vmSettings", "GET"),
    "/status": ("status", "PUT"),
    "/vmagentlog": ("vmAgentLog", "PUT"),
}
_PLUGIN_HEADERS = ("x-ms-version", "x-ms-containerid", "x-ms-host-config-name")


class HostGAPluginApp(App):
    """Answers waagent's HostGAPlugin calls; FastTrack is not emulated (vmSettings is a 404, which waagent accepts)."""

    name = "hostgaplugin"
    expected_headers = {"vmSettings": _PLUGIN_HEADERS, "status": _PLUGIN_HEADERS, "versions": ("x-ms-containerid",)}

    def __init__(self, recorder: RequestLog, container_id: str = "") -> None:
        self.recorder = recorder
        self.container_id = container_id  # x-ms-containerid must name the goal state's container

    def endpoint(self, request: Request) -> str:
        route = _ROUTES.get(request.path.rstrip("/").lower())
        return route[0] if route else "other"

    def handle(self, request: Request) -> Response:
        route = _ROUTES.get(request.path.rstrip("/").lower())
        if route is None:
            return Response(404, b"not found\n")
        endpoint, method = route
        if request.method != method:
            return Response(405, b"method not allowed\n", headers={"Allow": method})
        sent = request.header("x-ms-containerid")
        if self.container_id and sent is not None and sent != self.container_id:
            self.recorder.deviation(self.name, endpoint, "container-id",
                                    f"x-ms-containerid {sent!r} is not the goal state's container {self.container_id}")
        if endpoint == "versions":
            return Response(200, b'["2015-09-01"]', "application/json; charset=utf-8")
        if endpoint == "vmSettings":
            return Response(404, b"FastTrack not supported\n")
        if endpoint == "status":
            return self._status(request)
        return Response(200)

    def _status(self, request: Request) -> Response:
        envelope = _json(request.body)
        content = envelope.get("content") if isinstance(envelope, dict) else None
        if not isinstance(envelope, dict) or not isinstance(content, str):
            return self._bad_status("body is not {content, headers, requestUri} JSON")
        if not content:  # PageBlob uploads start with an empty PUT
            return Response(200)
        try:
            status = _json(base64.b64decode(content, validate=True))
        except binascii.Error:
            return self._bad_status("content is not base64")
        if not isinstance(status, dict):
            return self._bad_status("content is not a JSON object")
        self.recorder.add_status("hostgaplugin", status, request_uri=str(envelope.get("requestUri", "")))
        return Response(200)

    def _bad_status(self, what: str) -> Response:
        self.recorder.deviation(self.name, "status", "status-document", f"PUT /status: {what}")
        return Response(400, f"{what}\n".encode())


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
