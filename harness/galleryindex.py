"""index.html of a local gallery (`harness gallery report`): every definition with its properties, its versions
(latest, excluded, end of life), each version's results and a relative link to the report.html it was published
with. Self-contained like report.html."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from harness.buildfolder import read_json, write_text_atomic
from harness.errors import HarnessError, NotFoundError, UsageError
from harness.htmlkit import el, esc, link, page, props, table, td, text_el, tr
from harness.htmlreport import REPORT
from harness.publish.local import LocalGallery
from harness.publish.model import ImageDefinition, ImageVersion
from harness.results import now

INDEX = "index.html"


def results_summary(version_dir: Path) -> tuple[str, str]:
    """(text, css class) of a version's results.json: each stage's verdict and counts."""
    path = version_dir / "results.json"
    if not path.is_file():
        return "no results recorded", "note"
    try:
        stages = read_json(path).get("stages")
    except (HarnessError, AttributeError):
        return "results.json is unreadable", "verdict-failed"
    if not isinstance(stages, dict) or not stages:
        return "no stage results", "note"
    parts, failed = [], False
    for name, value in stages.items():
        info = value if isinstance(value, dict) else {}
        found = info.get("counts")
        counts: dict[str, Any] = found if isinstance(found, dict) else {}
        failed = failed or info.get("passed") is False
        parts.append(f"{name} {info.get('verdict', '?')} ({counts.get('Passed', 0)} passed, "
                     f"{counts.get('Warning', 0)} warnings, {counts.get('Failed', 0)} failed)")
    return "; ".join(parts), "verdict-failed" if failed else "verdict-passed"


def flags(item: ImageVersion, latest: str | None, today: dt.date | None) -> list[str]:
    names = [("latest", item.version == latest), ("excluded", item.exclude_from_latest),
             ("end-of-life", item.is_end_of_life(today)), ("UNVERIFIED", item.force_unverified)]
    return [name for name, on in names if on]


def _version_row(gallery: LocalGallery, name: str, item: ImageVersion, latest: str | None, *, out_dir: Path,
                 today: dt.date | None) -> str:
    folder = gallery.version_dir(name, item.version)
    summary, cls = results_summary(folder)
    report = folder / REPORT
    report_cell = (link(os.path.relpath(report, out_dir), REPORT) if report.is_file()
                   else esc("no report (published before reports were kept)"))
    badges = " ".join(el("span", esc(f), {"class": f"flag flag-{f}"}) for f in flags(item, latest, today))
    cells = [td(item.version), el("td", badges), td(item.published), td(item.end_of_life or ""),
             td(item.source_build), td(summary, cls), el("td", report_cell)]
    return tr(cells, {"class": "version", "data-version": item.version,
                      "data-flags": " ".join(flags(item, latest, today)) or None})


def _definition(gallery: LocalGallery, definition: ImageDefinition, out_dir: Path, today: dt.date | None) -> str:
    found = gallery.latest(definition.name, today)
    latest = found.version if found else None
    items = gallery.versions(definition.name)
    facts = props([(k, v) for k, v in definition.to_json().items() if k != "name"] + [("latest", latest or "none")])
    rows = [_version_row(gallery, definition.name, v, latest, out_dir=out_dir, today=today) for v in reversed(items)]
    versions = (table(["version", "flags", "published", "end of life", "source build", "results", "report"], rows,
                      {"class": "versions"}) if rows else text_el("p", "no versions", {"class": "note"}))
    return el("section", text_el("h2", definition.name) + facts + versions,
              {"class": "definition", "data-definition": definition.name})


def render_index(gallery: LocalGallery, out_dir: Path, today: dt.date | None = None) -> str:
    """The index page; links are relative to out_dir (the folder the page is written to)."""
    definitions = gallery.definitions()
    head = text_el("h1", f"harness gallery {gallery.path.name}") + props(
        [("path", gallery.path), ("definitions", len(definitions)), ("generated", now())])
    body = "".join(_definition(gallery, d, out_dir, today) for d in definitions)
    return page(f"harness gallery {gallery.path.name}", head + (body or text_el("p", "no image definitions")))


def write_index(gallery: LocalGallery, out: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the index (default <gallery>/index.html) atomically; returns its path and what it lists."""
    if not gallery.path.is_dir():
        raise NotFoundError(f"no gallery at {gallery.path}", "publish to it first, or pass --gallery PATH")
    target = (out or gallery.path / INDEX).absolute()
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {target}: {target.parent} is not a folder", "create it, or choose -o FILE")
    write_text_atomic(target, render_index(gallery, target.parent))
    counts = {d.name: len(gallery.versions(d.name)) for d in gallery.definitions()}
    return target, {"index": str(target), "definitions": counts}
