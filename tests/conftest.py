"""Shared fixtures: one real build per recipe for the whole session, copies for tests that mutate; and the test
tiers as declared requirements.

Builds go to .test-builds/ in the repository (git-ignored), so a second local test run is a
build-cache hit; CI starts from a clean clone and builds each recipe once.

A test that needs something of the host says so with a marker (root, rpm, qemu, network, azurite). Each
capability is checked once per session: on a developer machine a missing one skips the test with what is
missing; under CI=true it fails the test, so CI never passes by skipping.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import urllib.parse
from collections.abc import Callable, Iterator
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


def _tools(*names: str) -> str | None:
    missing = [n for n in names if shutil.which(n) is None]
    return f"host tools missing: {', '.join(missing)} (run `make setup`)" if missing else None


def _root() -> str | None:
    return None if os.geteuid() == 0 else "needs root (mmdebstrap root mode, chroot, network namespaces)"


def _apt_source_uris() -> list[str]:
    """The archive URIs of the host's enabled apt sources (one-line `deb URI ...` and deb822 `URIs:`)."""
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list")),
             *sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]
    uris: list[str] = []
    for path in files:
        for line in (path.read_text(errors="replace") if path.is_file() else "").splitlines():
            words = line.split("#", 1)[0].split()
            if words[:1] == ["deb"] or words[:1] == ["URIs:"]:
                uris += [w for w in words[1:] if w.startswith(("http://", "https://"))]
    return uris


def _archive_reachable() -> str | None:
    """The host's own apt sources name the archives it reaches (no host name is written here); one must answer."""
    hosts = {urllib.parse.urlsplit(u).hostname: urllib.parse.urlsplit(u) for u in _apt_source_uris()}
    errors = []
    for host, url in hosts.items():
        try:
            socket.create_connection((host or "", url.port or (443 if url.scheme == "https" else 80)), 5).close()
            return None
        except OSError as exc:
            errors.append(f"{host}: {exc}")
    return f"no package archive of the host's apt sources is reachable ({'; '.join(errors)})" if errors else None


def _azurite() -> str | None:
    found = (REPO / "node_modules" / ".bin" / "azurite-blob").exists()
    return None if found else "Azurite is not installed in ./node_modules (run `make setup`)"


# marker -> what it needs; a check returns None when the host has it, else what is missing.
CAPABILITIES: dict[str, Callable[[], str | None]] = {
    "root": _root,
    "rpm": lambda: _tools("rpm", "createrepo_c", "dnf", "zypper"),
    "qemu": lambda: _root() or _tools("qemu-system-x86_64", "qemu-img", "dnsmasq", "ip", "debugfs", "sfdisk"),
    "network": lambda: _tools("mmdebstrap") or _archive_reachable(),
    "azurite": lambda: _tools("node") or _azurite(),
    "chromium": lambda: _tools("chromium"),
    "fstools": lambda: _tools("mkfs.xfs", "mkfs.btrfs", "blkid"),
}


@functools.cache
def missing_capability(marker: str) -> str | None:
    return CAPABILITIES[marker]()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (developer machine) or fail (CI=true) a test whose declared host requirement is missing."""
    for mark in item.iter_markers():
        if mark.name not in CAPABILITIES:
            continue
        why = missing_capability(mark.name)
        if why is None:
            continue
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and this {mark.name} test cannot run: {why}", pytrace=False)
        pytest.skip(f"{mark.name}: {why}")


def build_recipe(recipe_name: str, **options: object) -> BuildFolder:
    from harness import recipe
    from harness.builder.context import BuildOptions
    from harness.builder.pipeline import build

    result = build(recipe.load(recipe_name), BuildOptions(disk_size_mib=TEST_DISK_MIB, **options))  # type: ignore[arg-type]
    return result.folder


@pytest.fixture(scope="session")
def debian12_build() -> BuildFolder:
    """The debian-12 build shared by every test of the session (read-only: copy before mutating)."""
    return build_recipe("debian-12")


@pytest.fixture(scope="session")
def ubuntu2404_build() -> BuildFolder:
    return build_recipe("ubuntu-24.04")


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
