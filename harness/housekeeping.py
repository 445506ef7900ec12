"""Pruning the builds root: old build folders and stale scratch folders, planned completely before anything goes.

Only `builds/<recipe>/<build-id>` folders are ever deleted (real folders named like a build id, holding a
manifest.json), never through a symlink, and never one that a publish succeeded from or a gallery holds a
version of. Scratch folders (`builds/.scratch/*`, `builds/<recipe>/.tmp-*`) carry a `.lock` that their owner
holds while it works; one whose lock is free and that is older than an hour was left behind by a killed run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from harness.buildfolder import MANIFEST, BuildFolder, builds_root
from harness.enums import Firmware, Stage
from harness.errors import HarnessError, UsageError
from harness.mounts import refuse_if_mounted
from harness.publish.local import GALLERY_FILE, LocalGallery
from harness.recipe_rules import RECIPE_NAME_RE
from harness.results import load_stage

LOCK_FILE = ".lock"
SCRATCH_DIR = ".scratch"
WORK_PREFIX = ".tmp-"
PRUNING_PREFIX = ".tmp-pruning-"  # a build being deleted: hidden at once, swept as stale if deletion stops
STALE_AFTER_S = 3600.0
# new_build_id(): 20261126-093015-a1b2c3
BUILD_ID_RE = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-f]{6}")  # fullmatch: ASCII digits, no trailing newline
# What a hand-edited or truncated publish.json raises while being read: the build is then kept, never deleted.
_MALFORMED = (HarnessError, KeyError, TypeError, ValueError, AttributeError)
PUBLISHED_HINT = "--include-published deletes it"


# -- the lock a scratch folder's owner holds ----------------------------------------------------------------

def take_lock(folder: Path) -> int:
    """Create folder/.lock and hold an exclusive flock on it; closing the returned descriptor releases it."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def held(folder: Path) -> Iterator[None]:
    """Hold folder's lock for the block: prune leaves the folder alone however old it gets."""
    fd = take_lock(folder)
    try:
        yield
    finally:
        os.close(fd)


def _claim(folder: Path) -> int | None:
    """Take folder's lock without waiting: a descriptor to close, -1 if the folder has no lock, None if in use."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return -1
    except OSError:
        return None  # a .lock we cannot open (a symlink, no permission): assume someone uses the folder
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _release(fd: int | None) -> None:
    if fd is not None and fd >= 0:
        os.close(fd)


# -- the plan --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PruneOptions:
    """What `harness builds prune` was asked for."""

    keep: int
    recipe: str | None = None
    galleries: tuple[Path, ...] = ()
    include_published: bool = False
    stale_after_s: float = STALE_AFTER_S


@dataclass(frozen=True)
class Item:
    """A folder and why it is deleted, protected or skipped."""

    path: Path
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"path": str(self.path), "reason": self.reason}


@dataclass(frozen=True)
class PrunePlan:
    """Everything prune would do, computed before anything is deleted."""

    root: Path
    delete: tuple[Item, ...] = ()  # build folders
    stale: tuple[Item, ...] = ()  # scratch folders of killed boots and interrupted builds
    protected: tuple[Item, ...] = ()
    skipped: tuple[Item, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"root": str(self.root), "deleted": [str(i.path) for i in self.delete],
                "stale": [i.to_json() for i in self.stale], "protected": [i.to_json() for i in self.protected],
                "kept_published": [str(i.path) for i in self.protected],
                "skipped": [i.to_json() for i in self.skipped], "notes": list(self.notes)}


@dataclass
class _Scan:
    """What the builds root holds, without judging it yet."""

    builds: dict[str, list[BuildFolder]] = field(default_factory=dict)  # recipe -> oldest first
    scratch: list[tuple[Path, str]] = field(default_factory=list)  # (folder, what it is)
    skipped: list[Item] = field(default_factory=list)


def check_recipe_argument(recipe: str) -> str:
    """A recipe name, never a path: prune only ever walks the builds root."""
    if not RECIPE_NAME_RE.fullmatch(recipe) or ".." in recipe:
        raise UsageError(f"{recipe!r} is not a recipe name",
                         "give a recipe name from 'harness builds list' (no path); galleries are pruned with "
                         "'harness gallery delete'")
    return recipe


def plan_prune(options: PruneOptions, root: Path | None = None, now_s: float | None = None) -> PrunePlan:
    """Decide what to delete, protect and skip; reads only, deletes nothing."""
    if options.keep < 0:
        raise UsageError("--keep must be 0 or more", "e.g. --keep 3")
    if options.recipe is not None:
        check_recipe_argument(options.recipe)
    base = root or builds_root()
    if not base.is_dir() or base.is_symlink():
        return PrunePlan(base, notes=(f"no builds root at {base}",))
    if options.recipe is not None and (base / options.recipe / GALLERY_FILE).exists():
        raise UsageError(f"{base / options.recipe} is a local gallery, not a recipe's builds",
                         "delete gallery versions with 'harness gallery delete'")
    scan = _scan(base)
    sources, notes = ({}, []) if options.include_published else _gallery_sources(options.galleries, scan)
    delete, protected = _judge_builds(scan, options, sources)
    stale, young = _judge_scratch(scan, base, options, time.time() if now_s is None else now_s)
    skipped = [i for i in [*scan.skipped, *young] if _in_scope(i.path, base, options.recipe)]
    if options.recipe is not None and options.recipe not in scan.builds:
        notes.append(f"no builds of {options.recipe!r} under {base}")
    return PrunePlan(base, tuple(delete), tuple(stale), tuple(protected), tuple(skipped), tuple(notes))


def _in_scope(path: Path, root: Path, recipe: str | None) -> bool:
    """Whether a folder belongs to the recipe prune was limited to (boot scratch: <recipe>-<firmware>-...)."""
    if recipe is None:
        return True
    if path.parent == root / SCRATCH_DIR:
        return any(path.name.startswith(f"{recipe}-{fw.value}-") for fw in Firmware)
    return path == root / recipe or path.parent == root / recipe


# -- scanning --------------------------------------------------------------------------------------------

def _scan(root: Path) -> _Scan:
    scan = _Scan()
    for child in sorted(root.iterdir()):
        if child.name == SCRATCH_DIR:
            _scan_scratch(child, scan)
        elif child.name.startswith("."):
            continue
        elif child.is_symlink():
            scan.skipped.append(Item(child, "a symlink: not followed"))
        elif not child.is_dir():
            scan.skipped.append(Item(child, "not a folder"))
        elif (child / GALLERY_FILE).exists():
            scan.skipped.append(Item(child, "a local gallery, not a recipe's builds"))
        else:
            _scan_recipe(child, scan)
    return scan


def _scan_scratch(folder: Path, scan: _Scan) -> None:
    if folder.is_symlink() or not folder.is_dir():
        scan.skipped.append(Item(folder, "not a real folder: not followed"))
        return
    for child in sorted(folder.iterdir()):
        if child.is_symlink():
            scan.skipped.append(Item(child, "a symlink: not followed"))
        elif child.is_dir():
            scan.scratch.append((child, "boot scratch folder (may hold a boot's private SSH key)"))


def _scan_recipe(folder: Path, scan: _Scan) -> None:
    builds = scan.builds.setdefault(folder.name, [])
    for child in sorted(folder.iterdir()):
        if child.name.startswith(WORK_PREFIX) and not child.is_symlink() and child.is_dir():
            scan.scratch.append((child, "work folder of an interrupted build"))
            continue
        if child.name.startswith("."):
            continue
        problem = _not_a_build(child)
        if problem:
            scan.skipped.append(Item(child, problem))
        else:
            builds.append(BuildFolder(child))


def _not_a_build(path: Path) -> str | None:
    """Why path is not a build folder prune may delete, or None."""
    if path.is_symlink():
        return "a symlink: not followed"
    if not path.is_dir():
        return "not a folder"
    if not BUILD_ID_RE.fullmatch(path.name):
        return "name is not a build id (YYYYMMDD-HHMMSS-xxxxxx)"
    if not (path / MANIFEST).is_file():
        return f"no {MANIFEST}: not a complete build"
    return None


# -- protection ------------------------------------------------------------------------------------------

def _history_galleries(builds: Iterable[BuildFolder]) -> list[Path]:
    """Every local gallery a build's publish history names (target 'local:/abs/path')."""
    found: list[Path] = []
    for build in builds:
        try:
            report = load_stage(build, Stage.PUBLISH)
        except _MALFORMED:
            continue  # this build is protected for it; its galleries are found through --gallery
        if report is None:
            continue
        history = report.details.get("history")
        for entry in [report.details, *(history if isinstance(history, list) else [])]:
            target = entry.get("target") if isinstance(entry, dict) else None
            if isinstance(target, str) and target.startswith("local:"):
                found.append(Path(target.removeprefix("local:")))
    return found


def _gallery_sources(explicit: tuple[Path, ...], scan: _Scan) -> tuple[dict[tuple[str, str], str], list[str]]:
    """(recipe, build id) -> which gallery version came from it, over --gallery and every recorded gallery."""
    for path in explicit:
        LocalGallery.at(path)  # a file or a system tree given as --gallery: refused (UsageError)
    recorded = _history_galleries(b for builds in scan.builds.values() for b in builds)
    sources: dict[tuple[str, str], str] = {}
    notes: list[str] = []
    for path in dict.fromkeys(p.absolute() for p in [*explicit, *recorded]):
        if not path.is_dir():
            notes.append(f"gallery {path} does not exist: it protects nothing")
            continue
        for key, where in _versions_by_source(path):
            sources.setdefault(key, where)
    return sources, notes


def _versions_by_source(path: Path) -> list[tuple[tuple[str, str], str]]:
    """((recipe, build id), description) of every version in one gallery; unreadable means stop."""
    try:
        gallery = LocalGallery.at(path)
        found: list[tuple[tuple[str, str], str]] = []
        for definition in gallery.definitions():
            for version in gallery.versions(definition.name):
                where = f"gallery {path} holds version {version.version} of {definition.name} from it"
                found.extend((key, where) for key in _source_keys(version.source_build, version.recipe,
                                                                  version.build_id))
        return found
    except (HarnessError, OSError) as exc:
        raise HarnessError(f"cannot read gallery {path}, so cannot tell which builds it needs: {exc}",
                           "fix the gallery, or pass --include-published to prune without its protection") from exc


def _source_keys(source_build: str, recipe: str, build_id: str) -> set[tuple[str, str]]:
    """A version's source as (recipe, build id): from 'recipe/build-id', an older absolute path, or its fields."""
    keys = {(recipe, build_id)} if recipe and build_id else set()
    parts = PurePath(source_build).parts
    if len(parts) >= 2:
        keys.add((parts[-2], parts[-1]))
    return keys


def _protection(build: BuildFolder, sources: dict[tuple[str, str], str]) -> str | None:
    """Why a build must be kept (published from, or a gallery version came from it), or None."""
    # Imported here: boot.py and the builder import this module for its lock, and must not pull in a stage.
    from harness.stages.publish import published_ok

    reasons = []
    try:
        if published_ok(build):
            reasons.append("a publish of it succeeded (publish.json history)")
    except _MALFORMED as exc:
        reasons.append(f"its publish.json is unreadable ({exc}): it may have been published")
    where = sources.get((build.recipe_name, build.build_id))
    if where:
        reasons.append(where)
    return "; ".join(reasons) or None


def _judge_builds(scan: _Scan, options: PruneOptions,
                  sources: dict[tuple[str, str], str]) -> tuple[list[Item], list[Item]]:
    delete: list[Item] = []
    protected: list[Item] = []
    for recipe, builds in scan.builds.items():
        if options.recipe is not None and recipe != options.recipe:
            continue
        old = builds[:-options.keep] if options.keep else builds
        for build in old:
            reason = None if options.include_published else _protection(build, sources)
            if reason:
                protected.append(Item(build.path, reason))
            else:
                delete.append(Item(build.path, f"older than the newest {options.keep} of {recipe}"))
    return delete, protected


def _judge_scratch(scan: _Scan, root: Path, options: PruneOptions,
                   now_s: float) -> tuple[list[Item], list[Item]]:
    """Stale scratch folders (old, lock free) and the ones left alone with why."""
    stale: list[Item] = []
    kept: list[Item] = []
    for folder, what in scan.scratch:
        if not _in_scope(folder, root, options.recipe):
            continue
        age_s = now_s - folder.lstat().st_mtime
        if age_s < options.stale_after_s:
            kept.append(Item(folder, f"{what}, younger than {options.stale_after_s / 3600:g} h"))
            continue
        fd = _claim(folder)
        _release(fd)
        if fd is None:
            kept.append(Item(folder, f"{what}, in use (its lock is held)"))
        else:
            stale.append(Item(folder, f"stale {what}, untouched for {age_s / 3600:.1f} h, not in use"))
    return stale, kept


# -- applying it -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PruneResult:
    """What apply() deleted and what it could not."""

    deleted: tuple[Path, ...]
    failed: tuple[Item, ...]


def apply(plan: PrunePlan) -> PruneResult:
    """Delete what the plan says, re-checking each folder first; attempts everything, reports every failure."""
    deleted: list[Path] = []
    failed: list[Item] = []
    for item in plan.delete:
        problem = _recheck_build(plan.root, item.path)
        _record(item.path, problem or _delete_build(item.path), deleted, failed)
    for item in plan.stale:
        _record(item.path, _delete_scratch(plan.root, item.path), deleted, failed)
    return PruneResult(tuple(deleted), tuple(failed))


def _record(path: Path, problem: str | None, deleted: list[Path], failed: list[Item]) -> None:
    if problem:
        failed.append(Item(path, problem))
    else:
        deleted.append(path)


def _recheck_build(root: Path, path: Path) -> str | None:
    """The folder is still a real build folder directly under builds/<recipe>/ (nothing was swapped in)."""
    if path.parent.parent != root or path.parent.is_symlink() or path.parent.name.startswith("."):
        return "not a builds/<recipe>/<build-id> folder any more"
    return _not_a_build(path)


def _delete_build(path: Path) -> str | None:
    """Hide the build first (a rename: it leaves every listing at once), then delete it."""
    if mounted := refuse_if_mounted(path):
        return mounted
    hidden = path.parent / f"{PRUNING_PREFIX}{path.name}"
    try:
        os.rename(path, hidden)
    except OSError as exc:
        return f"cannot delete: {exc.strerror or exc}"
    try:
        shutil.rmtree(hidden)
    except OSError as exc:  # the build is gone from listings; a later prune sweeps the rest as stale
        return f"partly deleted, the rest is in {hidden}: {exc.strerror or exc}"
    return None


def _delete_scratch(root: Path, path: Path) -> str | None:
    """Delete a stale scratch folder while holding its lock, so its owner cannot come back meanwhile."""
    if path.is_symlink() or not path.is_dir() or root not in path.parents:
        return "not a real scratch folder any more"
    if mounted := refuse_if_mounted(path):
        return mounted
    fd = _claim(path)
    if fd is None:
        return "in use now (its lock is held)"
    try:
        shutil.rmtree(path)
    except OSError as exc:
        return f"cannot delete: {exc.strerror or exc}"
    finally:
        _release(fd)
    return None
