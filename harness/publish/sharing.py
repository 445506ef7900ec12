"""Share an Azure Compute Gallery: Azure RBAC role assignments, direct sharing, community galleries.

Three ways, from narrow to wide (Azure's "Share images using a Compute Gallery"):
- a **role assignment** (e.g. Reader) on the gallery or one image definition for a user, group or service
  principal of a tenant the gallery's tenant trusts: the usual way inside an organisation;
- **direct sharing** with subscriptions or tenants (the gallery's sharingProfile, permissions `Groups`): they
  see the gallery under "Shared with me" without a role on the resource group;
- a **community gallery** (permissions `Community`, public name prefix, publisher contact and URI, EULA): every
  Azure user can deploy its images.

Every change reads first and is skipped when already in place, so `harness gallery share` can run on every CI
pass. Role assignments go through azure-mgmt-authorization, the gallery's sharing through azure-mgmt-compute.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError

from harness.errors import PublishError
from harness.publish.azerrors import publish_error
from harness.publish.azure import authorization_client, compute_client
from harness.publish.azure_settings import AzureTarget

GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")
_PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{4,15}")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Community:
    """What a community gallery shows every Azure user about its publisher (all four are required by Azure)."""

    public_name_prefix: str
    publisher_contact: str  # an e-mail address
    publisher_uri: str
    eula: str  # a link to, or the text of, the licence terms

    def problems(self) -> list[str]:
        problems = []
        if not _PREFIX_RE.fullmatch(self.public_name_prefix):
            problems.append(f"public name prefix {self.public_name_prefix!r} must be 5-16 letters, digits or '-'")
        if not _EMAIL_RE.fullmatch(self.publisher_contact):
            problems.append(f"publisher contact {self.publisher_contact!r} is not an e-mail address")
        if not self.publisher_uri.startswith("https://"):
            problems.append(f"publisher URI {self.publisher_uri!r} must be an https:// address")
        if not self.eula.strip():
            problems.append("the EULA is empty")
        return problems


@dataclass(frozen=True)
class ShareRequest:
    """Who to share the target's gallery (or one of its image definitions, for role assignments) with."""

    principals: tuple[str, ...] = ()  # object ids of users, groups or service principals
    role: str = "Reader"  # a role name, or a role definition GUID
    principal_type: str | None = None
    definition: str | None = None  # scope the role assignment to this image definition
    subscriptions: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    community: Community | None = None

    def check(self) -> None:
        """Every problem with the request at once, before any call to Azure."""
        problems = [f"principal {p!r} is not an object id (GUID)" for p in self.principals if not GUID_RE.fullmatch(p)]
        problems += [f"subscription {s!r} is not a subscription id (GUID)" for s in self.subscriptions
                     if not GUID_RE.fullmatch(s)]
        problems += [f"tenant {t!r} is not a tenant id (GUID)" for t in self.tenants if not GUID_RE.fullmatch(t)]
        if self.principal_type is not None and self.principal_type not in PRINCIPAL_TYPES:
            problems.append(f"principal type {self.principal_type!r} is not one of {', '.join(PRINCIPAL_TYPES)}")
        if self.community is not None:
            problems += self.community.problems()
            if self.subscriptions or self.tenants:
                problems.append("a gallery is either shared directly (subscriptions, tenants) or a community gallery")
        if self.definition is not None and not self.principals:
            problems.append("--definition scopes a role assignment: give --principal too (direct and community "
                            "sharing apply to the whole gallery)")
        if not (self.principals or self.subscriptions or self.tenants or self.community):
            problems.append("nothing to share")
        if problems:
            raise PublishError(f"cannot share: {'; '.join(problems)}",
                               "see 'harness gallery share --help' for the forms each value takes")


def share_gallery(target: AzureTarget, request: ShareRequest) -> dict[str, Any]:
    """Apply the request to the target's gallery; returns what was done and the gallery's sharing afterwards."""
    from harness.publish.arm import Arm, enum_text

    request.check()
    if not target.gallery:
        raise PublishError("no gallery to share", "set --azure-gallery (or HARNESS_AZURE_GALLERY)")
    arm = Arm(compute_client(target), target.resource_group, target.location)
    gallery = arm.get_gallery(target.gallery)
    if gallery is None:
        raise PublishError(f"gallery {target.gallery} does not exist in resource group {target.resource_group}",
                           "publish a version to it first (harness publish --to azure), or fix --azure-gallery")
    actions: list[dict[str, Any]] = []
    if request.principals:
        scope = str(gallery.id)
        if request.definition:
            found = arm.get_definition(target.gallery, request.definition)
            if found is None:
                raise PublishError(f"image definition {target.gallery}/{request.definition} does not exist",
                                   "name a definition of the gallery (harness gallery share --definition NAME)")
            scope = str(found.id)
        actions += _Rbac(target).assign(scope, request)
    if request.subscriptions or request.tenants:
        actions += _share_directly(arm, gallery, request)
    if request.community is not None:
        actions += _share_community(arm, gallery, request.community)
    profile = _profile(arm.get_gallery(target.gallery))
    info = getattr(profile, "community_gallery_info", None)
    return {"gallery": target.gallery, "resource_group": target.resource_group, "actions": actions,
            "permissions": enum_text(getattr(profile, "permissions", None)) or "Private",
            "groups": {enum_text(g.type): list(g.ids or []) for g in getattr(profile, "groups", None) or []},
            "public_names": list(getattr(info, "public_names", None) or [])}


def _profile(gallery: Any) -> Any:
    properties = getattr(gallery, "properties", None)
    return getattr(properties, "sharing_profile", None) if properties is not None else getattr(
        gallery, "sharing_profile", None)


def _share_directly(arm: Any, gallery: Any, request: ShareRequest) -> list[dict[str, Any]]:
    from azure.mgmt.compute import models as m

    from harness.publish.arm import enum_text

    name = str(gallery.name)
    profile = _profile(gallery)
    permissions = enum_text(getattr(profile, "permissions", None)) or "Private"
    actions: list[dict[str, Any]] = []
    if permissions == "Community":
        raise PublishError(f"gallery {name} is a community gallery: it is shared with everyone already",
                           "direct sharing needs a gallery with permissions Groups; use a second gallery for it")
    if permissions != "Groups":
        arm.set_sharing_profile(name, m.SharingProfile(permissions="Groups"))
        actions.append({"action": "permissions", "value": "Groups", "done": True})
    have = {(enum_text(g.type), i.lower()) for g in getattr(profile, "groups", None) or [] for i in g.ids or []}
    groups = []
    for kind, ids in (("Subscriptions", request.subscriptions), ("AADTenants", request.tenants)):
        new = [i for i in dict.fromkeys(ids) if (kind, i.lower()) not in have]
        actions += [{"action": "share", "with": f"{kind}/{i}", "done": i in new} for i in dict.fromkeys(ids)]
        if new:
            groups.append(m.SharingProfileGroup(type=kind, ids=new))
    if groups:
        arm.update_sharing(name, m.SharingUpdate(operation_type="Add", groups=groups))
    return actions


def _share_community(arm: Any, gallery: Any, community: Community) -> list[dict[str, Any]]:
    from azure.mgmt.compute import models as m

    from harness.publish.arm import enum_text

    name = str(gallery.name)
    profile = _profile(gallery)
    permissions = enum_text(getattr(profile, "permissions", None)) or "Private"
    info = getattr(profile, "community_gallery_info", None)
    actions: list[dict[str, Any]] = []
    if permissions == "Groups" and getattr(profile, "groups", None):
        raise PublishError(f"gallery {name} is shared directly with subscriptions or tenants",
                           "a gallery is either shared directly or a community gallery: use a second gallery")
    if permissions != "Community":
        arm.set_sharing_profile(name, m.SharingProfile(permissions="Community", community_gallery_info=(
            m.CommunityGalleryInfo(publisher_uri=community.publisher_uri,
                                   publisher_contact=community.publisher_contact, eula=community.eula,
                                   public_name_prefix=community.public_name_prefix))))
        actions.append({"action": "permissions", "value": "Community", "done": True})
    elif getattr(info, "public_name_prefix", None) != community.public_name_prefix:
        raise PublishError(f"gallery {name} is a community gallery with public name prefix "
                           f"{getattr(info, 'public_name_prefix', None)!r}, not {community.public_name_prefix!r}",
                           "Azure does not rename a community gallery: keep its prefix")
    enabled = bool(getattr(info, "community_gallery_enabled", False))
    if not enabled:
        arm.update_sharing(name, m.SharingUpdate(operation_type="EnableCommunity"))
    actions.append({"action": "community", "value": community.public_name_prefix, "done": not enabled})
    return actions


class _Rbac:
    """Role assignments at a gallery or image definition scope (azure-mgmt-authorization)."""

    def __init__(self, target: AzureTarget) -> None:
        self.target = target
        self.client = authorization_client(target)

    def _call(self, what: str, call: Any) -> Any:
        try:
            return call()
        except AzureError as exc:
            raise publish_error(what, exc) from exc

    def role_id(self, role: str) -> str:
        """The role definition's resource id, from a GUID or a role name (listed at the subscription)."""
        subscription = f"/subscriptions/{self.target.subscription_id}"
        if GUID_RE.fullmatch(role):
            return f"{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role.lower()}"
        found = self._call(f"looking up role {role!r}", lambda: list(self.client.role_definitions.list(
            subscription, filter=f"roleName eq '{role}'")))
        if len(found) != 1:
            raise PublishError(f"role {role!r} {'is ambiguous' if found else 'does not exist'} in subscription "
                               f"{self.target.subscription_id}",
                               "give a built-in role name (e.g. Reader) or the role definition's GUID")
        return str(found[0].id)

    def assign(self, scope: str, request: ShareRequest) -> list[dict[str, Any]]:
        from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

        role_id = self.role_id(request.role)
        guid = role_id.rsplit("/", 1)[-1].lower()
        actions = []
        for principal in dict.fromkeys(request.principals):
            what = f"role {request.role} for {principal} on {scope.rsplit('/', 1)[-1]}"
            existing = self._call(f"listing role assignments of {principal}", lambda p=principal: list(
                self.client.role_assignments.list_for_scope(scope, filter=f"principalId eq '{p}'")))
            if any(str(a.role_definition_id).rsplit("/", 1)[-1].lower() == guid for a in existing):
                actions.append({"action": "role", "with": principal, "role": request.role, "scope": scope,
                                "done": False})
                continue
            parameters = RoleAssignmentCreateParameters(role_definition_id=role_id, principal_id=principal)
            # The model defaults principalType to User, which Azure refuses for a group or an application: send it
            # only when given (without it Azure looks the principal up).
            parameters.principal_type = request.principal_type  # type: ignore[assignment]
            self._call(f"assigning {what}", lambda p=parameters: self.client.role_assignments.create(
                scope, str(uuid.uuid4()), p))
            actions.append({"action": "role", "with": principal, "role": request.role, "scope": scope,
                            "done": True})
        return actions
