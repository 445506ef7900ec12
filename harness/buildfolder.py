"""Build folders: `builds/<recipe>/<build-id>/`, resolution of BUILD arguments, atomic JSON files."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import IntegrityError, NotFoundError
from harness.manifest import RAW, VHD, Manifest

MANIFEST = "manifest.json"
__all__ = ["MANIFEST", "RAW", "VHD", "BuildFolder", "builds_root", "list_builds", "resolve", "write_json_atomic"]


def builds_root() -> Path:
    """Where build folders live: $HARNESS_BUILDS or ./builds."""
    return Path(os.environ.get("HARNESS_BUILDS", "builds")).resolve()


def new_build_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp name in the same folder, then rename: never half-written."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """A unique temp name per writer (threads of one process included), then rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> Any:
    """A JSON file, or one clear error for a missing, unreadable, binary or malformed one."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NotFoundError(f"{path} does not exist", "run the stage that writes it first") from exc
    except IsADirectoryError as exc:
        raise NotFoundError(f"{path} is a directory, not a JSON file", "move it away and rerun the stage") from exc
    except ValueError as exc:  # malformed JSON, not UTF-8, or a number longer than Python converts
        raise NotFoundError(f"{path} is not valid JSON ({exc})", "delete it and rerun the stage") from exc
    except OSError as exc:
        raise NotFoundError(f"cannot read {path}: {exc.strerror or exc}", "check its permissions") from exc


@dataclass(frozen=True)
class BuildFolder:
    """One build's folder; every stage reads and writes here."""

    path: Path

    @property
    def recipe_name(self) -> str:
        return self.path.parent.name

    @property
    def build_id(self) -> str:
        return self.path.name

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def manifest(self) -> Manifest:
        return Manifest.from_json(read_json(self.manifest_path), self.manifest_path)

    def write_manifest(self, manifest: Manifest) -> None:
        """Replace manifest.json atomically (a reader sees the old or the new one, never half of it)."""
        write_json_atomic(self.manifest_path, manifest.to_json())

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise read-modify-write of the folder's result files across threads and processes."""
        with open(self.path / ".results.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def disk(self) -> Path:
        """The disk in whichever state it is: disk.vhd after convert, disk.raw before (never both)."""
        found = [self.path / name for name in (VHD, RAW) if (self.path / name).exists()]
        if not found:
            raise NotFoundError(f"build {self.path} holds no disk.raw or disk.vhd", "rebuild it with 'harness build'")
        if len(found) > 1:
            raise IntegrityError(f"build {self.path} holds both {RAW} and {VHD}",
                                 "a build has one disk: delete the stale one or rebuild")
        if not found[0].is_file():
            raise IntegrityError(f"{found[0]} is not a regular file", "rebuild it with 'harness build'")
        return found[0]

    def disk_format(self) -> str:
        """QEMU driver for the disk: 'vpc' for the fixed VHD, 'raw' otherwise."""
        return "vpc" if self.disk().name == VHD else "raw"

    def stage_file(self, stage: str) -> Path:
        return self.path / f"{stage}.json"


def list_builds(recipe: str | None = None, root: Path | None = None) -> list[BuildFolder]:
    """Complete build folders (with a manifest), oldest first."""
    base = root or builds_root()
    if not base.exists():
        return []
    recipes = [base / recipe] if recipe else sorted(p for p in base.iterdir() if p.is_dir())
    found: list[BuildFolder] = []
    for folder in recipes:
        if not folder.is_dir():
            continue
        for build in sorted(folder.iterdir()):
            if build.is_dir() and not build.name.startswith(".") and (build / MANIFEST).exists():
                found.append(BuildFolder(build))
    return sorted(found, key=lambda b: (b.path.name, str(b.path)))


LATEST = "latest"
LATEST_PASSED = "latest-passed"


def passed_check_and_verify(build: BuildFolder) -> bool:
    """Whether check and verify (every firmware the build was made for) passed for the build's content."""
    from harness.enums import Stage
    from harness.results import stage_passed

    try:
        manifest = build.manifest()
    except NotFoundError:
        return False
    digest = manifest.content_digest
    return bool(digest) and stage_passed(build, Stage.CHECK, digest) and all(
        stage_passed(build, Stage.VERIFY, digest, firmware) for firmware in manifest.firmwares)


def resolve(arg: str, root: Path | None = None) -> BuildFolder:
    """A BUILD argument is a folder path or RECIPE[@BUILD_ID|@latest|@latest-passed]."""
    candidate = Path(arg)
    if candidate.is_dir():
        if not (candidate / MANIFEST).is_file():
            raise NotFoundError(f"{candidate} is not a build folder (no manifest.json)",
                                "pass a folder from 'harness builds list'")
        return BuildFolder(candidate.resolve())
    recipe, _, build_id = arg.partition("@")
    if not recipe or "/" in recipe or recipe.startswith("."):
        raise NotFoundError(f"{arg!r} is neither a build folder nor RECIPE[@BUILD_ID]",
                            "pass a folder from 'harness builds list' or e.g. debian-12@latest")
    builds = list_builds(recipe, root)
    if not builds:
        raise NotFoundError(f"no builds of {recipe!r} under {root or builds_root()}",
                            f"run 'harness build {recipe}' first")
    if build_id in ("", LATEST):
        return builds[-1]
    if build_id == LATEST_PASSED:
        for build in reversed(builds):
            if passed_check_and_verify(build):
                return build
        raise NotFoundError(f"no build of {recipe!r} has passed check and verify",
                            f"run 'harness check' and 'harness verify' on {recipe}@latest")
    for build in builds:
        if build.build_id == build_id:
            return build
    raise NotFoundError(f"no build {build_id!r} of {recipe!r}", "see 'harness builds list'")
