"""Publish a build to Azure: page-blob upload, then a gallery image version, a managed image or a managed disk.

`harness publish --to azure` resolves an AzureTarget (azure_settings.py) and calls publish_to_azure. The Azure SDK
is imported only when publishing, so building the CLI parser stays fast. Reads come first: content already
published (tag `harness-content-digest` on the version, image or disk) is a no-op that names the existing
resource; a version that exists with other content is refused; nothing is overwritten.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import __version__
from harness.buildfolder import VHD, BuildFolder
from harness.errors import PublishError
from harness.log import Timings, mask_secrets, stage
from harness.publish import versions
from harness.publish.azure_settings import AzureTarget
from harness.publish.model import DEFAULT_REGION, ImageDefinition, TargetRegion

if TYPE_CHECKING:
    from harness.publish.arm import Arm, Region
    from harness.publish.attest import Attestations
    from harness.publish.upload import Progress, UploadResult

__all__ = ["AzureTarget", "publish_to_azure"]

log = logging.getLogger(__name__)

USER_AGENT = f"harness/{__version__}"
UPLOAD_STATES = ("ReadyToUpload", "ActiveUpload")
# CreationData.upload_size_bytes limits (azure-mgmt-compute model docstring): 20 MiB + 512 .. 32 TiB + 512.
MIN_UPLOAD_BYTES = 20 * 2**20 + 512
MAX_UPLOAD_BYTES = 32 * 2**40 + 512


class _StaticToken:
    """Credential for a local test ARM endpoint: the fake checks no token, and none may leave the machine."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("local-test-endpoint", int(time.time()) + 3600)


def compute_client(target: AzureTarget) -> Any:
    """ComputeManagementClient for the target: DefaultAzureCredential, or no auth for a loopback test endpoint."""
    from azure.mgmt.compute import ComputeManagementClient

    credential, kwargs = _management(target)
    return ComputeManagementClient(credential, target.subscription_id, **kwargs)


def authorization_client(target: AzureTarget) -> Any:
    """AuthorizationManagementClient (Azure RBAC role definitions and assignments), signed in like compute_client."""
    try:
        from azure.mgmt.authorization import AuthorizationManagementClient
    except ImportError as exc:
        raise PublishError("sharing through a role assignment needs azure-mgmt-authorization, which is missing",
                           "reinstall the harness with its dependencies (pip install azure-image-harness)") from exc
    credential, kwargs = _management(target)
    return AuthorizationManagementClient(credential, target.subscription_id, **kwargs)


def _management(target: AzureTarget) -> tuple[Any, dict[str, Any]]:
    """The credential and client options every management client of the target uses."""
    kwargs: dict[str, Any] = {"user_agent": USER_AGENT}
    if target.arm_endpoint:
        kwargs["base_url"] = target.arm_endpoint
    credential: Any
    if target.is_test_endpoint:
        from azure.core.pipeline.policies import SansIOHTTPPolicy

        # A bearer-token policy refuses plain http (azure-core _enforce_https); the fake needs no token.
        credential, kwargs["authentication_policy"], kwargs["polling_interval"] = _StaticToken(), SansIOHTTPPolicy(), 0
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    if target.arm_poll_interval_s is not None:
        kwargs["polling_interval"] = target.arm_poll_interval_s
    return credential, kwargs


def blob_client(target: AzureTarget, blob_name: str, *, create_container: bool = True) -> Any:
    """BlobClient for the VHD blob, its container created when missing; SDK retries off (upload.py retries)."""
    from azure.core.exceptions import AzureError, ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    from harness.publish.azerrors import publish_error

    kwargs: dict[str, Any] = {"retry_total": 0, "user_agent": USER_AGENT}
    if target.storage_api_version:
        kwargs["api_version"] = target.storage_api_version
    if target.storage_connection_string:
        service = BlobServiceClient.from_connection_string(target.storage_connection_string, **kwargs)
    else:
        from azure.identity import DefaultAzureCredential

        url = target.storage_account_url or f"https://{target.storage_account}.blob.core.windows.net"
        service = BlobServiceClient(url, credential=DefaultAzureCredential(), **kwargs)
    container = service.get_container_client(target.container)
    if not create_container:
        return container.get_blob_client(blob_name)
    try:
        container.create_container()
    except ResourceExistsError:
        pass
    except AzureError as exc:
        raise publish_error(f"creating container {target.container}", exc) from exc
    return container.get_blob_client(blob_name)


def _put_sidecar(target: AzureTarget, name: str, data: bytes, content_type: str, *,
                 keep_existing: bool) -> dict[str, Any]:
    """A small block blob next to the VHD blob: a no-op when it holds these bytes; {sha256, action}."""
    from azure.core.exceptions import AzureError
    from azure.storage.blob import ContentSettings

    from harness.publish.attest import sha256
    from harness.publish.azerrors import publish_error

    blob = blob_client(target, name)
    try:
        existing = blob.download_blob().readall() if blob.exists() else None
        if existing is not None and (existing == data or keep_existing):
            if existing != data:
                log.warning("kept %s as it is (other content): image resources of this content already name it", name)
            return {"sha256": sha256(existing), "action": "kept"}
        blob.upload_blob(data, overwrite=True, content_settings=ContentSettings(content_type=content_type))
    except AzureError as exc:
        raise publish_error(f"uploading {name}", exc) from exc
    return {"sha256": sha256(data), "action": "replaced" if existing is not None else "uploaded"}


def sas_blob_client(sas_url: str) -> Any:
    """BlobClient for a managed disk's write SAS URL (the URL is a secret)."""
    from azure.storage.blob import BlobClient

    return BlobClient.from_blob_url(sas_url, retry_total=0, user_agent=USER_AGENT)


def resolve_regions(target: AzureTarget, regions: Sequence[TargetRegion | tuple[str, int]]) -> list[Region]:
    """Target regions for a version: 'local' (the default region) means the target's location, and the source
    region is added when missing (Azure requires it among the target regions)."""
    from harness.publish.arm import Region

    out: list[Region] = []
    for item in regions:
        region = item if isinstance(item, TargetRegion) else TargetRegion(item[0], int(item[1]))
        # A region left at the model's default storage type follows --storage-account-type.
        kind = target.storage_account_type if region.storage_account_type == "Standard_LRS" \
            else region.storage_account_type
        out.append(Region(target.location if region.name == DEFAULT_REGION else region.name, region.replicas, kind,
                          region.exclude_from_latest))
    if not any(r.name.lower() == target.location.lower() for r in out):
        replicas = 1 if target.replication_mode == "shallow" else target.replica_count
        out.insert(0, Region(target.location, replicas, target.storage_account_type))
    if target.replication_mode == "shallow":
        _check_shallow(target, out)
    return out


def _check_shallow(target: AzureTarget, regions: Sequence[Region]) -> None:
    """Azure keeps a Shallow version in its source region only, as one replica (no copy is made)."""
    others = [r.name for r in regions if r.name.lower() != target.location.lower()]
    if others:
        raise PublishError(f"--replication-mode shallow keeps the version in its source region {target.location}; "
                           f"it cannot target {', '.join(others)}",
                           "drop those --target-region flags, or use --replication-mode full")
    if any(r.replicas != 1 for r in regions):
        raise PublishError(f"--replication-mode shallow makes one replica in {target.location}, not "
                           f"{max(r.replicas for r in regions)}",
                           f"use --target-region {target.location}=1 (or none), or --replication-mode full")


class _UploadLog:
    """Upload progress as INFO lines: at most one per 15 s, plus the last one."""

    def __init__(self, what: str, forward: Progress | None) -> None:
        self.what, self.forward = what, forward
        self.start = self.last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last >= 15 or done >= total:
            self.last = now
            rate = done / max(now - self.start, 1e-6) / 2**20
            log.info("%s: %d%% (%d of %d MiB) at %.0f MiB/s", self.what, 100 * done // max(total, 1), done >> 20,
                     total >> 20, rate)
        if self.forward is not None:
            self.forward(done, total)


@dataclass
class _Run:
    """State of one publish_to_azure call."""

    build: BuildFolder
    target: AzureTarget
    arm: Arm
    vhd: Path
    digest: str
    tags: dict[str, str]
    progress: Progress | None
    attestations: Attestations | None = None
    timings: Timings = field(default_factory=Timings)
    uploads: list[UploadResult] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    blob_url: str | None = None
    sidecars: dict[str, dict[str, Any]] | None = None  # blob name -> sha256 and what was done, once attached

    @property
    def blob_name(self) -> str:
        return self.target.blob_name or f"{self.build.recipe_name}-{self.build.build_id}.vhd"

    def expected_blob_url(self) -> str:
        """The URL the VHD has (or will have) in the target's container, without SAS; sends no request."""
        return str(blob_client(self.target, self.blob_name, create_container=False).url).split("?", 1)[0]

    def upload_blob(self) -> str:
        """Upload the VHD to the target's container (resumable, a no-op when complete); the URL without SAS."""
        from harness.publish.upload import UploadOptions, upload_vhd

        if self.blob_url is None:
            blob = blob_client(self.target, self.blob_name)
            options = UploadOptions(concurrency=self.target.upload_concurrency, content_md5=self.target.content_md5)
            with stage("upload", f"{self.vhd.name} to {blob.url}"), self.timings.step("upload"):
                result = upload_vhd(blob, self.vhd, options, _UploadLog("upload", self.progress))
            self.uploads.append(result)
            self.blob_url = result.url
        return self.blob_url

    def upload_into_disk(self, name: str) -> None:
        """Direct upload: write SAS, Put Pages into the existing disk blob (no create call), always revoke."""
        from harness.publish.upload import UploadOptions, upload_vhd

        sas = self.arm.grant_write(name)
        options = UploadOptions(concurrency=self.target.upload_concurrency, existing_blob=True)
        try:
            with stage("upload", f"{self.vhd.name} into disk {name}"), self.timings.step(f"upload {name}"):
                self.uploads.append(upload_vhd(sas_blob_client(sas), self.vhd, options,
                                               _UploadLog(f"upload into {name}", self.progress)))
        except PublishError as exc:
            # Not revoked on purpose: revoking ends the upload and would leave a disk with partial content.
            # The write SAS expires on its own (arm.WRITE_SAS_DURATION_S); a rerun grants a new one.
            raise PublishError(exc.message, f"{exc.hint}; disk {name} stays in upload state: rerun to upload "
                               "again, or delete the disk") from exc
        self.arm.revoke(name)

    def attach(self, *, keep_existing: bool) -> None:
        """Upload the SBOM and provenance next to the VHD blob and add their digests to the tags of what is created
        next (once per call of publish_to_azure). A sidecar blob already there with other content is replaced,
        unless a resource of this content already exists (`keep_existing`): that one's tags name the blob there."""
        if self.attestations is None or self.sidecars is not None:
            return
        self.sidecars = {}
        if not (self.target.storage_connection_string or self.target.storage_account or
                self.target.storage_account_url):  # a direct disk upload without a storage account: tags only
            log.info("attestations: no storage account to hold them; the disk's tags carry their sha256")
            self.tags.update(self.attestations.tags())
            return
        from harness.publish.attest import PROVENANCE_SUFFIX, SBOM_SUFFIX

        done: dict[str, dict[str, Any]] = {}
        with stage("attestations", f"next to {self.blob_name}"), self.timings.step("attestations"):
            for suffix, data, content_type in self.attestations.blobs():
                done[suffix] = _put_sidecar(self.target, f"{self.blob_name}{suffix}", data, content_type,
                                            keep_existing=keep_existing)
        self.sidecars = {f"{self.blob_name}{suffix}": result for suffix, result in done.items()}
        self.tags.update(self.attestations.tags(done.get(SBOM_SUFFIX, {}).get("sha256"),
                                                done[PROVENANCE_SUFFIX]["sha256"]))

    def record(self, definition: ImageDefinition, version: str, resource: Any, created: bool) -> None:
        self.resources.append({"definition": definition.name, "version": version, "created": created,
                               "id": str(getattr(resource, "id", "") or "")})


def _existing_matches(run: _Run, what: str, found: Any, *, source_uri: str = "") -> bool:
    """True when an existing resource holds this build's content; refuses one with other content."""
    from harness.publish.arm import content_tag, enum_text

    state = enum_text(getattr(found, "provisioning_state", ""))
    tagged = content_tag(found)
    # Ours carry the content digest as a tag; an untagged one (made by other tooling) matches by its source blob.
    if tagged == run.digest or (source_uri and not tagged and source_uri == run.expected_blob_url()):
        if state == "Failed":
            raise PublishError(f"{what} exists but its provisioning failed", "delete it and publish again")
        return True
    raise PublishError(f"{what} already exists with other content ({tagged or source_uri or 'unknown source'})",
                       "resources are never overwritten: pick another --version/--resource-name or --version auto")


def _publish_gallery(run: _Run, definitions: Sequence[ImageDefinition], version: str, regions: list[Region], *,
                     exclude_from_latest: bool, end_of_life: str | None) -> None:
    from harness.publish.arm import content_tag, version_source_uri

    target, arm = run.target, run.arm
    gallery = str(target.gallery)
    todo: list[tuple[ImageDefinition, str]] = []
    with run.timings.step("plan"):
        for d in definitions:
            if version == "auto":
                existing = arm.list_versions(gallery, d.name)
                same = [v for v in existing if content_tag(v) == run.digest]
                if same:
                    run.record(d, str(same[0].name), same[0], created=False)
                    continue
                todo.append((d, versions.auto([str(v.name) for v in existing])))
                continue
            found = arm.get_version(gallery, d.name, version)
            spelled = version
            if found is None:  # the same number spelled otherwise (01.0.0 beside 1.0.0) is the same version
                other = versions.find_same(version, [str(v.name) for v in arm.list_versions(gallery, d.name)])
                if other is not None:
                    found, spelled = arm.get_version(gallery, d.name, other), other
            if found is not None and _existing_matches(run, f"image version {gallery}/{d.name}/{spelled}", found,
                                                       source_uri=version_source_uri(found)):
                run.record(d, spelled, found, created=False)
            else:
                todo.append((d, version))
    if not todo:
        return
    run.attach(keep_existing=bool(run.resources))  # resources so far: versions of this content already there
    blob_url = run.upload_blob()
    with stage("gallery", f"{gallery} in {target.resource_group}"), run.timings.step("gallery"):
        arm.ensure_gallery(gallery)
        for d, _ in todo:
            arm.ensure_definition(gallery, d)
    for d, ver in todo:
        with stage("image version", f"{gallery}/{d.name}/{ver}"), run.timings.step(f"version {d.name}"):
            created = arm.create_version(
                gallery, d.name, ver, blob_url=blob_url, storage_account_id=target.account_id(), regions=regions,
                replica_count=target.replica_count, storage_account_type=target.storage_account_type,
                exclude_from_latest=exclude_from_latest, end_of_life=end_of_life, tags=run.tags,
                replication_mode=target.replication_mode.capitalize() if target.replication_mode else None)
        run.record(d, ver, created, created=True)


def _resource_name(target: AzureTarget, definitions: Sequence[ImageDefinition], d: ImageDefinition,
                   version: str) -> str:
    if target.resource_name:
        return target.resource_name if len(definitions) == 1 else f"{target.resource_name}-{d.name}"
    return f"{d.name}-{version}"


def _publish_image_or_disk(run: _Run, definitions: Sequence[ImageDefinition], version: str) -> None:
    from harness.publish.arm import enum_text

    target, arm = run.target, run.arm
    label = "managed image" if target.kind == "image" else "managed disk"
    size = run.vhd.stat().st_size
    if target.kind == "disk" and target.disk_source == "upload" and not MIN_UPLOAD_BYTES <= size <= MAX_UPLOAD_BYTES:
        raise PublishError(f"{run.vhd} is {size} bytes; a disk upload takes {MIN_UPLOAD_BYTES} to {MAX_UPLOAD_BYTES}",
                           "build a disk of at least 21 MiB (--disk-size-mib)")
    for d in definitions:
        name = _resource_name(target, definitions, d, version)
        found = arm.get_image(name) if target.kind == "image" else arm.get_disk(name)
        resume = False
        if found is not None and _existing_matches(run, f"{label} {name}", found):
            resume = target.kind == "disk" and enum_text(getattr(found, "disk_state", "")) in UPLOAD_STATES
            if not resume:
                run.record(d, version, found, created=False)
                continue
        run.attach(keep_existing=bool(run.resources) or resume)
        with stage(label, name), run.timings.step(f"{target.kind} {name}"):
            if target.kind == "image":
                created = arm.create_image(name, d, blob_url=run.upload_blob(), tags=run.tags,
                                           storage_account_type=target.storage_account_type)
            elif target.disk_source == "blob":
                created = arm.create_disk(name, d, sku=target.storage_account_type, tags=run.tags,
                                          blob_url=run.upload_blob(), storage_account_id=target.account_id())
            else:
                created = found if resume else arm.create_disk(
                    name, d, sku=target.storage_account_type, tags=run.tags, upload_size_bytes=size)
                run.upload_into_disk(name)
                created = arm.get_disk(name) or created
        run.record(d, version, created, created=True)


def publish_to_azure(build: BuildFolder, target: AzureTarget, *, version: str, definitions: list[ImageDefinition],
                     force_unverified: bool, exclude_from_latest: bool, end_of_life: str | None,
                     target_regions: Sequence[TargetRegion | tuple[str, int]],
                     progress: Progress | None = None, attestations: Attestations | None = None) -> dict[str, Any]:
    """Upload the build's fixed VHD and create one version (or image, or disk) per definition.

    The caller has gated the build (check/verify, --force-unverified). `progress(done_bytes, total_bytes)` follows
    the upload. `attestations` (SBOM, provenance) go to blobs next to the VHD blob, their sha256 (and the VHD's) to
    tags. Returns a JSON-able summary: blob URL (never a SAS), resource ids, versions, bytes sent, durations.
    """
    from harness.publish.arm import DIGEST_TAG, Arm

    vhd = build.path / VHD
    if not vhd.exists():
        raise PublishError(f"build {build.path} has no {VHD}", f"run 'harness convert {build.path}' first")
    if version != "auto":
        versions.parse(version)
    digest = build.manifest().content_digest
    tags = {DIGEST_TAG: digest, "harness-recipe": build.recipe_name, "harness-build": build.build_id}
    if force_unverified:
        tags["harness-force-unverified"] = "true"
    started = time.monotonic()
    run = _Run(build, target, Arm(compute_client(target), target.resource_group, target.location), vhd, digest,
               tags, progress, attestations)
    try:
        if target.kind == "gallery":
            _publish_gallery(run, definitions, version, resolve_regions(target, target_regions),
                             exclude_from_latest=exclude_from_latest, end_of_life=end_of_life)
        else:
            _publish_image_or_disk(run, definitions, build.build_id if version == "auto" else version)
    except PublishError as exc:
        raise PublishError(mask_secrets(exc.message), mask_secrets(exc.hint)) from exc
    return _summary(run, started, force_unverified)


def _summary(run: _Run, started: float, force_unverified: bool) -> dict[str, Any]:
    target = run.target
    where = f"gallery {target.gallery}" if target.kind == "gallery" else f"{target.kind}s"
    found_versions = sorted({r["version"] for r in run.resources})
    return {
        "target": f"azure:{target.kind}",
        "subscription_id": target.subscription_id,
        "resource_group": target.resource_group,
        "region": target.location,
        "location": f"azure {where} in {target.resource_group} ({target.location})",
        "gallery": target.gallery if target.kind == "gallery" else None,
        "blob_url": run.blob_url,
        "versions": {r["definition"]: r["version"] for r in run.resources},
        "version": found_versions[0] if len(found_versions) == 1 else ", ".join(found_versions),
        "created": any(r["created"] for r in run.resources),
        "resources": run.resources,
        "uploads": [u.to_json() for u in run.uploads],
        "bytes_sent": sum(u.bytes_sent for u in run.uploads),
        "force_unverified": force_unverified,
        "attestation_blobs": run.sidecars or {},
        "durations_s": {**run.timings.steps, "total": round(time.monotonic() - started, 3)},
    }
