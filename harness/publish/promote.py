"""`harness promote`: a staged version (published with --exclude-from-latest) joins 'latest'; old staging versions
are deleted. The same rules for a local gallery and an Azure Compute Gallery, behind one small interface.

Staging -> promote: CI publishes with --exclude-from-latest (nobody who asks for 'latest' gets it), tests the
version (e.g. a VM on real Azure), then promotes it. Cleanup never deletes the latest version, a version this call
promoted, or (without --include-latest) a version that takes part in 'latest'.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from harness.buildfolder import BuildFolder, read_json, write_json_atomic
from harness.enums import Stage, Verdict
from harness.errors import NotFoundError, UsageError
from harness.publish import versions
from harness.publish.model import ImageVersion, is_past_end_of_life
from harness.results import load_stage, now

if TYPE_CHECKING:
    from harness.publish.arm import Arm
    from harness.publish.local import LocalGallery

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class GalleryVersion:
    """What promote needs to know of one image version, whatever the gallery."""

    definition: str
    version: str
    exclude_from_latest: bool
    published: dt.datetime | None  # UTC; None when the gallery does not say
    end_of_life: str | None = None  # YYYY-MM-DD

    def age_days(self, at: dt.datetime) -> float | None:
        return None if self.published is None else (at - self.published).total_seconds() / SECONDS_PER_DAY


class Gallery(Protocol):
    """A gallery promote can work on: list, include a version in 'latest', delete a version."""

    def describe(self) -> str: ...

    def definitions(self) -> list[str]: ...

    def versions(self, definition: str) -> list[GalleryVersion]: ...

    def include_in_latest(self, definition: str, version: str) -> None: ...

    def delete(self, definition: str, version: str) -> None: ...


@dataclass(frozen=True)
class PromoteOptions:
    """Which versions to promote, and whether (and where) to delete old staging versions afterwards."""

    items: tuple[tuple[str, str], ...] = ()  # (definition, version)
    delete_older_than_days: float | None = None
    include_latest: bool = False  # cleanup may also delete old versions that take part in 'latest'
    definitions: tuple[str, ...] = ()  # where cleanup looks (default: the items' definitions, else every one)
    dry_run: bool = False


@dataclass
class PromoteResult:
    """What promote did (or, with dry_run, would do)."""

    gallery: str
    dry_run: bool
    promoted: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[dict[str, Any]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    latest: dict[str, str | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"gallery": self.gallery, "dry_run": self.dry_run, "promoted": self.promoted,
                "deleted": self.deleted, "kept": self.kept, "latest": self.latest}


def parse_item(text: str) -> tuple[str, str]:
    """'debian-12-gen2/2026.1203.0' -> ('debian-12-gen2', '2026.1203.0')."""
    definition, sep, version = text.partition("/")
    if not sep or not definition or not version or "/" in version:
        raise UsageError(f"{text!r} is not DEFINITION/VERSION", "e.g. debian-12-gen2/2026.1203.0")
    versions.numbers(version)
    return definition, version


def latest_of(items: list[GalleryVersion], today: dt.date | None = None) -> GalleryVersion | None:
    """Azure's 'latest': the highest version neither excluded from latest nor past its end of life."""
    eligible = [v for v in items if not v.exclude_from_latest and not is_past_end_of_life(v.end_of_life, today)]
    return max(eligible, key=lambda v: versions.sort_key(v.version), default=None)


def _find(gallery: Gallery, definition: str, version: str) -> GalleryVersion:
    items = gallery.versions(definition)
    for item in items:
        if versions.same_version(item.version, version):
            return item
    known = ", ".join(v.version for v in items) or "none"
    raise NotFoundError(f"no version {version} of {definition!r} in {gallery.describe()}", f"versions: {known}")


def promote(gallery: Gallery, options: PromoteOptions, at: dt.datetime | None = None) -> PromoteResult:
    """Include every item in 'latest' (all are looked up before any is changed), then clean up if asked."""
    moment = at or dt.datetime.now(dt.UTC)
    result = PromoteResult(gallery.describe(), options.dry_run)
    found = [_find(gallery, d, v) for d, v in options.items]
    for item in found:
        changed = item.exclude_from_latest
        if changed and not options.dry_run:
            gallery.include_in_latest(item.definition, item.version)
            log.info("promoted %s/%s in %s", item.definition, item.version, result.gallery)
        result.promoted.append({"definition": item.definition, "version": item.version, "changed": changed})
    touched = list(dict.fromkeys(i.definition for i in found))
    if options.delete_older_than_days is not None:
        where = list(options.definitions) or touched or gallery.definitions()
        promoted = {(i.definition, i.version) for i in found}
        for definition in where:
            _clean(gallery, definition, options, promoted, at=moment, result=result)
        touched = list(dict.fromkeys([*touched, *where]))
    for definition in touched:
        now_latest = latest_of(_after(gallery.versions(definition), promoted_in=result, dry_run=options.dry_run),
                               moment.date())
        result.latest[definition] = now_latest.version if now_latest else None
    return result


def _after(items: list[GalleryVersion], *, promoted_in: PromoteResult, dry_run: bool) -> list[GalleryVersion]:
    """The versions as they are after this call (a dry run changed nothing, so apply what it would have done)."""
    if not dry_run:
        return items
    promoted = {(p["definition"], p["version"]) for p in promoted_in.promoted}
    deleted = {(d["definition"], d["version"]) for d in promoted_in.deleted}
    return [GalleryVersion(v.definition, v.version, v.exclude_from_latest and (v.definition, v.version) not in promoted,
                           v.published, v.end_of_life) for v in items if (v.definition, v.version) not in deleted]


def keep_reason(item: GalleryVersion, *, latest: GalleryVersion | None, promoted: set[tuple[str, str]],
                days: float, include_latest: bool, at: dt.datetime) -> str | None:
    """Why cleanup must keep a version, or None when it may be deleted."""
    if latest is not None and item.version == latest.version:
        return "the latest version"
    if (item.definition, item.version) in promoted:
        return "promoted by this call"
    if not item.exclude_from_latest and not include_latest:
        return "takes part in 'latest' (not a staging version; --include-latest deletes old ones too)"
    age = item.age_days(at)
    if age is None:
        return "the gallery does not say when it was published"
    if age < days:
        return f"published {age:.1f} days ago, less than {days:g}"
    return None


def _clean(gallery: Gallery, definition: str, options: PromoteOptions, promoted: set[tuple[str, str]], *,
           at: dt.datetime, result: PromoteResult) -> None:
    days = float(options.delete_older_than_days or 0)
    items = gallery.versions(definition)
    if options.dry_run:  # a dry run did not promote: judge the versions as they would be
        items = _after(items, promoted_in=result, dry_run=True)
    latest = latest_of(items, at.date())
    for item in sorted(items, key=lambda v: versions.sort_key(v.version)):
        reason = keep_reason(item, latest=latest, promoted=promoted, days=days,
                             include_latest=options.include_latest, at=at)
        row = {"definition": definition, "version": item.version,
               "published": item.published.strftime("%Y-%m-%dT%H:%M:%SZ") if item.published else None}
        if reason is not None:
            result.kept.append({**row, "reason": reason})
            continue
        if not options.dry_run:
            gallery.delete(definition, item.version)
            log.info("deleted %s/%s from %s", definition, item.version, result.gallery)
        result.deleted.append({**row, "staging": item.exclude_from_latest})


# -- which versions a build was published as ----------------------------------------------------------------

def published_versions(build: BuildFolder, target: str) -> list[tuple[str, str]]:
    """(definition, version) of the build's last successful publish to `target` ('local:/abs/path' or 'azure')."""
    report = load_stage(build, Stage.PUBLISH)
    history = list(report.details.get("history", [])) if report is not None else []
    ok = (Verdict.PASSED.value, Verdict.NO_OP.value)
    for entry in reversed(history):
        if entry.get("target") == target and entry.get("result") in ok and entry.get("versions"):
            return sorted((str(d), str(v)) for d, v in entry["versions"].items())
    raise NotFoundError(f"build {build.path} has no successful publish to {target}",
                        "publish it first (harness publish BUILD --exclude-from-latest), or name the versions as "
                        "DEFINITION/VERSION")


# -- the local gallery -------------------------------------------------------------------------------------

def _utc(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class LocalPromoteGallery:
    """A local gallery folder: version.json is rewritten atomically under the definition's lock."""

    gallery: LocalGallery

    def describe(self) -> str:
        return f"local:{self.gallery.path}"

    def definitions(self) -> list[str]:
        return [d.name for d in self.gallery.definitions()]

    def versions(self, definition: str) -> list[GalleryVersion]:
        self.gallery.definition(definition)  # NotFoundError naming the known definitions
        return [GalleryVersion(definition, v.version, v.exclude_from_latest, _utc(v.published), v.end_of_life)
                for v in self.gallery.versions(definition)]

    def include_in_latest(self, definition: str, version: str) -> None:
        from harness.publish.local import VERSION_FILE
        from harness.publish.localstore import fsync_dir, locked

        with locked(self.gallery.definition_dir(definition)):
            folder = self.gallery.version_dir(definition, version)
            path = folder / VERSION_FILE
            data = read_json(path)
            ImageVersion.from_json(data)  # refuse a damaged record before writing anything
            history = [*data.get("promotions", []), {"time": now(), "exclude_from_latest": False}]
            write_json_atomic(path, {**data, "exclude_from_latest": False, "promotions": history})
            path.chmod(0o444)  # versions stay read-only by convention (local.py)
            fsync_dir(folder)

    def delete(self, definition: str, version: str) -> None:
        self.gallery.delete(definition, version, allow_latest=False)


# -- Azure Compute Gallery ---------------------------------------------------------------------------------

def _enum(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def azure_version(definition: str, resource: Any) -> GalleryVersion:
    """GalleryVersion from an azure-mgmt-compute GalleryImageVersion."""
    profile = getattr(resource, "publishing_profile", None)
    published = getattr(profile, "published_date", None)
    if isinstance(published, dt.datetime) and published.tzinfo is None:
        published = published.replace(tzinfo=dt.UTC)
    eol = getattr(profile, "end_of_life_date", None)
    return GalleryVersion(definition, str(resource.name), bool(getattr(profile, "exclude_from_latest", False)),
                          published if isinstance(published, dt.datetime) else None,
                          eol.date().isoformat() if isinstance(eol, dt.datetime) else None)


@dataclass(frozen=True)
class AzurePromoteGallery:
    """One Azure Compute Gallery through an Arm (real ARM, or a local fake in tests)."""

    arm: Arm
    gallery: str

    def describe(self) -> str:
        return f"azure gallery {self.gallery} in {self.arm.rg}"

    def definitions(self) -> list[str]:
        return self.arm.list_definitions(self.gallery)

    def versions(self, definition: str) -> list[GalleryVersion]:
        resources = self.arm.list_versions(self.gallery, definition)
        failed = [str(v.name) for v in resources if _enum(getattr(v, "provisioning_state", "")) == "Failed"]
        if failed:
            log.warning("%s/%s: versions %s failed provisioning", self.gallery, definition, ", ".join(failed))
        return [azure_version(definition, v) for v in resources]

    def include_in_latest(self, definition: str, version: str) -> None:
        self.arm.include_in_latest(self.gallery, definition, version)

    def delete(self, definition: str, version: str) -> None:
        self.arm.delete_version(self.gallery, definition, version)


def check_days(days: float | None) -> float | None:
    if days is not None and (math.isnan(days) or days < 0):
        raise UsageError(f"--delete-older-than {days} is not a number of days", "use 0 or more, e.g. 14")
    return days


def require_items_or_cleanup(options: PromoteOptions) -> None:
    if not options.items and options.delete_older_than_days is None:
        raise UsageError("nothing to do: no version to promote and no cleanup asked for",
                         "name DEFINITION/VERSION items, --build BUILD, or --delete-older-than DAYS")
