"""`harness promote`: let staged versions (published with --exclude-from-latest) become 'latest'; clean up old ones."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness import buildfolder
from harness.commands._output import emit_json
from harness.commands.publish import DEFAULT_TARGET, add_azure_arguments, azure_target, require_azure
from harness.errors import UsageError
from harness.publish.promote import (
    Gallery,
    PromoteOptions,
    PromoteResult,
    check_days,
    parse_item,
    promote,
    published_versions,
    require_items_or_cleanup,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "promote", help="include staged gallery versions in 'latest'; delete old staging versions",
        description="Clear exclude-from-latest on published versions (staging -> promote), in a local gallery or "
                    "an Azure Compute Gallery. With --delete-older-than, delete staging versions (excluded from "
                    "latest) published more than DAYS days ago; never the latest version, never one promoted now.")
    p.add_argument("items", nargs="*", metavar="DEFINITION/VERSION", help="versions to promote")
    p.add_argument("--build", metavar="BUILD",
                   help="promote the versions BUILD was last published as to this target (its publish.json)")
    p.add_argument("--to", default=DEFAULT_TARGET, metavar="TARGET",
                   help=f"local[:PATH] for a gallery folder, or azure (default {DEFAULT_TARGET})")
    p.add_argument("--delete-older-than", type=float, metavar="DAYS",
                   help="also delete staging versions published more than DAYS days ago")
    p.add_argument("--include-latest", action="store_true",
                   help="cleanup may also delete old versions that take part in 'latest' (never the latest itself)")
    p.add_argument("--definition", action="append", metavar="NAME",
                   help="image definitions to clean up (repeatable; default: those of the promoted versions, "
                        "or every definition of the gallery)")
    p.add_argument("--dry-run", action="store_true", help="only say what would be promoted and deleted")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_azure_arguments(p)
    p.set_defaults(func=run)


def _gallery(args: argparse.Namespace) -> tuple[Gallery, str]:
    """The gallery --to names, and the target label publish.json uses for it."""
    kind, _, rest = args.to.partition(":")
    if kind == "local":
        from harness.publish.local import LocalGallery
        from harness.publish.promote import LocalPromoteGallery

        gallery = LocalGallery.at(Path(rest or "gallery"))
        return LocalPromoteGallery(gallery), f"local:{gallery.path}"
    if kind == "azure" and not rest:
        require_azure()
        from harness.publish.arm import Arm
        from harness.publish.azure import compute_client
        from harness.publish.promote import AzurePromoteGallery

        target = azure_target(args, needs_storage=False)
        if target.kind != "gallery" or not target.gallery:
            raise UsageError("promote works on an Azure Compute Gallery", "set --azure-gallery (or gallery in "
                             "[azure]) and leave --azure-target at gallery")
        arm = Arm(compute_client(target), target.resource_group, target.location)
        return AzurePromoteGallery(arm, target.gallery), "azure"
    raise UsageError(f"unknown target {args.to!r}", "use --to local:PATH or --to azure")


def options_from(args: argparse.Namespace, target_label: str) -> PromoteOptions:
    items = [parse_item(text) for text in args.items]
    if args.build:
        items += published_versions(buildfolder.resolve(args.build), target_label)
    options = PromoteOptions(items=tuple(dict.fromkeys(items)), delete_older_than_days=check_days(
        args.delete_older_than), include_latest=args.include_latest, definitions=tuple(args.definition or ()),
        dry_run=args.dry_run)
    require_items_or_cleanup(options)
    return options


def run(args: argparse.Namespace) -> int:
    gallery, label = _gallery(args)
    result = promote(gallery, options_from(args, label))
    if args.json:
        emit_json(result.to_json())
    else:
        show(result)
    return 0


def show(result: PromoteResult) -> None:
    would = "would " if result.dry_run else ""
    for item in result.promoted:
        name = f"{item['definition']}/{item['version']}"
        print(f"{would}promote {name}" if item["changed"] and result.dry_run else
              f"promoted {name}" if item["changed"] else f"{name} already takes part in 'latest' (no-op)")
    for item in result.deleted:
        print(f"{would}delete {item['definition']}/{item['version']} (published {item['published']})")
    for item in result.kept:
        print(f"kept {item['definition']}/{item['version']}: {item['reason']}")
    for definition, version in result.latest.items():
        print(f"latest of {definition}: {version or 'none'}")
