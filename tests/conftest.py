"""Shared fixtures: one real build per recipe for the whole session, copies for tests that mutate.

Builds go to .test-builds/ in the repository (git-ignored), so a second local test run is a
build-cache hit; CI starts from a clean clone and builds each recipe once.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.buildfolder import BuildFolder
from harness.digest import sparse_copy

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
TEST_BUILDS = REPO / ".test-builds"
TEST_DISK_MIB = 4096


@pytest.fixture(scope="session", autouse=True)
def _test_builds_dir() -> Iterator[Path]:
    """Every test (and every harness call it makes) uses the test builds folder."""
    old = os.environ.get("HARNESS_BUILDS")
    TEST_BUILDS.mkdir(exist_ok=True)
    os.environ["HARNESS_BUILDS"] = str(TEST_BUILDS)
    yield TEST_BUILDS
    if old is None:
        os.environ.pop("HARNESS_BUILDS", None)
    else:
        os.environ["HARNESS_BUILDS"] = old


def _build(recipe_name: str, **options: object) -> BuildFolder:
    from harness import recipe
    from harness.build.context import BuildOptions
    from harness.build.pipeline import build

    result = build(recipe.load(recipe_name), BuildOptions(disk_size_mib=TEST_DISK_MIB, **options))  # type: ignore[arg-type]
    return result.folder


@pytest.fixture(scope="session")
def debian12_build() -> BuildFolder:
    """The debian-12 build shared by every test of the session (read-only: copy before mutating)."""
    return _build("debian-12")


@pytest.fixture(scope="session")
def ubuntu2404_build() -> BuildFolder:
    return _build("ubuntu-24.04")


def copy_build(build: BuildFolder, dest_root: Path) -> BuildFolder:
    """A private copy of a build folder (holes kept), for tests that change the disk or results."""
    dest = dest_root / build.path.parent.name / build.path.name
    dest.mkdir(parents=True)
    for item in build.path.iterdir():
        if item.is_file() and item.name.startswith("disk."):
            sparse_copy(item, dest / item.name)
        elif item.is_file():
            shutil.copy2(item, dest / item.name)
        elif item.is_dir():
            shutil.copytree(item, dest / item.name)
    return BuildFolder(dest)


@pytest.fixture
def debian12_copy(debian12_build: BuildFolder, tmp_path: Path) -> BuildFolder:
    return copy_build(debian12_build, tmp_path / "builds")
