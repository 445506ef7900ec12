"""`harness publish BUILD --to local:PATH|azure`: publish a verified build to image definitions."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from harness import buildfolder
from harness.commands._args import BOTH
from harness.commands._output import emit_json
from harness.enums import Generation
from harness.errors import HarnessError, UsageError
from harness.publish.azure_settings import SETTINGS, AzureTarget, load_toml, resolve
from harness.publish.local import DEFAULT_GALLERY
from harness.results import StageReport
from harness.stages import publish
from harness.stages.publish import LocalTarget, PublishOptions

DEFAULT_TARGET = f"local:{DEFAULT_GALLERY}"
AZURE_MODULE = "harness.publish.azure"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "publish", help="publish a build to the local gallery (default) or an Azure Compute Gallery",
        description="Publish a checked and verified build as an immutable image version, to one image "
                    "definition per Hyper-V generation (default names: <offer>-<sku>-gen1 and -gen2, "
                    "plus -specialized for specialized builds). A raw build is converted first.")
    p.add_argument("build", metavar="BUILD", help="build folder or RECIPE[@BUILD_ID|@latest|@latest-passed]")
    add_publish_arguments(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def add_publish_arguments(p: argparse.ArgumentParser) -> None:
    """Publish options, shared by `harness publish` and `harness run`."""
    p.add_argument("--to", default=DEFAULT_TARGET, metavar="TARGET",
                   help=f"local[:PATH] for a gallery folder, or azure (default {DEFAULT_TARGET})")
    p.add_argument("--definition", action="append", metavar="[GEN=]NAME",
                   help="image definition name; with both generations give V1=NAME and V2=NAME")
    p.add_argument("--generation", choices=[*(g.value for g in Generation), BOTH],
                   help="generation(s) to publish (default: the build's, e.g. both for a hybrid disk)")
    p.add_argument("--version", default="auto", metavar="auto|X.Y.Z",
                   help="image version (default auto: YYYY.MMDD.N)")
    p.add_argument("--force-unverified", action="store_true",
                   help="publish although check/verify did not pass for this content (recorded on the version)")
    p.add_argument("--exclude-from-latest", action="store_true", help="never resolve 'latest' to this version")
    p.add_argument("--end-of-life", metavar="YYYY-MM-DD", help="after this date the version is not latest")
    p.add_argument("--target-region", action="append", metavar="NAME=REPLICAS",
                   help="replicate to a region (repeatable; default local=1)")
    p.add_argument("--exclude-region", action="append", metavar="NAME",
                   help="a target region whose 'latest' skips this version while the others use it (repeatable; "
                        "--exclude-from-latest excludes it everywhere)")
    p.add_argument("--sign-key", metavar="KEYFILE",
                   help="sign the provenance (DSSE) with this Ed25519 or ECDSA P-256 PEM private key (an encrypted "
                        "key reads its password from $HARNESS_SIGN_KEY_PASSWORD); default: an unsigned envelope")
    add_azure_arguments(p)


def add_azure_arguments(parser: argparse.ArgumentParser) -> None:
    """The Azure options (all default to None, so an unset flag falls through to the environment and TOML)."""
    group = parser.add_argument_group("Azure (--to azure)", "each option can also be set as HARNESS_AZURE_<NAME> "
                                      "or as <name> in the [azure] table of --azure-config")
    group.add_argument("--azure-config", metavar="FILE", help="TOML file with an [azure] table of these settings")
    for s in SETTINGS:
        if s.kind is bool:
            group.add_argument(s.flag, dest=f"azure_{s.name}", action="store_const", const=True, default=None,
                               help=s.help)
        else:
            group.add_argument(s.flag, dest=f"azure_{s.name}", type=s.kind, default=None,
                               choices=list(s.choices) or None, metavar=None if s.choices else s.metavar or None,
                               help=s.help)


def azure_target(args: argparse.Namespace, env: Mapping[str, str] | None = None, *,
                 needs_storage: bool = True) -> AzureTarget:
    """AzureTarget from the parsed flags, the environment and --azure-config (flags > environment > TOML)."""
    environ = os.environ if env is None else env
    config = getattr(args, "azure_config", None) or environ.get("HARNESS_AZURE_CONFIG")
    table = load_toml(Path(config)) if config else {}
    flags = {s.name: getattr(args, f"azure_{s.name}", None) for s in SETTINGS}
    return resolve(flags, environ, table, f"{config} [azure]" if config else "[azure]", needs_storage=needs_storage)


def require_azure() -> None:
    """The Azure target and its SDK import, before any setting is read or anything is written."""
    for module in (AZURE_MODULE, "azure.mgmt.compute", "azure.storage.blob"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            missing = getattr(exc, "name", None) or module
            raise HarnessError(f"--to azure is not available: module {missing} is missing",
                               "reinstall the harness with its dependencies (pip install azure-image-harness), "
                               "or publish to a local gallery (--to local:PATH)") from exc


def parse_target(text: str, args: argparse.Namespace) -> LocalTarget | AzureTarget:
    """'local:PATH' -> that gallery folder; 'local' -> ./gallery; 'azure' -> the Azure settings."""
    kind, _, rest = text.partition(":")
    if kind == "local":
        return LocalTarget(Path(rest or "gallery"))
    if kind == "azure" and not rest:
        require_azure()
        return azure_target(args)
    raise UsageError(f"unknown publish target {text!r}", "use --to local:PATH or --to azure")


def publish_options(args: argparse.Namespace) -> PublishOptions:
    generation = None if args.generation in (None, BOTH) else Generation(args.generation)
    return PublishOptions(
        target=parse_target(args.to, args), generation=generation, definitions=tuple(args.definition or ()),
        version=args.version, force_unverified=args.force_unverified, exclude_from_latest=args.exclude_from_latest,
        end_of_life=args.end_of_life, target_regions=tuple(args.target_region or ()),
        exclude_regions=tuple(args.exclude_region or ()),
        sign_key=Path(args.sign_key) if args.sign_key else None)


def run(args: argparse.Namespace) -> int:
    options = publish_options(args)
    report = publish.run(buildfolder.resolve(args.build), options)
    show(report, json_output=args.json)
    return 0


def show(report: StageReport, *, json_output: bool) -> None:
    details = report.details
    if details.get("force_unverified"):
        print(f"warning: published an unverified build: {'; '.join(details.get('unverified_reasons', []))}",
              file=sys.stderr)
    if json_output:
        emit_json({"target": details["target"], "build": str(report.build.path) if report.build else None,
                   "content_digest": report.content_digest, "force_unverified": details["force_unverified"],
                   "unverified_reasons": details.get("unverified_reasons", []), "published": details["published"],
                   **({"azure": details["azure"]} if details.get("azure") else {})})
        return
    for o in details["published"]:
        if o["created"]:
            print(f"published {o['definition']} version {o['version']}: {o['location']}")
        else:
            print(f"{o['definition']}: {o['note'] or 'already published as version ' + o['version']} (no-op)")
