"""`harness gallery list|show|delete|report`: inspect and prune a local gallery, write its HTML index;
`harness gallery share`: share an Azure Compute Gallery (role assignments, direct sharing, community)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.commands._output import emit_json, table
from harness.errors import PublishError, UsageError
from harness.publish.local import DEFAULT_GALLERY, LocalGallery
from harness.publish.model import ImageVersion

if TYPE_CHECKING:
    from harness.publish.sharing import ShareRequest


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("gallery", help="list, show or delete local gallery images")
    gsub = p.add_subparsers(dest="gallery_command", metavar="ACTION", required=True)
    lst = gsub.add_parser("list", help="image definitions with their versions and which is latest")
    show = gsub.add_parser("show", help="one image definition, or one version with its files")
    show.add_argument("item", metavar="DEFINITION[/VERSION]", help="VERSION may be 'latest'")
    delete = gsub.add_parser("delete", help="remove one image version (atomically)")
    delete.add_argument("item", metavar="DEFINITION/VERSION")
    delete.add_argument("--yes", action="store_true", help="also delete the version that is currently latest")
    report = gsub.add_parser("report", help="write an HTML index of the gallery with each version's results")
    report.add_argument("-o", "--output", metavar="FILE", help="the page to write (default <gallery>/index.html)")
    for action, func in ((lst, list_gallery), (show, show_item), (delete, delete_version),
                         (report, gallery_report)):
        action.add_argument("--gallery", default=str(DEFAULT_GALLERY), metavar="PATH",
                            help=f"gallery folder (default ./{DEFAULT_GALLERY})")
        action.add_argument("--json", action="store_true", help="print the result as JSON")
        action.set_defaults(func=func)
    _register_share(gsub)


COMMUNITY_FLAGS = ("public_name_prefix", "publisher_contact", "publisher_uri", "eula")


def _register_share(gsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from harness.commands.publish import add_azure_arguments
    from harness.publish.sharing import PRINCIPAL_TYPES

    share = gsub.add_parser(
        "share", help="share an Azure Compute Gallery: role assignment, subscriptions/tenants, or community",
        description="Share the Azure gallery named by --azure-gallery (it must exist: publish to it first). A role "
                    "assignment (--principal) suits users, groups and service principals of your organisation; "
                    "direct sharing (--share-subscription, --share-tenant) lets other subscriptions or tenants "
                    "see the gallery without a role; --community makes it public to every Azure user. Changes "
                    "already in place are skipped.")
    rbac = share.add_argument_group("role assignment (Azure RBAC)")
    rbac.add_argument("--principal", action="append", metavar="OBJECT_ID",
                      help="object id of a user, group or service principal (repeatable)")
    rbac.add_argument("--role", default="Reader", metavar="NAME|GUID",
                      help="role to assign (default Reader: enough to deploy VMs from the images)")
    rbac.add_argument("--principal-type", choices=PRINCIPAL_TYPES,
                      help="what the principals are (saves Azure a directory look-up for new principals)")
    rbac.add_argument("--definition", metavar="NAME",
                      help="assign on this image definition instead of the whole gallery")
    direct = share.add_argument_group("direct sharing (the gallery's sharing profile, permissions Groups)")
    direct.add_argument("--share-subscription", action="append", metavar="ID", help="subscription id (repeatable)")
    direct.add_argument("--share-tenant", action="append", metavar="ID", help="tenant id (repeatable)")
    community = share.add_argument_group("community gallery (public to every Azure user)")
    community.add_argument("--community", action="store_true", help="make the gallery a community gallery")
    community.add_argument("--public-name-prefix", metavar="PREFIX", help="5-16 letters, digits or '-'; Azure adds "
                           "a unique suffix")
    community.add_argument("--publisher-contact", metavar="EMAIL", help="e-mail address users can write to")
    community.add_argument("--publisher-uri", metavar="URL", help="https:// address of the publisher")
    community.add_argument("--eula", metavar="TEXT|URL", help="licence terms users accept")
    add_azure_arguments(share)
    share.add_argument("--json", action="store_true", help="print the result as JSON")
    share.set_defaults(func=share_gallery)


def share_request(args: argparse.Namespace) -> ShareRequest:
    """The ShareRequest of the parsed flags (the community flags only together with --community)."""
    from harness.publish.sharing import Community, ShareRequest

    given = {name: getattr(args, name) for name in COMMUNITY_FLAGS}
    community = None
    if args.community:
        missing = [f"--{n.replace('_', '-')}" for n, v in given.items() if not v]
        if missing:
            raise UsageError(f"--community needs {', '.join(missing)}",
                             "Azure shows every user who publishes a community gallery and under which terms")
        community = Community(**given)
    elif any(given.values()):
        raise UsageError("--public-name-prefix, --publisher-contact, --publisher-uri and --eula describe a community "
                         "gallery", "add --community")
    return ShareRequest(principals=tuple(args.principal or ()), role=args.role, principal_type=args.principal_type,
                        definition=args.definition, subscriptions=tuple(args.share_subscription or ()),
                        tenants=tuple(args.share_tenant or ()), community=community)


def share_gallery(args: argparse.Namespace) -> int:
    from harness.commands.publish import azure_target, require_azure
    from harness.publish import sharing

    request = share_request(args)
    request.check()
    require_azure()
    result = sharing.share_gallery(azure_target(args, needs_storage=False), request)
    if args.json:
        emit_json(result)
        return 0
    for a in result["actions"]:
        subject = a.get("with") or a.get("value")
        what = f"{a['action']} {a.get('role', '')} {subject}".replace("  ", " ")
        print(f"{what}: {'done' if a['done'] else 'already in place'}")
    groups = "; ".join(f"{kind}: {', '.join(ids)}" for kind, ids in result["groups"].items())
    print(f"gallery {result['gallery']}: permissions {result['permissions']}"
          + (f"; shared with {groups}" if groups else "")
          + (f"; public names {', '.join(result['public_names'])}" if result["public_names"] else ""))
    return 0


def _version_row(item: ImageVersion, latest: str | None) -> dict[str, Any]:
    return {"version": item.version, "published": item.published, "content_digest": item.content_digest,
            "build_id": item.build_id, "latest": item.version == latest,
            "exclude_from_latest": item.exclude_from_latest, "end_of_life": item.end_of_life,
            "end_of_life_passed": item.is_end_of_life(), "force_unverified": item.force_unverified,
            "target_regions": [r.to_json() for r in item.target_regions]}


def _flags(row: dict[str, Any]) -> str:
    names = {"latest": "latest", "exclude_from_latest": "excluded", "end_of_life_passed": "end-of-life",
             "force_unverified": "UNVERIFIED"}
    return ",".join(label for key, label in names.items() if row[key])


def _describe(gallery: LocalGallery, name: str) -> dict[str, Any]:
    definition = gallery.definition(name)
    found = gallery.latest(name)
    latest = found.version if found else None
    return {**definition.to_json(), "latest": latest,
            "versions": [_version_row(v, latest) for v in gallery.versions(name)]}


def list_gallery(args: argparse.Namespace) -> int:
    gallery = LocalGallery.at(args.gallery)
    items = [_describe(gallery, d.name) for d in gallery.definitions()]
    if args.json:
        emit_json({"gallery": str(gallery.path), "definitions": items})
        return 0
    rows: list[list[Any]] = []
    for item in items:
        head = [item["name"], item["hyper_v_generation"], item["os_state"]]
        if not item["versions"]:
            rows.append([*head, "-", "", "", ""])
        rows += [[*head, v["version"], v["published"], v["end_of_life"] or "", _flags(v)] for v in item["versions"]]
    table(f"gallery {gallery.path}", ["definition", "generation", "os state", "version", "published",
                                      "end of life", "flags"], rows)
    return 0


def _split(item: str, need_version: bool) -> tuple[str, str | None]:
    name, _, version = item.partition("/")
    if need_version and not version:
        raise PublishError(f"{item!r} names no version", "use DEFINITION/VERSION, e.g. debian-12-gen2/2026.1126.0")
    return name, version or None


def show_item(args: argparse.Namespace) -> int:
    gallery = LocalGallery.at(args.gallery)
    name, version = _split(args.item, need_version=False)
    if version is None:
        data = _describe(gallery, name)
        if args.json:
            emit_json(data)
            return 0
        for key in ("name", "publisher", "offer", "sku", "os_type", "os_state", "hyper_v_generation",
                    "architecture", "description", "end_of_life", "latest"):
            print(f"{key:20} {data[key] if data[key] is not None else ''}")
        table(f"versions of {name}", ["version", "published", "end of life", "flags", "content digest"],
              [[v["version"], v["published"], v["end_of_life"] or "", _flags(v), v["content_digest"]]
               for v in data["versions"]])
        return 0
    item = gallery.version(name, version)
    found = gallery.latest(name)
    data = {"definition": name, "path": str(gallery.version_dir(name, item.version)),
            "latest": found is not None and found.version == item.version, **item.to_json(),
            "files": gallery.files(name, item.version)}
    if args.json:
        emit_json(data)
        return 0
    for key, value in data.items():
        if key not in ("files", "target_regions", "unverified_reasons", "disk"):
            print(f"{key:20} {value if value is not None else ''}")
    for reason in item.unverified_reasons:
        print(f"{'unverified':20} {reason}")
    table("files", ["path", "size", "allocated", "inode", "links"],
          [[f["path"], f["size_bytes"], f["allocated_bytes"], f["inode"], f["links"]] for f in data["files"]])
    return 0


def delete_version(args: argparse.Namespace) -> int:
    gallery = LocalGallery.at(args.gallery)
    name, version = _split(args.item, need_version=True)
    assert version is not None  # _split requires it
    removed = gallery.delete(name, version, allow_latest=args.yes)
    found = gallery.latest(name)
    latest = found.version if found else None
    if args.json:
        emit_json({"deleted": {"definition": name, "version": removed.version}, "latest": latest})
    else:
        print(f"deleted {name}/{removed.version}; latest is now {latest or 'none'}")
    return 0


def gallery_report(args: argparse.Namespace) -> int:
    from harness.galleryindex import write_index

    path, data = write_index(LocalGallery.at(args.gallery), Path(args.output) if args.output else None)
    if args.json:
        emit_json(data)
    else:
        print(f"wrote {path} ({len(data['definitions'])} definitions, {sum(data['definitions'].values())} versions)")
    return 0
