"""Management operations with azure-mgmt-compute: gallery, image definition, image version, managed image, disk.

Every create is a long-running operation waited on with a progress line; every Azure error becomes a
one-line PublishError with a hint (harness.publish.azerrors). Reads come first: an existing resource
with the same content is reused, one with other content is refused (versions are immutable).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.mgmt.compute import models as m

from harness.errors import PublishError
from harness.publish.azerrors import GENERATION_HINT, publish_error
from harness.publish.model import ImageDefinition, feature_text

log = logging.getLogger(__name__)

LOG_EVERY_S = 15.0
WRITE_SAS_DURATION_S = 4 * 3600  # long enough for a slow 30 GiB upload, short if left open
DIGEST_TAG = "harness-content-digest"
T = TypeVar("T")

LroProgress = Callable[[str, str, float], None]
"""lro_progress(what, status, elapsed_s), called while a long-running operation is waited on."""


@dataclass(frozen=True)
class Region:
    """A resolved target region: name, replica count, replica storage account type."""

    name: str
    replicas: int
    storage_account_type: str
    exclude_from_latest: bool = False


def enum_text(value: Any) -> str:
    """'V2' from HyperVGeneration.V2 or 'V2' (responses may carry enums or plain strings)."""
    return str(getattr(value, "value", value) or "")


def eol_datetime(day: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC) if day else None


def version_source_uri(version: Any) -> str:
    """The blob URL an image version was made from ('' when it came from something else)."""
    profile = getattr(version, "storage_profile", None)
    disk = getattr(profile, "os_disk_image", None)
    source = getattr(disk, "source", None)
    return str(getattr(source, "uri", "") or "")


def content_tag(resource: Any) -> str:
    return str((getattr(resource, "tags", None) or {}).get(DIGEST_TAG, ""))


class Arm:
    """One resource group's compute resources, through a ComputeManagementClient (real ARM or a local fake)."""

    def __init__(self, client: Any, resource_group: str, location: str,
                 lro_progress: LroProgress | None = None) -> None:
        self.client = client
        self.rg = resource_group
        self.location = location
        self.lro_progress = lro_progress

    # -- plumbing ---------------------------------------------------------------------------------

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except AzureError as exc:
            raise publish_error(what, exc) from exc

    def _get(self, what: str, call: Callable[[], T]) -> T | None:
        try:
            return call()
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise publish_error(what, exc) from exc

    def _wait(self, what: str, begin: Callable[[], Any]) -> Any:
        """Start a long-running operation and wait for it, reporting its status every LOG_EVERY_S seconds."""
        start = time.monotonic()

        def run() -> Any:
            poller = begin()
            while not poller.done():
                poller.wait(timeout=LOG_EVERY_S)
                elapsed = time.monotonic() - start
                if not poller.done():
                    log.info("%s: %s after %.0f s", what, poller.status(), elapsed)
                    if self.lro_progress is not None:
                        self.lro_progress(what, str(poller.status()), elapsed)
            return poller.result()

        result = self._call(what, run)
        log.info("%s: done in %.1f s", what, time.monotonic() - start)
        return result

    # -- gallery and image definition ---------------------------------------------------------------

    def ensure_gallery(self, gallery: str) -> Any:
        """The gallery, created when missing."""
        found = self._get(f"reading gallery {gallery}", lambda: self.client.galleries.get(self.rg, gallery))
        if found is not None:
            return found
        body = m.Gallery(location=self.location,
                         properties=m.GalleryProperties(description="Images published by harness"))
        return self._wait(f"creating gallery {gallery}",
                          lambda: self.client.galleries.begin_create_or_update(self.rg, gallery, body))

    def get_gallery(self, gallery: str) -> Any | None:
        return self._get(f"reading gallery {gallery}", lambda: self.client.galleries.get(self.rg, gallery))

    def get_definition(self, gallery: str, definition: str) -> Any | None:
        return self._get(f"reading image definition {gallery}/{definition}",
                         lambda: self.client.gallery_images.get(self.rg, gallery, definition))

    def set_sharing_profile(self, gallery: str, profile: Any) -> Any:
        """PATCH the gallery's sharing profile (permissions Private/Groups/Community, community information)."""
        body = m.GalleryUpdate(properties=m.GalleryProperties(sharing_profile=profile))
        return self._wait(f"updating the sharing profile of gallery {gallery}",
                          lambda: self.client.galleries.begin_update(self.rg, gallery, body))

    def update_sharing(self, gallery: str, update: Any) -> Any:
        """Add or remove subscriptions and tenants, or enable a community gallery (POST .../share)."""
        return self._wait(f"sharing gallery {gallery} ({enum_text(update.operation_type)})",
                          lambda: self.client.gallery_sharing_profile.begin_update(self.rg, gallery, update))

    def ensure_definition(self, gallery: str, definition: ImageDefinition) -> Any:
        """The image definition, created when missing; an existing one must match generation, state, arch."""
        what = f"image definition {gallery}/{definition.name}"
        found = self._get(f"reading {what}",
                          lambda: self.client.gallery_images.get(self.rg, gallery, definition.name))
        if found is not None:
            problems = [f"{key} is {have!r}, the build needs {want!r}" for key, have, want in (
                ("hyperVGeneration", enum_text(found.hyper_v_generation), definition.hyper_v_generation),
                ("osState", enum_text(found.os_state), definition.os_state),
                ("architecture", enum_text(found.architecture) or "x64", definition.architecture),
                ("osType", enum_text(found.os_type), definition.os_type)) if have.lower() != want.lower()]
            have_features = tuple(sorted((str(f.name), str(f.value)) for f in getattr(found, "features", None) or []))
            if have_features != definition.features:
                problems.append(f"features are {feature_text(have_features)}, the build proves "
                                f"{feature_text(definition.features)}")
            if problems:
                hint = GENERATION_HINT if problems[0].startswith("hyperV") else (
                    "Azure cannot change an existing image definition: publish to a new definition name "
                    "(--definition V1=NAME/V2=NAME)")
                raise PublishError(f"existing {what} does not fit this build: {'; '.join(problems)}", hint)
            return found
        body = m.GalleryImage(location=self.location, properties=m.GalleryImageProperties(
            os_type=definition.os_type, os_state=definition.os_state,
            hyper_v_generation=definition.hyper_v_generation, architecture=definition.architecture,
            description=definition.description or None, end_of_life_date=eol_datetime(definition.end_of_life),
            features=[m.GalleryImageFeature(name=n, value=v) for n, v in definition.features] or None,
            identifier=m.GalleryImageIdentifier(publisher=definition.publisher, offer=definition.offer,
                                                sku=definition.sku)))
        return self._wait(f"creating {what}", lambda: self.client.gallery_images.begin_create_or_update(
            self.rg, gallery, definition.name, body))

    # -- image versions ---------------------------------------------------------------------------

    def get_version(self, gallery: str, definition: str, version: str) -> Any | None:
        return self._get(f"reading image version {gallery}/{definition}/{version}",
                         lambda: self.client.gallery_image_versions.get(self.rg, gallery, definition, version))

    def list_versions(self, gallery: str, definition: str) -> list[Any]:
        """Versions of a definition ([] when the gallery or the definition does not exist yet)."""
        found = self._get(f"listing versions of {gallery}/{definition}", lambda: list(
            self.client.gallery_image_versions.list_by_gallery_image(self.rg, gallery, definition)))
        return found or []

    def create_version(self, gallery: str, definition: str, version: str, *, blob_url: str,
                       storage_account_id: str, regions: Sequence[Region], replica_count: int,
                       storage_account_type: str, exclude_from_latest: bool, end_of_life: str | None,
                       tags: dict[str, str], replication_mode: str | None = None) -> Any:
        """Image version from a VHD blob, replicated to `regions` (replication_mode 'Full' or 'Shallow'; None:
        Azure's default, Full)."""
        body = m.GalleryImageVersion(location=self.location, tags=tags, properties=m.GalleryImageVersionProperties(
            storage_profile=m.GalleryImageVersionStorageProfile(os_disk_image=m.GalleryOSDiskImage(
                source=m.GalleryDiskImageSource(uri=blob_url, storage_account_id=storage_account_id),
                host_caching="ReadOnly")),
            publishing_profile=m.GalleryImageVersionPublishingProfile(
                target_regions=[m.TargetRegion(name=r.name, regional_replica_count=r.replicas,
                                               storage_account_type=r.storage_account_type,
                                               exclude_from_latest=True if r.exclude_from_latest else None)
                                for r in regions],
                replica_count=replica_count, storage_account_type=storage_account_type,
                replication_mode=replication_mode,
                exclude_from_latest=exclude_from_latest, end_of_life_date=eol_datetime(end_of_life))))
        return self._wait(f"creating image version {gallery}/{definition}/{version}",
                          lambda: self.client.gallery_image_versions.begin_create_or_update(
                              self.rg, gallery, definition, version, body))

    def list_definitions(self, gallery: str) -> list[str]:
        """The image definitions of a gallery, by name ([] when the gallery does not exist)."""
        found = self._get(f"listing image definitions of {gallery}",
                          lambda: list(self.client.gallery_images.list_by_gallery(self.rg, gallery)))
        return sorted(str(d.name) for d in found or [])

    def include_in_latest(self, gallery: str, definition: str, version: str) -> Any:
        """Clear exclude-from-latest on a version (and on each of its target regions) with a PATCH of its
        publishing profile; the content and the rest of the profile stay as they are."""
        what = f"image version {gallery}/{definition}/{version}"
        found = self.get_version(gallery, definition, version)
        if found is None:
            raise PublishError(f"{what} does not exist", "check the definition and version (harness promote "
                               "DEFINITION/VERSION)")
        profile = found.publishing_profile
        regions = [m.TargetRegion(name=r.name, regional_replica_count=r.regional_replica_count,
                                  storage_account_type=r.storage_account_type, encryption=r.encryption,
                                  exclude_from_latest=False if r.exclude_from_latest else None)
                   for r in (getattr(profile, "target_regions", None) or [])]
        # The model types storage_profile as required (a create needs it); an update leaves the content alone.
        properties = m.GalleryImageVersionProperties(  # type: ignore[call-overload]
            publishing_profile=m.GalleryImageVersionPublishingProfile(
                exclude_from_latest=False, target_regions=regions or None))
        body = m.GalleryImageVersionUpdate(properties=properties)
        return self._wait(f"promoting {what}", lambda: self.client.gallery_image_versions.begin_update(
            self.rg, gallery, definition, version, body))

    def delete_version(self, gallery: str, definition: str, version: str) -> None:
        """Delete one image version (a long-running operation)."""
        self._wait(f"deleting image version {gallery}/{definition}/{version}",
                   lambda: self.client.gallery_image_versions.begin_delete(self.rg, gallery, definition, version))

    # -- managed image ----------------------------------------------------------------------------

    def get_image(self, name: str) -> Any | None:
        return self._get(f"reading managed image {name}", lambda: self.client.images.get(self.rg, name))

    def create_image(self, name: str, definition: ImageDefinition, *, blob_url: str, storage_account_type: str,
                     tags: dict[str, str]) -> Any:
        """Managed image from a same-region blob; Azure allows only generalized sources."""
        if definition.os_state != "Generalized":
            raise PublishError(f"managed image {name}: the build is {definition.os_state}, managed images need a "
                               "generalized source", "publish specialized builds to a gallery or as a disk")
        body = m.Image(location=self.location, tags=tags, properties=m.ImageProperties(
            hyper_v_generation=definition.hyper_v_generation,
            storage_profile=m.ImageStorageProfile(os_disk=m.ImageOSDisk(
                os_type=definition.os_type, os_state="Generalized", blob_uri=blob_url,
                storage_account_type=storage_account_type))))
        return self._wait(f"creating managed image {name}",
                          lambda: self.client.images.begin_create_or_update(self.rg, name, body))

    # -- managed disk -----------------------------------------------------------------------------

    def get_disk(self, name: str) -> Any | None:
        return self._get(f"reading managed disk {name}", lambda: self.client.disks.get(self.rg, name))

    def create_disk(self, name: str, definition: ImageDefinition, *, sku: str, tags: dict[str, str],
                    blob_url: str | None = None, storage_account_id: str | None = None,
                    upload_size_bytes: int | None = None) -> Any:
        """Managed OS disk imported from a blob, or empty and ready for a direct upload of upload_size_bytes."""
        if blob_url is not None:
            creation = m.CreationData(create_option="Import", source_uri=blob_url,
                                      storage_account_id=storage_account_id)
        else:
            creation = m.CreationData(create_option="Upload", upload_size_bytes=upload_size_bytes)
        body = m.Disk(location=self.location, tags=tags, sku=m.DiskSku(name=sku), properties=m.DiskProperties(
            os_type=definition.os_type, hyper_v_generation=definition.hyper_v_generation, creation_data=creation))
        return self._wait(f"creating managed disk {name}",
                          lambda: self.client.disks.begin_create_or_update(self.rg, name, body))

    def grant_write(self, name: str) -> str:
        """A write SAS URL for a disk in ReadyToUpload state (a secret: never log it unmasked)."""
        data = m.GrantAccessData(access="Write", duration_in_seconds=WRITE_SAS_DURATION_S)
        access = self._wait(f"granting write access to disk {name}",
                            lambda: self.client.disks.begin_grant_access(self.rg, name, data))
        sas = str(getattr(access, "access_sas", "") or "")
        if not sas:
            raise PublishError(f"granting write access to disk {name} returned no SAS URL",
                               "check that the disk was created with create_option Upload")
        return sas

    def revoke(self, name: str) -> None:
        """End the upload: required before the disk can be attached or imaged."""
        self._wait(f"revoking access to disk {name}", lambda: self.client.disks.begin_revoke_access(self.rg, name))
