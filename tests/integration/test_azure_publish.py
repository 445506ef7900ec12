"""publish_to_azure against Azurite (behind the recording proxy) and the local fake ARM endpoint.

Assertions are on what azure-mgmt-compute put on the wire (the fake logs every JSON body), on the blob's
content, and on the one-line errors with hints.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient

from harness.buildfolder import BuildFolder
from harness.errors import PublishError
from harness.log import SecretFilter
from harness.publish import versions
from harness.publish.azerrors import error_code, publish_error
from harness.publish.azure import compute_client, publish_to_azure
from harness.publish.azure_settings import AzureTarget
from harness.publish.model import ImageDefinition, TargetRegion
from tests.fakes.arm import FakeArm, Fault, running_fake_arm
from tests.fakes.blobproxy import BlobProxy
from tests.integration.azure_fixtures import (
    MIB,
    assert_blob_equals_file,
    azurite,
    blob_proxy,
    container,
    direct_service,
    make_build,
    proxy_connection_string,
    scattered_writes,
    write_sas_url,
)

__all__ = ["azurite", "blob_proxy", "container", "direct_service", "proxy_connection_string"]

pytestmark = pytest.mark.azurite

SUB = "00000000-0000-0000-0000-000000000001"
RG = "images-rg"
ACCOUNT_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"


def definition(gen: str, name: str | None = None, os_state: str = "Generalized") -> ImageDefinition:
    return ImageDefinition(name=name or f"testdistro-base-{gen.lower()}", publisher="harness-tests",
                           offer="testdistro", sku="base", os_state=os_state, hyper_v_generation=gen)


DEFS = [definition("V1"), definition("V2")]


@pytest.fixture
def arm(blob_proxy: BlobProxy, direct_service: BlobServiceClient) -> Iterator[FakeArm]:
    """Fake ARM whose grant-access creates the disk's page blob in Azurite and returns a SAS URL via the proxy."""

    def grant(disk_id: str, disk: dict[str, Any]) -> str:
        name = disk_id.rsplit("/", 1)[-1].lower()
        holder = direct_service.get_container_client("md-disks")
        if not holder.exists():
            holder.create_container()
        blob = holder.get_blob_client(f"{name}.vhd")
        if not blob.exists():
            blob.create_page_blob(int(disk["properties"]["creationData"]["uploadSizeBytes"]))
        sas_url = write_sas_url(blob_proxy.port, "md-disks", f"{name}.vhd")
        granted.append(sas_url)
        return sas_url

    granted: list[str] = []
    with running_fake_arm(grant_access=grant) as fake:
        fake.granted = granted  # type: ignore[attr-defined]
        yield fake


@dataclass
class Stack:
    """Everything a publish test talks to: the fake ARM, the proxy in front of Azurite, a fresh container."""

    arm: FakeArm
    proxy: BlobProxy
    conn: str
    container: str
    service: BlobServiceClient

    def target(self, **changes: Any) -> AzureTarget:
        return target_for(self.arm, self.conn, self.container, **changes)


@pytest.fixture
def stack(arm: FakeArm, blob_proxy: BlobProxy, proxy_connection_string: str, container: str,
          direct_service: BlobServiceClient) -> Stack:
    return Stack(arm, blob_proxy, proxy_connection_string, container, direct_service)


@pytest.fixture
def build(tmp_path: Path) -> BuildFolder:
    return make_build(tmp_path / "builds", scattered_writes())


def target_for(arm: FakeArm, conn: str, container: str, **changes: Any) -> AzureTarget:
    values: dict[str, Any] = {"subscription_id": SUB, "resource_group": RG, "location": "westeurope",
                              "kind": "gallery", "gallery": "harness_gallery", "container": container,
                              "storage_connection_string": conn, "arm_endpoint": arm.url, "upload_concurrency": 4}
    return AzureTarget(**{**values, **changes})


def publish(build: BuildFolder, target: AzureTarget, version: str = "1.0.0", **changes: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"version": version, "definitions": DEFS, "force_unverified": False,
                               "exclude_from_latest": False, "end_of_life": None,
                               "target_regions": [TargetRegion("local")]}
    return publish_to_azure(build, target, **{**options, **changes})


def test_gallery_versions_carry_the_fields_azure_needs(build: BuildFolder, stack: Stack) -> None:
    target = stack.target(storage_account_type="Standard_ZRS", replica_count=1)
    summary = publish(build, target, exclude_from_latest=True, end_of_life="2027-06-30", force_unverified=True,
                      target_regions=[TargetRegion("westeurope", 2), TargetRegion("northeurope", 1)])

    blob_name = "testdistro-20261126-000000-abcdef.vhd"
    blob_url = f"http://127.0.0.1:{stack.proxy.port}/devstoreaccount1/{stack.container}/{blob_name}"
    assert summary["blob_url"] == blob_url
    assert summary["versions"] == {"testdistro-base-v1": "1.0.0", "testdistro-base-v2": "1.0.0"}
    assert summary["created"] is True and summary["version"] == "1.0.0"
    assert summary["bytes_sent"] == summary["uploads"][0]["bytes_sent"] > 0
    assert summary["resources"][0]["id"].endswith("/harness_gallery/images/testdistro-base-v1/versions/1.0.0")
    assert_blob_equals_file(stack.service, stack.container, blob_name, build.path / "disk.vhd")

    (gallery,) = stack.arm.bodies("PUT", r"/galleries/harness_gallery$")
    assert gallery["location"] == "westeurope"
    images = stack.arm.bodies("PUT", r"/images/testdistro-base-v\d$")
    assert [(b["properties"]["hyperVGeneration"], b["properties"]["osState"], b["properties"]["osType"],
             b["properties"]["architecture"]) for b in images] == [("V1", "Generalized", "Linux", "x64"),
                                                                    ("V2", "Generalized", "Linux", "x64")]
    assert images[0]["properties"]["identifier"] == {"publisher": "harness-tests", "offer": "testdistro",
                                                     "sku": "base"}
    version_bodies = stack.arm.bodies("PUT", r"/versions/1\.0\.0$")
    assert len(version_bodies) == 2
    for body in version_bodies:
        props = body["properties"]
        assert props["storageProfile"]["osDiskImage"]["source"] == {"uri": blob_url, "storageAccountId": ACCOUNT_ID}
        assert props["storageProfile"]["osDiskImage"]["hostCaching"] == "ReadOnly"
        assert props["publishingProfile"] == {
            "targetRegions": [
                {"name": "westeurope", "regionalReplicaCount": 2, "storageAccountType": "Standard_ZRS"},
                {"name": "northeurope", "regionalReplicaCount": 1, "storageAccountType": "Standard_ZRS"}],
            "replicaCount": 1, "storageAccountType": "Standard_ZRS", "excludeFromLatest": True,
            "endOfLifeDate": "2027-06-30T00:00:00Z"}
        assert body["tags"]["harness-content-digest"] == build.manifest().content_digest
        assert body["tags"]["harness-force-unverified"] == "true"
    # Every ARM call used an api-version the service accepts (the fake rejects others with 400).
    assert {r.api_version for r in stack.arm.requests if "/galleries/" in r.path} == {"2026-03-03"}
    assert all(r.status < 400 or r.method == "GET" for r in stack.arm.requests)
    # Long-running operations were really polled: InProgress first, then Succeeded.
    assert len([r for r in stack.arm.requests if "/operations/" in r.path]) >= 2 * 5


def test_republishing_the_same_content_is_a_no_op(build: BuildFolder, stack: Stack) -> None:
    target = stack.target()
    publish(build, target)
    puts = len(stack.arm.bodies("PUT", ""))
    stack.proxy.reset()
    again = publish(build, target)
    assert again["created"] is False and again["uploads"] == [] and again["bytes_sent"] == 0
    assert again["versions"] == {"testdistro-base-v1": "1.0.0", "testdistro-base-v2": "1.0.0"}
    assert len(stack.arm.bodies("PUT", "")) == puts
    assert not [r for r in stack.proxy.log if r.method == "PUT"]


def test_auto_version_is_allocated_then_reused_for_the_same_content(build: BuildFolder, stack: Stack) -> None:
    target = stack.target()
    first = publish(build, target, version="auto")
    today = versions.auto([])
    assert first["versions"] == {"testdistro-base-v1": today, "testdistro-base-v2": today}
    again = publish(build, target, version="auto")
    assert again["created"] is False and again["versions"] == first["versions"]


def test_a_version_with_other_content_is_refused(build: BuildFolder, stack: Stack, tmp_path: Path) -> None:
    target = stack.target()
    publish(build, target)
    other = make_build(tmp_path / "other", [(0, b"\x07" * MIB)], build_id="20261126-000001-fedcba")
    with pytest.raises(PublishError, match=r"image version .*/1\.0\.0 already exists with other content") as err:
        publish(other, target)
    assert "never overwritten" in err.value.hint
    auto = publish(other, target, version="auto")  # auto picks the next free number instead
    assert auto["created"] is True
    assert set(auto["versions"].values()) == {versions.auto([])}


def test_existing_definition_with_another_generation_is_refused(build: BuildFolder, stack: Stack) -> None:
    target = stack.target()
    publish(build, target, definitions=[definition("V1", name="shared")])
    with pytest.raises(PublishError, match="hyperVGeneration is 'V1', the build needs 'V2'") as err:
        publish(build, target, version="1.0.1", definitions=[definition("V2", name="shared")])
    assert "generation" in err.value.hint


def test_managed_image_from_the_blob(build: BuildFolder, stack: Stack) -> None:
    target = stack.target(kind="image", gallery=None)
    summary = publish(build, target, definitions=[definition("V2")])
    (body,) = stack.arm.bodies("PUT", r"/providers/Microsoft\.Compute/images/[^/]+$")
    assert body["location"] == "westeurope"
    assert body["properties"]["hyperVGeneration"] == "V2"
    assert body["properties"]["storageProfile"]["osDisk"] == {
        "osType": "Linux", "osState": "Generalized", "blobUri": summary["blob_url"],
        "storageAccountType": "Standard_LRS"}
    assert summary["resources"][0]["id"].endswith("/images/testdistro-base-v2-1.0.0")
    with pytest.raises(PublishError, match="managed images need a generalized source"):
        publish(build, target, version="2.0.0", definitions=[definition("V2", os_state="Specialized")])


def test_a_specialized_build_goes_to_a_specialized_definition(build: BuildFolder, stack: Stack) -> None:
    """A gallery takes a specialized OS disk (Specialized definition); a managed image never does, on Azure and on
    the fake, whose refusal is asserted apart from the harness's own."""
    summary = publish(build, stack.target(), definitions=[definition("V2", "testdistro-special", "Specialized")])
    (image,) = stack.arm.bodies("PUT", r"/images/testdistro-special$")
    assert image["properties"]["osState"] == "Specialized"
    assert summary["versions"] == {"testdistro-special": "1.0.0"}
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.compute import models as m

    client = compute_client(stack.target())
    body = m.Image(location="westeurope", properties=m.ImageProperties(hyper_v_generation="V2", storage_profile=(
        m.ImageStorageProfile(os_disk=m.ImageOSDisk(os_type="Linux", os_state="Specialized",
                                                    blob_uri=summary["blob_url"])))))
    with pytest.raises(HttpResponseError, match="only be created from a generalized source"):
        client.images.begin_create_or_update(RG, "special-image", body).result()


def test_managed_disk_by_direct_upload(
        build: BuildFolder, arm: FakeArm, direct_service: BlobServiceClient, blob_proxy: BlobProxy,
        caplog: pytest.LogCaptureFixture) -> None:
    target = AzureTarget(subscription_id=SUB, resource_group=RG, location="westeurope", kind="disk",
                         disk_source="upload", arm_endpoint=arm.url, resource_name="osdisk1")
    caplog.set_level(logging.DEBUG)
    summary = publish(build, target, definitions=[definition("V2")])
    vhd = build.path / "disk.vhd"
    (disk,) = arm.bodies("PUT", r"/disks/osdisk1$")
    assert disk["sku"] == {"name": "Standard_LRS"}
    assert disk["properties"]["creationData"] == {"createOption": "Upload", "uploadSizeBytes": vhd.stat().st_size}
    assert disk["properties"]["hyperVGeneration"] == "V2" and disk["properties"]["osType"] == "Linux"
    assert arm.bodies("POST", r"/disks/osdisk1/beginGetAccess$") == [{"access": "Write", "durationInSeconds": 14400}]
    assert len(arm.bodies("POST", r"/disks/osdisk1/endGetAccess$")) == 1
    assert arm.resources[next(k for k in arm.resources if k.endswith("/disks/osdisk1"))]["properties"][
        "diskState"] == "Unattached"
    assert_blob_equals_file(direct_service, "md-disks", "osdisk1.vhd", vhd)
    harness_puts = [r for r in blob_proxy.log if r.client.startswith("harness/") and r.method == "PUT"]
    assert harness_puts and all(r.query.get("comp") == "page" for r in harness_puts)  # no create, no metadata
    (sas_url,) = arm.granted  # type: ignore[attr-defined]
    signature = parse_qs(urlsplit(sas_url).query)["sig"][0]
    assert summary["blob_url"] is None
    assert signature not in json.dumps(summary) and quote(signature, safe="") not in json.dumps(summary)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("harness"))
    assert "sig=" not in ours  # the harness never logs the SAS URL at all
    # Everything else (urllib3 debug lines carry the URL) goes through the handler filter log.setup() installs.
    masker = SecretFilter()
    shown = "\n".join(r.getMessage() for r in caplog.records if masker.filter(r))
    assert signature not in shown and quote(signature, safe="") not in shown
    assert "sig=***" in shown


def test_managed_disk_imported_from_the_blob(build: BuildFolder, stack: Stack) -> None:
    target = stack.target(kind="disk", disk_source="blob", gallery=None,
                        storage_account_type="Premium_LRS")
    summary = publish(build, target, definitions=[definition("V1")])
    (disk,) = stack.arm.bodies("PUT", r"/disks/[^/]+$")
    assert disk["sku"] == {"name": "Premium_LRS"}
    assert disk["properties"]["creationData"] == {"createOption": "Import", "sourceUri": summary["blob_url"],
                                                  "storageAccountId": ACCOUNT_ID}


def test_missing_role_assignment_is_one_line_with_a_hint(build: BuildFolder, stack: Stack) -> None:
    stack.arm.inject(Fault("PUT", "/galleries/harness_gallery", 403, "AuthorizationFailed",
                     "The client 'x' does not have authorization to perform action "
                     "'Microsoft.Compute/galleries/write'."))
    with pytest.raises(PublishError) as err:
        publish(build, stack.target())
    assert "\n" not in err.value.message
    assert err.value.message.startswith("creating gallery harness_gallery failed: HTTP 403 AuthorizationFailed")
    assert "role assignment" in err.value.hint


def test_failed_operation_with_a_generation_mismatch_gets_that_hint(build: BuildFolder, stack: Stack) -> None:
    stack.arm.inject(Fault("PUT", "/versions/1.0.0", 400, "InvalidParameter",
                     "The hyperVGeneration of the source does not match the gallery image's hyperVGeneration.",
                     in_operation=True))
    with pytest.raises(PublishError) as err:
        publish(build, stack.target(), definitions=[definition("V2")])
    assert "InvalidParameter" in err.value.message and "\n" not in err.value.message
    assert "generation" in err.value.hint


def test_unknown_resource_group_and_unsupported_api_version(
        build: BuildFolder, proxy_connection_string: str, container: str) -> None:
    with running_fake_arm(resource_groups={"other-rg"}) as fake:
        with pytest.raises(PublishError, match="ResourceGroupNotFound") as err:
            publish(build, target_for(fake, proxy_connection_string, container))
        assert "az group create" in err.value.hint
        client = compute_client(target_for(fake, proxy_connection_string, container))
        with pytest.raises(HttpResponseError) as raw:
            client.galleries.get("other-rg", "g", api_version="2019-12-01")
        mapped = publish_error("reading gallery g", raw.value)
        assert "InvalidApiVersionParameter" in mapped.message and "api-version" in mapped.hint
        with pytest.raises(HttpResponseError) as accepted:  # an older version the service serves: a plain 404
            client.galleries.get("other-rg", "g", api_version="2022-03-03")
        assert accepted.value.status_code == 404 and error_code(accepted.value) == "ResourceNotFound"


def test_fake_arm_answers_404_json_for_unknown_resources(
        proxy_connection_string: str, container: str) -> None:
    with running_fake_arm() as fake:
        client = compute_client(target_for(fake, proxy_connection_string, container))
        with pytest.raises(HttpResponseError) as err:
            client.galleries.get(RG, "nope")
        assert err.value.status_code == 404 and error_code(err.value) == "ResourceNotFound"


def test_end_of_life_is_serialized_as_a_utc_date(build: BuildFolder, stack: Stack) -> None:
    publish(build, stack.target(), end_of_life="2030-01-31",
            definitions=[definition("V2")])
    (body,) = stack.arm.bodies("PUT", r"/versions/[^/]+$")
    stamp = body["properties"]["publishingProfile"]["endOfLifeDate"]
    assert dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")) == dt.datetime(2030, 1, 31, tzinfo=dt.UTC)


def test_harness_publish_to_azure_from_the_command_line(
        build: BuildFolder, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Flags, environment and the [azure] table reach publish_to_azure through `harness publish --to azure`."""
    from harness.cli import main

    config = tmp_path / "azure.toml"
    config.write_text(f'[azure]\nsubscription_id = "{SUB}"\nresource_group = "{RG}"\nlocation = "westeurope"\n'
                      f'gallery = "cli_gallery"\ncontainer = "{stack.container}"\nupload_concurrency = 2\n',
                      encoding="utf-8")
    for name in [n for n in os.environ if n.startswith(("AZURE_", "HARNESS_AZURE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HARNESS_AZURE_STORAGE_CONNECTION_STRING", stack.conn)
    assert main(["publish", str(build.path), "--to", "azure", "--force-unverified", "--version", "3.2.1", "--json",
                 "--azure-config", str(config), "--arm-endpoint", stack.arm.url, "--target-region",
                 "westeurope=3"]) == 0

    printed = json.loads(capsys.readouterr().out)
    assert printed["azure"]["versions"] == {"testdistro-base-gen1": "3.2.1", "testdistro-base-gen2": "3.2.1"}
    regions = [b["properties"]["publishingProfile"]["targetRegions"] for b in stack.arm.bodies("PUT", "/versions/")]
    assert regions == [[{"name": "westeurope", "regionalReplicaCount": 3, "storageAccountType": "Standard_LRS"}]] * 2
    record = (build.path / "publish.json").read_text(encoding="utf-8")
    assert "AccountKey" not in record and "Eby8" not in record
    assert json.loads(record)["azure"]["blob_url"].endswith(f"/{stack.container}/testdistro-20261126-000000-abcdef.vhd")


def test_an_untagged_version_matches_by_its_source_blob(build: BuildFolder, stack: Stack) -> None:
    """A version made by other tooling carries no digest tag: the same source blob is a no-op, another is refused."""
    base = (f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/galleries/harness_gallery/"
            "images/testdistro-base-v2/versions/")
    same = f"http://127.0.0.1:{stack.proxy.port}/devstoreaccount1/{stack.container}/" \
           "testdistro-20261126-000000-abcdef.vhd"
    for version, uri in (("1.0.0", same), ("1.0.1", "https://other.blob.core.windows.net/vhds/x.vhd")):
        stack.arm.resources[(base + version).lower()] = {
            "id": base + version, "name": version, "location": "westeurope",
            "properties": {"provisioningState": "Succeeded",
                           "storageProfile": {"osDiskImage": {"source": {"uri": uri}}}}}
    summary = publish(build, stack.target(), version="1.0.0", definitions=[definition("V2")])
    assert summary["created"] is False and summary["uploads"] == []
    with pytest.raises(PublishError, match=r"1\.0\.1 already exists with other content \(https://other"):
        publish(build, stack.target(), version="1.0.1", definitions=[definition("V2")])


def test_shallow_replication_is_requested_in_the_source_region_only(build: BuildFolder, stack: Stack) -> None:
    publish(build, stack.target(replication_mode="shallow"), definitions=[definition("V2")])
    (body,) = stack.arm.bodies("PUT", r"/versions/1\.0\.0$")
    profile = body["properties"]["publishingProfile"]
    assert profile["replicationMode"] == "Shallow"
    assert profile["targetRegions"] == [{"name": "westeurope", "regionalReplicaCount": 1,
                                         "storageAccountType": "Standard_LRS"}]
    # Azure never changes a version's replication mode (the fake refuses it like the service).
    from harness.publish.arm import Arm

    arm = Arm(compute_client(stack.target()), RG, "westeurope")
    from azure.mgmt.compute import models as m

    update = m.GalleryImageVersionUpdate(properties=m.GalleryImageVersionProperties(  # type: ignore[call-overload]
        publishing_profile=m.GalleryImageVersionPublishingProfile(replication_mode="Full")))
    with pytest.raises(PublishError, match="replicationMode' is not allowed"):
        arm._wait("changing the mode", lambda: arm.client.gallery_image_versions.begin_update(
            RG, "harness_gallery", "testdistro-base-v2", "1.0.0", update))


@pytest.mark.parametrize(("regions", "message"), [
    ([TargetRegion("local"), TargetRegion("northeurope")], "cannot target northeurope"),
    ([TargetRegion("westeurope", 3)], "makes one replica in westeurope, not 3"),
])
def test_shallow_replication_elsewhere_is_refused_before_anything_is_sent(
        build: BuildFolder, stack: Stack, regions: list[TargetRegion], message: str) -> None:
    with pytest.raises(PublishError, match=message) as err:
        publish(build, stack.target(replication_mode="shallow"), target_regions=regions)
    assert "--replication-mode full" in err.value.hint
    assert stack.arm.requests == [] and stack.proxy.log == []


def test_the_fake_refuses_a_shallow_version_in_two_regions(build: BuildFolder, stack: Stack) -> None:
    """The harness's own check above stops such a request first; Azure (and so the fake) would refuse it too."""
    from harness.publish.arm import Arm, Region

    arm = Arm(compute_client(stack.target()), RG, "westeurope")
    arm.ensure_gallery("harness_gallery")
    arm.ensure_definition("harness_gallery", definition("V2"))
    with pytest.raises(PublishError, match="only in the source region"):
        arm.create_version("harness_gallery", "testdistro-base-v2", "1.0.0", blob_url="https://x/y.vhd",
                           storage_account_id=ACCOUNT_ID, regions=[Region("westeurope", 1, "Standard_LRS"),
                                                                   Region("northeurope", 1, "Standard_LRS")],
                           replica_count=1, storage_account_type="Standard_LRS", exclude_from_latest=False,
                           end_of_life=None, tags={}, replication_mode="Shallow")


def test_one_region_can_skip_the_version_as_latest(build: BuildFolder, stack: Stack, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """--exclude-region through the CLI: that region's 'latest' skips the version, the others (and the version
    as a whole) do not; --replication-mode full is sent as Azure spells it."""
    from harness.cli import main

    for name in [n for n in os.environ if n.startswith(("AZURE_", "HARNESS_AZURE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HARNESS_AZURE_STORAGE_CONNECTION_STRING", stack.conn)
    assert main(["publish", str(build.path), "--to", "azure", "--force-unverified", "--version", "1.2.0",
                 "--generation", "V2", "--subscription", SUB, "--resource-group", RG, "--location", "westeurope",
                 "--azure-gallery", "harness_gallery", "--container", stack.container, "--arm-endpoint", stack.arm.url,
                 "--replication-mode", "full", "--target-region", "westeurope=2", "--target-region", "northeurope",
                 "--exclude-region", "northeurope"]) == 0
    (body,) = stack.arm.bodies("PUT", r"/versions/1\.2\.0$")
    profile = body["properties"]["publishingProfile"]
    assert profile["replicationMode"] == "Full" and profile["excludeFromLatest"] is False
    assert profile["targetRegions"] == [
        {"name": "westeurope", "regionalReplicaCount": 2, "storageAccountType": "Standard_LRS"},
        {"name": "northeurope", "regionalReplicaCount": 1, "storageAccountType": "Standard_LRS",
         "excludeFromLatest": True}]
    assert main(["publish", str(build.path), "--to", "azure", "--force-unverified", "--version", "1.3.0",
                 "--subscription", SUB, "--resource-group", RG, "--location", "westeurope", "--azure-gallery",
                 "harness_gallery", "--container", stack.container, "--arm-endpoint", stack.arm.url,
                 "--exclude-region", "eastus"]) == 2
    assert "--exclude-region eastus is not a target region of this version" in capsys.readouterr().err
    assert len(stack.arm.bodies("PUT", "/versions/")) == 1
