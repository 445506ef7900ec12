"""The sections of a build's report.html, each a pure function from what was collected to safe HTML."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.diffing import Diff
from harness.enums import Result
from harness.evidence import MILESTONES, Boot
from harness.htmlkit import data_uri, el, esc, link, props, seconds, table, td, text_el, tr, void
from harness.manifest import Manifest
from harness.results import Record, StageReport
from harness.svgcharts import timeline_svg, trend_svg
from harness.trend import TrendPoint

SEVERITY = {Result.FAILED: 0, Result.WARNING: 1, Result.SKIPPED: 2, Result.PASSED: 3}
OPEN_LIST_MAX = 30  # longer package lists start folded


@dataclass(frozen=True)
class Chart:
    """A boot's systemd-analyze plot (SVG bytes), or why there is none."""

    boot: str
    svg: bytes | None
    note: str = ""


@dataclass(frozen=True)
class Compared:
    """One package diff of this build, or why it could not be made."""

    title: str
    diff: Diff | None
    note: str = ""


@dataclass(frozen=True)
class Checked:
    """A record with the files (relative, existing) that show why it ended as it did."""

    record: Record
    evidence: tuple[str, ...] = ()


def section(title: str, body_html: str, ident: str) -> str:
    return el("section", text_el("h2", title) + body_html, {"id": ident})


def note(text: str) -> str:
    return text_el("p", text, {"class": "note"})


def header(manifest: Manifest, generated: str) -> str:
    facts = props([
        ("recipe", manifest.recipe), ("build", manifest.build_id), ("family", f"{manifest.family} {manifest.release}"),
        ("kernel", manifest.kernel_version), ("agent", manifest.agent), ("OS state", manifest.os_state),
        ("generations", ", ".join(manifest.generations)), ("disk", f"{manifest.disk.size_mib} MiB"),
        ("packages", len(manifest.packages)), ("content digest", manifest.content_digest),
        ("created", manifest.created), ("harness", manifest.harness_version), ("report generated", generated)])
    return text_el("h1", f"harness: {manifest.recipe} build {manifest.build_id}") + facts


def stages_table(stages: Mapping[str, StageReport]) -> str:
    if not stages:
        return note("no stage has recorded results yet")
    rows = []
    for name, report in stages.items():
        counts = report.counts()
        verdict = report.result.value
        rows.append(tr([td(name), td(verdict, f"verdict-{'passed' if report.passed else 'failed'}"),
                        *(td(counts[r.value], "num") for r in Result), td(report.finished)],
                       {"class": f"stage stage-{name}", "data-verdict": verdict}))
    return table(["stage", "verdict", *(r.value.lower() for r in Result), "finished"], rows, {"class": "stages"})


def timings_table(boots: Sequence[Boot], folder_links: Mapping[str, Sequence[str]]) -> str:
    rows = []
    for boot in boots:
        cells = [td(boot.name), td(boot.accel)]
        cells += [td(seconds(boot.timings_s.get(key)), "num") for key, _ in MILESTONES]
        logs = " ".join(link(p, p.rsplit("/", 1)[-1]) for p in folder_links.get(boot.name, ()))
        cells.append(el("td", logs or esc("\u2013")))
        rows.append(tr(cells, {"data-boot": boot.name}))
    return table(["boot", "accel", *(label for _, label in MILESTONES), "logs"], rows, {"class": "timings"})


def timeline(boots: Sequence[Boot], folder_links: Mapping[str, Sequence[str]]) -> str:
    if not boots:
        return section("Boot timeline", note("no verify boot recorded (run 'harness verify')"), "timeline")
    intro = note("seconds from QEMU's start; one bar per boot, on one axis: QEMU start \u2192 first console byte "
                 "\u2192 kernel \u2192 first IMDS request \u2192 Ready \u2192 SSH \u2192 checks done")
    return section("Boot timeline", intro + el("div", timeline_svg(boots), {"class": "chart"})
                   + timings_table(boots, folder_links), "timeline")


def boot_charts(charts: Sequence[Chart]) -> str:
    if not charts:
        return section("Guest boot charts", note("no verify boot recorded"), "bootcharts")
    parts = []
    for chart in charts:
        parts.append(text_el("h3", chart.boot))
        if chart.svg is None:
            parts.append(el("p", esc(chart.note), {"class": "note bootchart-missing", "data-boot": chart.boot}))
            continue
        image = void("img", {"class": "bootchart", "data-boot": chart.boot, "alt": f"systemd-analyze plot of "
                             f"{chart.boot}", "src": data_uri("image/svg+xml", chart.svg)})
        parts.append(el("div", image, {"class": "chart"}))
    return section("Guest boot charts (systemd-analyze plot)", "".join(parts), "bootcharts")


def _check_row(item: Checked) -> str:
    record = item.record
    result = record.result.value.lower()
    flagged = record.result in (Result.FAILED, Result.WARNING)
    evidence = " ".join(link(p, p) for p in item.evidence) if flagged else ""
    cells = [td(record.stage), td(record.where), td(record.check), td(record.result.value, "result"),
             td(record.actual), td(record.required), td(record.message, "message"), el("td", evidence)]
    return tr(cells, {"class": f"check result-{result}", "data-result": record.result.value,
                      "data-stage": record.stage, "data-where": record.where or None})


def checks(items: Sequence[Checked]) -> str:
    if not items:
        return section("Checks", note("no check has run yet"), "checks")
    ordered = sorted(items, key=lambda c: SEVERITY[c.record.result])
    counts = {r: sum(1 for c in items if c.record.result == r) for r in Result}
    line = note(", ".join(f"{n} {r.value.lower()}" for r, n in counts.items()) +
                "; failed and warning rows first, each with the files that show why")
    headers = ["stage", "where", "check", "result", "actual", "required", "message", "evidence"]
    return section("Checks", line + table(headers, [_check_row(c) for c in ordered], {"class": "checks"}),
                   "checks")


def _package_list(kind: str, rows: Iterable[tuple[str, ...]], headers: list[str]) -> str:
    items = list(rows)
    if not items:
        return ""
    body = table(headers, [tr([td(v) for v in row]) for row in items], {"class": f"packages packages-{kind}"})
    summary = el("summary", esc(f"{kind}: {len(items)}"))
    return el("details", summary + body, {"open": len(items) <= OPEN_LIST_MAX, "class": f"changes-{kind}"})


def _diff_body(diff: Diff) -> str:
    parts = []
    if diff.same_content:
        parts.append(note("same content digest: the disks are identical"))
    if diff.kernel:
        parts.append(el("p", f"kernel: {esc(diff.kernel[0])} \u2192 {esc(diff.kernel[1])}", {"class": "kernel"}))
    parts.append(_package_list("added", diff.added.items(), ["package", "version"]))
    parts.append(_package_list("removed", diff.removed.items(), ["package", "version"]))
    parts.append(_package_list("upgraded", ((n, a, b) for n, (a, b) in diff.upgraded.items()),
                               ["package", "old", "new"]))
    parts.append(_package_list("downgraded", ((n, a, b) for n, (a, b) in diff.downgraded.items()),
                               ["package", "old", "new"]))
    if not (diff.added or diff.removed or diff.upgraded or diff.downgraded or diff.kernel):
        parts.append(note("no package or kernel change"))
    return "".join(parts)


def packages(compared: Sequence[Compared]) -> str:
    parts = []
    for item in compared:
        parts.append(text_el("h3", item.title))
        if item.diff is None:
            parts.append(note(item.note))
            continue
        counts = (f"{len(item.diff.added)} added, {len(item.diff.removed)} removed, {len(item.diff.upgraded)} "
                  f"upgraded, {len(item.diff.downgraded)} downgraded")
        parts.append(el("div", text_el("p", f"{item.diff.a} \u2192 {item.diff.b}: {counts}") + _diff_body(item.diff),
                        {"class": "diff", "data-against": item.diff.a}))
    return section("Package changes", "".join(parts), "packages")


def trend(build_ids: Sequence[str], points: Sequence[TrendPoint], current: str) -> str:
    title = f"Boot to Ready over the last {len(build_ids)} builds"
    chart = trend_svg(build_ids, points, current)
    if not chart:
        return section(title, note("no build of this recipe recorded a Ready time"), "trend")
    return section(title, el("div", chart, {"class": "chart"}), "trend")


def _versions(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    return ", ".join(f"{k} {v}" for k, v in value.items())


def publish_history(history: Sequence[Mapping[str, Any]]) -> str:
    if not history:
        return section("Publish history", note("never published"), "publish")
    rows = [tr([td(e.get("time", "")), td(e.get("target", "")), td(e.get("result", ""), "result"),
                td(_versions(e.get("versions"))), td(e.get("message", ""), "message")],
               {"class": f"attempt attempt-{str(e.get('result', '')).lower().replace(' ', '-')}"}) for e in history]
    return section("Publish history", table(["time", "target", "result", "versions", "message"], rows,
                                            {"class": "history"}), "publish")

