"""`harness gallery list|show|delete|report`: inspect and prune a local gallery, write its HTML index."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.commands._output import emit_json, table
from harness.errors import PublishError
from harness.publish.local import DEFAULT_GALLERY, LocalGallery
from harness.publish.model import ImageVersion


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
