"""Stage `publish`: a verified build becomes an immutable image version of a V1 and/or V2 image definition,
in a local gallery (the default) or on Azure.

The gate (check and verify passed for this content) and the disk's integrity are checked before anything is
written; a raw build is converted first. Every attempt, refused ones included, is appended to the build's
publish history (publish.json), so a refused publish never hides an earlier successful one.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.buildfolder import RAW, VHD, BuildFolder
from harness.enums import Generation, Stage, Verdict
from harness.errors import HarnessError
from harness.integrity import require_unchanged
from harness.publish import features, model
from harness.publish.local import DEFAULT_GALLERY
from harness.report import write_stage
from harness.results import FAILED, PASSED, WARNING, Record, StageReport, load_stage, now

if TYPE_CHECKING:
    from harness.dsse import SigningKey
    from harness.publish.attest import Attestations
    from harness.publish.azure_settings import AzureTarget

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class LocalTarget:
    """A local gallery folder."""

    path: Path = DEFAULT_GALLERY

    def describe(self) -> str:
        return f"local:{self.path.absolute()}"


@dataclass(frozen=True)
class PublishOptions:
    """What to publish where; the Azure settings are resolved by the command layer (flags, environment, TOML)."""

    target: LocalTarget | AzureTarget = field(default_factory=LocalTarget)
    generation: Generation | None = None  # None: every generation the build was made for
    definitions: tuple[str, ...] = ()  # NAME, or GEN=NAME per generation
    version: str = "auto"
    force_unverified: bool = False
    exclude_from_latest: bool = False
    end_of_life: str | None = None
    target_regions: tuple[str, ...] = ()  # NAME=REPLICAS
    exclude_regions: tuple[str, ...] = ()  # target regions whose 'latest' skips this version
    sign_key: Path | None = None  # Ed25519 / ECDSA P-256 PEM private key for the provenance; None: unsigned

    def describe_target(self) -> str:
        return self.target.describe() if isinstance(self.target, LocalTarget) else "azure"


def run(build: BuildFolder, options: PublishOptions) -> StageReport:
    """Publish per the options; publish.json records the attempt whether it succeeds or not."""
    start = time.monotonic()
    target = options.describe_target()
    try:
        key = _check_target(options)
        request = _prepare(build, options)
        attestations = _attest(build, request.vhd, key)
        if isinstance(options.target, LocalTarget):
            from harness.publish.local import LocalGallery

            gallery = LocalGallery.at(options.target.path)
            outcomes = [o.to_json() for o in gallery.publish(request, files=attestations.files())]
            azure_result: dict[str, Any] = {}
        else:
            azure_result = _publish_azure(build, options.target, request, attestations)
            outcomes = _azure_outcomes(request, azure_result)
    except HarnessError as exc:
        _write_failed(build, target, exc)
        raise
    report = _report(build, target, request, outcomes, azure_result)
    report.details["attestations"] = attestations.to_json()
    report.duration_s = round(time.monotonic() - start, 1)
    write_stage(build, report, amend=keep_history)
    report.build = build
    return report


def _check_target(options: PublishOptions) -> SigningKey | None:
    """Pre-flight: a local gallery that can never be written, or a signing key that cannot sign, is refused before
    the gate, convert or a copy. Returns the loaded key."""
    from harness.dsse import load_signing_key  # cryptography: only when publishing

    key = load_signing_key(options.sign_key) if options.sign_key is not None else None
    if isinstance(options.target, LocalTarget):
        from harness.publish.local import LocalGallery

        LocalGallery.at(options.target.path).check_writable()
    return key


def _attest(build: BuildFolder, vhd: Path, key: SigningKey | None) -> Attestations:
    """The files that travel with the version: the provenance of the VHD (by the sha256 convert recorded; a VHD
    convert did not make is hashed here), the SBOM (made from the manifest for a build made before SBOMs)."""
    from harness.publish import attest
    from harness.sbom import write_sbom
    from harness.sparsehash import file_sha256
    from harness.stages import convert

    manifest = build.manifest()
    if manifest.vhd is not None:
        manifest = convert.ensure_vhd_sha256(build, manifest)
    vhd_sha256 = manifest.vhd.sha256 if manifest.vhd is not None else file_sha256(vhd)
    if manifest.sbom is None:
        log.info("publish: build %s has no SBOM (made before SBOMs); writing one from its manifest", build.path)
        write_sbom(build)
    return attest.prepare(build, key, vhd_sha256)


def _prepare(build: BuildFolder, options: PublishOptions) -> model.PublishRequest:
    """Validate every option, gate the build, show its disk unchanged, and convert it when it is still raw."""
    requested = model.validate_options(build.manifest(), generation=options.generation,
                                       definitions=options.definitions, version=options.version,
                                       end_of_life=options.end_of_life, target_regions=options.target_regions,
                                       exclude_regions=options.exclude_regions)
    manifest = require_unchanged(build, "publish")
    found = features.evidence(build, manifest.content_digest)
    proven = {d.hyper_v_generation: features.proven(d.hyper_v_generation, found) for d in requested.definitions}
    unproven = [(g, problem) for g, have in proven.items() for problem in features.unproven(g, manifest, have)]
    gate = model.gate(build, requested.generations, force_unverified=options.force_unverified, unproven=unproven)
    requested = dataclasses.replace(requested, definitions=tuple(
        dataclasses.replace(d, features=proven[d.hyper_v_generation]) for d in requested.definitions))
    if (build.path / RAW).exists() and not (build.path / VHD).exists():
        from harness.stages import convert

        convert.run(build)
    return model.request_for(build, requested, gate, exclude_from_latest=options.exclude_from_latest)


def _publish_azure(build: BuildFolder, target: AzureTarget, request: model.PublishRequest,
                   attestations: Attestations) -> dict[str, Any]:
    from harness.publish.azure import publish_to_azure

    return publish_to_azure(
        build, target, version=request.version, definitions=list(request.definitions),
        force_unverified=request.force_unverified, exclude_from_latest=request.exclude_from_latest,
        end_of_life=request.end_of_life, target_regions=request.target_regions,
        attestations=attestations)


def _azure_outcomes(request: model.PublishRequest, result: dict[str, Any]) -> list[dict[str, Any]]:
    """One outcome per definition from the Azure result: 'versions' {definition: version} or 'version'."""
    found = result.get("versions")
    per_definition: dict[str, Any] = found if isinstance(found, dict) else {}
    version = str(result.get("version", request.version))
    return [model.PublishOutcome(d.name, str(per_definition.get(d.name, version)), bool(result.get("created", True)),
                                 str(result.get("location", "azure"))).to_json() for d in request.definitions]


def _records(request: model.PublishRequest, outcomes: list[dict[str, Any]]) -> list[Record]:
    definitions = {d.name: d for d in request.definitions}
    records = []
    for o in outcomes:
        definition = definitions[o["definition"]]
        what = "created" if o["created"] else "already published (no-op)"
        message = o["note"] or o["location"]
        unverified = request.gate.problems_for(definition.hyper_v_generation)
        if unverified:
            message = f"published unverified (--force-unverified): {'; '.join(unverified)}"
        records.append(Record(
            stage="publish", check=f"publish to {o['definition']}", result=WARNING if unverified else PASSED,
            actual=f"version {o['version']} {what}", required="check and verify passed for this content",
            message=message, firmware=definition.firmware))
    return records


def _report(build: BuildFolder, target: str, request: model.PublishRequest, outcomes: list[dict[str, Any]],
            azure_result: dict[str, Any]) -> StageReport:
    names = [o["definition"] for o in outcomes]
    found = sorted({o["version"] for o in outcomes})
    details: dict[str, Any] = {
        "target": target, "definition": ", ".join(names), "version": ", ".join(found),
        "definitions": names, "versions": {o["definition"]: o["version"] for o in outcomes},
        "published": outcomes, "force_unverified": request.force_unverified,
        "unverified_reasons": list(request.gate.problems),
    }
    if azure_result:
        details["azure"] = azure_result
    created = any(o["created"] for o in outcomes)
    summary = "; ".join(f"{o['definition']} {o['version']}" + ("" if o["created"] else " (no-op)") for o in outcomes)
    return StageReport(Stage.PUBLISH, request.content_digest, _records(request, outcomes),
                       verdict=Verdict.PASSED if created else Verdict.NO_OP, details=details,
                       artifacts={"vhd": request.vhd.name}, summary=f"{summary} in {target}")


def keep_history(build: BuildFolder, report: StageReport) -> None:
    """Append this attempt to every earlier one (publish.json keeps the whole history, not one slot)."""
    previous = load_stage(build, Stage.PUBLISH)
    history = list(previous.details.get("history", [])) if previous is not None else []
    entry = {"time": report.finished or now(), "target": report.details.get("target"),
             "content_digest": report.content_digest, "result": report.result.value,
             "versions": report.details.get("versions", {}), "message": report.details.get("error", "")}
    report.details["history"] = [*history, entry]


def _write_failed(build: BuildFolder, target: str, exc: HarnessError) -> None:
    """Record a refused or failed publish in publish.json, so results show why nothing was published."""
    try:
        digest = build.manifest().content_digest
    except HarnessError:
        return  # no readable manifest: nothing to record against
    record = Record(stage="publish", check="publish", result=FAILED, message=exc.message, required=exc.hint)
    report = StageReport(Stage.PUBLISH, digest, [record], details={"target": target, "error": exc.message})
    try:
        write_stage(build, report, amend=keep_history)
    except (HarnessError, OSError):
        return  # the build folder itself is unwritable: the error being raised says enough


def published_ok(build: BuildFolder) -> bool:
    """Whether any publish of this build ever succeeded (its history, not only the last attempt)."""
    report = load_stage(build, Stage.PUBLISH)
    if report is None:
        return False
    history = report.details.get("history", [])
    if any(entry.get("result") in (Verdict.PASSED.value, Verdict.NO_OP.value) for entry in history):
        return True
    return report.passed and not history

