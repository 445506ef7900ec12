"""Small typed objects for hermetic tests: a manifest and a build folder holding only what a test needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.buildfolder import BuildFolder, write_json_atomic
from harness.manifest import Manifest

DIGEST = "sha256-sparse4m:" + "ab" * 32


def manifest_data(**changes: Any) -> dict[str, Any]:
    """A minimal manifest.json of a debian-12 build; keyword arguments replace top-level keys."""
    data: dict[str, Any] = {
        "schema": 2, "recipe": "debian-12", "build_id": "b1", "family": "apt", "release": "bookworm",
        "agent": "cloud-init", "content_digest": DIGEST, "os_state": "generalized", "generations": ["V1", "V2"],
        "gallery": {"publisher": "harness", "offer": "debian", "sku": "12"},
        "disk": {"file": "disk.raw", "size_bytes": 32 * 1024 * 1024, "layout": []},
    }
    data.update(changes)
    return data


def make_manifest(**changes: Any) -> Manifest:
    return Manifest.from_json(manifest_data(**changes))


def make_build(root: Path, *, recipe: str = "debian-12", build_id: str = "b1", **changes: Any) -> BuildFolder:
    """builds/<recipe>/<build_id>/manifest.json under root (no disk unless the test writes one)."""
    folder = root / recipe / build_id
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "manifest.json", manifest_data(recipe=recipe, build_id=build_id, **changes))
    return BuildFolder(folder)


def sparse_file(path: Path, size: int, writes: list[tuple[int, bytes]]) -> Path:
    """A sparse file of `size` bytes holding the given (offset, data) writes."""
    with path.open("wb") as handle:
        handle.truncate(size)
        for offset, data in writes:
            handle.seek(offset)
            handle.write(data)
    return path


def plain_sha256(path: Path) -> str:
    """What a consumer runs (`sha256sum`): every byte read, holes as zeros."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()
