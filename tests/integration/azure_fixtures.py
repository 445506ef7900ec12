"""Fixtures for the Azure publish tests: real Azurite (one per session), a recording proxy, a fake ARM, test VHDs.

Import the fixtures you use into a test module (`from tests.integration.azure_fixtures import azurite, ...`).
A missing Azurite is a test failure that says to run `make setup`, never a skip.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

from harness.buildfolder import BuildFolder
from harness.digest import CHUNK, content_digest
from harness.enums import Agent, Family, Generation, OsState
from harness.manifest import VHD, DiskInfo, DiskStamp, GalleryIdentity, Manifest
from harness.vhd import to_fixed_vhd
from tests.fakes.arm import FakeArm, running_fake_arm
from tests.fakes.azurite import ACCOUNT, ACCOUNT_KEY, Azurite, AzuriteError, connection_string, running_azurite
from tests.fakes.blobproxy import BlobProxy, running_proxy

MIB = 1024 * 1024
PAGE = 512


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite (in memory, --skipApiVersionCheck) on a free loopback port for the whole session."""
    try:
        with running_azurite(tmp_path_factory.mktemp("azurite")) as service:
            yield service
    except AzuriteError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def blob_proxy(azurite: Azurite) -> Iterator[BlobProxy]:
    """A fresh recording proxy in front of the session's Azurite (pages Get Page Ranges by 2, like Azure would)."""
    with running_proxy(azurite.port, page_list_size=2) as proxy:
        yield proxy


@pytest.fixture
def proxy_connection_string(blob_proxy: BlobProxy) -> str:
    return connection_string(blob_proxy.port)


@pytest.fixture
def container(azurite: Azurite) -> str:
    """A new, empty container name (created lazily by the code under test, or by the test)."""
    return f"t{uuid.uuid4().hex[:20]}"


@pytest.fixture
def direct_service(azurite: Azurite) -> BlobServiceClient:
    """A client that talks to Azurite directly (not through the proxy): for setup and read-back only."""
    return BlobServiceClient.from_connection_string(azurite.connection_string, retry_total=0)


@pytest.fixture
def fake_arm() -> Iterator[FakeArm]:
    with running_fake_arm() as fake:
        yield fake


def make_vhd(path: Path, size_mib: int, writes: Sequence[tuple[int, bytes]]) -> Path:
    """A sparse fixed VHD of size_mib MiB + footer holding `writes` (offset, bytes); everything else a hole."""
    with path.open("wb") as handle:
        handle.truncate(size_mib * MIB)
        for offset, data in writes:
            handle.seek(offset)
            handle.write(data)
    return to_fixed_vhd(path)


def scattered_writes(seed: int = 1) -> list[tuple[int, bytes]]:
    """Data that exercises every case: a full window, a small partial one, a run across two windows, a window
    with data only at both ends (two pieces), an allocated but all-zero region, two writes 60 KiB apart (one
    piece, zeros included), and a tiny write near the end."""
    rnd = random.Random(seed)
    return [
        (0, rnd.randbytes(4 * MIB)),
        (3 * CHUNK + 8192, rnd.randbytes(4096)),
        (5 * CHUNK + MIB, rnd.randbytes(6 * MIB)),
        (9 * CHUNK, rnd.randbytes(PAGE)),
        (10 * CHUNK - PAGE, rnd.randbytes(PAGE)),
        (12 * CHUNK, bytes(2 * MIB)),  # allocated zeros: SEEK_DATA reports them, the zero check drops them
        (14 * CHUNK, rnd.randbytes(4096)),
        (14 * CHUNK + 64 * 1024, rnd.randbytes(4096)),
        (15 * CHUNK + 3 * MIB + 100, b"\x01" * 10),
    ]


@pytest.fixture
def sparse_vhd(tmp_path: Path) -> Path:
    """A 64 MiB fixed VHD with scattered data (see scattered_writes)."""
    return make_vhd(tmp_path / "disk.vhd", 64, scattered_writes())


def expected_ranges(path: Path, gap: int = 128 * 1024) -> list[tuple[int, int]]:
    """Reference for what must be in the blob, computed independently of harness.publish.upload: per 4 MiB
    window, its non-zero 512-byte pages, joined where fewer than `gap` zero bytes separate them, plus the footer
    page; then merged. (Test data has no zero run close to `gap`, so page and byte granularity agree.)"""
    size = path.stat().st_size
    ranges: list[tuple[int, int]] = []
    with path.open("rb") as handle:
        for start in range(0, size, CHUNK):
            data = handle.read(CHUNK)
            for i in (i for i in range(0, len(data), PAGE) if any(data[i:i + PAGE])):
                if ranges and ranges[-1][1] > start and start + i - ranges[-1][1] < gap:
                    ranges[-1] = (ranges[-1][0], start + i + PAGE)
                else:
                    ranges.append((start + i, start + i + PAGE))
    ranges.append((size - PAGE, size))
    return _merge(ranges)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def blob_page_ranges(service: BlobServiceClient, container: str, name: str) -> list[tuple[int, int]]:
    """Merged [start, end) ranges the blob holds, as Azurite reports them (adjacent ones merged here)."""
    blob = service.get_blob_client(container, name)
    return _merge([(r.start or 0, (r.end or 0) + 1) for r in blob.list_page_ranges()])


def assert_blob_equals_file(service: BlobServiceClient, container: str, name: str, path: Path) -> None:
    """Ranged downloads (4 MiB each, transactional MD5 checked) compared byte for byte with the file."""
    blob = service.get_blob_client(container, name)
    size = path.stat().st_size
    assert blob.get_blob_properties().size == size
    with path.open("rb") as handle:
        for offset in range(0, size, CHUNK):
            length = min(CHUNK, size - offset)
            remote = blob.download_blob(offset=offset, length=length, validate_content=True).readall()
            local = handle.read(length)
            assert remote == local, f"blob differs from the file in [{offset}, {offset + length})"


def file_md5(path: Path) -> bytes:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.digest()


def make_build(root: Path, vhd_writes: Sequence[tuple[int, bytes]], *, recipe: str = "testdistro",
               build_id: str = "20261126-000000-abcdef", size_mib: int = 64,
               generations: Sequence[str] = ("V1", "V2"), os_state: str = "generalized") -> BuildFolder:
    """A build folder as `harness convert` leaves it: manifest.json + a sparse disk.vhd."""
    folder = root / recipe / build_id
    folder.mkdir(parents=True)
    vhd = make_vhd(folder / "disk.vhd", size_mib, vhd_writes)
    build = BuildFolder(folder)
    build.write_manifest(Manifest(
        recipe=recipe, build_id=build_id, family=Family.APT, release="", agent=Agent.CLOUD_INIT,
        os_state=OsState(os_state), generations=tuple(Generation(g) for g in generations),
        gallery=GalleryIdentity(publisher="harness-tests", offer=recipe, sku="base"),
        disk=DiskInfo(file=VHD, size_bytes=size_mib * MIB, stamp=DiskStamp.of(vhd)),
        content_digest=content_digest(vhd, size_mib * MIB), architecture="x64"))
    return build


def write_sas_url(port: int, container: str, name: str) -> str:
    """A read/write SAS URL for a blob behind 127.0.0.1:port, like the one a managed disk's grant-access returns."""
    sas = generate_blob_sas(ACCOUNT, container, name, account_key=ACCOUNT_KEY,
                            permission=BlobSasPermissions(read=True, write=True),
                            expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    return f"http://127.0.0.1:{port}/{ACCOUNT}/{container}/{name}?{sas}"


def env_without_azure() -> dict[str, str]:
    """The process environment minus Azure settings, so a developer's variables cannot leak into a test."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "HARNESS_AZURE_"))}
