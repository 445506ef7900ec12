"""A small, faithful fake of Azure Resource Manager for the Microsoft.Compute and Microsoft.Authorization calls
the harness makes.

Speaks the long-running-operation protocol azure-mgmt-core's ARMPolling follows (reference §5.2): a PUT
answers 201 with the resource in provisioningState Creating and an Azure-AsyncOperation URL that reports
InProgress, then Succeeded; the final GET returns the resource in Succeeded. POST beginGetAccess and
endGetAccess answer 202 with Azure-AsyncOperation and Location (the result: {"accessSAS": ...}). Unknown
resources get 404 ResourceNotFound JSON, missing parents 404 ParentResourceNotFound, an api-version the real
service would not accept 400 InvalidApiVersionParameter, and an image-version PUT over an existing version
409 (versions are immutable; a Shallow version lives in its source region only, as one replica), a managed
image from a specialized source 400. PATCH merges
an update into a resource (an image version's storageProfile and replicationMode stay immutable) and DELETE
removes it, both as long-running operations. A gallery's sharing profile changes with POST .../share
(Add/Remove/Reset groups need permissions Groups, EnableCommunity needs permissions Community with the
community information complete). Microsoft.Authorization role definitions (the built-in roles, listed by
`roleName eq '...'`) and role assignments (a duplicate is 409 RoleAssignmentExists, a scope that does not exist
404) are modelled at any scope below the fake's resources. Every request is logged with its query and parsed
JSON body so tests assert on what the SDK sent. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes import serve_on_loopback, shut_down

# What azure-mgmt-compute 39 sends (operations/_operations.py) plus a few older versions the service still serves.
API_VERSIONS: dict[str, frozenset[str]] = {
    "galleries": frozenset({"2026-03-03", "2025-03-03", "2024-03-03", "2023-07-03", "2022-03-03"}),
    "images": frozenset({"2026-04-01", "2025-04-01", "2024-11-01", "2024-07-01", "2024-03-01"}),
    "disks": frozenset({"2026-03-02", "2025-01-02", "2024-03-02", "2023-10-02"}),
}
TYPE_NAMES = {("galleries",): "galleries", ("galleries", "images"): "galleries/images",
              ("galleries", "images", "versions"): "galleries/images/versions", ("images",): "images",
              ("disks",): "disks"}
PROVIDER = "providers/microsoft.compute/"
AUTHORIZATION = "/providers/microsoft.authorization/"
AUTHORIZATION_API_VERSIONS = frozenset({"2022-04-01"})
# Azure's built-in roles the tests use, by name -> role definition GUID (the same in every subscription).
BUILTIN_ROLES = {"Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
                 "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
                 "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"}
GUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
COMMUNITY_FIELDS = ("publisherUri", "publisherContact", "eula", "publicNamePrefix")


@dataclass
class Fault:
    """An error answered instead of the normal response, for requests whose path contains `path_part`."""

    method: str
    path_part: str
    status: int
    code: str
    message: str
    times: int = 1
    in_operation: bool = False  # fail the long-running operation (status Failed) instead of the request


@dataclass
class Operation:
    resource_key: str
    polls_left: int
    status: str = "InProgress"
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    on_success: Callable[[], None] | None = None


@dataclass
class ArmRequest:
    method: str
    path: str
    api_version: str
    body: Any
    status: int
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeArm:
    """Fake ARM server; `grant_access(disk_id, disk)` returns the write SAS URL a disk upload should use."""

    in_progress_polls: int = 1
    resource_groups: set[str] | None = None  # None: every resource group exists
    grant_access: Callable[[str, dict[str, Any]], str] | None = None
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    requests: list[ArmRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None, "fake ARM not started"
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def bodies(self, method: str, path_pattern: str) -> list[Any]:
        """JSON bodies of the requests with this method whose path matches the regex (re.search, any case)."""
        return [r.body for r in self.requests if r.method == method and re.search(path_pattern, r.path, re.I)]

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def start(self) -> FakeArm:
        fake = self

        class Handler(_Handler):
            owner = fake

        self.server = serve_on_loopback(Handler, "fake-arm")
        return self

    def stop(self) -> None:
        shut_down(self.server)
        self.server = None

    # -- the resource model ------------------------------------------------------------------------

    def take_fault(self, method: str, path: str, in_operation: bool) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and fault.path_part.lower() in path.lower() \
                        and fault.in_operation == in_operation and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def new_operation(self, key: str, on_success: Callable[[], None] | None = None,
                      result: dict[str, Any] | None = None, error: dict[str, str] | None = None) -> str:
        op_id = str(uuid.uuid4())
        self.operations[op_id] = Operation(key, self.in_progress_polls, result=result, error=error,
                                           on_success=on_success)
        return op_id

    def poll(self, op_id: str) -> Operation | None:
        with self.lock:
            op = self.operations.get(op_id)
            if op is None or op.status != "InProgress":
                return op
            if op.polls_left > 0:
                op.polls_left -= 1
                return op
            op.status = "Failed" if op.error else "Succeeded"
            resource = self.resources.get(op.resource_key)
            if resource is not None and "provisioningState" in resource.get("properties", {}):
                resource["properties"]["provisioningState"] = op.status
            if op.on_success is not None and not op.error:
                op.on_success()
            return op


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge: nested objects merge key by key, anything else (lists included) replaces."""
    merged = dict(base)
    for key, value in patch.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _split(path: str) -> tuple[str, str, list[str]] | None:
    """'/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/galleries/g/images/i' ->
    (S, RG, ['galleries', 'g', 'images', 'i']); None for any other path."""
    parts = path.strip("/").split("/")
    if len(parts) < 7 or parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups" \
            or "/".join(parts[4:6]).lower() != "providers/microsoft.compute":
        return None
    return parts[1], parts[3], parts[6:]


class _Handler(BaseHTTPRequestHandler):
    owner: FakeArm
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing ---------------------------------------------------------------------------------

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self._status = status

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        self._query = dict(parse_qsl(url.query))
        self._status = 0
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        with self.owner.lock:
            try:
                self._route(url.path, body)
            finally:
                self.owner.requests.append(ArmRequest(self.command, url.path, self._query.get("api-version", ""),
                                                      body, self._status, dict(self._query)))

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _dispatch

    def _route(self, path: str, body: Any) -> None:
        if AUTHORIZATION in path.lower():
            self._authorization(path, body)
            return
        parts = path.strip("/").split("/")
        if len(parts) >= 8 and parts[2].lower() == "providers" and parts[4].lower() == "locations":
            self._operation(parts[6].lower(), parts[7], path)
            return
        split = _split(path)
        if split is None:
            self._send(404, _error("InvalidResourceType", f"no such route {path}"))
            return
        self._subscription, rg, segments = split
        family = segments[0].lower()
        version = self._query.get("api-version", "")
        if family not in API_VERSIONS:
            self._send(404, _error("InvalidResourceType", f"resource type {family} is not faked"))
        elif version not in API_VERSIONS[family]:
            self._send(400, _error("InvalidApiVersionParameter",
                                   f"The api-version '{version}' is invalid. The supported versions are "
                                   f"'{','.join(sorted(API_VERSIONS[family], reverse=True))}'."))
        elif self.owner.resource_groups is not None and rg not in self.owner.resource_groups:
            self._send(404, _error("ResourceGroupNotFound", f"Resource group '{rg}' could not be found."))
        elif (fault := self.owner.take_fault(self.command, path, in_operation=False)) is not None:
            self._send(fault.status, _error(fault.code, fault.message))
        elif self.command == "POST" and family == "disks" and len(segments) == 3:
            self._disk_action(path.rsplit("/", 1)[0], segments[2].lower(), body)
        elif self.command == "POST" and family == "galleries" and len(segments) == 3 and segments[2].lower() == "share":
            self._share(path.rsplit("/", 1)[0], body)
        elif self.command == "PUT" and len(segments) % 2 == 0:
            self._put(path, segments, body)
        elif self.command == "PATCH" and len(segments) % 2 == 0:
            self._patch(path, body)
        elif self.command == "DELETE" and len(segments) % 2 == 0:
            self._delete(path)
        elif self.command == "GET" and len(segments) % 2 == 0:
            self._get(path)
        elif self.command == "GET":
            self._list(path)
        else:
            self._send(405, _error("MethodNotAllowed", f"{self.command} {path}"))

    def _async_headers(self, op_id: str, location: str, with_location: str = "") -> dict[str, str]:
        """Azure-AsyncOperation (the status), plus a Location that answers the result under `with_location`
        (e.g. DiskOperations) for a POST action."""
        base = f"{self.owner.url}/subscriptions/{self._subscription}/providers/Microsoft.Compute/locations/{location}"
        version = self._query.get("api-version", "")
        headers = {"Azure-AsyncOperation": f"{base}/operations/{op_id}?api-version={version}"}
        if with_location:
            headers["Location"] = f"{base}/{with_location}/{op_id}?monitor=true&api-version={version}"
        return headers

    # -- handlers ---------------------------------------------------------------------------------

    def _parent_missing(self, segments: list[str], path: str) -> bool:
        if len(segments) <= 2:
            return False
        parent = "/".join(path.rstrip("/").split("/")[:-2]).lower()
        if parent in self.owner.resources:
            return False
        self._send(404, _error("ParentResourceNotFound",
                               f"Can not perform requested operation on nested resource. Parent resource "
                               f"'{'/'.join(segments[-4:-2])}' not found."))
        return True

    def _put(self, path: str, segments: list[str], body: Any) -> None:
        key = path.lower()
        if not isinstance(body, dict) or not body.get("location"):
            self._send(400, _error("InvalidRequestContent", "The request content must be JSON with a location."))
            return
        if self._parent_missing(segments, path):
            return
        if key in self.owner.resources and segments[-2].lower() == "versions":
            self._send(409, _error("OperationNotAllowed", "Changing property 'galleryImageVersion.properties."
                                   "storageProfile' is not allowed: image versions are immutable."))
            return
        if problem := _content_problem(segments, body):
            self._send(400, _error("InvalidParameter", problem))
            return
        changed = _immutable_definition_change(self.owner.resources.get(key), body)
        if changed and segments[-2].lower() == "images":
            self._send(409, _error("PropertyChangeNotAllowed", f"Changing property 'galleryImage.properties.{changed}' "
                                   "is not allowed."))
            return
        kind = TYPE_NAMES.get(tuple(s.lower() for s in segments[0::2]), "unknown")
        properties = dict(body.get("properties") or {})
        properties["provisioningState"] = "Creating"
        if kind == "disks":
            creation = properties.get("creationData") or {}
            properties["diskState"] = "ReadyToUpload" if creation.get("createOption") == "Upload" else "Unattached"
        if kind == "galleries/images/versions":  # read-only, set by the service when the version is created
            profile = dict(properties.get("publishingProfile") or {})
            profile["publishedDate"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            properties["publishingProfile"] = profile
        resource = {**body, "id": path, "name": segments[-1], "type": f"Microsoft.Compute/{kind}",
                    "properties": properties}
        self.owner.resources[key] = resource
        fault = self.owner.take_fault("PUT", path, in_operation=True)
        error = {"code": fault.code, "message": fault.message} if fault else None
        op_id = self.owner.new_operation(key, error=error)
        # The disk RP answers a create with 202 (azure-mgmt-compute 39 accepts only 200/202 there), the others 201.
        self._send(202 if kind == "disks" else 201, resource, self._async_headers(op_id, body["location"]))

    def _patch(self, path: str, body: Any) -> None:
        """Update: merge the body into the resource (JSON merge semantics: tables merge, the rest replaces), answer
        200 in provisioningState Updating with an Azure-AsyncOperation URL. An image version's content is
        immutable: a PATCH that changes its storageProfile is refused like Azure does (409)."""
        resource = self.owner.resources.get(path.lower())
        if resource is None:
            self._get(path)
            return
        if not isinstance(body, dict):
            self._send(400, _error("InvalidRequestContent", "The request content must be a JSON object."))
            return
        update = body.get("properties") or {}
        if "storageProfile" in update and update["storageProfile"] != resource["properties"].get("storageProfile"):
            self._send(409, _error("OperationNotAllowed", "Changing property 'galleryImageVersion.properties."
                                   "storageProfile' is not allowed."))
            return
        mode = (update.get("publishingProfile") or {}).get("replicationMode")
        if mode and mode != (resource["properties"].get("publishingProfile") or {}).get("replicationMode", "Full"):
            self._send(409, _error("PropertyChangeNotAllowed", "Changing property 'galleryImageVersion.properties."
                                   "publishingProfile.replicationMode' is not allowed."))
            return
        merged = _merge(resource, {k: v for k, v in body.items() if k in ("tags", "properties")})
        if resource["type"] == "Microsoft.Compute/galleries" and (problem := _sharing_problem(merged)):
            self._send(400, _error("InvalidParameter", problem))
            return
        merged["properties"]["provisioningState"] = "Updating"
        self.owner.resources[path.lower()] = merged
        op_id = self.owner.new_operation(path.lower())
        self._send(200, merged, self._async_headers(op_id, resource["location"]))

    def _delete(self, path: str) -> None:
        """Delete: 202 with an Azure-AsyncOperation URL; the resource is gone once the operation succeeded. A
        resource that does not exist answers 204, as ARM does."""
        key = path.lower()
        resource = self.owner.resources.get(key)
        if resource is None:
            self._send(204)
            return
        children = [k for k in self.owner.resources if k.startswith(key + "/")]
        if children:
            self._send(409, _error("CannotDeleteResource", f"{resource['name']} has nested resources."))
            return
        resource["properties"]["provisioningState"] = "Deleting"

        def remove() -> None:
            self.owner.resources.pop(key, None)

        op_id = self.owner.new_operation(key, on_success=remove)
        self._send(202, None, self._async_headers(op_id, resource["location"]))

    def _get(self, path: str) -> None:
        resource = self.owner.resources.get(path.lower())
        if resource is None:
            split = _split(path)
            segments = split[2] if split else []
            self._send(404, _error("ResourceNotFound", f"The Resource 'Microsoft.Compute/{'/'.join(segments)}' "
                                   f"under resource group '{split[1] if split else ''}' was not found."))
            return
        self._send(200, resource)

    def _list(self, path: str) -> None:
        prefix = path.lower().rstrip("/") + "/"
        segments = (_split(path) or ("", "", []))[2]
        if len(segments) > 1 and prefix.rsplit("/", 2)[0] not in self.owner.resources:
            self._send(404, _error("ParentResourceNotFound", f"Parent resource '{segments[-2]}' not found."))
            return
        items = [r for k, r in self.owner.resources.items() if k.startswith(prefix) and "/" not in k[len(prefix):]]
        self._send(200, {"value": items})

    def _disk_action(self, disk_path: str, action: str, body: Any) -> None:
        disk = self.owner.resources.get(disk_path.lower())
        if disk is None:
            self._get(disk_path)
            return
        props = disk["properties"]
        if action == "begingetaccess":
            if props.get("diskState") not in ("ReadyToUpload", "ActiveUpload") or (body or {}).get("access") != "Write":
                self._send(409, _error("OperationNotAllowed", f"Disk is in state {props.get('diskState')}; write "
                                       "access needs a disk created for upload."))
                return
            assert self.owner.grant_access is not None, "FakeArm.grant_access is not set"
            sas = self.owner.grant_access(disk["id"], disk)
            props["diskState"] = "ActiveUpload"
            op_id = self.owner.new_operation(disk_path.lower(), result={"accessSAS": sas})
        elif action == "endgetaccess":
            def finish() -> None:
                if props.get("diskState") == "ActiveUpload":
                    props["diskState"] = "Unattached"
            op_id = self.owner.new_operation(disk_path.lower(), on_success=finish)
        else:
            self._send(404, _error("InvalidResourceType", f"no disk action {action}"))
            return
        self._send(202, None, self._async_headers(op_id, disk["location"], with_location="DiskOperations"))

    def _share(self, gallery_path: str, body: Any) -> None:
        """POST .../galleries/G/share: change who the gallery is shared with (an LRO whose result is the update)."""
        gallery = self.owner.resources.get(gallery_path.lower())
        if gallery is None:
            self._get(gallery_path)
            return
        update = body if isinstance(body, dict) else {}
        operation = update.get("operationType")
        profile = dict(gallery["properties"].get("sharingProfile") or {})
        permissions = profile.get("permissions", "Private")
        if operation in ("Add", "Remove", "Reset"):
            if permissions != "Groups":
                self._send(409, _error("OperationNotAllowed", f"Gallery sharing permission is '{permissions}'; "
                                       "direct sharing needs the gallery's sharingProfile.permissions 'Groups'."))
                return
            problem = _groups_problem(update.get("groups") or [], required=operation != "Reset")
            if problem:
                self._send(400, _error("InvalidParameter", problem))
                return
            profile["groups"] = _apply_groups(profile.get("groups") or [], operation, update.get("groups") or [])
        elif operation == "EnableCommunity":
            info = dict(profile.get("communityGalleryInfo") or {})
            if permissions != "Community" or any(not info.get(f) for f in COMMUNITY_FIELDS):
                self._send(409, _error("OperationNotAllowed", "EnableCommunity needs sharingProfile.permissions "
                                       "'Community' and communityGalleryInfo with " + ", ".join(COMMUNITY_FIELDS)))
                return
            info["communityGalleryEnabled"] = True
            info["publicNames"] = info.get("publicNames") or [f"{info['publicNamePrefix']}-{uuid.uuid4()}"]
            profile["communityGalleryInfo"] = info
        else:
            self._send(400, _error("InvalidParameter", f"operationType {operation!r} is not one of Add, Remove, "
                                   "Reset, EnableCommunity"))
            return
        gallery["properties"]["sharingProfile"] = profile
        op_id = self.owner.new_operation(gallery_path.lower(), result=update)
        self._send(202, None, self._async_headers(op_id, gallery["location"], with_location="operationResults"))

    def _authorization(self, path: str, body: Any) -> None:
        """Microsoft.Authorization at a scope: role definitions (list, get) and role assignments (list, put, get)."""
        low = path.lower()
        at = low.index(AUTHORIZATION)
        scope, rest = path[:at], path[at + len(AUTHORIZATION):].strip("/").split("/")
        kind = rest[0].lower()
        if self._query.get("api-version", "") not in AUTHORIZATION_API_VERSIONS:
            self._send(400, _error("InvalidApiVersionParameter", f"The api-version "
                                   f"'{self._query.get('api-version', '')}' is invalid for Microsoft.Authorization."))
        elif not _scope_exists(self.owner, scope):
            self._send(404, _error("ResourceNotFound", f"The scope '{scope}' does not exist."))
        elif kind == "roledefinitions" and self.command == "GET":
            self._role_definitions(scope, rest[1] if len(rest) > 1 else None)
        elif kind == "roleassignments" and self.command == "GET" and len(rest) == 1:
            self._list_assignments(scope)
        elif kind == "roleassignments" and self.command == "PUT" and len(rest) == 2:
            self._put_assignment(path, scope, rest[1], body)
        elif kind == "roleassignments" and self.command == "GET" and len(rest) == 2:
            self._get(path)
        else:
            self._send(405, _error("MethodNotAllowed", f"{self.command} {path}"))

    def _role_definitions(self, scope: str, guid: str | None) -> None:
        subscription = "/".join(scope.strip("/").split("/")[:2])
        roles = [{"id": f"/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role_id}",
                  "name": role_id, "type": "Microsoft.Authorization/roleDefinitions",
                  "properties": {"roleName": name, "type": "BuiltInRole", "assignableScopes": ["/"]}}
                 for name, role_id in BUILTIN_ROLES.items()]
        if guid is not None:
            found = [r for r in roles if r["name"] == guid.lower()]
            if found:
                self._send(200, found[0])
            else:
                self._send(404, _error("RoleDefinitionDoesNotExist",
                                       f"The specified role definition with ID '{guid}' does not exist."))
            return
        wanted = re.fullmatch(r"roleName eq '(.*)'", self._query.get("$filter", "").strip())
        self._send(200, {"value": [r for r in roles if wanted is None
                                   or r["properties"]["roleName"].lower() == wanted.group(1).lower()]})

    def _assignments(self) -> list[dict[str, Any]]:
        return [r for r in self.owner.resources.values() if r["type"] == "Microsoft.Authorization/roleAssignments"]

    def _list_assignments(self, scope: str) -> None:
        """Assignments at the scope or above it (what Azure lists for a scope), filtered by principalId."""
        principal = re.fullmatch(r"principalId eq '(.*)'", self._query.get("$filter", "").strip())
        items = [a for a in self._assignments()
                 if (scope.lower() + "/").startswith(a["properties"]["scope"].lower() + "/")
                 and (principal is None or a["properties"]["principalId"] == principal.group(1))]
        self._send(200, {"value": items})

    def _put_assignment(self, path: str, scope: str, name: str, body: Any) -> None:
        props = (body or {}).get("properties") or {} if isinstance(body, dict) else {}
        role_id = str(props.get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()
        principal = str(props.get("principalId", ""))
        if not GUID_RE.fullmatch(name):
            self._send(400, _error("InvalidRoleAssignmentId", f"The role assignment ID '{name}' is not valid: it "
                                   "must be a GUID."))
        elif not GUID_RE.fullmatch(principal):
            self._send(400, _error("InvalidPrincipalId", "A valid principal ID must be provided for role "
                                   "assignment."))
        elif role_id not in BUILTIN_ROLES.values():
            self._send(400, _error("RoleDefinitionDoesNotExist", f"The specified role definition with ID "
                                   f"'{role_id}' does not exist."))
        elif props.get("principalType") not in (None, "User", "Group", "ServicePrincipal", "ForeignGroup", "Device"):
            self._send(400, _error("InvalidPrincipalType", f"principalType {props.get('principalType')!r}"))
        elif any(a["properties"]["scope"].lower() == scope.lower() and a["properties"]["principalId"] == principal
                 and a["properties"]["roleDefinitionId"].rsplit("/", 1)[-1].lower() == role_id
                 for a in self._assignments()):
            self._send(409, _error("RoleAssignmentExists", "The role assignment already exists."))
        elif path.lower() in self.owner.resources:
            self._send(409, _error("RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, "
                                   "and scope are not allowed to be updated."))
        else:
            assignment = {"id": path, "name": name, "type": "Microsoft.Authorization/roleAssignments",
                          "properties": {**props, "scope": scope}}
            self.owner.resources[path.lower()] = assignment
            self._send(201, assignment)

    def _operation(self, kind: str, op_id: str, path: str) -> None:
        """Azure-AsyncOperation status (.../operations/ID) or a POST's result (.../DiskOperations/ID)."""
        version = self._query.get("api-version", "")
        if not any(version in versions for versions in API_VERSIONS.values()):
            self._send(400, _error("InvalidApiVersionParameter", f"The api-version '{version}' is invalid."))
            return
        op = self.owner.poll(op_id) if kind == "operations" else self.owner.operations.get(op_id)
        if op is None:
            self._send(404, _error("NotFound", f"operation {op_id} not found"))
        elif kind == "operations":
            status: dict[str, Any] = {"name": op_id, "status": op.status,
                                      "startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            if op.error and op.status == "Failed":
                status["error"] = op.error
            self._send(200, status)
        elif op.status == "InProgress":
            self._send(202, None, {"Location": f"{self.owner.url}{path}?{urlsplit(self.path).query}"})
        else:
            self._send(200, op.result)


@contextmanager
def running_fake_arm(**options: Any) -> Iterator[FakeArm]:
    fake = FakeArm(**options).start()
    try:
        yield fake
    finally:
        fake.stop()


IMMUTABLE_DEFINITION = ("osType", "osState", "hyperVGeneration", "architecture", "identifier", "features")


def _immutable_definition_change(existing: dict[str, Any] | None, body: dict[str, Any]) -> str:
    """The first property Azure does not let an existing image definition change (features included), or ''."""
    if existing is None:
        return ""
    have, want = existing.get("properties") or {}, body.get("properties") or {}

    def norm(name: str, value: Any) -> Any:
        if name == "features":
            return sorted((f.get("name"), f.get("value")) for f in value or [])
        return value

    return next((name for name in IMMUTABLE_DEFINITION
                 if norm(name, have.get(name)) != norm(name, want.get(name))), "")


def _region_key(name: str) -> str:
    return name.replace(" ", "").lower()


def _content_problem(segments: list[str], body: dict[str, Any]) -> str:
    """Why Azure would refuse the content of this PUT ('' when it fits)."""
    if segments[-2].lower() == "versions":
        return _shallow_problem(body)
    os_disk = ((body.get("properties") or {}).get("storageProfile") or {}).get("osDisk") or {}
    if len(segments) == 2 and segments[0].lower() == "images" and os_disk.get("osState") != "Generalized":
        return f"A managed image can only be created from a generalized source: osDisk.osState is " \
               f"{os_disk.get('osState')!r}."
    return _sharing_problem(body) if len(segments) == 2 else ""


def _shallow_problem(body: dict[str, Any]) -> str:
    """Why Azure would refuse a Shallow image version ('' when it is not Shallow or fits)."""
    profile = (body.get("properties") or {}).get("publishingProfile") or {}
    if profile.get("replicationMode") != "Shallow":
        return ""
    regions = profile.get("targetRegions") or [{"name": body["location"]}]
    if len(regions) != 1 or _region_key(regions[0].get("name", "")) != _region_key(body["location"]):
        return "Shallow replication is supported only in the source region of the image version."
    if (regions[0].get("regionalReplicaCount") or profile.get("replicaCount") or 1) != 1:
        return "Shallow replication supports a replica count of 1 only."
    return ""


def _sharing_problem(gallery: dict[str, Any]) -> str:
    """Why Azure would refuse a gallery's sharing profile ('' when it fits)."""
    profile = (gallery.get("properties") or {}).get("sharingProfile") or {}
    permissions = profile.get("permissions", "Private")
    if permissions not in ("Private", "Groups", "Community"):
        return f"sharingProfile.permissions {permissions!r} is not one of Private, Groups, Community."
    info = profile.get("communityGalleryInfo") or {}
    missing = [f for f in COMMUNITY_FIELDS if not info.get(f)]
    if permissions == "Community" and missing:
        return f"A community gallery needs communityGalleryInfo.{', '.join(missing)}."
    return ""


def _groups_problem(groups: list[dict[str, Any]], *, required: bool) -> str:
    if required and not groups:
        return "groups must name at least one subscription or tenant."
    for group in groups:
        if group.get("type") not in ("Subscriptions", "AADTenants"):
            return f"group type {group.get('type')!r} is not Subscriptions or AADTenants."
        bad = [i for i in group.get("ids") or [] if not GUID_RE.fullmatch(str(i))]
        if bad or not group.get("ids"):
            return f"group ids must be GUIDs: {bad or 'none given'}."
    return ""


def _apply_groups(have: list[dict[str, Any]], operation: str, change: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = {g["type"]: list(g.get("ids") or []) for g in have}
    if operation == "Reset":
        return []
    for group in change:
        current = ids.setdefault(group["type"], [])
        for i in group["ids"]:
            if operation == "Add" and i not in current:
                current.append(i)
            elif operation == "Remove" and i in current:
                current.remove(i)
    return [{"type": kind, "ids": found} for kind, found in ids.items() if found]


def _scope_exists(fake: FakeArm, scope: str) -> bool:
    """A subscription or resource group scope always exists (unless resource_groups says otherwise); a resource
    scope exists when the fake holds that resource."""
    parts = scope.strip("/").split("/")
    if len(parts) <= 2:
        return True
    if len(parts) <= 4:
        return fake.resource_groups is None or parts[3] in fake.resource_groups
    return scope.lower() in fake.resources
