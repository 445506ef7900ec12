"""What changed between two builds (or a build and the latest published version): nightly users read this first."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.buildfolder import BuildFolder, read_json
from harness.enums import Stage
from harness.errors import NotFoundError
from harness.manifest import Manifest
from harness.results import Record, StageReport, load_stage, records_from_json, report_from_json
from harness.sbom import SBOM_FILE
from harness.sbomdiff import SbomDiff, diff_files
from harness.versions import compare_versions


@dataclass
class Diff:
    a: str
    b: str
    added: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    upgraded: dict[str, tuple[str, str]] = field(default_factory=dict)
    downgraded: dict[str, tuple[str, str]] = field(default_factory=dict)
    kernel: tuple[str, str] | None = None
    size: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    checks: dict[str, tuple[str, str]] = field(default_factory=dict)
    ready_s: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    same_content: bool = False
    sbom: dict[str, Any] | None = None  # the SBOM diff by purl, when both sides have an SBOM

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: pairs become [old, new] lists."""
        def plain(value: Any) -> Any:
            if isinstance(value, tuple):
                return list(value)
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return {k: plain(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Side:
    """One side of a diff: a build, or a published gallery version (its manifest and results travel with it)."""

    label: str
    manifest: Manifest
    records: tuple[Record, ...] = ()
    verify: StageReport | None = None
    sbom: Path | None = None  # sbom.spdx.json, when the build (or version) has one


def _records(results_path: Path) -> tuple[Record, ...]:
    if not results_path.exists():
        return ()
    data = read_json(results_path)
    return tuple(records_from_json(data, results_path)) if isinstance(data, dict) else ()


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def side_of_build(build: BuildFolder) -> Side:
    manifest = build.manifest()
    sbom = _existing(build.path / manifest.sbom.file) if manifest.sbom is not None else None
    return Side(f"{build.recipe_name}@{build.build_id}", manifest, _records(build.path / "results.json"),
                load_stage(build, Stage.VERIFY), sbom)


def side_of_gallery(gallery_path: Path, build: BuildFolder, definition: str | None) -> Side:
    """The latest version of the build's (gen1) definition in a local gallery."""
    from harness.publish.local import LocalGallery
    from harness.publish.model import default_definition_name

    gallery = LocalGallery.at(gallery_path)
    name = definition or default_definition_name(build.manifest(), "V1")
    latest = gallery.latest(name)
    if latest is None:
        raise NotFoundError(f"no published version of {name} in {gallery_path}",
                            "give two builds, or --gallery/--definition of a published image")
    folder = gallery.version_dir(name, latest.version)
    verify_path = folder / "verify.json"
    verify = report_from_json(read_json(verify_path), verify_path) if verify_path.exists() else None
    return Side(f"{name}@{latest.version}", Manifest.from_json(read_json(folder / "manifest.json"), folder),
                _records(folder / "results.json"), verify, _existing(folder / SBOM_FILE))


def sbom_of(side: Side) -> Path:
    """The side's SBOM file; NotFoundError when it has none."""
    if side.sbom is None:
        raise NotFoundError(f"{side.label} has no SBOM ({SBOM_FILE})",
                            "builds made before SBOMs have none: rebuild, or compare without --sbom")
    return side.sbom


def sbom_diff(a: Side, b: Side) -> SbomDiff:
    """The two sides' SBOMs compared by purl (`harness diff --sbom`)."""
    return diff_files(sbom_of(a), sbom_of(b), a.label, b.label)


def _check_results(records: tuple[Record, ...]) -> dict[str, str]:
    return {f"{r.stage}:{r.where.replace('-', '/') + ':' if r.where else ''}{r.check}": r.result.value
            for r in records}


def _ready_times(verify: StageReport | None) -> dict[str, Any]:
    boots = verify.details.get("boots", {}) if verify is not None else {}
    if not isinstance(boots, dict):
        return {}
    return {name: timings.get("ready_s") for name, boot in boots.items()
            if isinstance(boot, dict) and isinstance(timings := boot.get("timings_s", {}), dict)}


def diff(a: Side, b: Side) -> Diff:
    """Compare A (old) with B (new): packages, kernel, disk size, check results, boot-to-Ready."""
    man_a, man_b = a.manifest, b.manifest
    out = Diff(a.label, b.label, same_content=man_a.content_digest == man_b.content_digest)
    pa, pb = man_a.package_versions(), man_b.package_versions()
    out.added = {n: pb[n] for n in sorted(set(pb) - set(pa))}
    out.removed = {n: pa[n] for n in sorted(set(pa) - set(pb))}
    for name in sorted(set(pa) & set(pb)):
        order = compare_versions(pa[name], pb[name], man_b.family)  # dpkg's or rpm's order, by package format
        if order < 0:
            out.upgraded[name] = (pa[name], pb[name])
        elif order > 0:
            out.downgraded[name] = (pa[name], pb[name])
    if man_a.kernel_version != man_b.kernel_version:
        out.kernel = (man_a.kernel_version, man_b.kernel_version)
    for key in ("size_bytes", "allocated_bytes"):
        va, vb = getattr(man_a.disk, key), getattr(man_b.disk, key)
        if va != vb:
            out.size[key] = (va, vb)
    ca, cb = _check_results(a.records), _check_results(b.records)
    out.checks = {k: (ca.get(k, "absent"), cb.get(k, "absent")) for k in sorted(set(ca) | set(cb))
                  if ca.get(k) != cb.get(k)}
    ra, rb = _ready_times(a.verify), _ready_times(b.verify)
    out.ready_s = {k: (ra.get(k), rb.get(k)) for k in sorted(set(ra) | set(rb))}
    if a.sbom is not None and b.sbom is not None:
        out.sbom = sbom_diff(a, b).to_json()
    return out
