"""`harness publish --to azure` with attestations, against Azurite (behind the recording proxy) and the fake ARM: the
SBOM and the provenance become blobs next to the VHD blob, and every image version is tagged with their sha256 and
the VHD's; the provenance verifies with the public key and names the VHD by the sha256 of its bytes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from harness import dsse, sbom
from harness.buildfolder import BuildFolder
from harness.enums import Generation, Stage
from harness.publish.attest import PROVENANCE_TAG, SBOM_TAG, VHD_TAG
from harness.publish.azure_settings import AzureTarget
from harness.report import write_stage
from harness.results import PASSED, Record, StageReport
from harness.stages import publish
from harness.stages.publish import PublishOptions
from tests.fakes.arm import FakeArm
from tests.fakes.blobproxy import BlobProxy
from tests.integration.azure_fixtures import (
    azurite,
    blob_proxy,
    container,
    direct_service,
    fake_arm,
    make_build,
    proxy_connection_string,
    scattered_writes,
)

__all__ = ["azurite", "blob_proxy", "container", "direct_service", "fake_arm", "proxy_connection_string"]

pytestmark = pytest.mark.azurite

SUB = "00000000-0000-0000-0000-000000000001"
BLOB = "testdistro-20261126-000000-abcdef.vhd"
VERSION_PUTS = r"/images/testdistro-base-gen\d/versions/[^/]+$"


@pytest.fixture
def build(tmp_path: Path) -> BuildFolder:
    """A converted build with its SBOM, checked and verified for its content."""
    folder = make_build(tmp_path / "builds", scattered_writes())
    sbom.write_sbom(folder)
    digest = folder.manifest().content_digest
    write_stage(folder, StageReport(Stage.CHECK, digest, [Record("check", "azure-readiness", PASSED)]))
    write_stage(folder, StageReport(Stage.VERIFY, digest, [Record("verify", "provisioning", PASSED, firmware=fw,
                                                                  platform="azure") for fw in ("bios", "uefi")]))
    return folder


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, ed25519.Ed25519PrivateKey]:
    private = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "sign.pem"
    path.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return path, private


@dataclass
class Azure:
    """The fake ARM, the proxy in front of Azurite, a fresh container and a direct client for reading back."""

    arm: FakeArm
    proxy: BlobProxy
    conn: str
    container: str
    service: BlobServiceClient

    def target(self) -> AzureTarget:
        return AzureTarget(subscription_id=SUB, resource_group="images-rg", location="westeurope", kind="gallery",
                           gallery="harness_gallery", container=self.container, storage_connection_string=self.conn,
                           arm_endpoint=self.arm.url, upload_concurrency=4)

    def blob(self, name: str) -> bytes:
        return bytes(self.service.get_blob_client(self.container, name).download_blob().readall())

    def version_tags(self) -> list[dict[str, Any]]:
        return [body["tags"] for body in self.arm.bodies("PUT", VERSION_PUTS)]


@pytest.fixture
def azure(fake_arm: FakeArm, blob_proxy: BlobProxy, proxy_connection_string: str, container: str,
          direct_service: BlobServiceClient) -> Azure:
    return Azure(fake_arm, blob_proxy, proxy_connection_string, container, direct_service)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_blobs_next_to_the_vhd_and_tags_on_every_version(
        build: BuildFolder, key: tuple[Path, ed25519.Ed25519PrivateKey], azure: Azure) -> None:
    key_path, private = key
    where = azure.target()
    report = publish.run(build, PublishOptions(target=where, version="1.0.0", sign_key=key_path))
    assert report.details["attestations"]["signed"] is True

    vhd_blob = azure.blob(BLOB)
    spdx = azure.blob(f"{BLOB}.spdx.json")
    envelope_bytes = azure.blob(f"{BLOB}.intoto.json")
    assert spdx == (build.path / "sbom.spdx.json").read_bytes()
    statement = json.loads(dsse.verify(json.loads(envelope_bytes), private.public_key()))
    (subject,) = statement["subject"]
    # The subject is the VHD as a consumer downloads it: sha256 over the blob's bytes, holes and all.
    assert subject["digest"]["sha256"] == sha256(vhd_blob) == sha256((build.path / "disk.vhd").read_bytes())
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    byproducts = {b["name"]: b["digest"]["sha256"] for b in statement["predicate"]["runDetails"]["byproducts"]}
    assert byproducts["sbom.spdx.json"] == sha256(spdx)

    for name, content_type in ((f"{BLOB}.intoto.json", "application/vnd.dsse.envelope.v1+json"),
                               (f"{BLOB}.spdx.json", "application/spdx+json")):
        props = azure.service.get_blob_client(azure.container, name).get_blob_properties()
        assert props.content_settings.content_type == content_type

    tags = azure.version_tags()
    assert len(tags) == 2  # gen1 and gen2
    for tag in tags:
        assert tag[VHD_TAG] == sha256(vhd_blob)
        assert tag[SBOM_TAG] == sha256(spdx)
        assert tag[PROVENANCE_TAG] == sha256(envelope_bytes)
        assert all(len(value) <= 256 for value in tag.values())  # Azure's limit for a tag value
    blobs = report.details["azure"]["attestation_blobs"]
    assert {name: item["action"] for name, item in blobs.items()} == {
        f"{BLOB}.spdx.json": "uploaded", f"{BLOB}.intoto.json": "uploaded"}

    azure.proxy.reset()
    again = publish.run(build, PublishOptions(target=where, version="1.0.0", sign_key=key_path))
    assert again.details["azure"]["created"] is False
    assert not [r for r in azure.proxy.log if r.method == "PUT"]  # a no-op uploads nothing, attestations included


def test_versions_of_the_same_content_name_the_same_attestation_blobs(
        build: BuildFolder, key: tuple[Path, ed25519.Ed25519PrivateKey], azure: Azure) -> None:
    """gen1 published first unsigned; gen2 later with a key: the provenance blob gen1's tags name is kept, so every
    version's tags still match the blob next to the VHD."""
    publish.run(build, PublishOptions(target=azure.target(), version="1.0.0", generation=Generation.V1))
    first = azure.blob(f"{BLOB}.intoto.json")
    assert json.loads(first)["signatures"] == []
    report = publish.run(build, PublishOptions(target=azure.target(), version="1.0.0", sign_key=key[0]))
    assert azure.blob(f"{BLOB}.intoto.json") == first
    assert report.details["azure"]["attestation_blobs"][f"{BLOB}.intoto.json"]["action"] == "kept"
    tags = azure.version_tags()
    assert [t[PROVENANCE_TAG] for t in tags] == [sha256(first), sha256(first)]


def test_an_attestation_blob_no_version_names_yet_is_replaced(build: BuildFolder, azure: Azure) -> None:
    """Left over from an attempt that failed before any version was made (another results.json since)."""
    holder = azure.service.get_container_client(azure.container)
    holder.create_container()
    holder.upload_blob(f"{BLOB}.intoto.json", b"stale\n")
    report = publish.run(build, PublishOptions(target=azure.target(), version="1.0.0"))
    now = azure.blob(f"{BLOB}.intoto.json")
    assert now != b"stale\n" and json.loads(now)["payloadType"] == "application/vnd.in-toto+json"
    assert report.details["azure"]["attestation_blobs"][f"{BLOB}.intoto.json"]["action"] == "replaced"
    assert {t[PROVENANCE_TAG] for t in azure.version_tags()} == {sha256(now)}
