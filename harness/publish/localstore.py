"""File-level machinery of the local gallery: reflink/sparse copies, replicas, locks, staging and rollback.

local.py holds the gallery model (`LocalGallery`); this module only moves files, never reads a record.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.digest import sparse_copy
from harness.errors import PublishError
from harness.publish.model import ImageDefinition, PublishOutcome

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
STAGING_PREFIX = ".staging-"
TOMBSTONE_PREFIX = ".deleted-"
FICLONE = 0x40049409  # linux/fs.h _IOW(0x94, 9, int)
# errno values meaning "this file system cannot do that here", after which we fall back.
_NO_CLONE = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EBADF}
_NO_LINK = {errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS}


def reflink(src: Path, dst: Path) -> bool:
    """Clone src to a new dst sharing extents (FICLONE); False (and no dst) when unsupported."""
    with src.open("rb") as fin, dst.open("xb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
            return True
        except OSError as exc:
            if exc.errno not in _NO_CLONE:
                raise
    dst.unlink()
    return False


def clone_or_copy(src: Path, dst: Path) -> str:
    """Copy a (sparse) file keeping holes: reflink if possible, else copy its data extents only."""
    if reflink(src, dst):
        return "reflink"
    sparse_copy(src, dst)
    return "sparse-copy"


def replicate(src: Path, dst: Path) -> str:
    """A replica sharing storage with src: hard link, else reflink, else sparse copy."""
    try:
        os.link(src, dst)
        return "hardlink"
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
    return clone_or_copy(src, dst)


def install(staging: Path, final: Path) -> None:
    """Rename a staged folder into place; fails if final exists (a version is never overwritten)."""
    if final.exists():
        raise PublishError(f"{final} already exists", "versions are immutable; pick another version")
    os.rename(staging, final)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (renames, new files) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(definition_dir: Path) -> Iterator[None]:
    """Exclusive lock on one definition: concurrent publishers and deleters take turns."""
    fd = os.open(definition_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def token() -> str:
    """A suffix unique to this process and call, for staging and tombstone names."""
    return f"{os.getpid()}-{secrets.token_hex(4)}"


def sweep(folder: Path) -> None:
    """Remove leftovers of crashed publishers/deleters; only called under the definition lock."""
    for item in folder.iterdir():
        if item.is_dir() and item.name.startswith((STAGING_PREFIX, TOMBSTONE_PREFIX)):
            log.debug("removing leftover %s", item)
            shutil.rmtree(item, ignore_errors=True)


def remove_version(folder: Path, version: str) -> None:
    """Remove folder/version atomically: rename it to a tombstone, then delete; only called under the lock."""
    tombstone = folder / f"{TOMBSTONE_PREFIX}{version}-{token()}"
    os.rename(folder / version, tombstone)
    fsync_dir(folder)
    try:
        shutil.rmtree(tombstone)
    except OSError as exc:  # the version is already gone; the next locked call sweeps the rest
        log.warning("could not remove %s (%s); it will be removed later", tombstone, exc)


@dataclass
class Planned:
    """One definition's part of a publish: a no-op, or a version to stage (staging) and commit (final)."""

    wanted: ImageDefinition
    folder: Path
    version: str
    noop: PublishOutcome | None = None
    staging: Path | None = None

    @property
    def final(self) -> Path:
        return self.folder / self.version

    def staging_path(self) -> Path:
        assert self.staging is not None, "staged before committing"
        return self.staging

    def outcome(self) -> PublishOutcome:
        return self.noop or PublishOutcome(self.wanted.name, self.version, True, str(self.final))


def undo_one(plan: Planned) -> None:
    """Remove a staging folder, or (once renamed into place) the committed version via a tombstone.

    Only called under the definition's lock after deciding the version was new, so a final folder without its
    staging folder is the one this publish renamed into place.
    """
    if plan.staging is None:
        return
    if plan.staging.exists():
        shutil.rmtree(plan.staging)
        return
    if plan.final.exists():
        remove_version(plan.folder, plan.version)


def undo_all(pending: list[Planned], cause: BaseException) -> None:
    """Remove every staging folder and every version this publish already renamed into place."""
    failures = []
    for plan in pending:
        try:
            undo_one(plan)
        except OSError as exc:
            failures.append(f"{plan.final}: {exc.strerror or exc}")
    if failures:
        raise PublishError(f"publishing failed ({cause}) and could not be undone: {'; '.join(failures)}",
                           "delete those versions with 'harness gallery delete' before publishing again")
