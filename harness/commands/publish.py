"""`harness publish BUILD --to local:PATH|azure`: publish a verified build to image definitions."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from harness import buildfolder
from harness.commands._output import emit_json
from harness.errors import HarnessError, PublishError
from harness.publish import model
from harness.report import FAILED, PASSED, WARNING, Record, StageReport, write_stage

DEFAULT_TARGET = "local:gallery"
AZURE_MODULE = "harness.publish.azure"


def _azure() -> tuple[ModuleType | None, str]:
    """The Azure target module, or None and why it is missing (it and its SDK are imported lazily)."""
    try:
        return importlib.import_module(AZURE_MODULE), ""
    except ModuleNotFoundError as exc:
        return None, f"module {exc.name} is missing"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "publish", help="publish a build to the local gallery (default) or an Azure Compute Gallery",
        description="Publish a checked and verified build as an immutable image version, to one image "
                    "definition per Hyper-V generation (default names: <offer>-<sku>-gen1 and -gen2, "
                    "plus -specialized for specialized builds).")
    p.add_argument("build", metavar="BUILD", help="build folder or RECIPE[@BUILD_ID|@latest]")
    add_publish_arguments(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def add_publish_arguments(p: argparse.ArgumentParser) -> None:
    """Publish options, shared by `harness publish` and `harness run`."""
    p.add_argument("--to", default=DEFAULT_TARGET, metavar="TARGET",
                   help=f"local[:PATH] for a gallery folder, or azure (default {DEFAULT_TARGET})")
    p.add_argument("--definition", action="append", metavar="[GEN=]NAME",
                   help="image definition name; with both generations give V1=NAME and V2=NAME")
    p.add_argument("--generation", choices=["V1", "V2", "both"],
                   help="generation(s) to publish (default: the build's, e.g. both for a hybrid disk)")
    p.add_argument("--version", default="auto", metavar="auto|X.Y.Z",
                   help="image version (default auto: YYYY.MMDD.N)")
    p.add_argument("--force-unverified", action="store_true",
                   help="publish although check/verify did not pass for this content (recorded on the version)")
    p.add_argument("--exclude-from-latest", action="store_true", help="never resolve 'latest' to this version")
    p.add_argument("--end-of-life", metavar="YYYY-MM-DD", help="after this date the version is not latest")
    p.add_argument("--target-region", action="append", metavar="NAME=REPLICAS",
                   help="replicate to a region (repeatable; default local=1)")
    azure, _ = _azure()
    if azure is not None:
        azure.add_azure_arguments(p)


def parse_target(text: str) -> tuple[str, Path | None]:
    """'local:PATH' -> ('local', PATH); 'local' -> the default gallery; 'azure' -> ('azure', None)."""
    kind, _, rest = text.partition(":")
    if kind == "local":
        return "local", Path(rest or "gallery")
    if kind == "azure" and not rest:
        return "azure", None
    raise PublishError(f"unknown publish target {text!r}", "use --to local:PATH or --to azure")


def run(args: argparse.Namespace) -> int:
    target, request, outcomes, azure_result = publish_build(buildfolder.resolve(args.build), args)
    _print(args, target, request, outcomes, azure_result)
    return 0


def publish_build(build: buildfolder.BuildFolder, args: argparse.Namespace) -> tuple[
        str, model.PublishRequest, list[dict[str, Any]], dict[str, Any]]:
    """Publish per the publish options in args; writes publish.json whether it succeeds or not."""
    kind, gallery_path = parse_target(args.to)
    azure_target: Any = None
    if kind == "azure":
        azure, why = _azure()
        if azure is None:
            raise PublishError(f"--to azure is not available: {why}", "publish to a local gallery (--to local:PATH)")
        azure_target = azure.target_from_args(args)
    target = f"local:{gallery_path.absolute()}" if gallery_path is not None else "azure"
    try:
        request = model.prepare(
            build, generation=args.generation, definitions=args.definition, version=args.version,
            force_unverified=args.force_unverified, exclude_from_latest=args.exclude_from_latest,
            end_of_life=args.end_of_life, target_regions=args.target_region)
        if gallery_path is not None:
            from harness.publish.local import LocalGallery

            outcomes = [o.to_json() for o in LocalGallery.at(gallery_path).publish(request)]
            azure_result: dict[str, Any] = {}
        else:
            azure_result = _publish_azure(build, azure_target, request)
            outcomes = _azure_outcomes(request, azure_result)
    except HarnessError as exc:
        _write_failed(build, target, exc)
        raise
    _write_report(build, target, request, outcomes, azure_result)
    return target, request, outcomes, azure_result


def _publish_azure(build: buildfolder.BuildFolder, target: Any, request: model.PublishRequest) -> dict[str, Any]:
    azure, _ = _azure()
    assert azure is not None  # checked before the build was resolved
    result: dict[str, Any] = azure.publish_to_azure(
        build, target, version=request.version, definitions=list(request.definitions),
        force_unverified=request.force_unverified, exclude_from_latest=request.exclude_from_latest,
        end_of_life=request.end_of_life, target_regions=[(r.name, r.replicas) for r in request.target_regions])
    return result


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


def _write_report(build: buildfolder.BuildFolder, target: str, request: model.PublishRequest,
                  outcomes: list[dict[str, Any]], azure_result: dict[str, Any]) -> None:
    names = [o["definition"] for o in outcomes]
    found = sorted({o["version"] for o in outcomes})
    extra: dict[str, Any] = {
        "target": target, "definition": ", ".join(names), "version": ", ".join(found),
        "definitions": names, "versions": {o["definition"]: o["version"] for o in outcomes},
        "published": outcomes, "force_unverified": request.force_unverified,
    }
    if azure_result:
        extra["azure"] = azure_result
    write_stage(build, StageReport("publish", request.content_digest, _records(request, outcomes), extra=extra))


def _write_failed(build: buildfolder.BuildFolder, target: str, exc: HarnessError) -> None:
    """Record a refused or failed publish in publish.json, so results show why nothing was published."""
    try:
        digest = str(build.manifest().get("content_digest", ""))
    except HarnessError:
        return  # no readable manifest: nothing to record against
    record = Record(stage="publish", check="publish", result=FAILED, message=exc.message, required=exc.hint)
    write_stage(build, StageReport("publish", digest, [record], extra={"target": target}))


def _print(args: argparse.Namespace, target: str, request: model.PublishRequest, outcomes: list[dict[str, Any]],
           azure_result: dict[str, Any]) -> None:
    if request.force_unverified:
        print(f"warning: published an unverified build: {'; '.join(request.gate.problems)}", file=sys.stderr)
    if args.json:
        emit_json({"target": target, "build": str(request.build.path), "content_digest": request.content_digest,
                   "force_unverified": request.force_unverified, "unverified_reasons": list(request.gate.problems),
                   "published": outcomes, **({"azure": azure_result} if azure_result else {})})
        return
    for o in outcomes:
        if o["created"]:
            print(f"published {o['definition']} version {o['version']}: {o['location']}")
        else:
            print(f"{o['definition']}: {o['note'] or 'already published as version ' + o['version']} (no-op)")
