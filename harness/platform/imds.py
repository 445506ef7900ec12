"""Fake Azure Instance Metadata Service (169.254.169.254:80) with the real service's request rules.

Rules (reference §3.3): GET only (405), unknown path 404, `Metadata: true` compared case-insensitively (400),
X-Forwarded-For rejected (400), api-version required and known (400 with newest-versions) except on
/metadata/versions, path segments select sub-trees (numbers index lists), `format=text` for leaves (and key
lists for inner nodes; a leaf without format=text is a 400, as on Azure), `extended` only with extended=true.
"""

from __future__ import annotations

import json
from typing import Any

from harness.platform.config import PlatformConfig
from harness.platform.httpbase import App, Request, Response

# Known api-versions, oldest first: the ones the agents use (2018-02-01, 2019-06-01, 2021-02-01, 2021-08-01)
# and the others Azure lists.
API_VERSIONS = (
    "2017-03-01", "2017-04-02", "2017-08-01", "2017-10-01", "2017-12-01", "2018-02-01", "2018-04-02",
    "2018-10-01", "2019-02-01", "2019-03-11", "2019-04-30", "2019-06-01", "2019-06-04", "2019-08-01",
    "2019-08-15", "2019-11-01", "2020-06-01", "2020-07-15", "2020-09-01", "2020-10-01", "2020-12-01",
    "2021-01-01", "2021-02-01", "2021-03-01", "2021-05-01", "2021-08-01", "2021-10-01", "2021-11-01",
    "2021-11-15", "2021-12-13", "2022-02-01", "2022-03-01", "2022-07-01", "2022-08-01", "2022-11-01",
    "2022-12-01", "2023-03-01", "2023-07-01",
)
NEWEST_VERSIONS = list(reversed(API_VERSIONS[-3:]))
JSON_TYPE = "application/json; charset=utf-8"
MSG_NO_HEADER = "Bad request. Required metadata header not specified"
MSG_PROXY = "Bad request. Requests with an X-Forwarded-For header are not allowed"
_MORE = "For more information refer to aka.ms/azureimds"
MSG_API_MISSING = f"Bad request. api-version was not specified in the request. {_MORE}"
MSG_API_INVALID = f"Bad request. api-version is invalid or was not specified in the request. {_MORE}"
MSG_LEAF_JSON = "Bad request. Query parameter format=json is not supported for leaf nodes; use format=text"


def instance_document(config: PlatformConfig, *, extended: bool) -> dict[str, Any]:
    """The /metadata/instance document (reference §3.6): every leaf a string but extended.compute.hasCustomData."""
    document: dict[str, Any] = {"compute": _compute(config), "network": _network(config)}
    if extended:
        document["extended"] = {"compute": {"ppsType": "None", "hasCustomData": bool(config.custom_data)}}
    return document


def _compute(config: PlatformConfig) -> dict[str, Any]:
    return {
        "azEnvironment": "AzurePublicCloud",
        "location": config.location,
        "name": config.vm_name,
        "offer": "",
        "osType": "Linux",
        "osProfile": {
            "adminUsername": config.admin_username,
            "computerName": config.hostname,
            "disablePasswordAuthentication": "false" if config.password else "true",
        },
        "placementGroupId": "",
        "platformFaultDomain": "0",
        "platformUpdateDomain": "0",
        "provider": "Microsoft.Compute",
        "publicKeys": [{"keyData": config.ssh_public_key, "path": config.ssh_key_path}],
        "publisher": "",
        "resourceGroupName": config.resource_group,
        "resourceId": config.resource_id,
        "sku": "",
        "subscriptionId": config.subscription_id,
        "tags": "",
        "userData": "",
        "version": "",
        "vmId": config.vm_id,
        "vmScaleSetName": "",
        "vmSize": config.vm_size,
        "zone": "",
    }


def _network(config: PlatformConfig) -> dict[str, Any]:
    interface = {
        "ipv4": {
            "ipAddress": [{"privateIpAddress": config.ipv4_address, "publicIpAddress": ""}],
            "subnet": [{"address": config.subnet_address, "prefix": str(config.ipv4_prefix)}],
        },
        "ipv6": {"ipAddress": []},
        "macAddress": config.imds_mac,
    }
    return {"interface": [interface]}


def _error(status: int, message: str, **extra: Any) -> Response:
    return Response(status, json.dumps({"error": message, **extra}).encode(), JSON_TYPE)


def _segments(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


class ImdsApp(App):
    """Answers /metadata/instance[/...] and /metadata/versions from a PlatformConfig."""

    name = "imds"
    expected_headers = {"instance": ("Metadata",), "versions": ("Metadata",)}

    def __init__(self, config: PlatformConfig) -> None:
        self.config = config

    def endpoint(self, request: Request) -> str:
        parts = _segments(request.path)
        if len(parts) >= 2 and parts[0] == "metadata" and parts[1] in ("instance", "versions", "reprovisiondata"):
            return parts[1]
        return "other"

    def fault_response(self, status: int, message: str) -> Response:
        return _error(status, message)

    def handle(self, request: Request) -> Response:
        endpoint = self.endpoint(request)
        rejection = self._rejection(request, endpoint)
        if rejection is not None:
            return rejection
        if endpoint == "versions":
            return Response(200, json.dumps({"apiVersions": list(API_VERSIONS)}).encode(), JSON_TYPE)
        version = request.query.get("api-version")
        if version not in API_VERSIONS:
            message = MSG_API_MISSING if not version else MSG_API_INVALID
            return _error(400, message, **{"newest-versions": NEWEST_VERSIONS})
        return self._instance(request)

    def _rejection(self, request: Request, endpoint: str) -> Response | None:
        """404 unknown path, 405 not GET, 400 proxied or without `Metadata: true` (any case); else None."""
        served = endpoint == "instance" or (endpoint == "versions" and len(_segments(request.path)) == 2)
        if not served:
            return _error(404, f'API not found: Path = "{request.path}", Method = "{request.method}"')
        if request.method != "GET":
            response = _error(405, f'Http method not allowed: Path = "{request.path}", Method = "{request.method}"')
            response.headers["Allow"] = "GET"
            return response
        if request.header("X-Forwarded-For") is not None:
            return _error(400, MSG_PROXY)
        if (request.header("Metadata") or "").strip().lower() != "true":
            return _error(400, MSG_NO_HEADER)
        return None

    def _instance(self, request: Request) -> Response:
        extended = request.query.get("extended", "").lower() == "true"
        node: Any = instance_document(self.config, extended=extended)
        for segment in _segments(request.path)[2:]:
            node = _child(node, segment)
            if node is None:
                return _error(404, f'API not found: Path = "{request.path}", Method = "{request.method}"')
        fmt = request.query.get("format", "json").lower()
        leaf = not isinstance(node, dict | list)
        if fmt == "text":
            return Response(200, _as_text(node).encode(), "text/plain; charset=utf-8")
        if fmt != "json":
            return _error(400, f"Bad request. Query parameter format={fmt} is not supported")
        if leaf:
            return _error(400, MSG_LEAF_JSON)
        return Response(200, json.dumps(node, separators=(",", ":")).encode(), JSON_TYPE)


def _child(node: Any, segment: str) -> Any:
    """The sub-tree one path segment selects (a key, or an index into a list), or None."""
    if isinstance(node, dict):
        return node.get(segment)
    if isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
        return node[int(segment)]
    return None


def _as_text(node: Any) -> str:
    """format=text: a leaf's value; for an inner node, its keys (or list indices), '/' marking inner children."""
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, dict):
        return "\n".join(f"{key}/" if isinstance(value, dict | list) else key for key, value in node.items())
    if isinstance(node, list):
        return "\n".join(f"{index}/" for index in range(len(node)))
    return str(node)
