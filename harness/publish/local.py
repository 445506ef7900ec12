"""Local gallery on disk, the embedded default publish target: Azure Compute Gallery's model in folders.

    <gallery>/gallery.json
    <gallery>/<definition>/definition.json        publisher/offer/SKU, OS state, generation, architecture
    <gallery>/<definition>/.lock                  fcntl lock: one writer per definition at a time
    <gallery>/<definition>/<version>/             immutable: version.json, disk.vhd, manifest.json,
                                                  content-digest.txt, and the build's results.json,
                                                  check.json and verify.json (those it has), its SBOM
                                                  sbom.spdx.json and the VHD's provenance.intoto.jsonl
    <gallery>/<definition>/<version>/regions/<region>/replica-<N>.vhd    hard links (or reflinks) of disk.vhd

A version is staged in `<definition>/.staging-*` and renamed into place, so it is complete or absent;
deletion renames it to `.deleted-*` first. Both leftovers of a crash are swept under the lock. One publish to
several definitions is all or nothing: every version is staged before any is renamed into place, and a failure
removes the ones already renamed.
The VHD enters the gallery as a reflink when the file system can, else as a sparse copy (only the
data extents are copied). It is never hard-linked to the build's disk.vhd: the gallery must stay
immutable when the build folder is pruned or re-converted, and a shared inode would tie them.
The file-level machinery (copies, replicas, locks, staging, rollback) is in localstore.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from harness.buildfolder import MANIFEST, VHD, read_json, write_json_atomic
from harness.digest import allocated_bytes
from harness.errors import NotFoundError, PublishError, UsageError
from harness.publish import versions
from harness.publish.localstore import (
    LOCK_FILE,
    STAGING_PREFIX,
    TOMBSTONE_PREFIX,
    Planned,
    clone_or_copy,
    fsync_dir,
    install,
    locked,
    remove_version,
    replicate,
    sweep,
    token,
    undo_all,
)
from harness.publish.model import (
    ImageDefinition,
    ImageVersion,
    PublishOutcome,
    PublishRequest,
    check_name,
    latest,
)
from harness.results import now

# Tests replace clone_or_copy, replicate and install here: LocalGallery looks them up in this module at call time.
__all__ = ["DEFAULT_GALLERY", "GALLERY_FILE", "LOCK_FILE", "STAGING_PREFIX", "TOMBSTONE_PREFIX", "LocalGallery",
           "clone_or_copy", "install", "replicate"]

log = logging.getLogger(__name__)

DEFAULT_GALLERY = Path("gallery")
GALLERY_FILE = "gallery.json"
DEFINITION_FILE = "definition.json"
VERSION_FILE = "version.json"
DIGEST_FILE = "content-digest.txt"
RESULTS = "results.json"
R = TypeVar("R")


def _check_fits(existing: ImageDefinition, wanted: ImageDefinition) -> None:
    """A version must match its definition's OS state, generation and architecture."""
    problems = existing.mismatches(wanted)
    if problems:
        default = wanted.default_name()
        hint = ("publish to a matching definition with --definition NAME"
                + (f", or omit --definition to use {default!r}" if default != wanted.name else ""))
        raise PublishError(f"image definition {wanted.name!r} does not fit this build: {'; '.join(problems)}", hint)


def _check_staged(staging: Path, request: PublishRequest, version: str) -> None:
    """Read a staged version back: its record names this version and content, its VHD is the whole disk."""
    record = ImageVersion.from_json(read_json(staging / VERSION_FILE))
    vhd_bytes = (staging / VHD).stat().st_size
    if (record.version, record.content_digest) != (version, request.content_digest) or \
            vhd_bytes != request.vhd.stat().st_size:
        raise PublishError(f"staged version {version} in {staging} does not match what was written",
                           "the file system lost data; check it and publish again")


# Kernel and device trees: writing a gallery there is never what anyone meant.
_SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))
_GALLERY_HINT = "use a folder of your own for the gallery, e.g. --to local:./gallery"


def _location_problem(path: Path) -> str | None:
    """Why a gallery cannot live at path (a system tree, a file), or None."""
    resolved = path.resolve()
    for tree in _SYSTEM_TREES:
        if resolved == tree or tree in resolved.parents:
            return f"is under {tree}"
    if resolved.exists() and not resolved.is_dir():
        return "is a file, not a folder"
    return None


def _write_problem(path: Path) -> str | None:
    """Why nothing can be written at path (itself, or its nearest existing parent), or None."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot be created: {existing} is a file"
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        return f"is on a read-only file system ({existing})"
    # Mode bits count even for root: a folder with no write bit was made read-only on purpose.
    if existing.stat().st_mode & 0o222 == 0 or not os.access(existing, os.W_OK | os.X_OK):
        return "is read-only" if existing == path else f"cannot be created: {existing} is read-only"
    return None


_DAMAGED = "restore the file from a backup, or remove that definition or version folder by hand"


def _read_record(path: Path, parse: Callable[[Any], R], what: str) -> R:
    """One gallery JSON record, or one clear error when it is not one (a list, missing keys, wrong types)."""
    data = read_json(path)
    try:
        return parse(data)
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise NotFoundError(f"{path} is damaged: not an {what} ({type(exc).__name__}: {exc})", _DAMAGED) from exc


def _read_definition(path: Path) -> ImageDefinition:
    return _read_record(path, ImageDefinition.from_json, "image definition")


def _read_version(path: Path) -> ImageVersion:
    return _read_record(path, ImageVersion.from_json, "image version")


@dataclass(frozen=True)
class LocalGallery:
    """A gallery folder; every method is safe against concurrent publishers of the same gallery."""

    path: Path

    @classmethod
    def at(cls, path: Path | str | None = None) -> LocalGallery:
        """The gallery at path (default ./gallery); refuses a file or a system tree (/proc, /sys, /dev)."""
        gallery = cls(Path(path or DEFAULT_GALLERY).absolute())
        gallery._refuse_location()
        return gallery

    def _refuse_location(self) -> None:
        problem = _location_problem(self.path)
        if problem:
            raise UsageError(f"gallery path {self.path} {problem}", _GALLERY_HINT)

    # -- reading ---------------------------------------------------------------------------------

    def definition_dir(self, name: str) -> Path:
        return self.path / check_name(name)

    def definitions(self) -> list[ImageDefinition]:
        """Every image definition, by name."""
        if not self.path.is_dir():
            return []
        return [_read_definition(p / DEFINITION_FILE) for p in sorted(self.path.iterdir())
                if p.is_dir() and not p.name.startswith(".") and (p / DEFINITION_FILE).exists()]

    def definition(self, name: str) -> ImageDefinition:
        path = self.definition_dir(name) / DEFINITION_FILE
        if not path.exists():
            known = ", ".join(d.name for d in self.definitions()) or "none"
            raise NotFoundError(f"no image definition {name!r} in {self.path}", f"definitions: {known}")
        return _read_definition(path)

    def versions(self, name: str) -> list[ImageVersion]:
        """Complete versions of a definition, oldest version number first."""
        folder = self.definition_dir(name)
        if not folder.is_dir():
            return []
        found = [_read_version(p / VERSION_FILE) for p in folder.iterdir()
                 if p.is_dir() and versions.VERSION_RE.match(p.name) and (p / VERSION_FILE).exists()]
        return sorted(found, key=lambda v: versions.sort_key(v.version))

    def version(self, name: str, version: str, today: dt.date | None = None) -> ImageVersion:
        """One version; 'latest' resolves like Azure does."""
        self.definition(name)
        items = self.versions(name)
        if version == "latest":
            found = latest(items, today)
            if found is None:
                raise NotFoundError(f"definition {name!r} has no latest version",
                                    "every version is excluded from latest or past its end of life")
            return found
        for item in items:
            if versions.same_version(item.version, version):
                return item
        known = ", ".join(v.version for v in items) or "none"
        raise NotFoundError(f"no version {version} of {name!r} in {self.path}", f"versions: {known}")

    def version_dir(self, name: str, version: str) -> Path:
        return self.definition_dir(name) / version

    def latest(self, name: str, today: dt.date | None = None) -> ImageVersion | None:
        return latest(self.versions(name), today)

    def files(self, name: str, version: str) -> list[dict[str, Any]]:
        """Every file of a version with its size, allocated bytes, inode and link count."""
        root = self.version_dir(name, version)
        rows = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            st = path.stat()
            rows.append({"path": str(path.relative_to(root)), "size_bytes": st.st_size,
                         "allocated_bytes": allocated_bytes(path), "inode": st.st_ino, "links": st.st_nlink})
        return rows

    # -- writing ---------------------------------------------------------------------------------

    def check_writable(self) -> None:
        """PublishError when nothing can be written at the gallery's path (a file, /proc, a read-only folder)."""
        self._refuse_location()
        problem = _write_problem(self.path)
        if problem:
            raise PublishError(f"gallery path {self.path} {problem}", _GALLERY_HINT)

    def ensure(self) -> None:
        """Create the gallery folder and gallery.json if missing; refuses a place nothing can be written to."""
        self.check_writable()
        self.path.mkdir(parents=True, exist_ok=True)
        final = self.path / GALLERY_FILE
        if final.exists():
            return
        tmp = self.path / f"{STAGING_PREFIX}{GALLERY_FILE}-{token()}"
        try:
            tmp.write_text(json.dumps({"schema": 1, "name": self.path.name, "kind": "local", "created": now()},
                                      indent=2) + "\n", encoding="utf-8")
            os.link(tmp, final)  # unlike rename, never replaces a gallery.json another publisher wrote first
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)

    def ensure_definition(self, wanted: ImageDefinition) -> ImageDefinition:
        """Create the definition atomically, or check that the existing one fits the build."""
        self.ensure()
        folder = self.definition_dir(wanted.name)
        if not (folder / DEFINITION_FILE).exists():
            staging = self.path / f"{STAGING_PREFIX}def-{wanted.name}-{token()}"
            staging.mkdir()
            write_json_atomic(staging / DEFINITION_FILE, {**wanted.to_json(), "created": now()})
            try:
                os.rename(staging, folder)
            except OSError as exc:  # another publisher created it first
                shutil.rmtree(staging, ignore_errors=True)
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        existing = self.definition(wanted.name)
        _check_fits(existing, wanted)
        return existing

    def publish(self, request: PublishRequest, today: time.struct_time | None = None,
                files: Mapping[str, bytes] | None = None) -> list[PublishOutcome]:
        """Publish one build to every requested definition, all or nothing: each gets a new version or a no-op.

        Every version is staged and checked first, then all are renamed into place; on any failure every staged
        and every already committed version of this call is removed again. `files` (name -> bytes: the SBOM, the
        provenance, the results.json it names) are written into each new version folder.
        """
        for wanted in request.definitions:  # refuse before creating anything
            self._preflight(wanted, request)
        for wanted in request.definitions:
            self.ensure_definition(wanted)
        with self._locked_all([self.definition_dir(w.name) for w in request.definitions]):
            plans = [self._decide(wanted, request, today) for wanted in request.definitions]
            pending = [p for p in plans if p.noop is None]
            try:
                for plan in pending:
                    self._stage_checked(plan, request, files or {})
                for plan in pending:
                    install(plan.staging_path(), plan.final)
            except BaseException as exc:
                undo_all(pending, exc)
                raise
            finally:
                for folder in {p.folder for p in pending}:
                    fsync_dir(folder)
        for plan in pending:
            log.info("published %s version %s to %s", plan.wanted.name, plan.version, self.path)
        return [plan.outcome() for plan in plans]

    def _preflight(self, wanted: ImageDefinition, request: PublishRequest) -> None:
        if (self.definition_dir(wanted.name) / DEFINITION_FILE).exists():
            _check_fits(self.definition(wanted.name), wanted)
            items = self.versions(wanted.name)
            if any(v.content_digest == request.content_digest for v in items):
                return
            self._refuse_taken(wanted.name, request.version, items)

    @staticmethod
    def _refuse_taken(name: str, version: str, items: list[ImageVersion]) -> None:
        spelling = versions.find_same(version, (v.version for v in items))
        if spelling is not None:
            taken = next(v for v in items if v.version == spelling)
            known = "" if spelling == version else f" (as {spelling})"
            raise PublishError(f"version {version} of {name!r} already exists{known} with other content "
                               f"({taken.content_digest})", "versions are immutable: pick another --version "
                               "or use --version auto")

    @contextlib.contextmanager
    def _locked_all(self, folders: list[Path]) -> Iterator[None]:
        """Lock every definition (in name order, so two publishers never deadlock) and sweep its leftovers."""
        with contextlib.ExitStack() as stack:
            for folder in sorted(set(folders)):
                stack.enter_context(locked(folder))
                sweep(folder)
            yield

    def _decide(self, wanted: ImageDefinition, request: PublishRequest,
                today: time.struct_time | None) -> Planned:
        """Under the lock: the same content already there (a no-op), a taken version (refused), or a new one."""
        folder = self.definition_dir(wanted.name)
        items = self.versions(wanted.name)
        same = next((v for v in items if v.content_digest == request.content_digest), None)
        if same is not None:
            note = f"content already published as version {same.version}"
            if request.version != "auto" and not versions.same_version(request.version, same.version):
                note += f"; version {request.version} was not created"
            return Planned(wanted, folder, same.version,
                           noop=PublishOutcome(wanted.name, same.version, False, str(folder / same.version), note))
        self._refuse_taken(wanted.name, request.version, items)
        version = (versions.auto([v.version for v in items], today) if request.version == "auto"
                   else request.version)
        return Planned(wanted, folder, version)

    def _stage_checked(self, plan: Planned, request: PublishRequest, files: Mapping[str, bytes]) -> None:
        """Write the version into a fresh staging folder and read it back."""
        plan.staging = plan.folder / f"{STAGING_PREFIX}{plan.version}-{token()}"
        plan.staging.mkdir()
        self._stage(plan.staging, plan.wanted, request, plan.version, files)
        _check_staged(plan.staging, request, plan.version)

    def _stage(self, staging: Path, wanted: ImageDefinition, request: PublishRequest, version: str,
               files: Mapping[str, bytes]) -> None:
        """Fill a staging folder with everything a version holds; version.json last."""
        build = request.build
        manifest = build.manifest()
        copy_method = clone_or_copy(request.vhd, staging / VHD)
        shutil.copyfile(build.manifest_path, staging / MANIFEST)
        # the evidence the gate and `harness diff` read, and the page `harness gallery report` links to
        for name in (RESULTS, "check.json", "verify.json", "report.html"):
            if (build.path / name).exists():
                shutil.copyfile(build.path / name, staging / name)
        (staging / DIGEST_FILE).write_text(request.content_digest + "\n", encoding="utf-8")
        for name, data in files.items():  # after the copies: results.json as the provenance names it
            (staging / check_name(name, "file name")).write_bytes(data)
        replica_methods = set()
        for region in request.target_regions:
            region_dir = staging / "regions" / region.name
            region_dir.mkdir(parents=True)
            for index in range(1, region.replicas + 1):
                replica_methods.add(replicate(staging / VHD, region_dir / f"replica-{index}.vhd"))
        unverified = request.gate.problems_for(wanted.hyper_v_generation)
        record = ImageVersion(
            version=version, content_digest=request.content_digest, published=now(),
            source_build=f"{manifest.recipe}/{manifest.build_id}", build_id=manifest.build_id,
            recipe=manifest.recipe, exclude_from_latest=request.exclude_from_latest,
            end_of_life=request.end_of_life, target_regions=request.target_regions,
            force_unverified=request.force_unverified and bool(unverified), unverified_reasons=unverified,
            extra={"definition": wanted.name, "hyper_v_generation": wanted.hyper_v_generation,
                   "os_state": wanted.os_state,
                   "disk": {"file": VHD, "size_bytes": (staging / VHD).stat().st_size,
                            "copy_method": copy_method, "replica_method": ",".join(sorted(replica_methods))},
                   **({"files_sha256": {n: hashlib.sha256(d).hexdigest() for n, d in sorted(files.items())}}
                      if files else {})})
        write_json_atomic(staging / VERSION_FILE, record.to_json())
        for path in staging.rglob("*"):
            if path.is_file():
                path.chmod(0o444)  # immutable by convention; hard-linked replicas share this mode
        for path in (staging / VHD, staging / VERSION_FILE):
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(staging)

    def delete(self, name: str, version: str, *, allow_latest: bool = False,
               today: dt.date | None = None) -> ImageVersion:
        """Remove one version atomically (rename to a tombstone, then delete); refuse the latest unless allowed."""
        folder = self.definition_dir(name)
        self.definition(name)
        with locked(folder):
            item = self.version(name, version, today)
            current = latest(self.versions(name), today)
            if current is not None and current.version == item.version and not allow_latest:
                raise PublishError(f"version {item.version} is the latest of {name!r}",
                                   "pass --yes to delete it anyway (the next one becomes latest)")
            remove_version(folder, item.version)
        return item
