"""The build manifest (`manifest.json`): a typed, versioned record of what a build is.

Written once by the build and replaced (never edited in place) by convert; every reader goes through
`Manifest.from_json`, which also reads schema 1 (manifests written before the stage layer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.authenticode import EfiBinary
from harness.enums import Agent, Family, Generation, OsState
from harness.errors import NotFoundError

SCHEMA_VERSION = 2
MIB = 1024 * 1024
RAW = "disk.raw"
VHD = "disk.vhd"


def _problem(path: Path | str, what: str) -> NotFoundError:
    return NotFoundError(f"{path} is not a harness manifest: {what}",
                         "rebuild with 'harness build', or restore manifest.json from a copy")


@dataclass(frozen=True)
class PartitionInfo:
    """One partition of the disk as the build laid it out (vendor images need not be MiB-aligned)."""

    number: int
    name: str  # bios | esp | root | usr-a ... | pN
    type_guid: str
    start_bytes: int
    size_bytes: int

    @property
    def start_mib(self) -> int:
        return self.start_bytes // MIB

    @property
    def size_mib(self) -> int:
        return self.size_bytes // MIB

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "name": self.name, "type_guid": self.type_guid, "start_mib": self.start_mib,
                "size_mib": self.size_mib, "start_bytes": self.start_bytes, "size_bytes": self.size_bytes}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PartitionInfo:
        start = data.get("start_bytes")
        size = data.get("size_bytes")
        return cls(number=int(data.get("number", 0)), name=str(data["name"]), type_guid=str(data.get("type_guid", "")),
                   start_bytes=int(start) if start is not None else int(data["start_mib"]) * MIB,
                   size_bytes=int(size) if size is not None else int(data["size_mib"]) * MIB)


@dataclass(frozen=True)
class DiskStamp:
    """What the disk file looked like when its content digest was taken: a later stage compares it (size, mtime
    and inode unchanged -> the digest still holds) and re-hashes only when it differs."""

    size_bytes: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> DiskStamp:
        info = path.stat()
        return cls(info.st_size, info.st_mtime_ns, info.st_ino)

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DiskStamp:
        return cls(int(data["size_bytes"]), int(data["mtime_ns"]), int(data["inode"]))


@dataclass(frozen=True)
class DiskInfo:
    """The disk: its file (raw until convert), size, identity and layout."""

    file: str
    size_bytes: int
    allocated_bytes: int = 0
    disk_guid: str = ""
    root_uuid: str = ""
    esp_serial: str = ""
    layout: tuple[PartitionInfo, ...] = ()
    partition_table: tuple[Mapping[str, Any], ...] = ()
    stamp: DiskStamp | None = None

    @property
    def size_mib(self) -> int:
        return self.size_bytes // MIB

    def partition(self, name: str) -> PartitionInfo | None:
        return next((p for p in self.layout if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "size_mib": self.size_mib, "size_bytes": self.size_bytes,
                "allocated_bytes": self.allocated_bytes, "disk_guid": self.disk_guid, "root_uuid": self.root_uuid,
                "esp_serial": self.esp_serial, "layout": [p.to_json() for p in self.layout],
                "partition_table": [dict(p) for p in self.partition_table],
                "stamp": self.stamp.to_json() if self.stamp else None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DiskInfo:
        stamp = data.get("stamp")
        table = [{k: v for k, v in dict(p).items() if k != "node"} for p in data.get("partition_table") or []]
        return cls(file=str(data.get("file", RAW)), size_bytes=int(data["size_bytes"]),
                   allocated_bytes=int(data.get("allocated_bytes") or 0), disk_guid=str(data.get("disk_guid", "")),
                   root_uuid=str(data.get("root_uuid", "")), esp_serial=str(data.get("esp_serial", "")),
                   layout=tuple(PartitionInfo.from_json(p) for p in data.get("layout") or []),
                   partition_table=tuple(table), stamp=DiskStamp.from_json(stamp) if stamp else None)


@dataclass(frozen=True)
class VhdInfo:
    """The fixed VHD footer convert wrote (the data before it is the disk the build hashed)."""

    file: str
    current_size: int
    creator_app: str
    geometry: tuple[int, ...]  # cylinders, heads, sectors per track
    unique_id: str
    checksum: str
    footer_timestamp: str  # UTC, as the footer says
    converted: str  # UTC time of the conversion
    sha256: str = ""  # of the whole .vhd file (= `sha256sum disk.vhd`), when it was computed
    sha256_stamp: DiskStamp | None = None  # the file state sha256 was taken from: another state means re-hash

    def to_json(self) -> dict[str, Any]:
        data = {**dataclasses.asdict(self), "geometry": list(self.geometry)}
        data["sha256_stamp"] = self.sha256_stamp.to_json() if self.sha256_stamp else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VhdInfo:
        return cls(file=str(data.get("file", VHD)), current_size=int(data["current_size"]),
                   creator_app=str(data.get("creator_app", "")), geometry=tuple(data.get("geometry") or ()),
                   unique_id=str(data.get("unique_id", "")), checksum=str(data.get("checksum", "")),
                   footer_timestamp=str(data.get("footer_timestamp") or ""), converted=str(data.get("converted", "")),
                   sha256=str(data.get("sha256", "")),
                   sha256_stamp=DiskStamp.from_json(data["sha256_stamp"]) if data.get("sha256_stamp") else None)


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    arch: str = ""
    # For the SBOM, where the package database has them (apt: dpkg's Maintainer and Source, the DEP-5 header's
    # License); empty when unknown. Written to manifest.json only when set.
    maintainer: str = ""
    source_name: str = ""
    source_version: str = ""
    license: str = ""

    def to_json(self) -> dict[str, str]:
        data = {"name": self.name, "version": self.version, "arch": self.arch}
        for key in _PACKAGE_EXTRAS:
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Package:
        extras = {key: str(data.get(key) or "") for key in _PACKAGE_EXTRAS}
        return cls(str(data["name"]), str(data["version"]), str(data.get("arch", "")), **extras)


_PACKAGE_EXTRAS = ("maintainer", "source_name", "source_version", "license")


@dataclass(frozen=True)
class SbomInfo:
    """The build's SBOM file (SPDX 2.3 JSON in the build folder) and its sha256, so it travels with the manifest."""

    file: str
    sha256: str
    format: str = "SPDX-2.3"

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SbomInfo:
        return cls(str(data["file"]), str(data["sha256"]), str(data.get("format", "SPDX-2.3")))


@dataclass(frozen=True)
class DeclaredSetting:
    """A guest setting the build applied, with why (the recipe's [[settings]] plus the family's own)."""

    file: str
    key: str
    value: str
    style: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeclaredSetting:
        return cls(str(data["file"]), str(data.get("key", "")), str(data.get("value", "")),
                   str(data.get("style", "kv")), str(data.get("reason", "")))


@dataclass(frozen=True)
class GalleryIdentity:
    publisher: str
    offer: str
    sku: str

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Manifest:
    """What one build is: inputs (recipe, archives, flags), the disk, its content digest, packages, settings."""

    recipe: str
    build_id: str
    family: Family
    release: str
    agent: Agent
    os_state: OsState
    generations: tuple[Generation, ...]
    gallery: GalleryIdentity
    disk: DiskInfo
    content_digest: str
    recipe_source: str = ""  # where the recipe came from, for people (not a path on this machine)
    recipe_digest: str = ""
    recipe_data: Mapping[str, Any] = field(default_factory=dict)  # the recipe after `extends`, validated
    created: str = ""
    harness_version: str = ""
    cache_key: str = ""
    archives: Mapping[str, str] = field(default_factory=dict)
    source: str = ""  # mmdebstrap | dnf | zypper | base_image
    mirror: str = "default"
    architecture: str = "x64"
    security_types: tuple[str, ...] = ("standard",)  # what the recipe declares; verify proves, publish requires
    disk_controllers: tuple[str, ...] = ("scsi",)
    kernel_version: str = ""
    kernel_cmdline: tuple[str, ...] = ()
    packages: tuple[Package, ...] = ()
    settings: tuple[DeclaredSetting, ...] = ()
    timings_s: Mapping[str, float] = field(default_factory=dict)
    boot_chain: str = ""  # signed (shim -> GRUB -> kernel, Secure Boot) | unsigned | "" (not recorded)
    efi_binaries: tuple[EfiBinary, ...] = ()  # every EFI binary on the ESP and the kernel: path, sha256, signers
    vhd: VhdInfo | None = None
    sbom: SbomInfo | None = None  # written by the build (harness/sbom.py); None for builds made before SBOMs
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys this version does not know, kept as they are
    schema: int = SCHEMA_VERSION

    @property
    def firmwares(self) -> tuple[str, ...]:
        return tuple(g.firmware.value for g in self.generations)

    def package_versions(self) -> dict[str, str]:
        return {p.name: p.version for p in self.packages}

    def replace(self, **changes: Any) -> Manifest:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": SCHEMA_VERSION, "recipe": self.recipe, "recipe_source": self.recipe_source,
            "recipe_digest": self.recipe_digest, "family": self.family.value, "release": self.release,
            "build_id": self.build_id, "created": self.created, "harness_version": self.harness_version,
            "cache_key": self.cache_key, "archives": dict(self.archives), "source": self.source, "mirror": self.mirror,
            "agent": self.agent.value, "os_state": self.os_state.value,
            "generations": [g.value for g in self.generations], "architecture": self.architecture,
            "security_types": list(self.security_types), "disk_controllers": list(self.disk_controllers),
            "gallery": self.gallery.to_json(), "disk": self.disk.to_json(), "content_digest": self.content_digest,
            "kernel_version": self.kernel_version, "kernel_cmdline": list(self.kernel_cmdline),
            "packages": [p.to_json() for p in self.packages], "settings": [s.to_json() for s in self.settings],
            "timings_s": dict(self.timings_s), "recipe_data": dict(self.recipe_data),
            "boot_chain": self.boot_chain, "efi_binaries": [b.to_json() for b in self.efi_binaries],
        }
        if self.vhd is not None:
            data["vhd"] = self.vhd.to_json()
        if self.sbom is not None:
            data["sbom"] = self.sbom.to_json()
        return {**dict(self.extra), **data}

    @classmethod
    def from_json(cls, data: Any, where: Path | str = "manifest.json") -> Manifest:
        """Read schema 1 or 2; anything else (a list, a missing key, a newer schema) is one clear error."""
        if not isinstance(data, dict):
            raise _problem(where, f"it holds a JSON {type(data).__name__}, not an object")
        schema = data.get("schema", 1)
        if schema not in (1, SCHEMA_VERSION):
            raise NotFoundError(f"{where} has manifest schema {schema!r}; this harness reads 1 and {SCHEMA_VERSION}",
                                "use the harness version that wrote it, or rebuild")
        try:
            return cls._parse(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _problem(where, f"{type(exc).__name__}: {exc}") from exc

    @classmethod
    def _parse(cls, data: dict[str, Any]) -> Manifest:
        gallery = data.get("gallery") or {}
        known = {f.name for f in dataclasses.fields(cls)} | {"recipe_path"}
        return cls(
            recipe=str(data["recipe"]), build_id=str(data["build_id"]), family=Family(data["family"]),
            release=str(data.get("release", "")), agent=Agent(data.get("agent", Agent.CLOUD_INIT)),
            os_state=OsState(data.get("os_state", OsState.GENERALIZED)),
            generations=tuple(Generation(g) for g in data.get("generations", ["V1", "V2"])),
            gallery=GalleryIdentity(str(gallery.get("publisher", "harness")), str(gallery.get("offer", data["recipe"])),
                                    str(gallery.get("sku", "default"))),
            disk=DiskInfo.from_json(data["disk"]), content_digest=str(data.get("content_digest", "")),
            recipe_source=str(data.get("recipe_source") or Path(str(data.get("recipe_path", ""))).name),
            recipe_digest=str(data.get("recipe_digest", "")), recipe_data=dict(data.get("recipe_data") or {}),
            created=str(data.get("created", "")), harness_version=str(data.get("harness_version", "")),
            cache_key=str(data.get("cache_key", "")), archives=dict(data.get("archives") or {}),
            source=str(data.get("source", "")), mirror=str(data.get("mirror", "default")),
            architecture=str(data.get("architecture", "x64")),
            security_types=tuple(data.get("security_types") or ["standard"]),
            disk_controllers=tuple(data.get("disk_controllers") or ["scsi"]),
            kernel_version=str(data.get("kernel_version") or ""),
            kernel_cmdline=tuple(str(t) for t in data.get("kernel_cmdline") or []),
            packages=tuple(Package.from_json(p) for p in data.get("packages") or []),
            settings=tuple(DeclaredSetting.from_json(s) for s in data.get("settings") or []),
            timings_s=dict(data.get("timings_s") or {}), boot_chain=str(data.get("boot_chain", "")),
            efi_binaries=tuple(EfiBinary.from_json(b) for b in data.get("efi_binaries") or []),
            vhd=VhdInfo.from_json(data["vhd"]) if data.get("vhd") else None,
            sbom=SbomInfo.from_json(data["sbom"]) if data.get("sbom") else None,
            extra={k: v for k, v in data.items() if k not in known},
        )
