"""`harness gallery share` against the local fake ARM endpoint (Microsoft.Compute and Microsoft.Authorization).

Assertions are on what azure-mgmt-authorization and azure-mgmt-compute put on the wire (the fake logs every
request), on what the fake holds afterwards, and on the one-line errors. The fake refuses what Azure refuses
(a duplicate role assignment, direct sharing of a gallery whose permissions are not Groups, a community gallery
without its publisher information), so a request the harness sends in the wrong order fails here too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from harness.cli import main
from harness.errors import PublishError
from harness.publish.arm import Arm
from harness.publish.azure import authorization_client, compute_client
from harness.publish.azure_settings import AzureTarget
from harness.publish.model import ImageDefinition
from harness.publish.sharing import Community, ShareRequest, share_gallery
from tests.fakes.arm import BUILTIN_ROLES, FakeArm, running_fake_arm

SUB = "00000000-0000-0000-0000-000000000001"
RG = "images-rg"
GALLERY = "shared_gallery"
GALLERY_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/galleries/{GALLERY}"
GROUP = "11111111-1111-4111-8111-111111111111"
APP = "22222222-2222-4222-8222-222222222222"
OTHER_SUB = "33333333-3333-4333-8333-333333333333"
OTHER_SUB2 = "44444444-4444-4444-8444-444444444444"
TENANT = "55555555-5555-4555-8555-555555555555"
COMMUNITY = ["--community", "--public-name-prefix", "harnesslinux", "--publisher-contact", "images@example.org",
             "--publisher-uri", "https://example.org/images", "--eula", "https://example.org/eula"]


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    """A fake ARM holding one gallery with one image definition, made through the harness's own Arm calls."""
    with running_fake_arm() as fake:
        client = Arm(compute_client(target(fake)), RG, "westeurope")
        client.ensure_gallery(GALLERY)
        client.ensure_definition(GALLERY, ImageDefinition(name="debian-12-gen2", publisher="harness-tests",
                                                          offer="debian", sku="12", os_state="Generalized",
                                                          hyper_v_generation="V2"))
        fake.requests.clear()
        yield fake


def target(fake: FakeArm) -> AzureTarget:
    return AzureTarget(subscription_id=SUB, resource_group=RG, location="westeurope", gallery=GALLERY,
                       arm_endpoint=fake.url)


def share(fake: FakeArm, *extra: str, capsys: pytest.CaptureFixture[str] | None = None) -> dict[str, Any]:
    """Run `harness gallery share --json ...` and return what it printed."""
    code = main(["gallery", "share", "--subscription", SUB, "--resource-group", RG, "--location", "westeurope",
                 "--azure-gallery", GALLERY, "--arm-endpoint", fake.url, "--json", *extra])
    assert capsys is not None
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result: dict[str, Any] = json.loads(captured.out)
    return result


def assignments(fake: FakeArm) -> list[dict[str, Any]]:
    return [r["properties"] for r in fake.resources.values() if r["type"] == "Microsoft.Authorization/roleAssignments"]


def test_a_role_assignment_on_a_definition_is_made_once(arm: FakeArm, capsys: pytest.CaptureFixture[str]) -> None:
    first = share(arm, "--principal", GROUP, "--principal-type", "Group", "--definition", "debian-12-gen2",
                  capsys=capsys)
    definition_id = f"{GALLERY_ID}/images/debian-12-gen2"
    reader = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{BUILTIN_ROLES['Reader']}"
    (body,) = arm.bodies("PUT", "/roleAssignments/")
    assert body["properties"] == {"roleDefinitionId": reader, "principalId": GROUP, "principalType": "Group"}
    (put,) = [r for r in arm.requests if r.method == "PUT"]
    assert put.path.startswith(definition_id + "/providers/Microsoft.Authorization/roleAssignments/")
    assert put.api_version == "2022-04-01" and put.status == 201
    # The role was looked up by name at the subscription, as `az role assignment create --role Reader` does.
    (lookup,) = [r for r in arm.requests if r.path.endswith("/roleDefinitions")]
    assert lookup.path == f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions"
    assert lookup.query["$filter"] == "roleName eq 'Reader'"
    assert first["actions"] == [{"action": "role", "with": GROUP, "role": "Reader", "scope": definition_id,
                                 "done": True}]
    assert assignments(arm) == [{**body["properties"], "scope": definition_id}]

    again = share(arm, "--principal", GROUP, "--principal-type", "Group", "--definition", "debian-12-gen2",
                  capsys=capsys)
    assert again["actions"][0]["done"] is False
    assert len(arm.bodies("PUT", "/roleAssignments/")) == 1 and len(assignments(arm)) == 1


def test_a_role_by_guid_on_the_gallery_for_two_principals(arm: FakeArm, capsys: pytest.CaptureFixture[str]) -> None:
    share(arm, "--principal", GROUP, "--principal", APP, "--role", BUILTIN_ROLES["Contributor"], capsys=capsys)
    made = assignments(arm)
    assert sorted(a["principalId"] for a in made) == sorted([GROUP, APP])
    assert {a["scope"] for a in made} == {GALLERY_ID}
    assert {a["roleDefinitionId"].rsplit("/", 1)[1] for a in made} == {BUILTIN_ROLES["Contributor"]}
    assert all("principalType" not in a for a in made)  # not given: Azure looks it up (the model's default is User)
    assert not [r for r in arm.requests if r.path.endswith("/roleDefinitions")]  # a GUID needs no look-up
    # A Reader assignment for the same principal is another assignment, not a duplicate.
    share(arm, "--principal", GROUP, capsys=capsys)
    assert len(assignments(arm)) == 3


def test_direct_sharing_switches_the_gallery_to_groups_then_adds_only_what_is_new(
        arm: FakeArm, capsys: pytest.CaptureFixture[str]) -> None:
    first = share(arm, "--share-subscription", OTHER_SUB, "--share-tenant", TENANT, capsys=capsys)
    (patch,) = arm.bodies("PATCH", f"/galleries/{GALLERY}$")
    assert patch == {"properties": {"sharingProfile": {"permissions": "Groups"}}}
    (post,) = arm.bodies("POST", f"/galleries/{GALLERY}/share$")
    assert post == {"operationType": "Add", "groups": [{"type": "Subscriptions", "ids": [OTHER_SUB]},
                                                       {"type": "AADTenants", "ids": [TENANT]}]}
    assert first["permissions"] == "Groups"
    assert first["groups"] == {"Subscriptions": [OTHER_SUB], "AADTenants": [TENANT]}

    again = share(arm, "--share-subscription", OTHER_SUB, "--share-subscription", OTHER_SUB2, capsys=capsys)
    assert len(arm.bodies("PATCH", "/galleries/")) == 1  # permissions were Groups already
    assert arm.bodies("POST", "/share$")[-1] == {"operationType": "Add",
                                                 "groups": [{"type": "Subscriptions", "ids": [OTHER_SUB2]}]}
    assert [(a["with"], a["done"]) for a in again["actions"]] == [(f"Subscriptions/{OTHER_SUB}", False),
                                                                  (f"Subscriptions/{OTHER_SUB2}", True)]
    assert again["groups"]["Subscriptions"] == [OTHER_SUB, OTHER_SUB2]

    with pytest.raises(PublishError, match="shared directly with subscriptions or tenants"):
        share_gallery(target(arm), ShareRequest(community=Community("harnesslinux", "images@example.org",
                                                                    "https://example.org", "terms")))


def test_a_community_gallery_is_described_then_enabled(arm: FakeArm, capsys: pytest.CaptureFixture[str]) -> None:
    first = share(arm, *COMMUNITY, capsys=capsys)
    (patch,) = arm.bodies("PATCH", f"/galleries/{GALLERY}$")
    assert patch["properties"]["sharingProfile"] == {
        "permissions": "Community",
        "communityGalleryInfo": {"publisherUri": "https://example.org/images", "publisherContact": "images@example.org",
                                 "eula": "https://example.org/eula", "publicNamePrefix": "harnesslinux"}}
    assert arm.bodies("POST", "/share$") == [{"operationType": "EnableCommunity"}]
    assert first["permissions"] == "Community"
    assert len(first["public_names"]) == 1 and first["public_names"][0].startswith("harnesslinux-")

    again = share(arm, *COMMUNITY, capsys=capsys)
    assert again["actions"] == [{"action": "community", "value": "harnesslinux", "done": False}]
    assert len(arm.bodies("POST", "/share$")) == 1 and len(arm.bodies("PATCH", "/galleries/")) == 1
    with pytest.raises(PublishError, match="is a community gallery: it is shared with everyone"):
        share_gallery(target(arm), ShareRequest(subscriptions=(OTHER_SUB,)))


def test_the_fake_refuses_what_azure_refuses(arm: FakeArm) -> None:
    """Out-of-order or repeated requests fail on the fake as on Azure: the harness's order is what passes."""
    from azure.core.exceptions import HttpResponseError, ResourceExistsError
    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
    from azure.mgmt.compute import models as m

    compute = compute_client(target(arm))
    with pytest.raises(HttpResponseError, match="Groups"):  # sharing before the permissions allow it
        compute.gallery_sharing_profile.begin_update(RG, GALLERY, m.SharingUpdate(
            operation_type="Add", groups=[m.SharingProfileGroup(type="Subscriptions", ids=[OTHER_SUB])])).result()
    with pytest.raises(HttpResponseError, match="communityGalleryInfo"):  # a community gallery without contact
        compute.galleries.begin_update(RG, GALLERY, m.GalleryUpdate(properties=m.GalleryProperties(
            sharing_profile=m.SharingProfile(permissions="Community")))).result()
    auth = authorization_client(target(arm))
    reader = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{BUILTIN_ROLES['Reader']}"
    params = RoleAssignmentCreateParameters(role_definition_id=reader, principal_id=GROUP)
    auth.role_assignments.create(GALLERY_ID, "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", params)
    with pytest.raises(ResourceExistsError, match="RoleAssignmentExists"):
        auth.role_assignments.create(GALLERY_ID, "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", params)
    with pytest.raises(HttpResponseError, match="does not exist"):
        auth.role_assignments.create(GALLERY_ID + "/images/nope", "cccccccc-cccc-4ccc-8ccc-cccccccccccc", params)


@pytest.mark.parametrize(("extra", "message"), [
    (["--principal", "alice@example.org"], "principal 'alice@example.org' is not an object id"),
    (["--share-tenant", "contoso"], "tenant 'contoso' is not a tenant id"),
    (["--community", "--public-name-prefix", "hl"], "--community needs --publisher-contact, --publisher-uri, --eula"),
    (["--eula", "terms"], "describe a community gallery"),
    (["--definition", "debian-12-gen2", "--share-subscription", OTHER_SUB], "--definition scopes a role assignment"),
    ([], "nothing to share"),
    ([*COMMUNITY[:-2], "--eula", " ", "--share-subscription", OTHER_SUB],
     "the EULA is empty; a gallery is either shared directly"),
])
def test_bad_requests_are_refused_before_any_call(arm: FakeArm, capsys: pytest.CaptureFixture[str],
                                                  extra: list[str], message: str) -> None:
    code = main(["gallery", "share", "--subscription", SUB, "--resource-group", RG, "--location", "westeurope",
                 "--azure-gallery", GALLERY, "--arm-endpoint", arm.url, *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert arm.requests == []


def test_missing_gallery_definition_and_role_are_one_line_errors(arm: FakeArm) -> None:
    with pytest.raises(PublishError, match=r"gallery other_gallery does not exist in resource group images-rg"):
        share_gallery(AzureTarget(subscription_id=SUB, resource_group=RG, location="westeurope",
                                  gallery="other_gallery", arm_endpoint=arm.url), ShareRequest(principals=(GROUP,)))
    with pytest.raises(PublishError, match=r"image definition shared_gallery/nope does not exist"):
        share_gallery(target(arm), ShareRequest(principals=(GROUP,), definition="nope"))
    with pytest.raises(PublishError, match=r"role 'Gallery Reader' does not exist") as err:
        share_gallery(target(arm), ShareRequest(principals=(GROUP,), role="Gallery Reader"))
    assert "built-in role name" in err.value.hint
    assert assignments(arm) == []
